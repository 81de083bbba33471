/* The ARI events WebSocket on libev. One connection at a time; a state
 * machine walks it through connect, TLS, Upgrade and open, and any failure
 * ends in teardown() and a backoff timer, never in exit(). */
#include "events.h"

#include "buf.h"
#include "ws.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

enum state { S_IDLE, S_CONNECTING, S_TLS, S_UPGRADE, S_OPEN, S_CLOSING, S_BACKOFF, S_STOPPED };

struct luari_events {
  struct ev_loop *loop;
  luari_http_t *http;
  luari_log_t *log;
  luari_events_options_t opts;
  luari_events_handler_t handler;
  char *apps;
  char *user;
  char *password;
  char *ca_file;
  char base[600];          /* ws(s)://host:port/path, for log lines */

  int state;
  int fd;
  SSL_CTX *ssl_ctx;
  SSL *ssl;
  luari_http_req_t *connect_req;
  luari_ws_t *ws;
  luari_buf_t out;         /* Upgrade request bytes not yet sent */
  luari_buf_t in;          /* reply bytes; after 101, frames that came with it */
  size_t in_pos;
  char key[25];
  luari_ws_reply_t reply;
  int close_code;

  ev_io io;
  int io_events;
  ev_timer timer;          /* handshake timeout, backoff, close timeout */
  ev_timer ping;
  double backoff;
  double last_rx;

  int depth;               /* nested callbacks into the handler */
  int free_pending;
  luari_events_stats_t stats;
};

static void connect_now(luari_events_t *ev);
static void update_watch(luari_events_t *ev);
static void go_down(luari_events_t *ev, int kind, int status, const char *message);

/* --- small helpers --- */

static char *dup_or_null(const char *s) {
  return s ? strdup(s) : NULL;
}

static void wipe_free(char *s) {
  if (s) {
    memset(s, 0, strlen(s));
    free(s);
  }
}

static void enter(luari_events_t *ev) {
  ev->depth++;
}

/* Returns 1 when the object was freed while inside and must not be touched. */
static int leave(luari_events_t *ev) {
  if (--ev->depth == 0 && ev->free_pending) {
    ev->free_pending = 0;
    luari_events_free(ev);
    return 1;
  }
  return 0;
}

static void start_timer(luari_events_t *ev, double after) {
  ev_timer_stop(ev->loop, &ev->timer);
  ev_timer_set(&ev->timer, after, 0.0);
  ev_timer_start(ev->loop, &ev->timer);
}

/* --- raw I/O on the socket, through TLS when there is one --- */

static ssize_t raw_recv(luari_events_t *ev, uint8_t *buf, size_t len) {
  if (!ev->ssl) {
    ssize_t n;
    do
      n = recv(ev->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    return n;
  }
  int n = SSL_read(ev->ssl, buf, (int)(len > 1 << 30 ? 1 << 30 : len));
  if (n > 0)
    return n;
  int err = SSL_get_error(ev->ssl, n);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    errno = EAGAIN;
    return -1;
  }
  if (err == SSL_ERROR_ZERO_RETURN)
    return 0;
  errno = ECONNRESET;
  return -1;
}

