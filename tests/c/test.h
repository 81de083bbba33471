/* A small TAP producer for luari's C tests: each check prints one
 * "ok N - name" or "not ok N - name" line; main returns the failure count. */
#ifndef LUARI_TEST_H
#define LUARI_TEST_H

#include <stdio.h>
#include <string.h>

static int test_count, test_failed;

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    int ok_ = (cond) ? 1 : 0;                                                                      \
    test_count++;                                                                                  \
    if (ok_) {                                                                                     \
      printf("ok %d - ", test_count);                                                              \
    } else {                                                                                       \
      test_failed++;                                                                               \
      printf("not ok %d - ", test_count);                                                          \
    }                                                                                              \
    printf(__VA_ARGS__);                                                                           \
    printf("\n");                                                                                  \
    if (!ok_)                                                                                      \
      printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);                              \
  } while (0)

#define CHECK_STR(got, want, ...)                                                                  \
  do {                                                                                             \
    const char *got_ = (got), *want_ = (want);                                                     \
    int same_ = got_ && want_ && strcmp(got_, want_) == 0;                                         \
    CHECK(same_, __VA_ARGS__);                                                                     \
    if (!same_)                                                                                    \
      printf("#   got:  %s\n#   want: %s\n", got_ ? got_ : "(null)", want_ ? want_ : "(null)");    \
  } while (0)

#define TEST_DONE()                                                                                \
  do {                                                                                             \
    printf("1..%d\n", test_count);                                                                 \
    return test_failed ? 1 : 0;                                                                    \
  } while (0)

#endif
