/* A growable byte buffer, always NUL-terminated so it can be read as a string. */
#ifndef LUARI_BUF_H
#define LUARI_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct luari_buf {
  char *data;
  size_t len;
  size_t cap;
} luari_buf_t;

#define LUARI_BUF_INIT { NULL, 0, 0 }

/* Each returns 0, or -1 when memory runs out (the buffer is left as it was). */
int luari_buf_reserve(luari_buf_t *b, size_t extra);
int luari_buf_append(luari_buf_t *b, const void *p, size_t n);
int luari_buf_appends(luari_buf_t *b, const char *s);
int luari_buf_appendf(luari_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int luari_buf_vappendf(luari_buf_t *b, const char *fmt, va_list ap);

void luari_buf_consume(luari_buf_t *b, size_t n);
void luari_buf_reset(luari_buf_t *b);
void luari_buf_free(luari_buf_t *b);

/* For buffers and strings that held a secret (a password, an Authorization
 * header): zero every byte first, in a way the compiler cannot drop. */
void luari_buf_wipe(luari_buf_t *b);
void luari_buf_wipe_free(luari_buf_t *b);
void luari_wipe_free(char *s);

#endif
