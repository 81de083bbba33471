/* URL parsing and building for ARI requests. */
#include "url.h"

#include <ctype.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

/* ASCII only, whatever the locale says isalnum() means. */
static int is_unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

int luari_url_escape(luari_buf_t *out, const char *s, size_t len) {
  static const char hex[] = "0123456789ABCDEF";
  if (luari_buf_reserve(out, len * 3) != 0)
    return -1;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (is_unreserved(c)) {
      out->data[out->len++] = (char)c;
    } else {
      out->data[out->len++] = '%';
      out->data[out->len++] = hex[c >> 4];
      out->data[out->len++] = hex[c & 15];
    }
  }
  out->data[out->len] = '\0';
  return 0;
}

int luari_url_add_segment(luari_buf_t *url, const char *seg, size_t len) {
  if (luari_buf_append(url, "/", 1) != 0)
    return -1;
  return luari_url_escape(url, seg, len);
}

static int add_query_name(luari_buf_t *url, const char *name) {
  int first = !url->data || !memchr(url->data, '?', url->len);
  if (luari_buf_append(url, first ? "?" : "&", 1) != 0)
    return -1;
  if (luari_url_escape(url, name, strlen(name)) != 0)
    return -1;
  return luari_buf_append(url, "=", 1);
}

int luari_url_add_query(luari_buf_t *url, const char *name, const char *value, size_t len) {
  if (add_query_name(url, name) != 0)
    return -1;
  return luari_url_escape(url, value, len);
}

int luari_url_add_query_list(luari_buf_t *url, const char *name, const char *const *values,
                             const size_t *lens, size_t n) {
  if (add_query_name(url, name) != 0)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (i > 0 && luari_buf_append(url, ",", 1) != 0)
      return -1;
    if (luari_url_escape(url, values[i], lens[i]) != 0)
      return -1;
  }
  return 0;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = tolower(c);
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* Percent-decodes [s, s+len) into out (size cap); -1 if it does not fit or is malformed. */
static int decode_into(char *out, size_t cap, const char *s, size_t len) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    int c = (unsigned char)s[i];
    if (c == '%') {
      int hi = i + 1 < len ? hexval(s[i + 1]) : -1;
      int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        return -1;
      c = hi * 16 + lo;
      i += 2;
    }
    if (o + 1 >= cap)
      return -1;
    out[o++] = (char)c;
  }
  out[o] = '\0';
  return 0;
}

static int parse_scheme(const char **p, luari_url_t *u) {
  static const struct {
    const char *prefix;
    int tls;
  } schemes[] = { { "http://", 0 }, { "https://", 1 }, { "ws://", 0 }, { "wss://", 1 } };
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
    size_t n = strlen(schemes[i].prefix);
    if (strncasecmp(*p, schemes[i].prefix, n) == 0) {
      u->tls = schemes[i].tls;
      *p += n;
      return 0;
    }
  }
  return -1;
}

static int parse_userinfo(const char *s, size_t len, luari_url_t *u) {
  const char *colon = memchr(s, ':', len);
  size_t ulen = colon ? (size_t)(colon - s) : len;
  if (decode_into(u->user, sizeof u->user, s, ulen) != 0)
    return -1;
  if (colon && decode_into(u->password, sizeof u->password, colon + 1, len - ulen - 1) != 0)
    return -1;
  u->has_userinfo = 1;
  return 0;
}

