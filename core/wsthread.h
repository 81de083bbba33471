/* The events WebSocket once it is open. The main thread reads it when the
 * loop says it is readable (luari_wsthread_read) and takes the whole
 * messages queued; a guard thread reads in its place whenever data waits
 * unread for a tick (the main thread is busy in Lua), answers pings, sends
 * keepalive pings, and carries out close and drop. Asterisk drops a
 * WebSocket reader that falls behind its write timeout; this one never
 * falls behind. Items the guard queues are announced with `notify`. */
#ifndef LUARI_WSTHREAD_H
#define LUARI_WSTHREAD_H

#include "log.h"

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

typedef struct luari_wsthread luari_wsthread_t;

enum { LUARI_WSITEM_MESSAGE = 1, LUARI_WSITEM_END };

enum {
  LUARI_WSEND_EOF = 1,    /* the server closed the TCP connection */
  LUARI_WSEND_CLOSED,     /* close handshake done (either side began it) */
  LUARI_WSEND_FAILED,     /* protocol error, I/O error, oversized message */
  LUARI_WSEND_TIMEOUT,    /* nothing received for two ping intervals */
  LUARI_WSEND_DROPPED     /* luari_wsthread_drop */
};

typedef struct luari_wsitem {
  struct luari_wsitem *next;
  int kind;
  int end_reason;    /* LUARI_WSEND_* for an END item */
  int close_code;    /* the peer's close code, 0 when none */
  size_t len;
  char data[];       /* message text, NUL-terminated; or the end's message */
} luari_wsitem_t;

typedef struct luari_wsthread_stats {
  unsigned long messages;
  unsigned long dropped_binary;
  size_t queued_bytes;
  size_t max_queued_bytes;
} luari_wsthread_stats_t;

typedef struct luari_wsthread_options {
  int fd;
  SSL *ssl;                 /* NULL for plain TCP */
  const uint8_t *pending;   /* bytes that came after the handshake reply */
  size_t pending_len;
  size_t max_message;       /* 0: 16 MiB */
  size_t max_queue;         /* stop reading above this many queued bytes; 0: 256 MiB */
  double ping_interval;     /* seconds; <= 0: no pings */
  luari_log_t *log;
  const char *name;         /* for log lines, e.g. the URL */
  void (*notify)(void *data); /* called on the guard thread when it queued items */
  void *data;
} luari_wsthread_options_t;

luari_wsthread_t *luari_wsthread_start(const luari_wsthread_options_t *opts);
/* Main thread: the socket is readable (or bytes came with the handshake
 * reply, see has_pending): reads what is there into the queue. */
void luari_wsthread_read(luari_wsthread_t *t);
int luari_wsthread_has_pending(luari_wsthread_t *t);
/* Takes every queued item, oldest first (free each with free()). */
luari_wsitem_t *luari_wsthread_take(luari_wsthread_t *t);
/* Sends a text message from the main thread (REST over the WebSocket);
 * -1 once the connection is ending. What the socket cannot take at once,
 * the guard sends when there is room. */
int luari_wsthread_send(luari_wsthread_t *t, const char *text, size_t len);
/* Begins the close handshake (an END item follows). */
void luari_wsthread_close(luari_wsthread_t *t, int code);
/* Ends the connection at once (an END item follows). */
void luari_wsthread_drop(luari_wsthread_t *t);
void luari_wsthread_stats(luari_wsthread_t *t, luari_wsthread_stats_t *out);
/* Stops the thread if it still runs, waits for it, frees its queue. The
 * socket and TLS session go back to the caller. */
void luari_wsthread_join(luari_wsthread_t *t);

#endif
