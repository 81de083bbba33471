/* libev glue for the FLOWS watch: one ev_io on the inotify descriptor. */
#ifndef LUARI_WATCH_EV_H
#define LUARI_WATCH_EV_H

#include "watch.h"

#include <ev.h>

typedef struct luari_watch_ev {
  ev_io io;
  struct ev_loop *loop;
  luari_watch_t *watch;
} luari_watch_ev_t;

void luari_watch_ev_start(luari_watch_ev_t *e, struct ev_loop *loop, luari_watch_t *watch);
/* Safe to call twice, and from inside the watch's own callback. */
void luari_watch_ev_stop(luari_watch_ev_t *e);

#endif
