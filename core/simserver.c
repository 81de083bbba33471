/* HTTP and WebSocket serving for the simulated Asterisk. libmicrohttpd runs
 * in "external" mode: its epoll descriptor is one ev_io, its timeout one
 * ev_timer. Upgraded sockets leave MHD and get an ev_io of their own. */
#include "simserver.h"
#include "clock.h"

#include "buf.h"
#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct luari_simreq {
  luari_simserver_t *srv;
  struct MHD_Connection *conn;
  char *method;
  char *path;
  char **args; /* name, value, name, value, ... */
  size_t nargs;
  luari_buf_t body;
  int in_dispatch;
  int suspended;
  int answered;
  double received;
  struct MHD_Response *response;
  unsigned int status;
  unsigned long ws_tag;
  void *owner;
  void (*gone)(void *owner);
  luari_simreq_t *prev, *next;
};

struct luari_simconn {
  luari_simserver_t *srv;
  int fd;
  struct MHD_UpgradeResponseHandle *urh;
  luari_ws_t *ws;
  ev_io io;
  int io_events;
  ev_timer write_timer; /* Asterisk's websocket write timeout */
  double last_progress; /* when bytes last left for the socket */
  unsigned long tag;
  luari_buf_t extra;
  size_t extra_pos;
  int depth;
  int finished;
  luari_simconn_t *prev, *next;
};

struct luari_simserver {
  struct ev_loop *loop;
  luari_log_t *log;
  struct MHD_Daemon *mhd;
  luari_simserver_handler_t handler;
  ev_io io;
  ev_timer timer;
  int port;
  luari_simreq_t *reqs;
  luari_simconn_t *conns;
  double write_timeout;
  unsigned idle_timeout; /* seconds a kept-alive HTTP connection may idle; 0: MHD's */
  double pass_started;   /* when the running MHD_run began */
};

static void schedule_run(luari_simserver_t *srv, double after);

/* --- lists --- */

#define LINK(head, x)                                                                              \
  do {                                                                                             \
    (x)->prev = NULL;                                                                              \
    (x)->next = (head);                                                                            \
    if (head)                                                                                      \
      (head)->prev = (x);                                                                          \
    (head) = (x);                                                                                  \
  } while (0)

#define UNLINK(head, x)                                                                            \
  do {                                                                                             \
    if ((x)->prev)                                                                                 \
      (x)->prev->next = (x)->next;                                                                 \
    else                                                                                           \
      (head) = (x)->next;                                                                          \
    if ((x)->next)                                                                                 \
      (x)->next->prev = (x)->prev;                                                                 \
  } while (0)

/* --- percent-decoding, the way Asterisk reads query strings --- */

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static char *decode_arg(const char *s) {
  size_t len = strlen(s);
  char *out = malloc(len + 1);
  if (!out)
    return NULL;
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    int hi, lo;
    if (s[i] == '+') {
      out[o++] = ' ';
    } else if (s[i] == '%' && i + 2 < len && (hi = hexval(s[i + 1])) >= 0 &&
               (lo = hexval(s[i + 2])) >= 0) {
      out[o++] = (char)(hi * 16 + lo);
      i += 2;
    } else {
      out[o++] = s[i];
    }
  }
  out[o] = '\0';
  return out;
}

/* Keep MHD from decoding: the path must keep %2F inside a segment. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s) {
  (void)cls;
  (void)c;
  return strlen(s);
}

/* --- requests --- */

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value) {
  (void)kind;
  luari_simreq_t *req = cls;
  char **grown = realloc(req->args, (req->nargs + 1) * 2 * sizeof *grown);
  if (!grown)
    return MHD_NO;
  req->args = grown;
  req->args[req->nargs * 2] = decode_arg(key);
  req->args[req->nargs * 2 + 1] = decode_arg(value ? value : "");
  req->nargs++;
  return MHD_YES;
}