static ssize_t raw_send(luari_events_t *ev, const uint8_t *buf, size_t len) {
  if (!ev->ssl) {
    ssize_t n;
    do
      n = send(ev->fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
  }
  int n = SSL_write(ev->ssl, buf, (int)(len > 1 << 30 ? 1 << 30 : len));
  if (n > 0)
    return n;
  int err = SSL_get_error(ev->ssl, n);
  errno = (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) ? EAGAIN : ECONNRESET;
  return -1;
}

/* --- the WebSocket's view of the socket --- */

static ssize_t ws_recv(void *data, uint8_t *buf, size_t len) {
  luari_events_t *ev = data;
  size_t pending = ev->in.len - ev->in_pos;
  if (pending > 0) {
    size_t n = pending < len ? pending : len;
    memcpy(buf, ev->in.data + ev->in_pos, n);
    ev->in_pos += n;
    if (ev->in_pos == ev->in.len) {
      luari_buf_reset(&ev->in);
      ev->in_pos = 0;
    }
    return (ssize_t)n;
  }
  ssize_t n = raw_recv(ev, buf, len);
  if (n > 0)
    ev->last_rx = ev_now(ev->loop);
  return n;
}

static ssize_t ws_send(void *data, const uint8_t *buf, size_t len) {
  return raw_send(data, buf, len);
}

static void ws_message(void *data, int binary, const uint8_t *msg, size_t len) {
  luari_events_t *ev = data;
  if (binary) {
    ev->stats.dropped_binary++;
    luari_log(ev->log, LUARI_LOG_ERROR, "events: binary frame of %zu bytes from %s dropped (ARI sends text)",
              len, ev->base);
    return;
  }
  if (!luari_utf8_valid(msg, len)) {
    ev->stats.dropped_utf8++;
    luari_log(ev->log, LUARI_LOG_ERROR, "events: message of %zu bytes with invalid UTF-8 from %s dropped",
              len, ev->base);
    return;
  }
  ev->stats.messages++;
  if (ev->handler.on_message && ev->state == S_OPEN)
    ev->handler.on_message(ev->handler.data, (const char *)msg, len);
}

static void ws_close(void *data, int code, const uint8_t *reason, size_t len) {
  luari_events_t *ev = data;
  ev->close_code = code;
  luari_log(ev->log, LUARI_LOG_INFO, "events: %s closed the WebSocket (code %d%s%.*s)", ev->base, code,
            len ? ": " : "", (int)(len > 120 ? 120 : len), reason ? (const char *)reason : "");
}

/* --- teardown and reconnect --- */

static void teardown(luari_events_t *ev) {
  if (ev->connect_req) {
    luari_http_cancel(ev->connect_req);
    ev->connect_req = NULL;
  }
  ev_io_stop(ev->loop, &ev->io);
  ev_timer_stop(ev->loop, &ev->ping);
  ev_timer_stop(ev->loop, &ev->timer);
  luari_ws_free(ev->ws);
  ev->ws = NULL;
  if (ev->ssl) {
    SSL_free(ev->ssl);
    ev->ssl = NULL;
  }
  if (ev->fd >= 0) {
    close(ev->fd);
    ev->fd = -1;
  }
  luari_buf_reset(&ev->out);
  luari_buf_reset(&ev->in);
  ev->in_pos = 0;
}

static double next_delay(luari_events_t *ev, int kind, int status) {
  /* A refused login will not fix itself soon: wait the longest, once. */
  if (kind == LUARI_EVENTS_DOWN_HTTP && (status == 401 || status == 403))
    return ev->opts.backoff_max;
  double d = ev->backoff;
  ev->backoff = ev->backoff * 2 > ev->opts.backoff_max ? ev->opts.backoff_max : ev->backoff * 2;
  uint32_t r = 0;
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r)
    r = 0x80000000u;
  /* +-20% jitter so that many luari processes do not reconnect in step. */
  return d * (0.8 + 0.4 * ((double)r / 4294967295.0));
}

static void go_down(luari_events_t *ev, int kind, int status, const char *message) {
  int was_open = ev->state == S_OPEN || ev->state == S_CLOSING;
  int stopping = ev->state == S_CLOSING || ev->state == S_STOPPED;
  teardown(ev);
  luari_events_down_t down = { kind, status, ev->close_code ? ev->close_code : 1006, message, -1 };
  if (stopping) {
    ev->state = S_STOPPED;
    down.kind = LUARI_EVENTS_DOWN_STOPPED;
  } else {
    down.retry_in = next_delay(ev, kind, status);
    ev->state = S_BACKOFF;
    start_timer(ev, down.retry_in);
  }
  (void)was_open;
  ev->close_code = 0;
  if (ev->handler.on_down) {
    enter(ev);
    ev->handler.on_down(ev->handler.data, &down);
    leave(ev);
  }
}

/* --- open connection --- */

