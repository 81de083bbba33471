/* The HTTP client: libcurl's multi interface, driven by whatever loop the
 * caller plugs in through luari_http_hooks_t (see http_ev.c for libev).
 * Connections are kept alive and reused; each request has its own timeout;
 * credentials travel only in an Authorization header. */
#ifndef LUARI_HTTP_H
#define LUARI_HTTP_H

#include "log.h"

#include <stddef.h>

typedef struct luari_http luari_http_t;
typedef struct luari_http_req luari_http_req_t;

typedef enum {
  LUARI_HTTP_OK = 0,     /* a reply arrived; see status */
  LUARI_HTTP_TIMEOUT,    /* no complete reply within the request's timeout */
  LUARI_HTTP_CONN,       /* could not connect, or the connection broke */
  LUARI_HTTP_TLS,        /* TLS handshake or certificate verification failed */
  LUARI_HTTP_ERROR       /* anything else (out of memory, bad URL, ...) */
} luari_http_err_t;

typedef struct luari_http_result {
  luari_http_err_t err;
  long status;
  const char *reason;       /* reason phrase of the status line */
  const char *content_type; /* NULL when none */
  const char *body;         /* NUL-terminated; "" when empty */
  size_t body_len;
  const char *errmsg;       /* when err != OK */
} luari_http_result_t;

typedef void (*luari_http_done_fn)(void *ud, const luari_http_result_t *res);
typedef void (*luari_http_connected_fn)(void *ud, int fd, luari_http_err_t err, const char *errmsg);

typedef struct luari_http_request {
  const char *method;   /* GET, POST, PUT, DELETE */
  const char *url;
  const char *body;     /* JSON, or NULL */
  size_t body_len;
  long timeout_ms;
} luari_http_request_t;

/* The loop plugs in here. `watch` follows CURLMOPT_SOCKETFUNCTION: `what` is
 * CURL_POLL_IN/OUT/INOUT/REMOVE, `sockp` is what the loop stored with
 * luari_http_assign (NULL the first time). `set_timer` follows
 * CURLMOPT_TIMERFUNCTION (-1: stop). `destroy` frees the loop's side. */
typedef struct luari_http_hooks {
  void *data;
  void (*watch)(void *data, int fd, int what, void *sockp);
  void (*set_timer)(void *data, long timeout_ms);
  void (*destroy)(void *data);
} luari_http_hooks_t;

luari_http_t *luari_http_new(const luari_http_hooks_t *hooks, luari_log_t *log);
void luari_http_free(luari_http_t *http);

int luari_http_set_auth(luari_http_t *http, const char *user, const char *password);
int luari_http_set_tls(luari_http_t *http, int insecure, const char *ca_file);
void luari_http_set_max_connections(luari_http_t *http, long n);

/* Starts a request; `done` runs exactly once unless the request is cancelled.
 * Returns NULL (and calls nothing) when the request cannot even be started. */
luari_http_req_t *luari_http_start(luari_http_t *http, const luari_http_request_t *req,
                                   luari_http_done_fn done, void *ud);

/* Opens a TCP connection to host:port through curl's resolver and connect
 * logic, and hands over a socket the caller owns (it must close it). */
luari_http_req_t *luari_http_connect(luari_http_t *http, const char *host, int ipv6, int port,
                                     long timeout_ms, luari_http_connected_fn done, void *ud);

/* No callback runs for a cancelled request. */
void luari_http_cancel(luari_http_req_t *req);

int luari_http_active(const luari_http_t *http);

/* For the loop adapter. */
void luari_http_assign(luari_http_t *http, int fd, void *sockp);
void luari_http_on_socket(luari_http_t *http, int fd, int readable, int writable);
void luari_http_on_timeout(luari_http_t *http);

#endif
