/* WebSocket framing through luari's wslay glue, fed from byte scripts (no
 * sockets): masking, length encodings, fragmentation, control frames, the
 * close handshake, limits; and the Upgrade handshake. */
#include "../../core/ws.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>

typedef struct script {
  luari_buf_t in;   /* bytes the peer sent us */
  size_t pos;
  size_t chunk;     /* deliver at most this many bytes per recv (0: all) */
  int eof;          /* after the input: 0 = EAGAIN, 1 = end of stream */
  luari_buf_t out;  /* bytes we sent */
  int sends;        /* send calls that took bytes */
  int limited;      /* take at most `room` more bytes, then EAGAIN */
  size_t room;
  luari_buf_t msgs; /* messages received, each "T:" or "B:" + payload + "\n" */
  int nmsgs;
  int close_code;
  char close_reason[64];
} script_t;

static ssize_t s_recv(void *data, uint8_t *buf, size_t len) {
  script_t *s = data;
  size_t left = s->in.len - s->pos;
  if (left == 0) {
    if (s->eof)
      return 0;
    errno = EAGAIN;
    return -1;
  }
  size_t n = left < len ? left : len;
  if (s->chunk && n > s->chunk)
    n = s->chunk;
  memcpy(buf, s->in.data + s->pos, n);
  s->pos += n;
  return (ssize_t)n;
}

static ssize_t s_send(void *data, const uint8_t *buf, size_t len) {
  script_t *s = data;
  if (s->limited && len > s->room)
    len = s->room;
  if (len == 0) {
    errno = EAGAIN;
    return -1;
  }
  s->room -= s->limited ? len : 0;
  s->sends++;
  luari_buf_append(&s->out, buf, len);
  return (ssize_t)len;
}

static int s_random(void *data, uint8_t *buf, size_t len) {
  (void)data;
  static const uint8_t mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
  for (size_t i = 0; i < len; i++)
    buf[i] = mask[i % 4];
  return 0;
}

static void s_message(void *data, int binary, const uint8_t *msg, size_t len) {
  script_t *s = data;
  luari_buf_appends(&s->msgs, binary ? "B:" : "T:");
  luari_buf_append(&s->msgs, msg, len);
  luari_buf_appends(&s->msgs, "\n");
  s->nmsgs++;
}

static void s_close(void *data, int code, const uint8_t *reason, size_t len) {
  script_t *s = data;
  s->close_code = code;
  snprintf(s->close_reason, sizeof s->close_reason, "%.*s", (int)len, reason ? (const char *)reason : "");
}

static luari_ws_t *new_ws(script_t *s, int role, size_t max) {
  memset(s, 0, sizeof *s);
  luari_ws_io_t io = { s, s_recv, s_send, s_random, s_message, s_close };
  return luari_ws_new(role, &io, max);
}

static void free_script(script_t *s) {
  luari_buf_free(&s->in);
  luari_buf_free(&s->out);
  luari_buf_free(&s->msgs);
}

