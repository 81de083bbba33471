/* luari.http: the REST half of ARI as seen from Lua. A request carries a
 * Lua callback; the reply is decoded with cjson before it is called. */
#include "http.h"

#include "../core/events.h"
#include "../core/url.h"

#include <lauxlib.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQ_MT "luari.http.request"

typedef struct req_ud {
  luari_host_t *host;
  luari_http_req_t *req;
  int fn_ref;
  int self_ref;
} req_ud_t;

/* --- building --- */

static int value_to_string(lua_State *L, int idx, const char **s, size_t *len) {
  switch (lua_type(L, idx)) {
  case LUA_TSTRING:
  case LUA_TNUMBER:
    *s = lua_tolstring(L, idx, len);
    return 0;
  case LUA_TBOOLEAN:
    *s = lua_toboolean(L, idx) ? "true" : "false";
    *len = strlen(*s);
    return 0;
  default:
    return -1;
  }
}

static int add_segments(lua_State *L, int idx, luari_buf_t *url) {
  size_t n = lua_objlen(L, idx);
  for (size_t i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, (int)i);
    const char *s;
    size_t len;
    int rc = value_to_string(L, -1, &s, &len) == 0 ? luari_url_add_segment(url, s, len) : -1;
    lua_pop(L, 1);
    if (rc != 0) {
      lua_pushfstring(L, "path segment %d is not a string", (int)i);
      return -1;
    }
  }
  return 0;
}

static int add_list(lua_State *L, int idx, const char *name, luari_buf_t *url) {
  size_t n = lua_objlen(L, idx);
  const char **values = calloc(n ? n : 1, sizeof *values);
  size_t *lens = calloc(n ? n : 1, sizeof *lens);
  int rc = values && lens ? 0 : -1;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    lua_rawgeti(L, idx, (int)i + 1);
    /* The table keeps the strings alive after the pop. */
    rc = lua_type(L, -1) == LUA_TSTRING ? value_to_string(L, -1, &values[i], &lens[i]) : -1;
    lua_pop(L, 1);
  }
  if (rc == 0)
    rc = luari_url_add_query_list(url, name, values, lens, n);
  free(values);
  free(lens);
  if (rc != 0)
    lua_pushfstring(L, "query parameter '%s' must be a string or an array of strings", name);
  return rc;
}

static int add_query(lua_State *L, int idx, luari_buf_t *url) {
  size_t n = lua_objlen(L, idx);
  for (size_t i = 1; i + 1 <= n; i += 2) {
    lua_rawgeti(L, idx, (int)i);
    lua_rawgeti(L, idx, (int)i + 1);
    const char *name = lua_tostring(L, -2);
    if (!name) {
      lua_pop(L, 2);
      lua_pushfstring(L, "query name %d is not a string", (int)i);
      return -1;
    }
    if (lua_istable(L, -1)) {
      if (add_list(L, lua_gettop(L), name, url) != 0)
        return -1; /* the message is on top */
    } else {
      const char *s;
      size_t len;
      int rc = value_to_string(L, -1, &s, &len) == 0 ? luari_url_add_query(url, name, s, len) : -1;
      if (rc != 0) {
        lua_pop(L, 2);
        lua_pushfstring(L, "query parameter '%s' must be a string", name);
        return -1;
      }
    }
    lua_pop(L, 2);
  }
  return 0;
}

int luari_http_build(luari_host_t *host, lua_State *L, int seg_idx, int query_idx, int body_idx,
                     luari_buf_t *url, luari_buf_t *body) {
  if (luari_buf_appends(url, host->rest_base) != 0) {
    lua_pushstring(L, "out of memory");
    return -1;
  }
  if (lua_istable(L, seg_idx) && add_segments(L, seg_idx, url) != 0)
    return -1;
  if (lua_istable(L, query_idx) && add_query(L, query_idx, url) != 0)
    return -1;
  if (lua_istable(L, body_idx)) {
    const char *json;
    size_t len;
    if (luari_json_encode(host, L, body_idx, &json, &len) != 0)
      return -1;
    int rc = luari_buf_append(body, json, len);
    lua_pop(L, 1);
    if (rc != 0) {
      lua_pushstring(L, "out of memory");
      return -1;
    }
  }
  return 0;
}

/* --- requests --- */

static void req_release(req_ud_t *r) {
  lua_State *L = r->host->L;
  r->req = NULL;
  luari_ref_clear(L, &r->fn_ref);
  luari_ref_clear(L, &r->self_ref);
}

static const char *err_name(luari_http_err_t err) {
  return err == LUARI_HTTP_TIMEOUT ? "timeout" : "conn_lost";
}

static int looks_like_json(const luari_http_result_t *res) {
  if (res->content_type && strstr(res->content_type, "json"))
    return 1;
  return res->body_len > 0 && (res->body[0] == '{' || res->body[0] == '[');
}