static luari_simreq_t *new_req(luari_simserver_t *srv, struct MHD_Connection *c, const char *url,
                               const char *method) {
  luari_simreq_t *req = calloc(1, sizeof *req);
  if (!req)
    return NULL;
  req->srv = srv;
  req->conn = c;
  req->method = strdup(method);
  req->path = strdup(url);
  req->received = srv->pass_started;
  if (srv->idle_timeout)
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, srv->idle_timeout);
  MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, req);
  LINK(srv->reqs, req);
  return req;
}

static void free_req(luari_simreq_t *req) {
  UNLINK(req->srv->reqs, req);
  for (size_t i = 0; i < req->nargs * 2; i++)
    free(req->args[i]);
  free(req->args);
  free(req->method);
  free(req->path);
  luari_buf_free(&req->body);
  if (req->response)
    MHD_destroy_response(req->response);
  free(req);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)c;
  (void)toe;
  luari_simreq_t *req = *con_cls;
  if (!req)
    return;
  *con_cls = NULL;
  if (req->gone)
    req->gone(req->owner);
  free_req(req);
}

static enum MHD_Result queue_stored(luari_simreq_t *req) {
  struct MHD_Response *r = req->response;
  req->response = NULL;
  enum MHD_Result rc = MHD_queue_response(req->conn, req->status, r);
  MHD_destroy_response(r);
  return rc;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls) {
  (void)version;
  luari_simserver_t *srv = cls;
  luari_simreq_t *req = *con_cls;
  if (!req) {
    req = new_req(srv, c, url, method);
    *con_cls = req;
    return req ? MHD_YES : MHD_NO;
  }
  if (*upload_size) {
    if (luari_buf_append(&req->body, upload, *upload_size) != 0)
      return MHD_NO;
    *upload_size = 0;
    return MHD_YES;
  }
  if (req->response)
    return queue_stored(req);
  if (req->answered || req->suspended)
    return MHD_YES;
  req->in_dispatch = 1;
  srv->handler.on_request(srv->handler.data, req);
  req->in_dispatch = 0;
  if (req->response)
    return queue_stored(req);
  /* Not answered yet: park the connection until luari_simreq_respond. */
  req->suspended = 1;
  MHD_suspend_connection(c);
  return MHD_YES;
}

const char *luari_simreq_method(const luari_simreq_t *req) {
  return req->method;
}

const char *luari_simreq_path(const luari_simreq_t *req) {
  return req->path;
}

size_t luari_simreq_nargs(const luari_simreq_t *req) {
  return req->nargs;
}

void luari_simreq_arg(const luari_simreq_t *req, size_t i, const char **name, const char **value) {
  *name = req->args[i * 2] ? req->args[i * 2] : "";
  *value = req->args[i * 2 + 1] ? req->args[i * 2 + 1] : "";
}