/* One frame as a peer would send it. mask: NULL for none. */
static void frame(luari_buf_t *b, int fin, int opcode, const uint8_t *mask, const void *payload, size_t len) {
  uint8_t head[14];
  size_t n = 0;
  head[n++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
  uint8_t m = mask ? 0x80 : 0;
  if (len < 126) {
    head[n++] = m | (uint8_t)len;
  } else if (len < 65536) {
    head[n++] = m | 126;
    head[n++] = (uint8_t)(len >> 8);
    head[n++] = (uint8_t)len;
  } else {
    head[n++] = m | 127;
    for (int i = 7; i >= 0; i--)
      head[n++] = (uint8_t)((unsigned long long)len >> (8 * i));
  }
  if (mask) {
    memcpy(head + n, mask, 4);
    n += 4;
  }
  luari_buf_append(b, head, n);
  const uint8_t *p = payload;
  for (size_t i = 0; i < len; i++) {
    uint8_t c = mask ? (uint8_t)(p[i] ^ mask[i % 4]) : p[i];
    luari_buf_append(b, &c, 1);
  }
}

typedef struct parsed {
  int ok, fin, opcode, masked;
  size_t header_len;
  unsigned long long len;
  uint8_t *payload; /* unmasked copy */
} parsed_t;

/* Parses one frame at buf; returns bytes used, 0 if incomplete. */
static size_t parse_frame(const uint8_t *buf, size_t avail, parsed_t *f) {
  memset(f, 0, sizeof *f);
  if (avail < 2)
    return 0;
  f->fin = buf[0] >> 7;
  f->opcode = buf[0] & 15;
  f->masked = buf[1] >> 7;
  size_t n = 2;
  unsigned long long len = buf[1] & 127;
  if (len == 126) {
    if (avail < 4)
      return 0;
    len = (unsigned long long)buf[2] << 8 | buf[3];
    n = 4;
  } else if (len == 127) {
    if (avail < 10)
      return 0;
    len = 0;
    for (int i = 0; i < 8; i++)
      len = len << 8 | buf[2 + i];
    n = 10;
  }
  const uint8_t *mask = NULL;
  if (f->masked) {
    mask = buf + n;
    n += 4;
  }
  if (avail < n + len)
    return 0;
  f->header_len = n;
  f->len = len;
  f->payload = malloc(len ? len : 1);
  for (size_t i = 0; i < len; i++)
    f->payload[i] = mask ? (uint8_t)(buf[n + i] ^ mask[i % 4]) : buf[n + i];
  f->ok = 1;
  return n + len;
}

static char *filled(size_t len, char c) {
  char *p = malloc(len + 1);
  memset(p, c, len);
  p[len] = '\0';
  return p;
}

static void test_client_receives_lengths(void) {
  static const size_t lens[] = { 0, 1, 125, 126, 127, 65535, 65536, 70000 };
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    script_t s;
    luari_ws_t *ws = new_ws(&s, LUARI_WS_CLIENT, 0);
    char *payload = filled(lens[i], 'x');
    frame(&s.in, 1, 1, NULL, payload, lens[i]);
    CHECK(luari_ws_read(ws) == 0 && s.nmsgs == 1 && s.msgs.len == lens[i] + 3,
          "client decodes an unmasked %zu-byte text frame", lens[i]);
    free(payload);
    luari_ws_free(ws);
    free_script(&s);
  }
}

static void test_client_sends_masked_lengths(void) {
  static const size_t lens[] = { 0, 125, 126, 65535, 65536 };
  static const int want_header[] = { 6, 6, 8, 8, 14 };
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    script_t s;
    luari_ws_t *ws = new_ws(&s, LUARI_WS_CLIENT, 0);
    char *payload = filled(lens[i], 'a' + (char)i);
    luari_ws_send_text(ws, payload, lens[i]);
    luari_ws_write(ws);
    parsed_t f;
    size_t used = parse_frame((const uint8_t *)s.out.data, s.out.len, &f);
    CHECK(used == s.out.len && f.ok && f.fin && f.opcode == 1 && f.masked &&
              f.header_len == (size_t)want_header[i] && f.len == lens[i] &&
              memcmp(f.payload, payload, lens[i]) == 0,
          "client sends a %zu-byte text frame masked, %d-byte header", lens[i], want_header[i]);
    free(f.payload);
    free(payload);
    luari_ws_free(ws);
    free_script(&s);
  }
}

/* Without io.random, masking keys come from the kernel through a pool:
 * 200 frames (past three refills) are masked, decode to what was sent,
 * and no two in a row share a key. */
static void test_kernel_masks(void) {
  script_t s;
  memset(&s, 0, sizeof s);
  luari_ws_io_t io = { &s, s_recv, s_send, NULL, s_message, s_close };
  luari_ws_t *ws = luari_ws_new(LUARI_WS_CLIENT, &io, 0);
  char msg[16];
  for (int i = 0; i < 200; i++) {
    int n = snprintf(msg, sizeof msg, "frame %d", i);
    luari_ws_send_text(ws, msg, (size_t)n);
    luari_ws_write(ws);
  }
  const uint8_t *p = (const uint8_t *)s.out.data;
  size_t left = s.out.len;
  int frames = 0, decoded = 0, repeats = 0;
  uint8_t last_key[4] = { 0 };
  parsed_t f;
  size_t used;
  while ((used = parse_frame(p, left, &f)) > 0) {
    int n = snprintf(msg, sizeof msg, "frame %d", frames);
    decoded += f.ok && f.masked && f.len == (size_t)n && memcmp(f.payload, msg, (size_t)n) == 0;
    const uint8_t *key = p + f.header_len - 4;
    repeats += frames > 0 && memcmp(key, last_key, 4) == 0;
    memcpy(last_key, key, 4);
    free(f.payload);
    frames++;
    p += used;
    left -= used;
  }
  CHECK(frames == 200 && decoded == 200 && left == 0, "200 frames masked with kernel keys decode (%d of %d)",
        decoded, frames);
  CHECK(repeats == 0, "no frame reuses the key of the one before (%d did)", repeats);
  luari_ws_free(ws);
  free_script(&s);
}

