/* The simulated Asterisk's network face: an HTTP server (libmicrohttpd,
 * driven by libev through its epoll descriptor) for REST, and WebSocket
 * connections (wslay, server role) for events. It knows nothing of ARI:
 * every request goes to the handler, which answers now or later. */
#ifndef LUARI_SIMSERVER_H
#define LUARI_SIMSERVER_H

#include "log.h"

#include <ev.h>
#include <stddef.h>

typedef struct luari_simserver luari_simserver_t;
typedef struct luari_simreq luari_simreq_t;
typedef struct luari_simconn luari_simconn_t;

typedef struct luari_simresp {
  int status;
  const char *body;
  size_t body_len;
  const char *const *headers; /* NULL or NULL-terminated name, value pairs */
  unsigned long ws_tag;       /* status 101: the tag the new WebSocket carries */
  int truncate;               /* fault injection: close after truncate_at body bytes */
  size_t truncate_at;
} luari_simresp_t;

typedef struct luari_simserver_handler {
  void *data;
  /* Answer with luari_simreq_respond, now or later. */
  void (*on_request)(void *data, luari_simreq_t *req);
  void (*on_ws_open)(void *data, luari_simconn_t *conn);
  void (*on_ws_message)(void *data, luari_simconn_t *conn, const char *msg, size_t len);
  void (*on_ws_close)(void *data, luari_simconn_t *conn);
} luari_simserver_handler_t;

/* Returns NULL (and logs why) when the address cannot be bound. */
luari_simserver_t *luari_simserver_new(struct ev_loop *loop, luari_log_t *log, const char *host,
                                       int port, const luari_simserver_handler_t *handler);
int luari_simserver_port(const luari_simserver_t *srv);
/* Seconds a WebSocket may stay unable to take what is sent before it is
 * dropped (Asterisk's websocket_write_timeout; 0.1 by default, 0: never). */
void luari_simserver_set_write_timeout(luari_simserver_t *srv, double seconds);
/* Seconds a kept-alive HTTP connection may stay idle before the server
 * closes it (Asterisk's http.conf session_keep_alive; 0: 120). */
void luari_simserver_set_idle_timeout(luari_simserver_t *srv, unsigned seconds);
/* Stops at once, as when Asterisk itself goes away: every WebSocket is
 * closed without a close frame, and connections are closed with no reply
 * (a pending request is given a 503 only to resume it first); the Lua
 * handles of pending requests are told they are gone. */
void luari_simserver_free(luari_simserver_t *srv);

/* --- a request --- */
const char *luari_simreq_method(const luari_simreq_t *req);
const char *luari_simreq_path(const luari_simreq_t *req); /* raw: still percent-encoded */
size_t luari_simreq_nargs(const luari_simreq_t *req);
/* Query arguments, percent-decoded ('+' is a space, as Asterisk reads them). */
void luari_simreq_arg(const luari_simreq_t *req, size_t i, const char **name, const char **value);
const char *luari_simreq_header(const luari_simreq_t *req, const char *name);
const char *luari_simreq_body(const luari_simreq_t *req, size_t *len);
/* When the server began the pass that read this request (CLOCK_MONOTONIC
 * seconds): the request had arrived by then, and requests read in the same
 * pass do not count the time the server spent on the ones before. */
double luari_simreq_received(const luari_simreq_t *req);
int luari_simreq_is_upgrade(const luari_simreq_t *req);
/* 0 on success; the request is gone afterwards. Status 101 accepts a
 * WebSocket upgrade (the server adds the handshake headers). */
int luari_simreq_respond(luari_simreq_t *req, const luari_simresp_t *resp);
/* Called with `owner` when the request ends before it was answered (the
 * client went away) or after it was answered. */
void luari_simreq_set_owner(luari_simreq_t *req, void *owner, void (*gone)(void *owner));

/* --- a WebSocket --- */
unsigned long luari_simconn_tag(const luari_simconn_t *conn);
int luari_simconn_send(luari_simconn_t *conn, const char *text, size_t len);
int luari_simconn_send_binary(luari_simconn_t *conn, const void *data, size_t len);
/* Bytes straight onto the socket, bypassing framing (fault injection). */
int luari_simconn_send_raw(luari_simconn_t *conn, const void *data, size_t len);
/* Close handshake with `code`; code 0: drop the TCP connection at once. */
void luari_simconn_close(luari_simconn_t *conn, int code);

#endif