const char *luari_simreq_header(const luari_simreq_t *req, const char *name) {
  return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

double luari_simreq_received(const luari_simreq_t *req) {
  return req->received;
}

const char *luari_simreq_body(const luari_simreq_t *req, size_t *len) {
  *len = req->body.len;
  return req->body.data ? req->body.data : "";
}

int luari_simreq_is_upgrade(const luari_simreq_t *req) {
  const char *up = luari_simreq_header(req, "Upgrade");
  return up && strcasecmp(up, "websocket") == 0;
}

void luari_simreq_set_owner(luari_simreq_t *req, void *owner, void (*gone)(void *owner)) {
  req->owner = owner;
  req->gone = gone;
}

/* --- WebSocket connections --- */

static void conn_update_watch(luari_simconn_t *conn);

static ssize_t conn_recv(void *data, uint8_t *buf, size_t len) {
  luari_simconn_t *conn = data;
  size_t pending = conn->extra.len - conn->extra_pos;
  if (pending) {
    size_t n = pending < len ? pending : len;
    memcpy(buf, conn->extra.data + conn->extra_pos, n);
    conn->extra_pos += n;
    return (ssize_t)n;
  }
  ssize_t n;
  do
    n = recv(conn->fd, buf, len, 0);
  while (n < 0 && errno == EINTR);
  return n;
}

static ssize_t conn_send(void *data, const uint8_t *buf, size_t len) {
  luari_simconn_t *conn = data;
  ssize_t n;
  do
    n = send(conn->fd, buf, len, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n > 0)
    conn->last_progress = luari_monotonic_now();
  return n;
}

static void conn_message(void *data, int binary, const uint8_t *msg, size_t len) {
  luari_simconn_t *conn = data;
  luari_simserver_t *srv = conn->srv;
  if (binary || conn->finished)
    return;
  if (srv->handler.on_ws_message)
    srv->handler.on_ws_message(srv->handler.data, conn, (const char *)msg, len);
}

static void conn_destroy(luari_simconn_t *conn) {
  luari_simserver_t *srv = conn->srv;
  UNLINK(srv->conns, conn);
  luari_ws_free(conn->ws);
  luari_buf_free(&conn->extra);
  /* MHD owns the socket: it closes it on its next run. */
  MHD_upgrade_action(conn->urh, MHD_UPGRADE_ACTION_CLOSE);
  free(conn);
  schedule_run(srv, 0);
}

static void conn_finish(luari_simconn_t *conn) {
  if (conn->finished)
    return;
  conn->finished = 1;
  ev_io_stop(conn->srv->loop, &conn->io);
  ev_timer_stop(conn->srv->loop, &conn->write_timer);
  luari_simserver_t *srv = conn->srv;
  conn->depth++;
  if (srv->handler.on_ws_close)
    srv->handler.on_ws_close(srv->handler.data, conn);
  conn->depth--;
  if (conn->depth == 0)
    conn_destroy(conn);
}

static void conn_pump(luari_simconn_t *conn, int readable) {
  if (conn->finished)
    return;
  conn->depth++;
  int rc = 0;
  if (readable || conn->extra.len > conn->extra_pos)
    rc = luari_ws_read(conn->ws);
  if (rc == 0 && !conn->finished)
    rc = luari_ws_write(conn->ws);
  conn->depth--;
  if (conn->finished) {
    if (conn->depth == 0)
      conn_destroy(conn);
    return;
  }
  if (rc != 0 || luari_ws_done(conn->ws))
    conn_finish(conn);
  else
    conn_update_watch(conn);
}

static void on_conn_io(EV_P_ ev_io *w, int revents) {
  (void)loop;
  conn_pump(w->data, revents & EV_READ);
}

/* Like Asterisk: a write that makes no progress within the write timeout
 * costs the reader its WebSocket. */
static void on_write_timeout(EV_P_ ev_timer *w, int revents) {
  (void)revents;
  luari_simconn_t *conn = w->data;
  if (conn->finished || !luari_ws_want_write(conn->ws))
    return;
  double stalled = luari_monotonic_now() - conn->last_progress;
  if (stalled < conn->srv->write_timeout) {
    ev_timer_set(w, conn->srv->write_timeout - stalled, 0.0);
    ev_now_update(loop);
    ev_timer_start(loop, w);
    return;
  }
  luari_log(conn->srv->log, LUARI_LOG_WARN,
            "sim-server: a WebSocket reader fell behind the %.0f ms write timeout: dropped, as Asterisk does",
            conn->srv->write_timeout * 1000);
  shutdown(conn->fd, SHUT_RDWR);
  conn_finish(conn);
}

static void conn_update_watch(luari_simconn_t *conn) {
  int want = EV_READ | (luari_ws_want_write(conn->ws) ? EV_WRITE : 0);
  if ((want & EV_WRITE) && conn->srv->write_timeout > 0 && !ev_is_active(&conn->write_timer)) {
    /* The real time, not the loop's: Lua may have run long since it woke,
     * and a timer counted from then would drop a reader that had no chance. */
    conn->last_progress = luari_monotonic_now();
    ev_timer_set(&conn->write_timer, conn->srv->write_timeout, 0.0);
    ev_now_update(conn->srv->loop);
    ev_timer_start(conn->srv->loop, &conn->write_timer);
  } else if (!(want & EV_WRITE)) {
    ev_timer_stop(conn->srv->loop, &conn->write_timer);
  }
  if (ev_is_active(&conn->io) && conn->io_events == want)
    return;
  conn->io_events = want;
  ev_io_stop(conn->srv->loop, &conn->io);
  ev_io_set(&conn->io, conn->fd, want);
  ev_io_start(conn->srv->loop, &conn->io);
}

static void on_upgrade(void *cls, struct MHD_Connection *c, void *con_cls, const char *extra_in,
                       size_t extra_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh) {
  (void)c;
  luari_simserver_t *srv = cls;
  luari_simreq_t *req = con_cls;
  luari_simconn_t *conn = calloc(1, sizeof *conn);
  luari_ws_io_t io = { conn, conn_recv, conn_send, NULL, conn_message, NULL };
  /* Asterisk reads client frames of 65535 bytes at most and closes the
   * WebSocket on a bigger one; here the limit is on the message (a client
   * sends RESTRequests in one frame each, so the two are the same). */
  if (!conn || !(conn->ws = luari_ws_new(LUARI_WS_SERVER, &io, 65535)) ||
      luari_buf_append(&conn->extra, extra_in, extra_size) != 0) {
    if (conn) {
      luari_ws_free(conn->ws);
      luari_buf_free(&conn->extra);
      free(conn);
    }
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
    return;
  }
  conn->srv = srv;
  conn->fd = sock;
  conn->urh = urh;
  /* Each event is a frame of its own: with Nagle's algorithm a frame waits
   * for the ACK of the one before, which the reader delays up to 40 ms. */
  int one = 1;
  setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  conn->tag = req ? req->ws_tag : 0;
  ev_io_init(&conn->io, on_conn_io, sock, EV_READ);
  conn->io.data = conn;
  ev_timer_init(&conn->write_timer, on_write_timeout, 0.0, 0.0);
  conn->write_timer.data = conn;
  LINK(srv->conns, conn);
  conn->depth++;
  if (srv->handler.on_ws_open)
    srv->handler.on_ws_open(srv->handler.data, conn);
  conn->depth--;
  if (conn->finished) {
    conn_destroy(conn);
    return;
  }
  conn_pump(conn, 0);
}

unsigned long luari_simconn_tag(const luari_simconn_t *conn) {
  return conn->tag;
}

int luari_simconn_send(luari_simconn_t *conn, const char *text, size_t len) {
  if (conn->finished || luari_ws_send_text(conn->ws, text, len) != 0)
    return -1;
  if (conn->depth == 0)
    conn_pump(conn, 0);
  else
    conn_update_watch(conn);
  return 0;
}

int luari_simconn_send_binary(luari_simconn_t *conn, const void *data, size_t len) {
  if (conn->finished)
    return -1;
  /* Binary frames only serve fault injection: write one by hand. */
  uint8_t head[10];
  size_t n = 0;
  head[n++] = 0x82;
  if (len < 126) {
    head[n++] = (uint8_t)len;
  } else if (len < 65536) {
    head[n++] = 126;
    head[n++] = (uint8_t)(len >> 8);
    head[n++] = (uint8_t)len;
  } else {
    head[n++] = 127;
    for (int i = 7; i >= 0; i--)
      head[n++] = (uint8_t)((uint64_t)len >> (i * 8));
  }
  if (luari_simconn_send_raw(conn, head, n) != 0)
    return -1;
  return luari_simconn_send_raw(conn, data, len);
}

int luari_simconn_send_raw(luari_simconn_t *conn, const void *data, size_t len) {
  const uint8_t *p = data;
  if (conn->finished)
    return -1;
  while (len > 0) {
    ssize_t n = send(conn->fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

void luari_simconn_close(luari_simconn_t *conn, int code) {
  if (conn->finished)
    return;
  if (code == 0) {
    shutdown(conn->fd, SHUT_RDWR);
    conn_finish(conn);
    return;
  }
  luari_ws_close(conn->ws, code, "");
  if (conn->depth == 0)
    conn_pump(conn, 0);
}

/* --- responding --- */

static void add_headers(struct MHD_Response *r, const char *const *headers) {
  for (const char *const *h = headers; h && h[0] && h[1]; h += 2)
    MHD_add_response_header(r, h[0], h[1]);
}

static struct MHD_Response *upgrade_response(luari_simreq_t *req) {
  const char *key = luari_simreq_header(req, "Sec-WebSocket-Key");
  char accept[29];
  luari_ws_accept(key ? key : "", accept);
  struct MHD_Response *r = MHD_create_response_for_upgrade(on_upgrade, req->srv);
  if (r) {
    MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(r, "Sec-WebSocket-Accept", accept);
  }
  return r;
}

/* A body cut short for fault injection: Content-Length says the whole
 * body, then the connection closes after `send_len` bytes. */
typedef struct truncated {
  char *data;
  size_t send_len;
} truncated_t;

static ssize_t truncated_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  truncated_t *t = cls;
  if (pos >= t->send_len)
    return MHD_CONTENT_READER_END_WITH_ERROR;
  size_t n = t->send_len - (size_t)pos;
  if (n > max)
    n = max;
  memcpy(buf, t->data + pos, n);
  return (ssize_t)n;
}

static void truncated_free(void *cls) {
  truncated_t *t = cls;
  free(t->data);
  free(t);
}

static struct MHD_Response *truncated_response(const luari_simresp_t *resp) {
  truncated_t *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  t->data = malloc(resp->body_len ? resp->body_len : 1);
  if (!t->data) {
    free(t);
    return NULL;
  }
  memcpy(t->data, resp->body, resp->body_len);
  t->send_len = resp->truncate_at < resp->body_len ? resp->truncate_at : resp->body_len;
  struct MHD_Response *r =
      MHD_create_response_from_callback(resp->body_len, 4096, truncated_reader, t, truncated_free);
  if (!r)
    truncated_free(t);
  return r;
}

int luari_simreq_respond(luari_simreq_t *req, const luari_simresp_t *resp) {
  if (req->answered)
    return -1;
  struct MHD_Response *r;
  if (resp->status == 101) {
    req->ws_tag = resp->ws_tag;
    r = upgrade_response(req);
  } else if (resp->truncate) {
    r = truncated_response(resp);
  } else {
    r = MHD_create_response_from_buffer(resp->body_len, (void *)(resp->body ? resp->body : ""),
                                        MHD_RESPMEM_MUST_COPY);
  }
  if (!r)
    return -1;
  if (resp->status == 204) {
    /* Asterisk sends "Content-Length: 0" with its 204s; MHD leaves it out
     * unless told to take the header as given. */
    MHD_set_response_options(r, MHD_RF_INSANITY_HEADER_CONTENT_LENGTH, MHD_RO_END);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH, "0");
  }
  add_headers(r, resp->headers);
  req->answered = 1;
  req->response = r;
  req->status = (unsigned int)resp->status;
  if (!req->in_dispatch && req->suspended) {
    req->suspended = 0;
    MHD_resume_connection(req->conn);
    schedule_run(req->srv, 0);
  }
  return 0;
}

/* --- the MHD loop on libev --- */

static void run_mhd(luari_simserver_t *srv) {
  srv->pass_started = luari_monotonic_now();
  MHD_run(srv->mhd);
  MHD_UNSIGNED_LONG_LONG ms;
  if (MHD_get_timeout(srv->mhd, &ms) == MHD_YES)
    schedule_run(srv, (double)ms / 1000.0);
}

static void schedule_run(luari_simserver_t *srv, double after) {
  if (ev_is_active(&srv->timer) && ev_timer_remaining(srv->loop, &srv->timer) <= after)
    return;
  ev_timer_stop(srv->loop, &srv->timer);
  ev_timer_set(&srv->timer, after, 0.0);
  ev_timer_start(srv->loop, &srv->timer);
}

static void on_mhd_io(EV_P_ ev_io *w, int revents) {
  (void)loop;
  (void)revents;
  run_mhd(w->data);
}

static void on_mhd_timer(EV_P_ ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  run_mhd(w->data);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  luari_simserver_t *srv = cls;
  luari_buf_t b = LUARI_BUF_INIT;
  luari_buf_vappendf(&b, fmt, ap);
  while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
    b.data[--b.len] = '\0';
  luari_log(srv->log, LUARI_LOG_DEBUG, "sim-server: %s", b.data ? b.data : "");
  luari_buf_free(&b);
}

static int resolve_bind(const char *host, int port, struct sockaddr_storage *ss, luari_log_t *log) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  char portstr[8];
  snprintf(portstr, sizeof portstr, "%d", port);
  int rc = getaddrinfo(host, portstr, &hints, &res);
  if (rc != 0 || !res) {
    luari_log(log, LUARI_LOG_ERROR, "sim-server: cannot resolve %s: %s", host, gai_strerror(rc));
    return -1;
  }
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return 0;
}

static int bound_port(struct MHD_Daemon *d) {
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  return info ? info->port : 0;
}

luari_simserver_t *luari_simserver_new(struct ev_loop *loop, luari_log_t *log, const char *host,
                                       int port, const luari_simserver_handler_t *handler) {
  struct sockaddr_storage ss;
  if (resolve_bind(host, port, &ss, log) != 0)
    return NULL;
  luari_simserver_t *srv = calloc(1, sizeof *srv);
  if (!srv)
    return NULL;
  srv->loop = loop;
  srv->log = log;
  srv->handler = *handler;
  srv->write_timeout = 0.1;
  unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_UPGRADE | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                   (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
  srv->mhd = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_access, srv,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
                              MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, srv,
                              MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned int)60000,
                              MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)4096,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120, MHD_OPTION_END);
  if (!srv->mhd) {
    luari_log(log, LUARI_LOG_ERROR, "sim-server: cannot listen on %s:%d: %s", host, port, strerror(errno));
    free(srv);
    return NULL;
  }
  srv->port = bound_port(srv->mhd);
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_EPOLL_FD);
  ev_io_init(&srv->io, on_mhd_io, info->epoll_fd, EV_READ);
  srv->io.data = srv;
  ev_io_start(loop, &srv->io);
  ev_timer_init(&srv->timer, on_mhd_timer, 0.0, 0.0);
  srv->timer.data = srv;
  schedule_run(srv, 0);
  return srv;
}

