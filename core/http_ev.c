/* Drives curl's multi interface from libev: one ev_io per socket curl asks
 * about, one ev_timer for curl's timeout. Modelled on curl's evhiperfifo
 * example, with fractional timeouts and CURL_CSELECT_* flags. */
#include "http_ev.h"

#include <curl/curl.h>
#include <stdlib.h>

typedef struct http_ev {
  struct ev_loop *loop;
  luari_http_t *http;
  ev_timer timer;
} http_ev_t;

typedef struct sock_ev {
  ev_io io;
  http_ev_t *owner;
} sock_ev_t;

static void on_io(EV_P_ ev_io *w, int revents) {
  (void)loop;
  sock_ev_t *s = (sock_ev_t *)w;
  luari_http_on_socket(s->owner->http, w->fd, revents & EV_READ, revents & EV_WRITE);
}

static void on_timer(EV_P_ ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  http_ev_t *h = w->data;
  luari_http_on_timeout(h->http);
}

static int curl_to_ev(int what) {
  return (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
}

static void watch(void *data, int fd, int what, void *sockp) {
  http_ev_t *h = data;
  sock_ev_t *s = sockp;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      ev_io_stop(h->loop, &s->io);
      luari_http_assign(h->http, fd, NULL);
      free(s);
    }
    return;
  }
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s)
      return; /* curl's own timeout will end the transfer */
    s->owner = h;
    ev_io_init(&s->io, on_io, fd, curl_to_ev(what));
    luari_http_assign(h->http, fd, s);
  } else {
    ev_io_stop(h->loop, &s->io);
    ev_io_set(&s->io, fd, curl_to_ev(what));
  }
  ev_io_start(h->loop, &s->io);
}

static void set_timer(void *data, long timeout_ms) {
  http_ev_t *h = data;
  ev_timer_stop(h->loop, &h->timer);
  if (timeout_ms < 0)
    return;
  /* 0 means "as soon as possible", but curl forbids calling back into it
   * from this callback: let the loop run the timer on its next turn. */
  ev_timer_set(&h->timer, (double)timeout_ms / 1000.0, 0.0);
  ev_now_update(h->loop); /* curl's deadline is from now, not from when the loop last woke */
  ev_timer_start(h->loop, &h->timer);
}

static void destroy(void *data) {
  http_ev_t *h = data;
  ev_timer_stop(h->loop, &h->timer);
  free(h);
}

luari_http_t *luari_http_new_ev(struct ev_loop *loop, luari_log_t *log) {
  http_ev_t *h = calloc(1, sizeof *h);
  if (!h)
    return NULL;
  h->loop = loop;
  ev_timer_init(&h->timer, on_timer, 0.0, 0.0);
  h->timer.data = h;
  luari_http_hooks_t hooks = { h, watch, set_timer, destroy };
  h->http = luari_http_new(&hooks, log);
  if (!h->http) {
    free(h);
    return NULL;
  }
  return h->http;
}
