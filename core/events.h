/* The ARI events WebSocket (/ari/events): connect (curl does DNS and TCP),
 * TLS (OpenSSL, certificates verified unless told otherwise), the Upgrade,
 * then frames read by the loop, with a guard thread that reads in its
 * place while Lua is busy (wsthread.c), and reconnecting with capped
 * exponential backoff for as long as it runs. */
#ifndef LUARI_EVENTS_H
#define LUARI_EVENTS_H

#include "http.h"
#include "log.h"
#include "url.h"

#include <ev.h>

typedef struct luari_events luari_events_t;

typedef struct luari_events_options {
  luari_url_t url;         /* the ARI base URL (http/https/ws/wss) */
  const char *apps;        /* "app1,app2" */
  int subscribe_all;
  const char *user;        /* NULL: no Authorization header */
  const char *password;
  int insecure;            /* skip certificate verification */
  const char *ca_file;     /* NULL: the system's trust store */
  double backoff_initial;  /* seconds; 0: 0.5 */
  double backoff_max;      /* seconds; 0: 10 */
  double handshake_timeout;/* seconds from connect to 101; 0: 10 */
  double ping_interval;    /* seconds between keepalive pings; 0: 20; <0: none */
  size_t max_message;      /* bytes; 0: 16 MiB */
} luari_events_options_t;

enum {
  LUARI_EVENTS_DOWN_CONNECT = 1, /* TCP connect failed */
  LUARI_EVENTS_DOWN_TLS,         /* TLS handshake or verification failed */
  LUARI_EVENTS_DOWN_HTTP,        /* the server refused the upgrade (see status) */
  LUARI_EVENTS_DOWN_PROTOCOL,    /* bad handshake reply or WebSocket protocol error */
  LUARI_EVENTS_DOWN_CLOSED,      /* the connection ended (close frame or EOF) */
  LUARI_EVENTS_DOWN_TIMEOUT,     /* handshake or keepalive timed out */
  LUARI_EVENTS_DOWN_STOPPED      /* luari_events_stop finished */
};

typedef struct luari_events_down {
  int kind;
  int status;          /* HTTP status for DOWN_HTTP */
  int close_code;      /* WebSocket close code, 1006 when none arrived */
  const char *message; /* one line, no credentials */
  double retry_in;     /* seconds to the next attempt; -1: none */
} luari_events_down_t;

typedef struct luari_events_handler {
  void *data;
  void (*on_open)(void *data);
  void (*on_message)(void *data, const char *json, size_t len);
  void (*on_down)(void *data, const luari_events_down_t *down);
} luari_events_handler_t;

typedef struct luari_events_stats {
  unsigned long connects;
  unsigned long messages;
  unsigned long dropped_binary;
  size_t queued_bytes;     /* events read, waiting for Lua */
  size_t max_queued_bytes; /* the most that ever waited (this connection) */
} luari_events_stats_t;

luari_events_t *luari_events_new(struct ev_loop *loop, luari_http_t *http, luari_log_t *log,
                                 const luari_events_options_t *opts,
                                 const luari_events_handler_t *handler);
void luari_events_start(luari_events_t *ev);
/* Closes with a close handshake and does not reconnect. */
void luari_events_stop(luari_events_t *ev);
/* Safe from inside the handler's callbacks. */
void luari_events_free(luari_events_t *ev);
int luari_events_is_open(const luari_events_t *ev);
/* Sends a text message on the open WebSocket (a RESTRequest); -1 when it
 * is not open. */
int luari_events_send(luari_events_t *ev, const char *text, size_t len);
void luari_events_stats(luari_events_t *ev, luari_events_stats_t *out);
/* Ends the current connection as if it had dropped (tests, resync). */
void luari_events_drop(luari_events_t *ev);

#endif
