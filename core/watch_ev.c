/* Reads the FLOWS watch when its descriptor is readable. Nothing here
 * touches `e` after luari_watch_read: the callback may have stopped the
 * watcher and let its owner go. */
#include "watch_ev.h"

static void on_readable(EV_P_ ev_io *w, int revents) {
  (void)loop;
  (void)revents;
  luari_watch_ev_t *e = w->data;
  luari_watch_read(e->watch);
}

void luari_watch_ev_start(luari_watch_ev_t *e, struct ev_loop *loop, luari_watch_t *watch) {
  e->loop = loop;
  e->watch = watch;
  ev_io_init(&e->io, on_readable, luari_watch_fd(watch), EV_READ);
  e->io.data = e;
  ev_io_start(loop, &e->io);
}

void luari_watch_ev_stop(luari_watch_ev_t *e) {
  if (e->loop)
    ev_io_stop(e->loop, &e->io);
  e->watch = NULL;
}
