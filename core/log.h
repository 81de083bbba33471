/* Log lines on stderr: readable text by default, JSON for log shippers.
 * Callers never pass credentials: URLs are logged without user info. */
#ifndef LUARI_LOG_H
#define LUARI_LOG_H

#include <stdio.h>

enum { LUARI_LOG_DEBUG, LUARI_LOG_INFO, LUARI_LOG_WARN, LUARI_LOG_ERROR, LUARI_LOG_OFF };
enum { LUARI_LOG_TEXT, LUARI_LOG_JSON };

typedef struct luari_log {
  int level;
  int format;
  FILE *out;
} luari_log_t;

void luari_log_init(luari_log_t *log);
int luari_log_level_parse(const char *name); /* -1 when unknown */
const char *luari_log_level_name(int level);

/* `fields` is NULL or a NULL-terminated list of key, value pairs (values may be NULL). */
void luari_log_fields(luari_log_t *log, int level, const char *const *fields, const char *msg);
void luari_log(luari_log_t *log, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define luari_log_enabled(log, lvl) ((log) && (lvl) >= (log)->level)

#endif