static void on_open(luari_events_t *ev) {
  luari_ws_io_t io = { ev, ws_recv, ws_send, NULL, ws_message, ws_close };
  ev->ws = luari_ws_new(LUARI_WS_CLIENT, &io, ev->opts.max_message);
  if (!ev->ws) {
    go_down(ev, LUARI_EVENTS_DOWN_PROTOCOL, 0, "out of memory");
    return;
  }
  /* Frames that arrived with the reply stay in `in`, after the head. */
  ev->in_pos = ev->reply.header_len;
  if (ev->in_pos >= ev->in.len) {
    luari_buf_reset(&ev->in);
    ev->in_pos = 0;
  }
  ev->state = S_OPEN;
  ev->stats.connects++;
  ev->backoff = ev->opts.backoff_initial;
  ev->last_rx = ev_now(ev->loop);
  ev_timer_stop(ev->loop, &ev->timer);
  if (ev->opts.ping_interval > 0) {
    ev_timer_set(&ev->ping, ev->opts.ping_interval, ev->opts.ping_interval);
    ev_timer_start(ev->loop, &ev->ping);
  }
  if (ev->handler.on_open)
    ev->handler.on_open(ev->handler.data);
}

static void pump_ws(luari_events_t *ev, int readable, int writable) {
  int rc = 0;
  if (readable || ev->in.len > ev->in_pos)
    rc = luari_ws_read(ev->ws);
  if (rc == 0 && ev->ws && (writable || luari_ws_want_write(ev->ws)))
    rc = luari_ws_write(ev->ws);
  if (!ev->ws || (ev->state != S_OPEN && ev->state != S_CLOSING))
    return;
  if (rc != 0 || luari_ws_done(ev->ws)) {
    char msg[1024];
    const char *why = luari_ws_eof(ev->ws) ? "the server closed the connection"
                      : ev->close_code     ? "the WebSocket was closed"
                                           : "connection lost";
    snprintf(msg, sizeof msg, "%s: %s", ev->base, why);
    go_down(ev, LUARI_EVENTS_DOWN_CLOSED, 0, msg);
    return;
  }
  update_watch(ev);
}

/* --- handshake --- */

static void fail_http(luari_events_t *ev) {
  char msg[1024];
  const char *body = ev->in.data + ev->reply.header_len;
  size_t blen = ev->in.len > ev->reply.header_len ? ev->in.len - ev->reply.header_len : 0;
  /* ARI errors are {"message": "..."}: show it, or the start of an HTML page's text. */
  const char *m = strstr(body, "\"message\"");
  if (m && (m = strchr(m + 9, '"'))) {
    const char *end = strchr(m + 1, '"');
    snprintf(msg, sizeof msg, "%s refused the WebSocket: HTTP %d %s: %.*s", ev->base, ev->reply.status,
             ev->reply.reason, end ? (int)(end - m - 1) : 0, m + 1);
  } else {
    snprintf(msg, sizeof msg, "%s refused the WebSocket: HTTP %d %s%s", ev->base, ev->reply.status,
             ev->reply.reason, blen ? " (see the server's log)" : "");
  }
  go_down(ev, LUARI_EVENTS_DOWN_HTTP, ev->reply.status, msg);
}

static int reply_body_complete(luari_events_t *ev, int eof) {
  size_t have = ev->in.len - ev->reply.header_len;
  return eof || ev->reply.content_length <= 0 || have >= (size_t)ev->reply.content_length;
}

static void read_reply(luari_events_t *ev) {
  uint8_t buf[4096];
  int eof = 0;
  for (;;) {
    ssize_t n = raw_recv(ev, buf, sizeof buf);
    if (n > 0) {
      if (luari_buf_append(&ev->in, buf, (size_t)n) != 0) {
        go_down(ev, LUARI_EVENTS_DOWN_PROTOCOL, 0, "out of memory");
        return;
      }
      continue;
    }
    if (n < 0 && errno == EAGAIN)
      break;
    eof = 1;
    break;
  }
  int rc = ev->in.len ? luari_ws_parse_reply(ev->in.data, ev->in.len, &ev->reply) : 0;
  if (rc < 0) {
    go_down(ev, LUARI_EVENTS_DOWN_PROTOCOL, 0, "the server's reply to the Upgrade is not HTTP");
    return;
  }
  if (rc == 0) {
    if (eof)
      go_down(ev, LUARI_EVENTS_DOWN_CLOSED, 0, "the server closed the connection during the Upgrade");
    else
      update_watch(ev);
    return;
  }
  if (ev->reply.status != 101) {
    if (reply_body_complete(ev, eof) || ev->in.len > 65536)
      fail_http(ev);
    else
      update_watch(ev);
    return;
  }
  const char *why;
  if (luari_ws_check_reply(&ev->reply, ev->key, &why) != 0) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s: bad WebSocket handshake: %s", ev->base, why);
    go_down(ev, LUARI_EVENTS_DOWN_PROTOCOL, 0, msg);
    return;
  }
  on_open(ev);
  if (ev->state == S_OPEN)
    pump_ws(ev, 0, 0);
}