static int parse_port(const char *s, size_t len, int *port) {
  if (len == 0 || len > 5)
    return -1;
  int v = 0;
  for (size_t i = 0; i < len; i++) {
    if (!isdigit((unsigned char)s[i]))
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  if (v < 1 || v > 65535)
    return -1;
  *port = v;
  return 0;
}

static int parse_hostport(const char *s, size_t len, luari_url_t *u, const char **err) {
  const char *port = NULL;
  size_t hlen;
  const char *host = s;
  if (len > 0 && s[0] == '[') {
    const char *close = memchr(s, ']', len);
    if (!close) {
      *err = "unterminated IPv6 address";
      return -1;
    }
    host = s + 1;
    hlen = (size_t)(close - host);
    u->ipv6 = 1;
    if (close + 1 < s + len) {
      if (close[1] != ':') {
        *err = "bad character after IPv6 address";
        return -1;
      }
      port = close + 2;
    }
  } else {
    const char *colon = memchr(s, ':', len);
    hlen = colon ? (size_t)(colon - s) : len;
    port = colon ? colon + 1 : NULL;
  }
  if (hlen == 0 || hlen >= sizeof u->host) {
    *err = hlen ? "host name too long" : "no host";
    return -1;
  }
  memcpy(u->host, host, hlen);
  u->host[hlen] = '\0';
  u->port = u->tls ? 443 : 80;
  if (port && parse_port(port, (size_t)(s + len - port), &u->port) != 0) {
    *err = "bad port";
    return -1;
  }
  return 0;
}

static int parse_path(const char *p, luari_url_t *u, const char **err) {
  size_t len = strcspn(p, "?#");
  if (p[len]) {
    *err = "the ARI URL takes no query or fragment";
    return -1;
  }
  while (len > 0 && p[len - 1] == '/')
    len--;
  if (len == 0) {
    strcpy(u->path, "/ari");
    return 0;
  }
  if (len >= sizeof u->path) {
    *err = "path too long";
    return -1;
  }
  memcpy(u->path, p, len);
  u->path[len] = '\0';
  return 0;
}

int luari_url_parse(const char *s, luari_url_t *u, const char **err) {
  memset(u, 0, sizeof *u);
  const char *p = s;
  if (parse_scheme(&p, u) != 0) {
    *err = "the URL must start with http://, https://, ws:// or wss://";
    return -1;
  }
  size_t auth_len = strcspn(p, "/?#");
  const char *at = NULL;
  for (size_t i = 0; i < auth_len; i++)
    if (p[i] == '@')
      at = p + i;
  if (at) {
    if (parse_userinfo(p, (size_t)(at - p), u) != 0) {
      *err = "bad user info in URL";
      return -1;
    }
    auth_len -= (size_t)(at + 1 - p);
    p = at + 1;
  }
  if (parse_hostport(p, auth_len, u, err) != 0)
    return -1;
  return parse_path(p + auth_len, u, err);
}

int luari_url_format_base(luari_buf_t *out, const luari_url_t *u, int websocket) {
  const char *scheme = websocket ? (u->tls ? "wss" : "ws") : (u->tls ? "https" : "http");
  return luari_buf_appendf(out, "%s://%s%s%s:%d%s", scheme, u->ipv6 ? "[" : "", u->host,
                           u->ipv6 ? "]" : "", u->port, u->path);
}

int luari_base64(luari_buf_t *out, const void *data, size_t len) {
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const unsigned char *in = data;
  if (luari_buf_reserve(out, (len + 2) / 3 * 4) != 0)
    return -1;
  char *o = out->data + out->len;
  size_t i = 0;
  for (; i + 2 < len; i += 3) {
    unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
    *o++ = alphabet[v >> 18];
    *o++ = alphabet[(v >> 12) & 63];
    *o++ = alphabet[(v >> 6) & 63];
    *o++ = alphabet[v & 63];
  }
  if (i < len) {
    unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0);
    *o++ = alphabet[v >> 18];
    *o++ = alphabet[(v >> 12) & 63];
    *o++ = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  out->len = (size_t)(o - out->data);
  out->data[out->len] = '\0';
  return 0;
}

int luari_basic_auth_header(luari_buf_t *out, const char *user, const char *password) {
  luari_buf_t plain = LUARI_BUF_INIT;
  int rc = luari_buf_appendf(&plain, "%s:%s", user, password);
  if (rc == 0)
    rc = luari_buf_appends(out, "Authorization: Basic");
  if (rc == 0)
    rc = luari_buf_append(out, " ", 1);
  if (rc == 0)
    rc = luari_base64(out, plain.data, plain.len);
  luari_buf_wipe_free(&plain); /* it held the password */
  return rc;
}
