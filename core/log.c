/* Log lines: time, level, optional context fields, message. */
#include "log.h"

#include "buf.h"

#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void luari_log_init(luari_log_t *log) {
  log->level = LUARI_LOG_INFO;
  log->format = LUARI_LOG_TEXT;
  log->out = stderr;
}

int luari_log_level_parse(const char *name) {
  for (int i = 0; i < 4; i++)
    if (strcmp(name, level_names[i]) == 0)
      return i;
  if (strcmp(name, "warning") == 0)
    return LUARI_LOG_WARN;
  return -1;
}

const char *luari_log_level_name(int level) {
  return level >= 0 && level < 4 ? level_names[level] : "?";
}

static void format_time(char *out, size_t size, int iso) {
  struct timeval tv;
  struct tm tm;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  size_t n = strftime(out, size, iso ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm);
  snprintf(out + n, size - n, ".%03dZ", (int)(tv.tv_usec / 1000));
}

static void json_string(luari_buf_t *b, const char *s) {
  luari_buf_append(b, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      luari_buf_append(b, "\\", 1);
      luari_buf_append(b, s, 1);
    } else if (c == '\n') {
      luari_buf_append(b, "\\n", 2);
    } else if (c == '\t') {
      luari_buf_append(b, "\\t", 2);
    } else if (c < 0x20) {
      luari_buf_appendf(b, "\\u%04x", c);
    } else {
      luari_buf_append(b, s, 1);
    }
  }
  luari_buf_append(b, "\"", 1);
}

static void format_json(luari_buf_t *b, int level, const char *const *fields, const char *msg) {
  char ts[40];
  format_time(ts, sizeof ts, 1);
  luari_buf_appendf(b, "{\"time\":\"%s\",\"level\":\"%s\"", ts, luari_log_level_name(level));
  for (const char *const *f = fields; f && f[0]; f += 2) {
    if (!f[1])
      continue;
    luari_buf_append(b, ",", 1);
    json_string(b, f[0]);
    luari_buf_append(b, ":", 1);
    json_string(b, f[1]);
  }
  luari_buf_appends(b, ",\"msg\":");
  json_string(b, msg);
  luari_buf_appends(b, "}\n");
}

/* Messages carry text from the network (an event, a server's error): a
 * line break in it starts an indented continuation line, never something
 * that reads as a log line of its own; other control bytes are escaped. */
static void append_text(luari_buf_t *b, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '\n')
      luari_buf_appends(b, "\n    ");
    else if (c < 0x20 && c != '\t')
      luari_buf_appendf(b, "\\x%02x", c);
    else
      luari_buf_append(b, s, 1);
  }
}

static void format_text(luari_buf_t *b, int level, const char *const *fields, const char *msg) {
  char ts[40];
  format_time(ts, sizeof ts, 0);
  luari_buf_appendf(b, "%s %-5s ", ts, luari_log_level_name(level));
  int any = 0;
  for (const char *const *f = fields; f && f[0]; f += 2) {
    if (!f[1])
      continue;
    luari_buf_appendf(b, "%s%s=%s", any ? " " : "[", f[0], f[1]);
    any = 1;
  }
  if (any)
    luari_buf_appends(b, "] ");
  append_text(b, msg);
  luari_buf_appends(b, "\n");
}

/* A message is cut after this many bytes (a 20 MB event or error text
 * would be one line no one reads, and stalls the log while it is written). */
#define MSG_MAX 65536

/* The message, or its first MSG_MAX bytes (whole UTF-8 characters) and
 * how many more there were, in `cut`. */
static const char *bounded(const char *msg, luari_buf_t *cut) {
  size_t len = strlen(msg);
  if (len <= MSG_MAX)
    return msg;
  size_t keep = MSG_MAX;
  while (keep > 0 && ((unsigned char)msg[keep] & 0xC0) == 0x80)
    keep--;
  luari_buf_append(cut, msg, keep);
  luari_buf_appendf(cut, "... (%zu more bytes not logged)", len - keep);
  return cut->data ? cut->data : "(out of memory)";
}

void luari_log_fields(luari_log_t *log, int level, const char *const *fields, const char *msg) {
  if (!luari_log_enabled(log, level))
    return;
  luari_buf_t cut = LUARI_BUF_INIT;
  msg = bounded(msg, &cut);
  luari_buf_t b = LUARI_BUF_INIT;
  if (log->format == LUARI_LOG_JSON)
    format_json(&b, level, fields, msg);
  else
    format_text(&b, level, fields, msg);
  if (b.data) {
    /* One write per line keeps lines whole when several processes share stderr. */
    fwrite(b.data, 1, b.len, log->out);
    fflush(log->out);
  }
  luari_buf_free(&b);
  luari_buf_free(&cut);
}

void luari_log(luari_log_t *log, int level, const char *fmt, ...) {
  if (!luari_log_enabled(log, level))
    return;
  luari_buf_t msg = LUARI_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  luari_buf_vappendf(&msg, fmt, ap);
  va_end(ap);
  luari_log_fields(log, level, NULL, msg.data ? msg.data : "(out of memory)");
  luari_buf_free(&msg);
}
