/* The WebSocket protocol without a socket: framing through wslay (client or
 * server role), the HTTP Upgrade request and the check of its reply. Bytes
 * come and go through callbacks, so tests drive it from a script. */
#ifndef LUARI_WS_H
#define LUARI_WS_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct luari_ws luari_ws_t;

typedef struct luari_ws_io {
  void *data;
  /* > 0: bytes moved; 0 on recv: end of stream; -1 with errno (EAGAIN: try later). */
  ssize_t (*recv)(void *data, uint8_t *buf, size_t len);
  ssize_t (*send)(void *data, const uint8_t *buf, size_t len);
  /* Fills mask keys (client role). NULL: the system's random source. */
  int (*random)(void *data, uint8_t *buf, size_t len);
  /* A whole text or binary message (fragments already joined). The buffer
   * is freed when the callback returns. */
  void (*on_message)(void *data, int binary, const uint8_t *msg, size_t len);
  /* The peer's close frame arrived (wslay answers it by itself). */
  void (*on_close)(void *data, int code, const uint8_t *reason, size_t len);
} luari_ws_io_t;

enum { LUARI_WS_CLIENT = 0, LUARI_WS_SERVER = 1 };

/* max_message: bigger messages fail the connection with 1009 (0: 16 MiB). */
luari_ws_t *luari_ws_new(int role, const luari_ws_io_t *io, size_t max_message);
void luari_ws_free(luari_ws_t *ws);

/* Pump in and out. -1: the connection failed and must be dropped. */
int luari_ws_read(luari_ws_t *ws);
int luari_ws_write(luari_ws_t *ws);
int luari_ws_want_write(const luari_ws_t *ws);
/* Nothing more will be read or written: the socket can go. */
int luari_ws_done(const luari_ws_t *ws);
int luari_ws_eof(const luari_ws_t *ws);

int luari_ws_send_text(luari_ws_t *ws, const char *msg, size_t len);
int luari_ws_send_ping(luari_ws_t *ws, const void *payload, size_t len);
int luari_ws_close(luari_ws_t *ws, int code, const char *reason);
/* The close code we sent: wslay fails a connection with 1002 (protocol
 * error), 1007 (a text message that is not UTF-8) or 1009 (too big). */
int luari_ws_close_code_sent(const luari_ws_t *ws);

/* --- The opening handshake (RFC 6455 section 4) --- */

/* Sec-WebSocket-Key from 16 random bytes: 24 characters and a NUL. */
void luari_ws_key(char out[25], const uint8_t nonce[16]);
/* Sec-WebSocket-Accept for a key: 28 characters and a NUL. */
void luari_ws_accept(const char *key, char out[29]);

/* GET request for `target` (path and query). `extra_headers` is NULL or
 * lines each ending in \r\n (e.g. Authorization). */
int luari_ws_upgrade_request(luari_buf_t *out, const char *host_port, const char *target,
                             const char *key, const char *extra_headers);

typedef struct luari_ws_reply {
  int status;
  char reason[64];
  size_t header_len;      /* bytes up to and including the blank line */
  long content_length;    /* -1 when absent */
  int upgrade_websocket;  /* Upgrade: websocket */
  int connection_upgrade; /* Connection: ... upgrade ... */
  char accept[64];        /* Sec-WebSocket-Accept */
  char content_type[64];
} luari_ws_reply_t;

/* 1: the head is complete (see reply->header_len); 0: need more bytes;
 * -1: not an HTTP reply. */
int luari_ws_parse_reply(const char *buf, size_t len, luari_ws_reply_t *reply);

/* 0 when the reply accepts the upgrade for `key`; otherwise -1 and *why. */
int luari_ws_check_reply(const luari_ws_reply_t *reply, const char *key, const char **why);



#endif