void luari_http_push_result(luari_host_t *host, lua_State *L, const luari_http_result_t *res) {
  if (res->err != LUARI_HTTP_OK) {
    lua_pushinteger(L, 0);
    lua_pushnil(L);
    lua_pushstring(L, err_name(res->err));
    lua_pushstring(L, res->errmsg ? res->errmsg : "request failed");
    lua_pushnil(L);
    lua_pushnil(L);
    return;
  }
  lua_pushinteger(L, res->status);
  int json = res->body_len > 0 && looks_like_json(res);
  int bad = 0;
  if (json) {
    if (luari_json_decode(host, L, res->body, res->body_len) != 0) {
      lua_pop(L, 1);
      lua_pushnil(L);
      bad = 1;
    }
  } else if (res->body_len > 0) {
    lua_pushlstring(L, res->body, res->body_len);
  } else {
    lua_pushnil(L);
  }
  if (bad) {
    lua_pushstring(L, "bad_response");
    lua_pushstring(L, "the reply body is not valid JSON");
  } else {
    lua_pushnil(L);
    lua_pushnil(L);
  }
  lua_pushstring(L, res->reason ? res->reason : "");
  if (json && !bad)
    lua_pushnil(L);
  else
    lua_pushlstring(L, res->body, res->body_len);
}

static void on_done(void *ud, const luari_http_result_t *res) {
  req_ud_t *r = ud;
  luari_host_t *host = r->host;
  lua_State *L = host->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->fn_ref);
  req_release(r);
  luari_http_push_result(host, L, res);
  luari_host_call(host, 6, 0, "http reply");
}

static int check_method(lua_State *L, int idx) {
  static const char *const methods[] = { "GET", "POST", "PUT", "DELETE", NULL };
  const char *m = luaL_checkstring(L, idx);
  for (int i = 0; methods[i]; i++)
    if (strcmp(m, methods[i]) == 0)
      return i;
  return luaL_argerror(L, idx, "method must be GET, POST, PUT or DELETE");
}

/* Over HTTP; the arguments start at `b` (method, ..., fn at b+5). */
/* Seconds to curl's milliseconds, rounded up: 0.0004 s must not become 0,
 * which curl reads as "no timeout" (and luari as its 10 s default). */
static long timeout_ms(double seconds) {
  if (!(seconds > 0))
    return 0;
  double ms = ceil(seconds * 1000.0);
  return ms > (double)LONG_MAX ? LONG_MAX : (long)ms;
}

static int start_http(lua_State *L, luari_host_t *host, int b, const luari_buf_t *url, const luari_buf_t *body,
                      double timeout) {
  req_ud_t *r = lua_newuserdata(L, sizeof *r);
  memset(r, 0, sizeof *r);
  r->host = host;
  r->fn_ref = r->self_ref = LUA_NOREF;
  luaL_getmetatable(L, REQ_MT);
  lua_setmetatable(L, -2);
  luari_http_request_t req = { lua_tostring(L, b), url->data, body->data, body->len, timeout_ms(timeout) };
  r->req = luari_http_start(luari_host_http(host), &req, on_done, r);
  if (!r->req)
    return -1;
  luari_ref_set(L, &r->fn_ref, b + 5);
  luari_ref_set(L, &r->self_ref, -1);
  return 0;
}

/* The arguments from `b` on: method, segments, query, body, timeout, fn.
 * Over `ws` while it is open, else over HTTP unless `ws_only` (then nil). */
static int start_request(lua_State *L, int b, luari_events_t *ws, int ws_only) {
  luari_host_t *host = luari_host_get(L);
  check_method(L, b);
  luaL_checktype(L, b + 5, LUA_TFUNCTION);
  if (!host->rest_base[0])
    return luaL_error(L, "luari.http: configure{url=...} first");
  luari_buf_t url = LUARI_BUF_INIT, body = LUARI_BUF_INIT;
  if (luari_http_build(host, L, b + 1, b + 2, b + 3, &url, &body) != 0) {
    luari_buf_free(&url);
    luari_buf_free(&body);
    return lua_error(L);
  }
  double timeout = luaL_optnumber(L, b + 4, (double)host->timeout_ms / 1000.0);
  int rc = 0;
  if (!luari_rest_ws_request(host, L, ws, lua_tostring(L, b), url.data, body.data, body.len, timeout, b + 5)) {
    if (ws_only)
      lua_pushnil(L);
    else
      rc = start_http(L, host, b, &url, &body, timeout);
  }
  luari_buf_free(&url);
  luari_buf_free(&body);
  if (rc != 0)
    return luaL_error(L, "luari.http: cannot start the request");
  return 1;
}

