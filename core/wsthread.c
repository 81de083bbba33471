/* The events WebSocket once it is open: the main loop reads it
 * (luari_wsthread_read when the socket is readable), and a guard thread
 * takes over the reading whenever the main thread lets data wait longer
 * than a tick, so a busy Lua side never stalls the socket. The guard also
 * sends the keepalive pings and carries out close and drop.
 *
 * Why not a reader thread that reads everything: handing each event from
 * one thread to the other woke two threads per event, and a wake-up across
 * CPUs costs tens of microseconds of system time (on virtual machines
 * especially); it was most of luari's CPU at a thousand calls a second.
 *
 * The socket, the TLS session and the wslay context are used under `io`,
 * by whichever thread reads or writes; the queue and the statistics under
 * `mu`. */
#include "wsthread.h"
#include "clock.h"

#include "buf.h"
#include "ws.h"

#include <openssl/err.h>

#include <errno.h>
#include <stdio.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { CMD_CLOSE = 1, CMD_DROP = 2, CMD_WRITE = 4 };

/* How often the guard looks: data left unread for a whole tick means the
 * main thread is busy (Asterisk drops a reader stalled for 100 ms). */
#define GUARD_TICK_MS 20

struct luari_wsthread {
  luari_wsthread_options_t opts;
  char *name;
  pthread_t tid;
  int started;
  int wake_fd;      /* commands to the guard */
  pthread_mutex_t mu;
  luari_wsitem_t *head, *tail;
  luari_wsthread_stats_t stats;
  int commands;     /* CMD_* bits, under mu */
  int close_code;   /* for CMD_CLOSE */
  int main_back;    /* under mu: the main thread took the queue */
  int paused;       /* under mu: the guard stopped reading until the queue drains */
  /* under io */
  pthread_mutex_t io;
  luari_ws_t *ws;
  luari_buf_t pending;
  size_t pending_pos;
  int ssl_wants_write;
  int drained;      /* the last recv emptied the socket */
  double last_rx;
  int peer_close;
  int ended;        /* the END item is queued: nobody reads any more */
  int guard_reading;
  unsigned long reads;
  double close_deadline;
  luari_wsitem_t *end_item; /* room for the END item, taken at start */
};

#define END_TEXT 1024

#define DEFAULT_MAX_QUEUE ((size_t)256 << 20)

/* --- the queue --- */

/* Queues an item; `it` is NULL or preallocated room for it (the END item,
 * which must not be lost to a failed malloc). */
static void push_item(luari_wsthread_t *t, luari_wsitem_t *it, int kind, int reason, int code,
                      const char *data, size_t len) {
  if (!it) {
    it = malloc(sizeof *it + len + 1);
    if (!it) {
      luari_log(t->opts.log, LUARI_LOG_ERROR, "events: out of memory: a message of %zu bytes from %s is lost",
                len, t->name);
      return;
    }
  }
  it->next = NULL;
  it->kind = kind;
  it->end_reason = reason;
  it->close_code = code;
  it->len = len;
  memcpy(it->data, data, len);
  it->data[len] = '\0';
  pthread_mutex_lock(&t->mu);
  int was_empty = t->head == NULL;
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
  /* The main thread reading takes the queue itself; the guard tells it
   * once (it takes the whole queue at once). */
  if (t->guard_reading && was_empty)
    t->opts.notify(t->opts.data);
}

static void push(luari_wsthread_t *t, int kind, int reason, int code, const char *data, size_t len) {
  push_item(t, NULL, kind, reason, code, data, len);
}

luari_wsitem_t *luari_wsthread_take(luari_wsthread_t *t) {
  pthread_mutex_lock(&t->mu);
  luari_wsitem_t *items = t->head;
  t->head = t->tail = NULL;
  t->stats.queued_bytes = 0;
  t->main_back = 1;
  int paused = t->paused;
  t->paused = 0;
  pthread_mutex_unlock(&t->mu);
  if (paused) {
    uint64_t one = 1;
    if (write(t->wake_fd, &one, sizeof one) < 0) {
      /* the counter is full: the guard is awake anyway */
    }
  }
  return items;
}