static void flush_out(luari_events_t *ev) {
  while (ev->out.len > 0) {
    ssize_t n = raw_send(ev, (const uint8_t *)ev->out.data, ev->out.len);
    if (n < 0) {
      if (errno != EAGAIN)
        go_down(ev, LUARI_EVENTS_DOWN_CLOSED, 0, "connection lost while sending the Upgrade");
      return;
    }
    luari_buf_consume(&ev->out, (size_t)n);
  }
}

static void begin_upgrade(luari_events_t *ev) {
  uint8_t nonce[16];
  if (getrandom(nonce, sizeof nonce, 0) != sizeof nonce) {
    go_down(ev, LUARI_EVENTS_DOWN_PROTOCOL, 0, "no random bytes for the WebSocket key");
    return;
  }
  luari_ws_key(ev->key, nonce);
  luari_buf_t target = LUARI_BUF_INIT, headers = LUARI_BUF_INIT, host = LUARI_BUF_INIT;
  const luari_url_t *u = &ev->opts.url;
  luari_buf_appendf(&target, "%s/events", u->path);
  luari_url_add_query(&target, "app", ev->apps, strlen(ev->apps));
  if (ev->opts.subscribe_all)
    luari_url_add_query(&target, "subscribeAll", "true", 4);
  if (ev->user && ev->password) {
    luari_basic_auth_header(&headers, ev->user, ev->password);
    luari_buf_append(&headers, "\r\n", 2);
  }
  luari_buf_appendf(&host, "%s%s%s:%d", u->ipv6 ? "[" : "", u->host, u->ipv6 ? "]" : "", u->port);
  luari_ws_upgrade_request(&ev->out, host.data, target.data, ev->key, headers.data);
  if (headers.data)
    memset(headers.data, 0, headers.len);
  luari_buf_free(&target);
  luari_buf_free(&headers);
  luari_buf_free(&host);
  ev->state = S_UPGRADE;
  flush_out(ev);
  if (ev->state == S_UPGRADE)
    update_watch(ev);
}

static void tls_failure_message(luari_events_t *ev, char *msg, size_t size) {
  long verify = SSL_get_verify_result(ev->ssl);
  unsigned long e = ERR_get_error();
  if (verify != X509_V_OK)
    snprintf(msg, size, "%s: TLS certificate not trusted: %s (use --ca-file, or --insecure to skip checks)",
             ev->base, X509_verify_cert_error_string(verify));
  else
    snprintf(msg, size, "%s: TLS handshake failed: %s", ev->base,
             e ? ERR_reason_error_string(e) : "connection closed");
  ERR_clear_error();
}

static void drive_tls(luari_events_t *ev) {
  int rc = SSL_do_handshake(ev->ssl);
  if (rc == 1) {
    begin_upgrade(ev);
    return;
  }
  int err = SSL_get_error(ev->ssl, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    ev->io_events = err == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE;
    ev_io_stop(ev->loop, &ev->io);
    ev_io_set(&ev->io, ev->fd, ev->io_events);
    ev_io_start(ev->loop, &ev->io);
    return;
  }
  char msg[1024];
  tls_failure_message(ev, msg, sizeof msg);
  go_down(ev, LUARI_EVENTS_DOWN_TLS, 0, msg);
}

static int start_tls(luari_events_t *ev) {
  ev->ssl = SSL_new(ev->ssl_ctx);
  if (!ev->ssl || SSL_set_fd(ev->ssl, ev->fd) != 1)
    return -1;
  const char *host = ev->opts.url.host;
  if (!ev->opts.url.ipv6 && SSL_set_tlsext_host_name(ev->ssl, host) != 1)
    return -1;
  if (!ev->opts.insecure) {
    SSL_set_hostflags(ev->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ev->ssl, host) != 1)
      return -1;
  }
  SSL_set_connect_state(ev->ssl);
  ev->state = S_TLS;
  return 0;
}

