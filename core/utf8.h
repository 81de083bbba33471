/* UTF-8 validation (RFC 3629: shortest forms only, no surrogates, at most
 * U+10FFFF), as a WebSocket peer checks a text frame. */
#ifndef LUARI_UTF8_H
#define LUARI_UTF8_H

#include <stddef.h>

int luari_utf8_valid(const char *s, size_t len);

#endif