static void test_fragmented_with_ping(void) {
  script_t s;
  luari_ws_t *ws = new_ws(&s, LUARI_WS_CLIENT, 0);
  frame(&s.in, 0, 1, NULL, "{\"type\":", 8);
  frame(&s.in, 1, 9, NULL, "p1", 2);           /* ping between fragments */
  frame(&s.in, 0, 0, NULL, "\"Stasis", 7);
  frame(&s.in, 1, 0, NULL, "Start\"}", 7);
  luari_ws_read(ws);
  CHECK_STR(s.msgs.data, "T:{\"type\":\"StasisStart\"}\n", "fragments joined into one message");
  luari_ws_write(ws);
  parsed_t f;
  parse_frame((const uint8_t *)s.out.data, s.out.len, &f);
  CHECK(f.ok && f.opcode == 10 && f.masked && f.len == 2 && memcmp(f.payload, "p1", 2) == 0,
        "ping answered with a masked pong carrying the same payload");
  free(f.payload);
  luari_ws_free(ws);
  free_script(&s);
}

static void test_byte_by_byte(void) {
  script_t s;
  luari_ws_t *ws = new_ws(&s, LUARI_WS_CLIENT, 0);
  s.chunk = 1;
  char *payload = filled(300, 'q');
  frame(&s.in, 1, 1, NULL, payload, 300);
  frame(&s.in, 1, 2, NULL, "\x01\x02", 2);
  while (s.pos < s.in.len && luari_ws_read(ws) == 0)
    ;
  CHECK(s.nmsgs == 2 && s.msgs.len == 300 + 3 + 2 + 3 && memcmp(s.msgs.data + 303, "B:\x01\x02", 4) == 0,
        "frames fed one byte at a time decode, binary flagged as binary");
  free(payload);
  luari_ws_free(ws);
  free_script(&s);
}

static void test_close_handshake(void) {
  script_t s;
  luari_ws_t *ws = new_ws(&s, LUARI_WS_CLIENT, 0);
  uint8_t payload[5] = { 0x03, 0xe8, 'b', 'y', 'e' };
  frame(&s.in, 1, 8, NULL, payload, 5);
  luari_ws_read(ws);
  CHECK(s.close_code == 1000 && strcmp(s.close_reason, "bye") == 0, "server close: code 1000, reason 'bye'");
  luari_ws_write(ws);
  parsed_t f;
  parse_frame((const uint8_t *)s.out.data, s.out.len, &f);
  CHECK(f.ok && f.opcode == 8 && f.masked && f.len >= 2 && f.payload[0] == 0x03 && f.payload[1] == 0xe8,
        "close answered with a masked close frame echoing 1000");
  CHECK(luari_ws_done(ws), "nothing left to read or write after the close handshake");
  free(f.payload);
  luari_ws_free(ws);
  free_script(&s);

  ws = new_ws(&s, LUARI_WS_CLIENT, 0);
  luari_ws_close(ws, 1000, "");
  luari_ws_write(ws);
  parse_frame((const uint8_t *)s.out.data, s.out.len, &f);
  CHECK(f.ok && f.opcode == 8 && f.len == 2 && !luari_ws_done(ws),
        "our close sent; still waiting for the server's close");
  free(f.payload);
  frame(&s.in, 1, 8, NULL, payload, 2);
  luari_ws_read(ws);
  CHECK(luari_ws_done(ws), "done once the server answers the close");
  luari_ws_free(ws);
  free_script(&s);
}

static void test_protocol_errors(void) {
  script_t s;
  static const uint8_t mask[4] = { 1, 2, 3, 4 };
  luari_ws_t *ws = new_ws(&s, LUARI_WS_CLIENT, 0);
  frame(&s.in, 1, 1, mask, "hi", 2);
  luari_ws_read(ws);
  luari_ws_write(ws);
  parsed_t f;
  parse_frame((const uint8_t *)s.out.data, s.out.len, &f);
  CHECK(s.nmsgs == 0 && f.ok && f.opcode == 8 && f.payload[0] == 0x03 && f.payload[1] == 0xea,
        "a masked frame from the server is refused with close 1002");
  free(f.payload);
  luari_ws_free(ws);
  free_script(&s);

  ws = new_ws(&s, LUARI_WS_CLIENT, 1000);
  char *big = filled(1001, 'z');
  frame(&s.in, 1, 1, NULL, big, 1001);
  luari_ws_read(ws);
  luari_ws_write(ws);
  parse_frame((const uint8_t *)s.out.data, s.out.len, &f);
  CHECK(s.nmsgs == 0 && f.ok && f.opcode == 8 && f.payload[0] == 0x03 && f.payload[1] == 0xf1,
        "a message over the limit fails the connection with close 1009");
  free(f.payload);
  free(big);
  luari_ws_free(ws);
  free_script(&s);

  ws = new_ws(&s, LUARI_WS_CLIENT, 0);
  s.eof = 1;
  uint8_t partial[] = { 0x81, 0x7e, 0x01 }; /* 16-bit length cut in half */
  luari_buf_append(&s.in, partial, sizeof partial);
  int rc = 0;
  for (int i = 0; i < 3 && rc == 0; i++)
    rc = luari_ws_read(ws);
  CHECK(rc == -1 && luari_ws_eof(ws) && luari_ws_done(ws), "a connection closed mid-frame fails cleanly");
  luari_ws_free(ws);
  free_script(&s);
}

