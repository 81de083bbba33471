/* libev glue for the HTTP client. */
#ifndef LUARI_HTTP_EV_H
#define LUARI_HTTP_EV_H

#include "http.h"

#include <ev.h>

luari_http_t *luari_http_new_ev(struct ev_loop *loop, luari_log_t *log);

#endif
