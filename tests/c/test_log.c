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

  luari_log_t quiet_log = { LUARI_LOG_WARN, LUARI_LOG_TEXT, stderr };
  luari_log_t *quiet = &quiet_log;
  CHECK(!luari_log_enabled(quiet, LUARI_LOG_INFO) && luari_log_enabled(quiet, LUARI_LOG_ERROR),
        "levels below the configured one are off");
  CHECK(luari_log_level_parse("warn") == LUARI_LOG_WARN && luari_log_level_parse("loud") == -1,
        "level names");
  TEST_DONE();
}
