/* Log lines: one per message, text from the network cannot forge another. */
#include "../../core/log.h"
#include "test.h"

#include <stdlib.h>

static char *capture(int format, const char *const *fields, const char *msg) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  luari_log_t log = { LUARI_LOG_DEBUG, format, f };
  luari_log_fields(&log, LUARI_LOG_ERROR, fields, msg);
  fclose(f);
  return buf;
}

int main(void) {
  const char *fields[] = { "call", "c-1", "flow", "menu", NULL };
  char *line = capture(LUARI_LOG_TEXT, fields, "flow failed: boom");
  CHECK(strstr(line, " error [call=c-1 flow=menu] flow failed: boom\n") != NULL, "text line with fields");
  free(line);

  line = capture(LUARI_LOG_TEXT, NULL, "bad event: x\n2026-01-01 00:00:00.000Z info  forged\r");
  CHECK(strstr(line, "bad event: x\n    2026-01-01") != NULL && strstr(line, "forged\\x0d\n") != NULL,
        "a line break in a message starts an indented continuation; CR is escaped");
  free(line);

  line = capture(LUARI_LOG_JSON, fields, "quote \" and\nbreak");
  CHECK(strstr(line, "\"level\":\"error\"") && strstr(line, "\"call\":\"c-1\"") &&
            strstr(line, "\"msg\":\"quote \\\" and\\nbreak\"}\n"),
        "JSON line escapes quotes and line breaks");
  free(line);

  /* 100,000 bytes: an 'x', then "é" (2 bytes) over and over, cut after 65,536 bytes. */
  size_t big_len = 100000;
  char *big = malloc(big_len + 1);
  big[0] = 'x';
  for (size_t i = 1; i + 1 < big_len; i += 2)
    memcpy(big + i, "\xc3\xa9", 2);
  big[big_len - 1] = 'y';
  big[big_len] = '\0';
  line = capture(LUARI_LOG_TEXT, NULL, big);
  const char *tail = line ? strstr(line, "... (") : NULL;
  CHECK(line && strlen(line) < 65536 + 200 && tail && strstr(tail, " more bytes not logged)\n"),
        "a huge message is cut, saying how much is left out");
  /* The byte kept last ends a whole character: the cut lands between two. */
  CHECK(tail && (unsigned char)tail[-1] == 0xa9 && strtoul(tail + 5, NULL, 10) == 100000 - 65535,
        "the cut keeps whole UTF-8 characters and counts the rest");
  free(line);
  free(big);

  luari_log_t quiet_log = { LUARI_LOG_WARN, LUARI_LOG_TEXT, stderr };
  luari_log_t *quiet = &quiet_log;
  CHECK(!luari_log_enabled(quiet, LUARI_LOG_INFO) && luari_log_enabled(quiet, LUARI_LOG_ERROR),
        "levels below the configured one are off");
  CHECK(luari_log_level_parse("warn") == LUARI_LOG_WARN && luari_log_level_parse("loud") == -1,
        "level names");
  TEST_DONE();
}