static void on_connected(void *data, int fd, luari_http_err_t err, const char *errmsg) {
  luari_events_t *ev = data;
  ev->connect_req = NULL;
  if (fd < 0) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s: cannot connect: %s", ev->base, errmsg ? errmsg : "unknown error");
    go_down(ev, err == LUARI_HTTP_TIMEOUT ? LUARI_EVENTS_DOWN_TIMEOUT : LUARI_EVENTS_DOWN_CONNECT, 0, msg);
    return;
  }
  ev->fd = fd;
  ev_io_set(&ev->io, fd, EV_READ);
  if (!ev->opts.url.tls) {
    begin_upgrade(ev);
    return;
  }
  if (start_tls(ev) != 0) {
    go_down(ev, LUARI_EVENTS_DOWN_TLS, 0, "cannot set up TLS");
    return;
  }
  drive_tls(ev);
}

static void connect_now(luari_events_t *ev) {
  ev->state = S_CONNECTING;
  ev->close_code = 0;
  start_timer(ev, ev->opts.handshake_timeout);
  const luari_url_t *u = &ev->opts.url;
  long ms = (long)(ev->opts.handshake_timeout * 1000);
  ev->connect_req = luari_http_connect(ev->http, u->host, u->ipv6, u->port, ms, on_connected, ev);
  if (!ev->connect_req)
    go_down(ev, LUARI_EVENTS_DOWN_CONNECT, 0, "cannot start connecting");
}

/* --- libev callbacks --- */

static void update_watch(luari_events_t *ev) {
  int want = EV_READ;
  if (ev->state == S_UPGRADE && ev->out.len > 0)
    want |= EV_WRITE;
  if ((ev->state == S_OPEN || ev->state == S_CLOSING) && ev->ws && luari_ws_want_write(ev->ws))
    want |= EV_WRITE;
  if (ev_is_active(&ev->io) && ev->io_events == want)
    return;
  ev->io_events = want;
  ev_io_stop(ev->loop, &ev->io);
  ev_io_set(&ev->io, ev->fd, want);
  ev_io_start(ev->loop, &ev->io);
}

static void on_io(EV_P_ ev_io *w, int revents) {
  (void)loop;
  luari_events_t *ev = w->data;
  enter(ev);
  switch (ev->state) {
  case S_TLS:
    drive_tls(ev);
    break;
  case S_UPGRADE:
    if (revents & EV_WRITE)
      flush_out(ev);
    if (ev->state == S_UPGRADE && (revents & EV_READ))
      read_reply(ev);
    else if (ev->state == S_UPGRADE)
      update_watch(ev);
    break;
  case S_OPEN:
  case S_CLOSING:
    pump_ws(ev, revents & EV_READ, revents & EV_WRITE);
    break;
  default:
    ev_io_stop(ev->loop, &ev->io);
    break;
  }
  leave(ev);
}

static void on_timer(EV_P_ ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  luari_events_t *ev = w->data;
  enter(ev);
  switch (ev->state) {
  case S_BACKOFF:
    connect_now(ev);
    break;
  case S_CONNECTING:
  case S_TLS:
  case S_UPGRADE: {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s: no WebSocket after %.1f s", ev->base, ev->opts.handshake_timeout);
    go_down(ev, LUARI_EVENTS_DOWN_TIMEOUT, 0, msg);
    break;
  }
  case S_CLOSING:
    go_down(ev, LUARI_EVENTS_DOWN_STOPPED, 0, "closed (the server did not answer the close)");
    break;
  default:
    break;
  }
  leave(ev);
}

static void on_ping(EV_P_ ev_timer *w, int revents) {
  (void)revents;
  luari_events_t *ev = w->data;
  if (ev->state != S_OPEN)
    return;
  enter(ev);
  if (ev_now(loop) - ev->last_rx > 2 * ev->opts.ping_interval) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s: nothing received for %.0f s", ev->base, ev_now(loop) - ev->last_rx);
    go_down(ev, LUARI_EVENTS_DOWN_TIMEOUT, 0, msg);
  } else if (luari_ws_send_ping(ev->ws, "luari", 5) == 0) {
    pump_ws(ev, 0, 1);
  }
  leave(ev);
}

/* --- public --- */

