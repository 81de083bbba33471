/* The ARI events WebSocket on libev. One connection at a time; a state
 * machine walks it through connect, TLS, Upgrade and open, and any failure
 * ends in teardown() and a backoff timer, never by ending the process. */
#include "events.h"

#include "buf.h"
#include "ws.h"
#include "wsthread.h"

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
  luari_wsthread_t *reader;  /* shares fd and ssl with its guard thread while open */
  luari_buf_t out;         /* Upgrade request bytes not yet sent */
  luari_buf_t in;          /* reply bytes; after 101, frames that came with it */
  size_t in_pos;
  char key[25];
  luari_ws_reply_t reply;
  int close_code;

  ev_io io;
  int io_events;
  ev_timer timer;          /* handshake timeout, backoff */
  ev_async async;          /* the guard thread queued something */
  double backoff;
  double opened_at;        /* ev_now when the last connection opened; 0: none since */

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
  ev_now_update(ev->loop); /* from now, not from when the loop last woke */
  ev_timer_start(ev->loop, &ev->timer);
}

/* --- raw I/O on the socket, through TLS when there is one --- */

/* Each TLS call below clears the thread's OpenSSL error queue first:
 * SSL_get_error reads it, and an error someone else left there (curl's TLS
 * runs on this thread) would read as this call's and close the socket. */