/* request(method, segments, query, body, timeout, fn) -> handle */
static int l_request(lua_State *L) {
  return start_request(L, 1, luari_host_get(L)->rest_ws, 0);
}

static int l_cancel(lua_State *L) {
  req_ud_t *r = luaL_checkudata(L, 1, REQ_MT);
  if (r->req) {
    luari_http_cancel(r->req);
    req_release(r);
  }
  return 0;
}

static int l_req_gc(lua_State *L) {
  req_ud_t *r = luaL_checkudata(L, 1, REQ_MT);
  if (r->req) {
    luari_http_cancel(r->req);
    r->req = NULL;
  }
  return 0;
}

/* build(segments, query, body) -> url, body_json|nil (for tests and tools) */
static int l_build(lua_State *L) {
  luari_host_t *host = luari_host_get(L);
  luari_buf_t url = LUARI_BUF_INIT, body = LUARI_BUF_INIT;
  if (luari_http_build(host, L, 1, 2, 3, &url, &body) != 0) {
    luari_buf_free(&url);
    luari_buf_free(&body);
    return lua_error(L);
  }
  lua_pushlstring(L, url.data ? url.data : "", url.len);
  if (body.data)
    lua_pushlstring(L, body.data, body.len);
  else
    lua_pushnil(L);
  luari_buf_free(&url);
  luari_buf_free(&body);
  return 2;
}

static const char *opt_string(lua_State *L, int idx, const char *key) {
  lua_getfield(L, idx, key);
  const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  lua_pop(L, 1); /* the table keeps the string */
  return s;
}

/* configure{ url, user, password, insecure, ca_file, timeout, max_connections } -> base URL */
static int l_configure(lua_State *L) {
  luari_host_t *host = luari_host_get(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *url = opt_string(L, 1, "url");
  const char *err;
  if (!url || luari_url_parse(url, &host->url, &err) != 0)
    return luaL_error(L, "bad ARI URL: %s", url ? err : "none given");
  luari_buf_t base = LUARI_BUF_INIT;
  luari_url_format_base(&base, &host->url, 0);
  snprintf(host->rest_base, sizeof host->rest_base, "%s", base.data ? base.data : "");
  luari_buf_free(&base);
  const char *user = opt_string(L, 1, "user");
  const char *password = opt_string(L, 1, "password");
  if (host->url.has_userinfo && !user) {
    user = host->url.user;
    password = host->url.password;
  }
  luari_http_t *http = luari_host_http(host);
  if (!http)
    return luaL_error(L, "cannot start the HTTP client");
  luari_http_set_auth(http, user, password ? password : "");
  lua_getfield(L, 1, "insecure");
  int insecure = lua_toboolean(L, -1);
  lua_pop(L, 1);
  luari_http_set_tls(http, insecure, opt_string(L, 1, "ca_file"));
  lua_getfield(L, 1, "timeout");
  if (lua_isnumber(L, -1))
    host->timeout_ms = timeout_ms(lua_tonumber(L, -1));
  lua_getfield(L, 1, "max_connections");
  if (lua_isnumber(L, -1))
    luari_http_set_max_connections(http, (long)lua_tonumber(L, -1));
  lua_pop(L, 2);
  lua_pushstring(L, host->rest_base);
  return 1;
}

static int l_active(lua_State *L) {
  luari_host_t *host = luari_host_get(L);
  lua_pushinteger(L, (host->http ? luari_http_active(host->http) : 0) + luari_rest_ws_waiting(host));
  return 1;
}

/* rest_over(events|nil): requests go over that events WebSocket while it
 * is open (HTTP otherwise); nil: all over HTTP. */
static int l_rest_over(lua_State *L) {
  luari_host_t *host = luari_host_get(L);
  host->rest_ws = lua_isnoneornil(L, 1) ? NULL : luari_events_check(L, 1);
  return 0;
}

/* request_over(events, method, segments, query, body, timeout, fn) -> handle|nil:
 * this one request over that WebSocket (nil when it is not open), whatever
 * rest_over says: how the run command asks whether Asterisk answers there. */
static int l_request_over(lua_State *L) {
  return start_request(L, 2, luari_events_check(L, 1), 1);
}

int luaopen_luari_http(lua_State *L) {
  static const luaL_Reg methods[] = { { "cancel", l_cancel }, { NULL, NULL } };
  static const luaL_Reg funcs[] = { { "configure", l_configure },     { "request", l_request },
                                    { "build", l_build },             { "active", l_active },
                                    { "rest_over", l_rest_over },     { "request_over", l_request_over },
                                    { NULL, NULL } };
  luari_new_metatable(L, REQ_MT, methods, l_req_gc);
  luari_rest_ws_open(L);
  lua_newtable(L);
  luaL_register(L, NULL, funcs);
  return 1;
}
