/* WebSocket framing on wslay and the Upgrade handshake. No sockets here. */
#include "ws.h"

#include "url.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <wslay/wslay.h>

#define DEFAULT_MAX_MESSAGE (16u << 20)

/* wslay hands over a frame's header and its payload in two calls (the
 * first flagged WSLAY_MSG_MORE). Sent as they come, each frame is two
 * syscalls and two TCP segments, and the reader wakes up for a header
 * alone. The header is held and goes out with the payload in one send,
 * unless the two together are bigger than this. */
#define HOLD_MAX 65536

/* Masking keys (4 bytes a frame a client sends) come from the kernel this
 * many bytes at a time: one getrandom() per 64 frames, not one a frame. */
#define MASK_POOL 256

struct luari_ws {
  wslay_event_context_ptr ctx;
  uint8_t mask_pool[MASK_POOL];
  size_t mask_left; /* unused bytes at the end of mask_pool */
  luari_ws_io_t io;
  luari_buf_t held;  /* accepted from wslay, not yet on the socket */
  size_t held_pos;
  int held_whole;    /* what is held ends a frame: it goes before anything else */
  int eof;
  int failed;
};

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user) {
  (void)flags;
  luari_ws_t *ws = user;
  ssize_t n = ws->io.recv(ws->io.data, buf, len);
  if (n > 0)
    return n;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  /* End of stream mid-conversation is a failure of the connection too. */
  if (n == 0)
    ws->eof = 1;
  wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
  return -1;
}

/* Sends what is held: 0 once all of it is out, else -1 with errno. */
static int flush_held(luari_ws_t *ws) {
  while (ws->held_pos < ws->held.len) {
    ssize_t n = ws->io.send(ws->io.data, (const uint8_t *)ws->held.data + ws->held_pos, ws->held.len - ws->held_pos);
    if (n < 0)
      return -1;
    ws->held_pos += (size_t)n;
  }
  ws->held.len = ws->held_pos = 0;
  ws->held_whole = 0;
  return 0;
}