static void test_server_role(void) {
  script_t s;
  static const uint8_t mask[4] = { 9, 8, 7, 6 };
  luari_ws_t *ws = new_ws(&s, LUARI_WS_SERVER, 0);
  frame(&s.in, 1, 1, mask, "{\"type\":\"RESTRequest\"}", 22);
  luari_ws_read(ws);
  CHECK_STR(s.msgs.data, "T:{\"type\":\"RESTRequest\"}\n", "server unmasks a client frame");
  luari_ws_send_text(ws, "{}", 2);
  luari_ws_write(ws);
  parsed_t f;
  parse_frame((const uint8_t *)s.out.data, s.out.len, &f);
  CHECK(f.ok && !f.masked && f.opcode == 1 && f.len == 2, "server frames go out unmasked");
  free(f.payload);
  luari_ws_free(ws);
  free_script(&s);

  ws = new_ws(&s, LUARI_WS_SERVER, 0);
  frame(&s.in, 1, 1, NULL, "hi", 2);
  luari_ws_read(ws);
  CHECK(s.nmsgs == 0, "server refuses an unmasked client frame");
  luari_ws_free(ws);
  free_script(&s);
}

/* wslay gives a frame's header and payload apart: they go out in one send,
 * also when the socket takes only part of it at first. */
static void test_one_send_per_frame(void) {
  script_t s;
  luari_ws_t *ws = new_ws(&s, LUARI_WS_SERVER, 0);
  luari_ws_send_text(ws, "{\"type\":\"StasisStart\"}", 23);
  luari_ws_send_text(ws, "{}", 2);
  luari_ws_write(ws);
  parsed_t a, b;
  size_t used = parse_frame((const uint8_t *)s.out.data, s.out.len, &a);
  size_t used2 = parse_frame((const uint8_t *)s.out.data + used, s.out.len - used, &b);
  CHECK(s.sends == 2 && a.ok && b.ok && used + used2 == s.out.len && a.len == 23 && b.len == 2,
        "two frames, two sends (%d)", s.sends);
  free(a.payload);
  free(b.payload);
  luari_ws_free(ws);
  free_script(&s);

  ws = new_ws(&s, LUARI_WS_CLIENT, 0);
  s.limited = 1;
  s.room = 5;
  luari_ws_send_text(ws, "hello, world", 12);
  int rc = luari_ws_write(ws);
  CHECK(rc == 0 && s.out.len == 5 && luari_ws_want_write(ws) && !luari_ws_done(ws),
        "a socket that takes 5 bytes: the rest waits, the connection is fine");
  luari_ws_send_text(ws, "second", 6);
  luari_ws_write(ws);
  CHECK(s.out.len == 5, "nothing else goes out before the rest of the first frame");
  s.limited = 0;
  luari_ws_write(ws);
  luari_ws_write(ws);
  used = parse_frame((const uint8_t *)s.out.data, s.out.len, &a);
  used2 = used ? parse_frame((const uint8_t *)s.out.data + used, s.out.len - used, &b) : 0;
  CHECK(used && used2 && used + used2 == s.out.len && a.len == 12 && memcmp(a.payload, "hello, world", 12) == 0 &&
            b.len == 6 && memcmp(b.payload, "second", 6) == 0 && !luari_ws_want_write(ws),
        "once there is room, both frames whole and in order");
  if (used)
    free(a.payload);
  if (used2)
    free(b.payload);
  luari_ws_free(ws);
  free_script(&s);

  ws = new_ws(&s, LUARI_WS_SERVER, 0);
  char *big = filled(70000, 'b');
  luari_ws_send_text(ws, big, 70000);
  luari_ws_write(ws);
  used = parse_frame((const uint8_t *)s.out.data, s.out.len, &a);
  CHECK(used == s.out.len && a.ok && a.len == 70000 && s.sends == 2,
        "a frame over 64 KiB: header and payload each in one send, not copied");
  free(a.payload);
  free(big);
  luari_ws_free(ws);
  free_script(&s);
}