static SSL_CTX *new_ssl_ctx(luari_events_t *ev) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx)
    return NULL;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (ev->opts.insecure) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    return ctx;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  int ok = ev->ca_file ? SSL_CTX_load_verify_locations(ctx, ev->ca_file, NULL)
                       : SSL_CTX_set_default_verify_paths(ctx);
  if (ok != 1) {
    luari_log(ev->log, LUARI_LOG_ERROR, "events: cannot load CA certificates%s%s", ev->ca_file ? " from " : "",
              ev->ca_file ? ev->ca_file : "");
  }
  return ctx;
}

luari_events_t *luari_events_new(struct ev_loop *loop, luari_http_t *http, luari_log_t *log,
                                 const luari_events_options_t *opts,
                                 const luari_events_handler_t *handler) {
  luari_events_t *ev = calloc(1, sizeof *ev);
  if (!ev)
    return NULL;
  ev->loop = loop;
  ev->http = http;
  ev->log = log;
  ev->opts = *opts;
  ev->handler = *handler;
  ev->fd = -1;
  ev->apps = strdup(opts->apps ? opts->apps : "luari");
  ev->user = dup_or_null(opts->user);
  ev->password = dup_or_null(opts->password);
  ev->ca_file = dup_or_null(opts->ca_file);
  ev->opts.apps = ev->opts.user = ev->opts.password = ev->opts.ca_file = NULL;
  if (ev->opts.backoff_initial <= 0)
    ev->opts.backoff_initial = 0.5;
  if (ev->opts.backoff_max <= 0)
    ev->opts.backoff_max = 10;
  if (ev->opts.backoff_max < ev->opts.backoff_initial)
    ev->opts.backoff_max = ev->opts.backoff_initial;
  if (ev->opts.handshake_timeout <= 0)
    ev->opts.handshake_timeout = 10;
  if (ev->opts.ping_interval == 0)
    ev->opts.ping_interval = 20;
  ev->backoff = ev->opts.backoff_initial;
  luari_buf_t base = LUARI_BUF_INIT;
  luari_url_format_base(&base, &ev->opts.url, 1);
  snprintf(ev->base, sizeof ev->base, "%s/events", base.data ? base.data : "?");
  luari_buf_free(&base);
  ev_io_init(&ev->io, on_io, -1, EV_READ);
  ev->io.data = ev;
  ev_timer_init(&ev->timer, on_timer, 0.0, 0.0);
  ev->timer.data = ev;
  ev_timer_init(&ev->ping, on_ping, 0.0, 0.0);
  ev->ping.data = ev;
  if (!ev->apps || (ev->opts.url.tls && !(ev->ssl_ctx = new_ssl_ctx(ev)))) {
    luari_events_free(ev);
    return NULL;
  }
  return ev;
}

void luari_events_start(luari_events_t *ev) {
  if (ev->state == S_IDLE || ev->state == S_STOPPED)
    connect_now(ev);
}

void luari_events_stop(luari_events_t *ev) {
  switch (ev->state) {
  case S_OPEN:
    ev->state = S_CLOSING;
    ev_timer_stop(ev->loop, &ev->ping);
    start_timer(ev, 2.0);
    luari_ws_close(ev->ws, 1000, "");
    pump_ws(ev, 0, 1);
    break;
  case S_CLOSING:
  case S_STOPPED:
  case S_IDLE:
    break;
  default:
    ev->state = S_CLOSING;
    go_down(ev, LUARI_EVENTS_DOWN_STOPPED, 0, "stopped");
    break;
  }
}

void luari_events_drop(luari_events_t *ev, const char *why) {
  if (ev->state == S_OPEN)
    go_down(ev, LUARI_EVENTS_DOWN_CLOSED, 0, why);
}

int luari_events_is_open(const luari_events_t *ev) {
  return ev->state == S_OPEN;
}

const luari_events_stats_t *luari_events_stats(const luari_events_t *ev) {
  return &ev->stats;
}

void luari_events_free(luari_events_t *ev) {
  if (!ev)
    return;
  if (ev->depth > 0) {
    ev->free_pending = 1;
    ev->handler.on_open = NULL;
    ev->handler.on_message = NULL;
    ev->handler.on_down = NULL;
    return;
  }
  teardown(ev);
  luari_buf_free(&ev->out);
  luari_buf_free(&ev->in);
  if (ev->ssl_ctx)
    SSL_CTX_free(ev->ssl_ctx);
  free(ev->apps);
  wipe_free(ev->user);
  wipe_free(ev->password);
  free(ev->ca_file);
  free(ev);
}
