/* The WebSocket reader thread. It owns the socket, the TLS session and the
 * wslay context while it runs; the main thread talks to it only through
 * the mutex-protected queue and a command eventfd. */
#include "wsthread.h"

#include "buf.h"
#include "ws.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { CMD_CLOSE = 1, CMD_DROP = 2 };

struct luari_wsthread {
  luari_wsthread_options_t opts;
  char *name;
  pthread_t tid;
  int started;
  int wake_fd;
  pthread_mutex_t mu;
  luari_wsitem_t *head, *tail;
  luari_wsthread_stats_t stats;
  int commands;     /* CMD_* bits, under mu */
  int close_code;   /* for CMD_CLOSE */
  /* thread-only state */
  luari_ws_t *ws;
  luari_buf_t pending;
  size_t pending_pos;
  int ssl_wants_write;
  double last_rx;
  int peer_close;
};

#define DEFAULT_MAX_QUEUE ((size_t)256 << 20)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- the queue --- */

static void push(luari_wsthread_t *t, int kind, int reason, int code, const char *data, size_t len) {
  luari_wsitem_t *it = malloc(sizeof *it + len + 1);
  if (!it)
    return; /* out of memory: the message is lost, and said so below */
  it->next = NULL;
  it->kind = kind;
  it->end_reason = reason;
  it->close_code = code;
  it->len = len;
  memcpy(it->data, data, len);
  it->data[len] = '\0';
  pthread_mutex_lock(&t->mu);
  if (t->tail)
    t->tail->next = it;
  else
    t->head = it;
  t->tail = it;
  if (kind == LUARI_WSITEM_MESSAGE) {
    t->stats.messages++;
    t->stats.queued_bytes += len;
    if (t->stats.queued_bytes > t->stats.max_queued_bytes)
      t->stats.max_queued_bytes = t->stats.queued_bytes;
  }
  pthread_mutex_unlock(&t->mu);
  t->opts.notify(t->opts.data);
}

luari_wsitem_t *luari_wsthread_take(luari_wsthread_t *t) {
  pthread_mutex_lock(&t->mu);
  luari_wsitem_t *items = t->head;
  t->head = t->tail = NULL;
  t->stats.queued_bytes = 0;
  pthread_mutex_unlock(&t->mu);
  /* The reader may be waiting for the queue to drain. */
  uint64_t one = 1;
  if (write(t->wake_fd, &one, sizeof one) < 0) {
    /* the eventfd counter is full: the reader is awake anyway */
  }
  return items;
}

static size_t queued_bytes(luari_wsthread_t *t) {
  pthread_mutex_lock(&t->mu);
  size_t n = t->stats.queued_bytes;
  pthread_mutex_unlock(&t->mu);
  return n;
}

/* --- I/O on the reader thread --- */

