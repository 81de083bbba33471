/* A growable byte buffer. */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int luari_buf_reserve(luari_buf_t *b, size_t extra) {
  size_t need = b->len + extra + 1;
  if (need <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p)
    return -1;
  b->data = p;
  b->cap = cap;
  return 0;
}

int luari_buf_append(luari_buf_t *b, const void *p, size_t n) {
  if (luari_buf_reserve(b, n) != 0)
    return -1;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int luari_buf_appends(luari_buf_t *b, const char *s) {
  return luari_buf_append(b, s, strlen(s));
}

int luari_buf_vappendf(luari_buf_t *b, const char *fmt, va_list ap) {
  va_list again;
  va_copy(again, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  if (n < 0 || luari_buf_reserve(b, (size_t)n) != 0) {
    va_end(again);
    return -1;
  }
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
  va_end(again);
  b->len += (size_t)n;
  return 0;
}

int luari_buf_appendf(luari_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = luari_buf_vappendf(b, fmt, ap);
  va_end(ap);
  return rc;
}

void luari_buf_consume(luari_buf_t *b, size_t n) {
  if (n >= b->len) {
    luari_buf_reset(b);
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
  b->data[b->len] = '\0';
}

void luari_buf_reset(luari_buf_t *b) {
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

void luari_buf_free(luari_buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void luari_buf_wipe(luari_buf_t *b) {
  if (b->data)
    explicit_bzero(b->data, b->cap);
  b->len = 0;
}

void luari_buf_wipe_free(luari_buf_t *b) {
  luari_buf_wipe(b);
  luari_buf_free(b);
}

void luari_wipe_free(char *s) {
  if (s) {
    explicit_bzero(s, strlen(s));
    free(s);
  }
}
