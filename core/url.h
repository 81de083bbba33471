/* URLs for ARI: parsing the base URL, building request paths and query strings.
 * Values are percent-encoded per RFC 3986 (everything but unreserved
 * characters), so `PJSIP/100`, `Local/1000@ivr`, spaces, `+` and UTF-8 reach
 * Asterisk unchanged after it decodes them. */
#ifndef LUARI_URL_H
#define LUARI_URL_H

#include "buf.h"

#include <stddef.h>

typedef struct luari_url {
  int tls;            /* https or wss */
  int ipv6;           /* host is an IPv6 literal: brackets in URLs */
  int port;
  char host[256];
  char path[256];     /* e.g. "/ari", never a trailing slash */
  int has_userinfo;   /* user:password@ was in the URL; never printed */
  char user[128];
  char password[128];
} luari_url_t;

/* http, https, ws, wss. Returns 0, or -1 with *err set to a static message. */
int luari_url_parse(const char *s, luari_url_t *u, const char **err);

/* scheme://host:port/path, without user info. `websocket` picks ws/wss. */
int luari_url_format_base(luari_buf_t *out, const luari_url_t *u, int websocket);

int luari_url_escape(luari_buf_t *out, const char *s, size_t len);

/* Appends "/" and the escaped segment. */
int luari_url_add_segment(luari_buf_t *url, const char *seg, size_t len);

/* Appends ?name=value or &name=value (the first '?' in `url` decides). */
int luari_url_add_query(luari_buf_t *url, const char *name, const char *value, size_t len);

/* Appends name=v1,v2,...: each value escaped, joined by literal commas, as
 * ARI reads a parameter that "allows comma separated values". */
int luari_url_add_query_list(luari_buf_t *url, const char *name, const char *const *values,
                             const size_t *lens, size_t n);

/* Base64 (standard alphabet, padded). */
int luari_base64(luari_buf_t *out, const void *data, size_t len);

/* "Authorization: Basic ..." for user:password. */
int luari_basic_auth_header(luari_buf_t *out, const char *user, const char *password);

#endif