static ssize_t sock_recv(void *data, uint8_t *buf, size_t len) {
  luari_wsthread_t *t = data;
  size_t left = t->pending.len - t->pending_pos;
  if (left) {
    size_t n = left < len ? left : len;
    memcpy(buf, t->pending.data + t->pending_pos, n);
    t->pending_pos += n;
    return (ssize_t)n;
  }
  ssize_t n;
  if (t->opts.ssl) {
    int r = SSL_read(t->opts.ssl, buf, (int)(len > 1 << 30 ? 1 << 30 : len));
    if (r > 0) {
      n = r;
    } else {
      int err = SSL_get_error(t->opts.ssl, r);
      if (err == SSL_ERROR_ZERO_RETURN)
        return 0;
      t->ssl_wants_write = err == SSL_ERROR_WANT_WRITE;
      errno = (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) ? EAGAIN : ECONNRESET;
      return -1;
    }
  } else {
    do
      n = recv(t->opts.fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
  }
  if (n > 0)
    t->last_rx = now_s();
  return n;
}

static ssize_t sock_send(void *data, const uint8_t *buf, size_t len) {
  luari_wsthread_t *t = data;
  if (t->opts.ssl) {
    int r = SSL_write(t->opts.ssl, buf, (int)(len > 1 << 30 ? 1 << 30 : len));
    if (r > 0)
      return r;
    int err = SSL_get_error(t->opts.ssl, r);
    errno = (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) ? EAGAIN : ECONNRESET;
    return -1;
  }
  ssize_t n;
  do
    n = send(t->opts.fd, buf, len, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n;
}

static void on_message(void *data, int binary, const uint8_t *msg, size_t len) {
  luari_wsthread_t *t = data;
  /* wslay has checked that a text message is UTF-8 (it fails the
   * connection with 1007 otherwise); ARI never sends binary. */
  if (binary) {
    pthread_mutex_lock(&t->mu);
    t->stats.dropped_binary++;
    pthread_mutex_unlock(&t->mu);
    luari_log(t->opts.log, LUARI_LOG_ERROR, "events: binary frame of %zu bytes from %s dropped (ARI sends text)",
              len, t->name);
    return;
  }
  push(t, LUARI_WSITEM_MESSAGE, 0, 0, (const char *)msg, len);
}

static void on_close(void *data, int code, const uint8_t *reason, size_t len) {
  luari_wsthread_t *t = data;
  t->peer_close = code ? code : 1005;
  luari_log(t->opts.log, LUARI_LOG_INFO, "events: %s closed the WebSocket (code %d%s%.*s)", t->name, code,
            len ? ": " : "", (int)(len > 120 ? 120 : len), reason ? (const char *)reason : "");
}

/* --- the thread --- */

static void end(luari_wsthread_t *t, int reason, const char *why) {
  char msg[1024];
  snprintf(msg, sizeof msg, "%s: %s", t->name, why);
  push(t, LUARI_WSITEM_END, reason, t->peer_close, msg, strlen(msg));
}

static int take_commands(luari_wsthread_t *t, int *code) {
  uint64_t v;
  if (read(t->wake_fd, &v, sizeof v) < 0) {
    /* nothing pending */
  }
  pthread_mutex_lock(&t->mu);
  int cmds = t->commands;
  t->commands = 0;
  *code = t->close_code;
  pthread_mutex_unlock(&t->mu);
  return cmds;
}

static int poll_timeout_ms(luari_wsthread_t *t, double next_ping, double close_deadline) {
  double wait = 1.0;
  double now = now_s();
  if (t->opts.ping_interval > 0 && next_ping - now < wait)
    wait = next_ping - now;
  if (close_deadline > 0 && close_deadline - now < wait)
    wait = close_deadline - now;
  return wait > 0 ? (int)(wait * 1000) + 1 : 0;
}

/* Why wslay failed the connection, from the close code it sent. */
static const char *failure_text(int code) {
  switch (code) {
  case 1002:
    return "WebSocket protocol error from the server (closed with 1002)";
  case 1007:
    return "the server sent a text message that is not UTF-8 (closed with 1007)";
  case 1009:
    return "the server sent a message over the size limit (closed with 1009)";
  default:
    return "the connection was lost";
  }
}

static void *reader_main(void *arg) {
  luari_wsthread_t *t = arg;
  double ping = t->opts.ping_interval;
  double next_ping = now_s() + ping;
  double close_deadline = 0;
  int over_limit_logged = 0;
  size_t max_queue = t->opts.max_queue ? t->opts.max_queue : DEFAULT_MAX_QUEUE;
  t->last_rx = now_s();
  /* Frames that came with the handshake reply. */
  if (t->pending.len && luari_ws_read(t->ws) != 0) {
    end(t, LUARI_WSEND_FAILED, "WebSocket protocol error");
    return NULL;
  }
  for (;;) {
    int backpressure = queued_bytes(t) > max_queue;
    if (backpressure && !over_limit_logged) {
      over_limit_logged = 1;
      luari_log(t->opts.log, LUARI_LOG_WARN, "events: over %zu bytes of events wait for Lua: reading paused",
                max_queue);
    }
    struct pollfd fds[2] = { { t->opts.fd, 0, 0 }, { t->wake_fd, POLLIN, 0 } };
    if (!backpressure && luari_ws_want_read(t->ws))
      fds[0].events |= POLLIN;
    if (luari_ws_want_write(t->ws) || t->ssl_wants_write)
      fds[0].events |= POLLOUT;
    int n = poll(fds, 2, poll_timeout_ms(t, next_ping, close_deadline));
    if (n < 0 && errno != EINTR) {
      end(t, LUARI_WSEND_FAILED, "poll failed");
      return NULL;
    }
    if (fds[1].revents & POLLIN) {
      int code;
      int cmds = take_commands(t, &code);
      if (cmds & CMD_DROP) {
        end(t, LUARI_WSEND_DROPPED, "dropped");
        return NULL;
      }
      if ((cmds & CMD_CLOSE) && close_deadline == 0) {
        luari_ws_close(t->ws, code ? code : 1000, "");
        close_deadline = now_s() + 2.0;
      }
    }
    int rc = 0;
    if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) {
      t->ssl_wants_write = 0;
      rc = luari_ws_read(t->ws);
    }
    if (rc == 0 && (luari_ws_want_write(t->ws) || (fds[0].revents & POLLOUT))) {
      t->ssl_wants_write = 0;
      rc = luari_ws_write(t->ws);
    }
    if (rc != 0 || luari_ws_done(t->ws)) {
      if (luari_ws_eof(t->ws))
        end(t, LUARI_WSEND_EOF, "the server closed the connection");
      else if (t->peer_close || (close_deadline > 0 && luari_ws_close_code_sent(t->ws) == 1000))
        end(t, LUARI_WSEND_CLOSED, "the WebSocket was closed");
      else
        end(t, LUARI_WSEND_FAILED, failure_text(luari_ws_close_code_sent(t->ws)));
      return NULL;
    }
    double now = now_s();
    if (close_deadline > 0 && now >= close_deadline) {
      end(t, LUARI_WSEND_CLOSED, "closed (the server did not answer the close)");
      return NULL;
    }
    if (ping > 0 && now >= next_ping && close_deadline == 0) {
      if (now - t->last_rx > 2 * ping) {
        char why[64];
        snprintf(why, sizeof why, "nothing received for %.0f s", now - t->last_rx);
        end(t, LUARI_WSEND_TIMEOUT, why);
        return NULL;
      }
      luari_ws_send_ping(t->ws, "luari", 5);
      next_ping = now + ping;
    }
  }
}

luari_wsthread_t *luari_wsthread_start(const luari_wsthread_options_t *opts) {
  luari_wsthread_t *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  t->opts = *opts;
  t->name = strdup(opts->name ? opts->name : "websocket");
  t->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  pthread_mutex_init(&t->mu, NULL);
  luari_ws_io_t io = { t, sock_recv, sock_send, NULL, on_message, on_close };
  t->ws = luari_ws_new(LUARI_WS_CLIENT, &io, opts->max_message);
  if (!t->name || t->wake_fd < 0 || !t->ws ||
      luari_buf_append(&t->pending, opts->pending, opts->pending_len) != 0 ||
      pthread_create(&t->tid, NULL, reader_main, t) != 0) {
    luari_wsthread_join(t);
    return NULL;
  }
  t->started = 1;
  return t;
}

static void command(luari_wsthread_t *t, int cmd, int code) {
  pthread_mutex_lock(&t->mu);
  t->commands |= cmd;
  if (cmd == CMD_CLOSE)
    t->close_code = code;
  pthread_mutex_unlock(&t->mu);
  uint64_t one = 1;
  if (write(t->wake_fd, &one, sizeof one) < 0) {
    /* the counter is full: the reader is awake anyway */
  }
}

void luari_wsthread_close(luari_wsthread_t *t, int code) {
  command(t, CMD_CLOSE, code);
}

void luari_wsthread_drop(luari_wsthread_t *t) {
  command(t, CMD_DROP, 0);
}

void luari_wsthread_stats(luari_wsthread_t *t, luari_wsthread_stats_t *out) {
  pthread_mutex_lock(&t->mu);
  *out = t->stats;
  pthread_mutex_unlock(&t->mu);
}

void luari_wsthread_join(luari_wsthread_t *t) {
  if (!t)
    return;
  if (t->started) {
    command(t, CMD_DROP, 0);
    pthread_join(t->tid, NULL);
  }
  luari_wsitem_t *it = t->head;
  while (it) {
    luari_wsitem_t *next = it->next;
    free(it);
    it = next;
  }
  luari_ws_free(t->ws);
  luari_buf_free(&t->pending);
  if (t->wake_fd >= 0)
    close(t->wake_fd);
  pthread_mutex_destroy(&t->mu);
  free(t->name);
  free(t);
}
