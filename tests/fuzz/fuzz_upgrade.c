/* libFuzzer target: a server's reply to the WebSocket Upgrade request. */
#include "../../core/ws.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* Parse from a copy with no terminator, as bytes arrive from a socket. */
  char *buf = malloc(size ? size : 1);
  if (!buf)
    return 0;
  memcpy(buf, data, size);
  luari_ws_reply_t r;
  for (size_t cut = 0; cut <= size; cut += size / 4 + 1) {
    if (luari_ws_parse_reply(buf, cut, &r) == 1) {
      const char *why;
      (void)luari_ws_check_reply(&r, "dGhlIHNhbXBsZSBub25jZQ==", &why);
    }
  }
  free(buf);
  return 0;
}
