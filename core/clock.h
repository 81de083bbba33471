/* The monotonic clock in seconds, the one time base of luari's C side
 * (libev's ev_now may lag behind within a loop pass). */
#ifndef LUARI_CLOCK_H
#define LUARI_CLOCK_H

#include <time.h>

static inline double luari_monotonic_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
