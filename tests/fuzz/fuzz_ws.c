/* libFuzzer target: bytes from a WebSocket server, split into reads of
 * varying size, through luari's wslay glue (client role). */
#include "../../core/ws.h"

#include <errno.h>
#include <string.h>

typedef struct feed {
  const uint8_t *data;
  size_t len, pos;
  unsigned chunk;
  size_t messages;
} feed_t;

static ssize_t f_recv(void *d, uint8_t *buf, size_t len) {
  feed_t *f = d;
  if (f->pos >= f->len)
    return 0;
  size_t n = f->len - f->pos;
  size_t cap = f->chunk ? f->chunk : 1;
  if (n > cap)
    n = cap;
  if (n > len)
    n = len;
  memcpy(buf, f->data + f->pos, n);
  f->pos += n;
  f->chunk = f->chunk * 7 + 3; /* vary the read sizes */
  f->chunk %= 4099;
  return (ssize_t)n;
}

static ssize_t f_send(void *d, const uint8_t *buf, size_t len) {
  (void)d;
  (void)buf;
  return (ssize_t)len;
}

static int f_random(void *d, uint8_t *buf, size_t len) {
  (void)d;
  memset(buf, 0x5a, len);
  return 0;
}

static void f_message(void *d, int binary, const uint8_t *msg, size_t len) {
  feed_t *f = d;
  (void)binary;
  (void)msg;
  (void)len;
  f->messages++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  feed_t f = { data, size, 0, size ? data[0] : 1, 0 };
  luari_ws_io_t io = { &f, f_recv, f_send, f_random, f_message, NULL };
  luari_ws_t *ws = luari_ws_new(LUARI_WS_CLIENT, &io, 1 << 16);
  if (!ws)
    return 0;
  for (int i = 0; i < 10000 && luari_ws_read(ws) == 0 && !luari_ws_done(ws); i++)
    luari_ws_write(ws);
  luari_ws_free(ws);
  return 0;
}