static ssize_t raw_recv(luari_events_t *ev, uint8_t *buf, size_t len) {
  if (!ev->ssl) {
    ssize_t n;
    do
      n = recv(ev->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    return n;
  }
  ERR_clear_error();
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
  ERR_clear_error();
  int n = SSL_write(ev->ssl, buf, (int)(len > 1 << 30 ? 1 << 30 : len));
  if (n > 0)
    return n;
  int err = SSL_get_error(ev->ssl, n);
  errno = (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) ? EAGAIN : ECONNRESET;
  return -1;
}

/* --- teardown and reconnect --- */

static void teardown(luari_events_t *ev) {
  if (ev->connect_req) {
    luari_http_cancel(ev->connect_req);
    ev->connect_req = NULL;
  }
  ev_io_stop(ev->loop, &ev->io);
  ev_timer_stop(ev->loop, &ev->timer);
  if (ev->reader) {
    luari_wsthread_stats_t st;
    luari_wsthread_stats(ev->reader, &st);
    ev->stats.messages += st.messages;
    ev->stats.dropped_binary += st.dropped_binary;
    luari_wsthread_join(ev->reader);
    ev->reader = NULL;
  }
  if (ev->ssl) {
    SSL_free(ev->ssl);
    ev->ssl = NULL;
  }
  if (ev->fd >= 0) {
    close(ev->fd);
    ev->fd = -1;
  }
  luari_buf_wipe(&ev->out);
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

/* A connection that lasted is a fresh start: the next try comes soon. One
 * that a server keeps accepting and then ending at once (a proxy up with
 * nothing behind it, an application that fails at once) backs off as a
 * refused connection does, instead of reconnecting twice a second. */
static void reset_backoff_if_stable(luari_events_t *ev) {
  if (ev->opened_at > 0 && ev_now(ev->loop) - ev->opened_at >= ev->opts.backoff_max)
    ev->backoff = ev->opts.backoff_initial;
  ev->opened_at = 0;
}

static void go_down(luari_events_t *ev, int kind, int status, const char *message) {
  int stopping = ev->state == S_CLOSING || ev->state == S_STOPPED;
  teardown(ev);
  reset_backoff_if_stable(ev);
  luari_events_down_t down = { kind, status, ev->close_code ? ev->close_code : 1006, message, -1 };
  if (stopping) {
    ev->state = S_STOPPED;
    down.kind = LUARI_EVENTS_DOWN_STOPPED;
  } else {
    down.retry_in = next_delay(ev, kind, status);
    ev->state = S_BACKOFF;
    start_timer(ev, down.retry_in);
  }
  ev->close_code = 0;
  if (ev->handler.on_down) {
    enter(ev);
    ev->handler.on_down(ev->handler.data, &down);
    leave(ev);
  }
}

/* --- open connection: frames are read by the loop (or, while it is busy,
 * the guard thread) --- */

static void notify_main(void *data) {
  luari_events_t *ev = data;
  ev_async_send(ev->loop, &ev->async);
}

static void on_open(luari_events_t *ev) {
  size_t head = ev->reply.header_len;
  luari_wsthread_options_t o = {
    ev->fd, ev->ssl, (const uint8_t *)ev->in.data + head, ev->in.len > head ? ev->in.len - head : 0,
    ev->opts.max_message, 0, ev->opts.ping_interval, ev->log, ev->base, notify_main, ev,
  };
  /* From here on the socket is read through the reader, under its lock. */
  ev_io_stop(ev->loop, &ev->io);
  ev_timer_stop(ev->loop, &ev->timer);
  ev->reader = luari_wsthread_start(&o);
  luari_buf_reset(&ev->in);
  if (!ev->reader) {
    go_down(ev, LUARI_EVENTS_DOWN_PROTOCOL, 0, "cannot start the WebSocket reader");
    return;
  }
  ev->state = S_OPEN;
  ev->stats.connects++;
  ev_now_update(ev->loop);
  ev->opened_at = ev_now(ev->loop);
  ev->io_events = EV_READ;
  ev_io_set(&ev->io, ev->fd, EV_READ);
  ev_io_start(ev->loop, &ev->io);
  if (ev->handler.on_open)
    ev->handler.on_open(ev->handler.data);
  /* Frames that came with the handshake reply (the handler may have
   * stopped or freed the connection meanwhile). */
  if (ev->state == S_OPEN && ev->reader && luari_wsthread_has_pending(ev->reader))
    ev_feed_event(ev->loop, &ev->io, EV_READ);
}

static int down_kind_for(int end_reason) {
  return end_reason == LUARI_WSEND_TIMEOUT ? LUARI_EVENTS_DOWN_TIMEOUT : LUARI_EVENTS_DOWN_CLOSED;
}

/* Hands queued messages to the handler in order; an END item ends the connection. */
static void deliver(luari_events_t *ev) {
  if (!ev->reader)
    return;
  luari_wsitem_t *items = luari_wsthread_take(ev->reader);
  enter(ev);
  while (items) {
    luari_wsitem_t *it = items;
    items = it->next;
    if (it->kind == LUARI_WSITEM_MESSAGE && ev->handler.on_message &&
        (ev->state == S_OPEN || ev->state == S_CLOSING))
      ev->handler.on_message(ev->handler.data, it->data, it->len);
    else if (it->kind == LUARI_WSITEM_END && ev->reader) {
      ev->close_code = it->close_code;
      go_down(ev, down_kind_for(it->end_reason), 0, it->data);
    }
    free(it);
  }
  leave(ev);
}

static void on_async(EV_P_ ev_async *w, int revents) {
  (void)loop;
  (void)revents;
  deliver(w->data);
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

/* go_down with a message that names the URL: "ws://...: what". */
static void go_down_at(luari_events_t *ev, int kind, const char *what) {
  char msg[1024];
  snprintf(msg, sizeof msg, "%s: %s", ev->base, what);
  go_down(ev, kind, 0, msg);
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
    go_down_at(ev, LUARI_EVENTS_DOWN_PROTOCOL, "the server's reply to the Upgrade is not HTTP (or its header is over 16 KB)");
    return;
  }
  if (rc == 0) {
    if (eof)
      go_down_at(ev, LUARI_EVENTS_DOWN_CLOSED, "the server closed the connection during the Upgrade");
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
}

static void flush_out(luari_events_t *ev) {
  while (ev->out.len > 0) {
    ssize_t n = raw_send(ev, (const uint8_t *)ev->out.data, ev->out.len);
    if (n < 0) {
      if (errno != EAGAIN)
        go_down_at(ev, LUARI_EVENTS_DOWN_CLOSED, "connection lost while sending the Upgrade");
      return;
    }
    luari_buf_consume(&ev->out, (size_t)n);
  }
  /* All sent: the request's Authorization header need not stay in memory. */
  luari_buf_wipe(&ev->out);
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
  luari_buf_free(&target);
  luari_buf_wipe_free(&headers);
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
  ERR_clear_error();
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

static void connected(luari_events_t *ev, int fd, luari_http_err_t err, const char *errmsg) {
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

/* curl's callback: the handler may free ev on the way (deferred by enter). */
static void on_connected(void *data, int fd, luari_http_err_t err, const char *errmsg) {
  luari_events_t *ev = data;
  ev->connect_req = NULL;
  enter(ev);
  connected(ev, fd, err, errmsg);
  leave(ev);
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
  if ((ev->state == S_OPEN || ev->state == S_CLOSING) && ev->reader) {
    luari_wsthread_read(ev->reader);
    deliver(ev);
    return;
  }
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
  default:
    break;
  }
  leave(ev);
}

/* --- public --- */

static SSL_CTX *new_ssl_ctx(luari_events_t *ev) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx)
    return NULL;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  /* A write the socket could not take is tried again from where the bytes
   * wait then (the WebSocket's held buffer), not always the same address. */
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
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
  ev_async_init(&ev->async, on_async);
  ev->async.data = ev;
  ev_async_start(loop, &ev->async);
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
    luari_wsthread_close(ev->reader, 1000);
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

void luari_events_drop(luari_events_t *ev) {
  if (ev->state == S_OPEN && ev->reader)
    luari_wsthread_drop(ev->reader);
}

int luari_events_send(luari_events_t *ev, const char *text, size_t len) {
  if (ev->state != S_OPEN || !ev->reader)
    return -1;
  return luari_wsthread_send(ev->reader, text, len);
}

int luari_events_is_open(const luari_events_t *ev) {
  return ev->state == S_OPEN;
}

void luari_events_stats(luari_events_t *ev, luari_events_stats_t *out) {
  *out = ev->stats;
  if (ev->reader) {
    luari_wsthread_stats_t st;
    luari_wsthread_stats(ev->reader, &st);
    out->messages += st.messages;
    out->dropped_binary += st.dropped_binary;
    out->queued_bytes = st.queued_bytes;
    out->max_queued_bytes = st.max_queued_bytes;
  }
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
  ev_async_stop(ev->loop, &ev->async);
  luari_buf_wipe_free(&ev->out);
  luari_buf_free(&ev->in);
  if (ev->ssl_ctx)
    SSL_CTX_free(ev->ssl_ctx);
  free(ev->apps);
  luari_wipe_free(ev->user);
  luari_wipe_free(ev->password);
  free(ev->ca_file);
  free(ev);
}