static void test_handshake(void) {
  char accept[29];
  luari_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", accept);
  CHECK_STR(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "Sec-WebSocket-Accept of the RFC 6455 example key");
  char key[25];
  uint8_t nonce[16] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                        0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10 };
  luari_ws_key(key, nonce);
  CHECK_STR(key, "AQIDBAUGBwgJCgsMDQ4PEA==", "Sec-WebSocket-Key from 16 bytes");

  luari_buf_t req = LUARI_BUF_INIT;
  luari_ws_upgrade_request(&req, "127.0.0.1:8088", "/ari/events?app=luari", key,
                           "Authorization: Basic YTpi\r\n");
  CHECK(strstr(req.data, "GET /ari/events?app=luari HTTP/1.1\r\n") == req.data &&
            strstr(req.data, "\r\nHost: 127.0.0.1:8088\r\n") && strstr(req.data, "\r\nUpgrade: websocket\r\n") &&
            strstr(req.data, "\r\nSec-WebSocket-Version: 13\r\n") &&
            strstr(req.data, "\r\nAuthorization: Basic YTpi\r\n\r\n"),
        "Upgrade request has the handshake headers and ends with a blank line");
  luari_buf_free(&req);

  luari_ws_key(key, nonce);
  luari_ws_accept(key, accept);
  char reply[512];
  snprintf(reply, sizeof reply,
           "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
           "Sec-WebSocket-Accept: %s\r\n\r\n\x81\x02{}",
           accept);
  luari_ws_reply_t r;
  const char *why = NULL;
  CHECK(luari_ws_parse_reply(reply, 30, &r) == 0, "incomplete head: need more bytes");
  CHECK(luari_ws_parse_reply(reply, strlen(reply), &r) == 1 && r.status == 101 &&
            r.header_len == strlen(reply) - 4 && luari_ws_check_reply(&r, key, &why) == 0,
        "101 with case-insensitive headers and a matching accept; frame bytes after the head kept apart");

  snprintf(reply, sizeof reply,
           "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n");
  CHECK(luari_ws_parse_reply(reply, strlen(reply), &r) == 1 && luari_ws_check_reply(&r, key, &why) == -1 &&
            strstr(why, "Accept"),
        "a wrong Sec-WebSocket-Accept is refused");

  snprintf(reply, sizeof reply, "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
  CHECK(luari_ws_parse_reply(reply, strlen(reply), &r) == 1 && luari_ws_check_reply(&r, key, &why) == -1,
        "a 101 without Upgrade/Connection headers is refused");

  const char *denied = "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
                       "WWW-Authenticate: Basic realm=\"Asterisk REST Interface\"\r\nContent-Length: 37\r\n\r\n"
                       "{\"message\": \"Authentication required\"}";
  CHECK(luari_ws_parse_reply(denied, strlen(denied), &r) == 1 && r.status == 401 && r.content_length == 37 &&
            strcmp(r.reason, "Unauthorized") == 0 && luari_ws_check_reply(&r, key, &why) == -1,
        "401 parsed with its reason and body length");
  CHECK(luari_ws_parse_reply("SSH-2.0-OpenSSH\r\n", 17, &r) == -1, "a reply that is not HTTP is malformed");
  CHECK(luari_ws_parse_reply("HTTP/1.1 abc\r\n\r\n", 16, &r) == -1, "a bad status line is malformed");
}

static void test_invalid_utf8(void) {
  script_t s;
  luari_ws_t *ws = new_ws(&s, LUARI_WS_CLIENT, 0);
  frame(&s.in, 1, 1, NULL, "{\"v\": \"\xff\xfe\"}", 12);
  luari_ws_read(ws);
  luari_ws_write(ws);
  parsed_t f;
  parse_frame((const uint8_t *)s.out.data, s.out.len, &f);
  CHECK(s.nmsgs == 0 && f.ok && f.opcode == 8 && f.payload[0] == 0x03 && f.payload[1] == 0xef &&
            luari_ws_close_code_sent(ws) == 1007,
        "a text message that is not UTF-8 is refused with close 1007");
  free(f.payload);
  luari_ws_free(ws);
  free_script(&s);
}

int main(void) {
  test_client_receives_lengths();
  test_client_sends_masked_lengths();
  test_kernel_masks();
  test_fragmented_with_ping();
  test_byte_by_byte();
  test_close_handshake();
  test_protocol_errors();
  test_server_role();
  test_one_send_per_frame();
  test_handshake();
  test_invalid_utf8();
  TEST_DONE();
}