static ssize_t send_failed(wslay_event_context_ptr ctx) {
  wslay_event_set_error(ctx, errno == EAGAIN || errno == EWOULDBLOCK ? WSLAY_ERR_WOULDBLOCK
                                                                     : WSLAY_ERR_CALLBACK_FAILURE);
  return -1;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user) {
  luari_ws_t *ws = user;
  if (ws->held_whole && flush_held(ws) != 0) /* the rest of a frame taken before */
    return send_failed(ctx);
  int more = (flags & WSLAY_MSG_MORE) != 0;
  if (ws->held.len + len <= HOLD_MAX && (more || ws->held.len > 0)) {
    if (luari_buf_append(&ws->held, data, len) != 0) {
      errno = ENOMEM;
      return send_failed(ctx);
    }
    /* Taken: what the socket cannot take now goes out before anything else. */
    if (!more) {
      ws->held_whole = 1;
      if (flush_held(ws) != 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        return send_failed(ctx);
    }
    return (ssize_t)len;
  }
  if (ws->held.len > 0 && flush_held(ws) != 0) /* a header too big to join: alone */
    return send_failed(ctx);
  ssize_t n = ws->io.send(ws->io.data, data, len);
  return n >= 0 ? n : send_failed(ctx);
}

static int kernel_random(luari_ws_t *ws, uint8_t *buf, size_t len) {
  if (len > MASK_POOL)
    return getrandom(buf, len, 0) == (ssize_t)len ? 0 : -1;
  if (ws->mask_left < len) {
    if (getrandom(ws->mask_pool, MASK_POOL, 0) != MASK_POOL)
      return -1;
    ws->mask_left = MASK_POOL;
  }
  memcpy(buf, ws->mask_pool + (MASK_POOL - ws->mask_left), len);
  ws->mask_left -= len;
  return 0;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user) {
  luari_ws_t *ws = user;
  int rc = ws->io.random ? ws->io.random(ws->io.data, buf, len) : kernel_random(ws, buf, len);
  if (rc != 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return 0;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user) {
  (void)ctx;
  luari_ws_t *ws = user;
  switch (arg->opcode) {
  case WSLAY_TEXT_FRAME:
  case WSLAY_BINARY_FRAME:
    if (ws->io.on_message)
      ws->io.on_message(ws->io.data, arg->opcode == WSLAY_BINARY_FRAME, arg->msg, arg->msg_length);
    break;
  case WSLAY_CONNECTION_CLOSE:
    if (ws->io.on_close) {
      /* The payload starts with the 2-byte status code; the rest is the reason. */
      size_t rlen = arg->msg_length > 2 ? arg->msg_length - 2 : 0;
      ws->io.on_close(ws->io.data, arg->status_code, arg->msg_length > 2 ? arg->msg + 2 : NULL, rlen);
    }
    break;
  default: /* ping is answered by wslay; pong needs nothing */
    break;
  }
}

luari_ws_t *luari_ws_new(int role, const luari_ws_io_t *io, size_t max_message) {
  luari_ws_t *ws = calloc(1, sizeof *ws);
  if (!ws)
    return NULL;
  ws->io = *io;
  struct wslay_event_callbacks cb = { recv_cb, send_cb, genmask_cb, NULL, NULL, NULL, msg_cb };
  int rc = role == LUARI_WS_SERVER ? wslay_event_context_server_init(&ws->ctx, &cb, ws)
                                   : wslay_event_context_client_init(&ws->ctx, &cb, ws);
  if (rc != 0) {
    free(ws);
    return NULL;
  }
  wslay_event_config_set_max_recv_msg_length(ws->ctx, max_message ? max_message : DEFAULT_MAX_MESSAGE);
  return ws;
}

void luari_ws_free(luari_ws_t *ws) {
  if (!ws)
    return;
  wslay_event_context_free(ws->ctx);
  luari_buf_free(&ws->held);
  free(ws);
}

int luari_ws_read(luari_ws_t *ws) {
  if (ws->failed)
    return -1;
  if (wslay_event_recv(ws->ctx) != 0) {
    ws->failed = 1;
    return -1;
  }
  return 0;
}

int luari_ws_write(luari_ws_t *ws) {
  if (ws->failed)
    return -1;
  if (ws->held.len > 0 && flush_held(ws) != 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return 0; /* when the socket has room */
    ws->failed = 1;
    return -1;
  }
  if (wslay_event_send(ws->ctx) != 0) {
    ws->failed = 1;
    return -1;
  }
  return 0;
}

int luari_ws_want_write(const luari_ws_t *ws) {
  return !ws->failed && (ws->held.len > 0 || wslay_event_want_write(ws->ctx));
}

int luari_ws_done(const luari_ws_t *ws) {
  return ws->failed || (!wslay_event_want_read(ws->ctx) && !luari_ws_want_write(ws));
}

int luari_ws_eof(const luari_ws_t *ws) {
  return ws->eof;
}

static int queue(luari_ws_t *ws, uint8_t opcode, const void *msg, size_t len) {
  struct wslay_event_msg m = { opcode, msg, len };
  return wslay_event_queue_msg(ws->ctx, &m) == 0 ? 0 : -1;
}

int luari_ws_send_text(luari_ws_t *ws, const char *msg, size_t len) {
  return queue(ws, WSLAY_TEXT_FRAME, msg, len);
}

int luari_ws_send_ping(luari_ws_t *ws, const void *payload, size_t len) {
  return queue(ws, WSLAY_PING, payload, len);
}

int luari_ws_close(luari_ws_t *ws, int code, const char *reason) {
  size_t len = reason ? strlen(reason) : 0;
  if (len > 122)
    len = 122;
  return wslay_event_queue_close(ws->ctx, (uint16_t)code, (const uint8_t *)reason, len) == 0 ? 0 : -1;
}

int luari_ws_close_code_sent(const luari_ws_t *ws) {
  return wslay_event_get_status_code_sent(ws->ctx);
}

/* --- handshake --- */

void luari_ws_key(char out[25], const uint8_t nonce[16]) {
  luari_buf_t b = LUARI_BUF_INIT;
  out[0] = '\0';
  if (luari_base64(&b, nonce, 16) == 0 && b.len == 24)
    memcpy(out, b.data, 25);
  luari_buf_free(&b);
}

void luari_ws_accept(const char *key, char out[29]) {
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  luari_buf_t in = LUARI_BUF_INIT, b64 = LUARI_BUF_INIT;
  out[0] = '\0';
  if (luari_buf_appendf(&in, "%s%s", key, guid) == 0 &&
      EVP_Digest(in.data, in.len, md, &mdlen, EVP_sha1(), NULL) == 1 &&
      luari_base64(&b64, md, mdlen) == 0 && b64.len == 28)
    memcpy(out, b64.data, 29);
  luari_buf_free(&in);
  luari_buf_free(&b64);
}

int luari_ws_upgrade_request(luari_buf_t *out, const char *host_port, const char *target,
                             const char *key, const char *extra_headers) {
  return luari_buf_appendf(out,
                           "GET %s HTTP/1.1\r\n"
                           "Host: %s\r\n"
                           "Upgrade: websocket\r\n"
                           "Connection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n"
                           "%s"
                           "\r\n",
                           target, host_port, key, extra_headers ? extra_headers : "");
}

static const char *find_head_end(const char *buf, size_t len) {
  for (size_t i = 0; i + 3 < len; i++)
    if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n')
      return buf + i + 4;
  return NULL;
}

static void copy_trimmed(char *dst, size_t cap, const char *s, size_t len) {
  while (len && isspace((unsigned char)*s)) {
    s++;
    len--;
  }
  while (len && isspace((unsigned char)s[len - 1]))
    len--;
  if (len >= cap)
    len = cap - 1;
  memcpy(dst, s, len);
  dst[len] = '\0';
}

/* Is `token` one of the comma separated tokens in value (case-insensitive)? */
static int has_token(const char *value, size_t len, const char *token) {
  size_t tlen = strlen(token);
  const char *end = value + len;
  while (value < end) {
    const char *comma = memchr(value, ',', (size_t)(end - value));
    const char *stop = comma ? comma : end;
    char item[64];
    copy_trimmed(item, sizeof item, value, (size_t)(stop - value));
    if (strlen(item) == tlen && strncasecmp(item, token, tlen) == 0)
      return 1;
    value = stop + 1;
  }
  return 0;
}

static int parse_status_line(const char *line, size_t len, luari_ws_reply_t *r) {
  if (len < 12 || strncmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ')
    return -1;
  if (!isdigit((unsigned char)line[9]) || !isdigit((unsigned char)line[10]) ||
      !isdigit((unsigned char)line[11]))
    return -1;
  r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  if (len > 13)
    copy_trimmed(r->reason, sizeof r->reason, line + 13, len - 13);
  return 0;
}

static void parse_header(const char *line, size_t len, luari_ws_reply_t *r) {
  const char *colon = memchr(line, ':', len);
  if (!colon)
    return;
  size_t nlen = (size_t)(colon - line);
  const char *value = colon + 1;
  size_t vlen = len - nlen - 1;
#define IS(name) (nlen == sizeof(name) - 1 && strncasecmp(line, name, nlen) == 0)
  if (IS("Upgrade"))
    r->upgrade_websocket = has_token(value, vlen, "websocket");
  else if (IS("Connection"))
    r->connection_upgrade = has_token(value, vlen, "upgrade");
  else if (IS("Sec-WebSocket-Accept"))
    copy_trimmed(r->accept, sizeof r->accept, value, vlen);
  else if (IS("Content-Type"))
    copy_trimmed(r->content_type, sizeof r->content_type, value, vlen);
  else if (IS("Content-Length")) {
    char num[24];
    copy_trimmed(num, sizeof num, value, vlen);
    char *endp;
    long v = strtol(num, &endp, 10);
    r->content_length = (*num && !*endp && v >= 0) ? v : -1;
  }
#undef IS
}

int luari_ws_parse_reply(const char *buf, size_t len, luari_ws_reply_t *r) {
  memset(r, 0, sizeof *r);
  r->content_length = -1;
  /* Reject garbage early rather than waiting for a blank line that never comes. */
  size_t check = len < 7 ? len : 7;
  if (strncmp(buf, "HTTP/1.", check) != 0)
    return -1;
  const char *end = find_head_end(buf, len);
  if (!end)
    return len > 16384 ? -1 : 0;
  const char *line = buf;
  int first = 1;
  while (line < end - 2) {
    const char *eol = memchr(line, '\r', (size_t)(end - line));
    if (!eol || eol[1] != '\n')
      return -1;
    size_t llen = (size_t)(eol - line);
    if (first) {
      if (parse_status_line(line, llen, r) != 0)
        return -1;
      first = 0;
    } else {
      parse_header(line, llen, r);
    }
    line = eol + 2;
  }
  r->header_len = (size_t)(end - buf);
  return 1;
}

int luari_ws_check_reply(const luari_ws_reply_t *r, const char *key, const char **why) {
  char expected[29];
  if (r->status != 101) {
    *why = "the server did not switch protocols";
    return -1;
  }
  if (!r->upgrade_websocket || !r->connection_upgrade) {
    *why = "the reply lacks Upgrade: websocket or Connection: Upgrade";
    return -1;
  }
  luari_ws_accept(key, expected);
  if (strcmp(r->accept, expected) != 0) {
    *why = "Sec-WebSocket-Accept does not match the key";
    return -1;
  }
  return 0;
}