void luari_simserver_set_write_timeout(luari_simserver_t *srv, double seconds) {
  srv->write_timeout = seconds;
}

void luari_simserver_set_idle_timeout(luari_simserver_t *srv, unsigned seconds) {
  srv->idle_timeout = seconds;
}

int luari_simserver_port(const luari_simserver_t *srv) {
  return srv->port;
}

void luari_simserver_free(luari_simserver_t *srv) {
  if (!srv)
    return;
  while (srv->conns) {
    luari_simconn_t *conn = srv->conns;
    srv->handler.on_ws_close = NULL;
    conn->finished = 1;
    ev_io_stop(srv->loop, &conn->io);
    ev_timer_stop(srv->loop, &conn->write_timer);
    conn_destroy(conn);
  }
  for (luari_simreq_t *req = srv->reqs; req; req = req->next) {
    /* The Lua handles of requests still pending must not outlive them. */
    if (req->gone)
      req->gone(req->owner);
    req->gone = NULL;
    /* MHD must not stop with a connection suspended: answering resumes it. */
    if (!req->answered && req->suspended) {
      static const char body[] = "{\"message\": \"Shutting down\"}";
      luari_simresp_t resp = { 503, body, sizeof body - 1, NULL, 0, 0, 0 };
      luari_simreq_respond(req, &resp);
    }
  }
  ev_io_stop(srv->loop, &srv->io);
  ev_timer_stop(srv->loop, &srv->timer);
  MHD_stop_daemon(srv->mhd);
  free(srv);
}