/* Is the queue over `max`? Then the guard pauses until the main thread takes it. */
static int over_limit(luari_wsthread_t *t, size_t max) {
  pthread_mutex_lock(&t->mu);
  int over = t->stats.queued_bytes > max;
  t->paused = over;
  pthread_mutex_unlock(&t->mu);
  return over;
}

static int main_came_back(luari_wsthread_t *t) {
  pthread_mutex_lock(&t->mu);
  int back = t->main_back;
  t->main_back = 0;
  pthread_mutex_unlock(&t->mu);
  return back;
}

/* --- I/O, under io --- */

/* Each TLS call clears the thread's OpenSSL error queue first (ERR_clear_
 * error): SSL_get_error reads it, and an error left there by curl's TLS on
 * the main thread would read as this call's and drop the WebSocket. */

static ssize_t sock_recv(void *data, uint8_t *buf, size_t len) {
  luari_wsthread_t *t = data;
  size_t left = t->pending.len - t->pending_pos;
  if (left) {
    size_t n = left < len ? left : len;
    memcpy(buf, t->pending.data + t->pending_pos, n);
    t->pending_pos += n;
    return (ssize_t)n;
  }
  /* wslay reads until it would block: after a short read the socket is
   * empty, so save the recv that would say so (poll tells when more comes). */
  if (t->drained) {
    t->drained = 0;
    errno = EAGAIN;
    return -1;
  }
  ssize_t n;
  if (t->opts.ssl) {
    ERR_clear_error();
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
  if (n > 0) {
    t->last_rx = luari_monotonic_now();
    t->drained = (size_t)n < len && !(t->opts.ssl && SSL_pending(t->opts.ssl) > 0);
  }
  return n;
}

static ssize_t sock_send(void *data, const uint8_t *buf, size_t len) {
  luari_wsthread_t *t = data;
  if (t->opts.ssl) {
    ERR_clear_error();
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

/* The connection is over: one END item, and no more reading. */
static void end(luari_wsthread_t *t, int reason, const char *why) {
  if (t->ended)
    return;
  t->ended = 1;
  char msg[END_TEXT];
  snprintf(msg, sizeof msg, "%s: %s", t->name, why);
  luari_wsitem_t *it = t->end_item;
  t->end_item = NULL;
  push_item(t, it, LUARI_WSITEM_END, reason, t->peer_close, msg, strlen(msg));
}

/* Why wslay failed the connection, from the close code it sent. */
static const char *failure_text(int code) {
  switch (code) {
  case 1002:
    return "WebSocket protocol error from the server (closed with 1002)";
  case 1007:
    return "the server sent a text message that is not UTF-8 (closed with 1007)";
  case 1009:
    return "the server sent a message over the size limit (closed with 1009; luari run --max-event-size raises it)";
  default:
    return "the connection was lost";
  }
}

/* Reads (when `readable`) and writes what wslay has to send. */
static void pump(luari_wsthread_t *t, int readable) {
  if (t->ended)
    return;
  int rc = 0;
  if (readable) {
    t->reads++;
    t->ssl_wants_write = 0;
    rc = luari_ws_read(t->ws);
  }
  if (rc == 0 && (luari_ws_want_write(t->ws) || t->ssl_wants_write)) {
    t->ssl_wants_write = 0;
    rc = luari_ws_write(t->ws);
  }
  if (rc != 0 || luari_ws_done(t->ws)) {
    if (luari_ws_eof(t->ws))
      end(t, LUARI_WSEND_EOF, "the server closed the connection");
    else if (t->peer_close || (t->close_deadline > 0 && luari_ws_close_code_sent(t->ws) == 1000))
      end(t, LUARI_WSEND_CLOSED, "the WebSocket was closed");
    else
      end(t, LUARI_WSEND_FAILED, failure_text(luari_ws_close_code_sent(t->ws)));
  }
}

static int wants_write(luari_wsthread_t *t) {
  return !t->ended && (luari_ws_want_write(t->ws) || t->ssl_wants_write);
}

static void command(luari_wsthread_t *t, int cmd, int code) {
  pthread_mutex_lock(&t->mu);
  t->commands |= cmd;
  if (cmd == CMD_CLOSE)
    t->close_code = code;
  pthread_mutex_unlock(&t->mu);
  uint64_t one = 1;
  if (write(t->wake_fd, &one, sizeof one) < 0) {
    /* the counter is full: the guard is awake anyway */
  }
}

void luari_wsthread_read(luari_wsthread_t *t) {
  pthread_mutex_lock(&t->io);
  pump(t, 1);
  int ww = wants_write(t);
  pthread_mutex_unlock(&t->io);
  if (ww)
    command(t, CMD_WRITE, 0); /* the socket is full: the guard waits for room */
}

/* --- the guard thread --- */

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

static int poll_timeout_ms(luari_wsthread_t *t, double next_ping, int reading) {
  double wait = reading ? 1.0 : GUARD_TICK_MS / 1000.0;
  double now = luari_monotonic_now();
  if (t->opts.ping_interval > 0 && next_ping - now < wait)
    wait = next_ping - now;
  if (t->close_deadline > 0 && t->close_deadline - now < wait)
    wait = t->close_deadline - now;
  return wait > 0 ? (int)(wait * 1000) + 1 : 0;
}

/* Bytes are waiting to be read (in the socket or the TLS session). */
static int readable_now(luari_wsthread_t *t) {
  if (t->pending.len > t->pending_pos || (t->opts.ssl && SSL_pending(t->opts.ssl) > 0))
    return 1;
  struct pollfd p = { t->opts.fd, POLLIN, 0 };
  return poll(&p, 1, 0) > 0;
}

/* Watching: every tick, is data waiting that nobody read since the last
 * tick? Then the main thread is busy and the guard reads, like a reader
 * thread, until the main thread takes the queue again. */
static void *guard_main(void *arg) {
  luari_wsthread_t *t = arg;
  double ping = t->opts.ping_interval;
  double next_ping = luari_monotonic_now() + ping;
  int over_limit_logged = 0;
  size_t max_queue = t->opts.max_queue ? t->opts.max_queue : DEFAULT_MAX_QUEUE;
  unsigned long seen_reads = 0;
  int seen_waiting = 0;
  int reading = 0, paused = 0;
  for (;;) {
    pthread_mutex_lock(&t->io);
    /* After END, nothing to watch but the command to go. */
    int ended = t->ended;
    int ww = !ended && wants_write(t);
    int timeout = ended ? -1 : poll_timeout_ms(t, next_ping, reading);
    pthread_mutex_unlock(&t->io);
    short want = (short)((reading && !paused ? POLLIN : 0) | (ww ? POLLOUT : 0));
    /* Wanting nothing of the socket, leave it out: poll reports POLLHUP and
     * POLLERR even unasked, and a reset socket would make this loop spin
     * (while paused, for as long as the main thread is busy). */
    struct pollfd fds[2] = { { t->wake_fd, POLLIN, 0 }, { ended || want == 0 ? -1 : t->opts.fd, want, 0 } };
    if (poll(fds, 2, timeout) < 0 && errno != EINTR) {
      pthread_mutex_lock(&t->io);
      t->guard_reading = 1;
      end(t, LUARI_WSEND_FAILED, "poll failed");
      t->guard_reading = 0;
      pthread_mutex_unlock(&t->io);
    }
    int code = 0, cmds = (fds[0].revents & POLLIN) ? take_commands(t, &code) : 0;
    pthread_mutex_lock(&t->io);
    if (cmds & CMD_DROP) {
      t->guard_reading = 1; /* so that the END item wakes the main thread: no byte may come to do it */
      end(t, LUARI_WSEND_DROPPED, "dropped");
      t->guard_reading = 0;
      pthread_mutex_unlock(&t->io);
      return NULL;
    }
    if (t->ended) {
      /* Nothing to do but wait for the main thread to drop us. */
      pthread_mutex_unlock(&t->io);
      continue;
    }
    if ((cmds & CMD_CLOSE) && t->close_deadline == 0) {
      luari_ws_close(t->ws, code ? code : 1000, "");
      t->close_deadline = luari_monotonic_now() + 2.0;
    }
    int read_now = 0;
    if (reading && main_came_back(t)) {
      reading = 0;
      seen_waiting = 0;
    }
    if (reading) {
      read_now = (fds[1].revents & (POLLIN | POLLERR | POLLHUP)) != 0;
    } else {
      /* Data that waited a whole tick unread: the main thread is busy. */
      int waiting = readable_now(t);
      if (waiting && seen_waiting && t->reads == seen_reads) {
        reading = read_now = 1;
        main_came_back(t); /* from now on */
      }
      seen_waiting = waiting;
    }
    paused = reading && over_limit(t, max_queue);
    if (paused) {
      read_now = 0;
      if (!over_limit_logged) {
        over_limit_logged = 1;
        luari_log(t->opts.log, LUARI_LOG_WARN, "events: over %zu bytes of events wait for Lua: reading paused",
                  max_queue);
      }
    }
    t->guard_reading = 1;
    pump(t, read_now);
    seen_reads = t->reads;
    double now = luari_monotonic_now();
    if (!t->ended && t->close_deadline > 0 && now >= t->close_deadline)
      end(t, LUARI_WSEND_CLOSED, "closed (the server did not answer the close)");
    if (!t->ended && ping > 0 && now >= next_ping && t->close_deadline == 0) {
      if (now - t->last_rx > 2 * ping) {
        char why[64];
        snprintf(why, sizeof why, "nothing received for %.0f s", now - t->last_rx);
        end(t, LUARI_WSEND_TIMEOUT, why);
      } else {
        luari_ws_send_ping(t->ws, "luari", 5);
        pump(t, 0);
      }
      next_ping = now + ping;
    }
    t->guard_reading = 0;
    pthread_mutex_unlock(&t->io);
  }
}

luari_wsthread_t *luari_wsthread_start(const luari_wsthread_options_t *opts) {
  luari_wsthread_t *t = calloc(1, sizeof *t);
  if (t && !(t->end_item = malloc(sizeof *t->end_item + END_TEXT + 1))) {
    free(t);
    t = NULL;
  }
  if (!t)
    return NULL;
  t->opts = *opts;
  t->name = strdup(opts->name ? opts->name : "websocket");
  t->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  pthread_mutex_init(&t->mu, NULL);
  pthread_mutex_init(&t->io, NULL);
  t->last_rx = luari_monotonic_now();
  luari_ws_io_t io = { t, sock_recv, sock_send, NULL, on_message, on_close };
  t->ws = luari_ws_new(LUARI_WS_CLIENT, &io, opts->max_message);
  if (!t->name || t->wake_fd < 0 || !t->ws ||
      luari_buf_append(&t->pending, opts->pending, opts->pending_len) != 0 ||
      pthread_create(&t->tid, NULL, guard_main, t) != 0) {
    luari_wsthread_join(t);
    return NULL;
  }
  t->started = 1;
  return t;
}

int luari_wsthread_has_pending(luari_wsthread_t *t) {
  pthread_mutex_lock(&t->io);
  int n = t->pending.len > t->pending_pos;
  pthread_mutex_unlock(&t->io);
  return n;
}

int luari_wsthread_send(luari_wsthread_t *t, const char *text, size_t len) {
  pthread_mutex_lock(&t->io);
  int rc = t->ended || t->close_deadline > 0 ? -1 : luari_ws_send_text(t->ws, text, len);
  if (rc == 0)
    pump(t, 0); /* most often the whole frame goes out here */
  int ww = rc == 0 && wants_write(t);
  int broke = rc == 0 && t->ended;
  pthread_mutex_unlock(&t->io);
  if (broke)
    t->opts.notify(t->opts.data); /* the END item waits in the queue */
  if (ww)
    command(t, CMD_WRITE, 0); /* the rest when the socket has room */
  return rc;
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
  pthread_mutex_destroy(&t->io);
  free(t->end_item);
  free(t->name);
  free(t);
}
