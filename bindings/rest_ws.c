/* REST over the events WebSocket (Asterisk 20.14, 21.9, 22.4 and later):
 * a request goes out as a RESTRequest message and its reply comes back
 * among the events as a RESTResponse with the same request_id. The Lua
 * side sees no difference from HTTP: the same callback arguments, a handle
 * with :cancel(). Why: one frame each way on a connection that is open
 * anyway, instead of an HTTP exchange through libcurl per operation.
 *
 * Waiting requests sit in a registry table keyed by request id; each has
 * its own timeout, and all of them fail (conn_lost) when the WebSocket
 * goes down, since their replies can no longer come. */
#include "host.h"

#include "../core/buf.h"
#include "../core/events.h"
#include "../core/utf8.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WSREQ_MT "luari.http.wsrequest"

typedef struct wsreq {
  luari_host_t *host;
  unsigned long id;
  luari_events_t *ws; /* the WebSocket it went over */
  int waiting;
  int fn_ref;    /* the pending table anchors the handle itself */
  double timeout;
  ev_timer timer;
} wsreq_t;

/* --- the pending table --- */

static void push_pending(luari_host_t *host, lua_State *L) {
  if (host->rest_pending_ref == LUA_NOREF) {
    lua_newtable(L);
    host->rest_pending_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, host->rest_pending_ref);
}

static void set_pending(luari_host_t *host, lua_State *L, unsigned long id, int value_idx) {
  value_idx = value_idx < 0 ? lua_gettop(L) + value_idx + 1 : value_idx;
  push_pending(host, L);
  lua_pushnumber(L, (lua_Number)id);
  lua_pushvalue(L, value_idx);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* Takes the request off the table and stops its clock; pushes its
 * callback (or nothing, returning 0, when it was not waiting). */
static int finish(lua_State *L, wsreq_t *r) {
  if (!r->waiting)
    return 0;
  luari_host_t *host = r->host;
  r->waiting = 0;
  host->rest_waiting--;
  ev_timer_stop(host->loop, &r->timer);
  lua_pushnil(L);
  set_pending(host, L, r->id, -1);
  lua_pop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->fn_ref);
  luari_ref_clear(L, &r->fn_ref);
  return 1;
}

static void fail(wsreq_t *r, luari_http_err_t err, const char *why) {
  /* Off the pending table, nothing may hold r any more: the collector can
   * free it in the first allocation below. */
  luari_host_t *host = r->host;
  lua_State *L = host->L;
  if (!finish(L, r))
    return;
  luari_http_result_t res = { .err = err, .errmsg = why };
  luari_http_push_result(host, L, &res);
  luari_host_call(host, 6, 0, "REST over WebSocket reply");
}

static void on_timeout(EV_P_ ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  wsreq_t *r = w->data;
  char why[96];
  snprintf(why, sizeof why, "no reply over the WebSocket within %.3g s", r->timeout);
  fail(r, LUARI_HTTP_TIMEOUT, why);
}

/* --- the request message --- */

static int append_json_string(luari_buf_t *b, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  int rc = luari_buf_append(b, "\"", 1);
  size_t run = 0; /* bytes copied as they are, in one append */
  for (size_t i = 0; rc == 0 && i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    rc = luari_buf_append(b, s + run, i - run);
    char esc[6] = { '\\', (char)c, 0 };
    size_t n = 2;
    if (c < 0x20) {
      memcpy(esc, "\\u00", 4);
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 15];
      n = 6;
    }
    if (rc == 0)
      rc = luari_buf_append(b, esc, n);
    run = i + 1;
  }
  if (rc == 0)
    rc = luari_buf_append(b, s + run, len - run);
  return rc == 0 ? luari_buf_append(b, "\"", 1) : rc;
}

/* {"type":"RESTRequest","request_id":"7","method":"POST","uri":"channels/x/answer?...",
 *  "content_type":"application/json","message_body":"{...}"} */
static int build_message(luari_buf_t *m, unsigned long id, const char *method, const char *uri,
                         const char *body, size_t body_len) {
  char head[96];
  snprintf(head, sizeof head, "{\"type\":\"RESTRequest\",\"request_id\":\"%lu\",\"method\":\"%s\",\"uri\":", id,
           method);
  int rc = luari_buf_appends(m, head);
  if (rc == 0)
    rc = append_json_string(m, uri, strlen(uri));
  if (rc == 0 && body) {
    rc = luari_buf_appends(m, ",\"content_type\":\"application/json\",\"message_body\":");
    if (rc == 0)
      rc = append_json_string(m, body, body_len);
  }
  return rc == 0 ? luari_buf_append(m, "}", 1) : rc;
}

/* Asterisk reads frames of 65535 bytes at most, header included, and
 * closes the WebSocket (1009) on a bigger one: a bigger request goes over
 * HTTP. */
#define MAX_FRAME 65000

/* A stored recording's audio cannot come over the WebSocket (Asterisk
 * answers 406 "Use HTTP GET"): recordings/stored/{name}/file goes over HTTP. */
static int binary_resource(const char *uri) {
  static const char prefix[] = "recordings/stored/";
  if (strncmp(uri, prefix, sizeof prefix - 1) != 0)
    return 0;
  size_t len = strcspn(uri, "?");
  return len >= 5 && memcmp(uri + len - 5, "/file", 5) == 0;
}

int luari_rest_ws_request(luari_host_t *host, lua_State *L, luari_events_t *ws, const char *method,
                          const char *url, const char *body, size_t body_len, double timeout, int fn_idx) {
  if (!ws || !luari_events_is_open(ws))
    return 0;
  /* The uri is the URL less the base and its slash: "channels/x/answer?..." */
  size_t base_len = strlen(host->rest_base);
  const char *uri = strncmp(url, host->rest_base, base_len) == 0 ? url + base_len : url;
  if (*uri == '/')
    uri++;
  /* A text frame must be UTF-8 (wslay and Asterisk's JSON parser refuse
   * anything else, and the socket dies with it): such a body goes over
   * HTTP, where Asterisk answers it. */
  if (binary_resource(uri) || (body && !luari_utf8_valid(body, body_len)))
    return 0;
  unsigned long id = ++host->rest_next_id;
  luari_buf_t m = LUARI_BUF_INIT;
  int rc = build_message(&m, id, method, uri, body, body_len);
  if (rc == 0 && m.len > MAX_FRAME)
    rc = -1;
  if (rc == 0)
    rc = luari_events_send(ws, m.data, m.len);
  luari_buf_free(&m);
  if (rc != 0)
    return 0; /* the socket is going down: HTTP takes it */
  wsreq_t *r = lua_newuserdata(L, sizeof *r);
  memset(r, 0, sizeof *r);
  r->host = host;
  r->id = id;
  r->ws = ws;
  r->timeout = timeout > 0 ? timeout : 10; /* as over HTTP */
  r->fn_ref = LUA_NOREF;
  luaL_getmetatable(L, WSREQ_MT);
  lua_setmetatable(L, -2);
  luari_ref_set(L, &r->fn_ref, fn_idx);
  set_pending(host, L, id, -1);
  r->waiting = 1;
  host->rest_waiting++;
  ev_timer_init(&r->timer, on_timeout, r->timeout, 0);
  r->timer.data = r;
  ev_now_update(host->loop); /* the timeout counts from now (see loop.c's timer) */
  ev_timer_start(host->loop, &r->timer);
  return 1;
}

/* --- replies --- */

static const char *field_string(lua_State *L, int idx, const char *key, size_t *len) {
  lua_getfield(L, idx, key);
  const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, len) : NULL;
  lua_pop(L, 1); /* the table anchors it */
  return s;
}

void luari_rest_ws_reply(luari_host_t *host, lua_State *L) {
  int t = lua_gettop(L);
  const char *rid = field_string(L, t, "request_id", NULL);
  char *end = NULL;
  unsigned long id = rid ? strtoul(rid, &end, 10) : 0;
  wsreq_t *r = NULL;
  if (id > 0 && end && *end == '\0') {
    push_pending(host, L);
    lua_pushnumber(L, (lua_Number)id);
    lua_rawget(L, -2);
    r = lua_touserdata(L, -1);
    lua_pop(L, 2);
  }
  if (!r) {
    /* Its request timed out or was cancelled: nobody waits for it. */
    luari_log(&host->log, LUARI_LOG_DEBUG, "REST over WebSocket: reply to request '%s' that nobody waits for",
              rid ? rid : "(none)");
    lua_settop(L, t - 1);
    return;
  }
  lua_getfield(L, t, "status_code");
  long status = lua_isnumber(L, -1) ? (long)lua_tonumber(L, -1) : 0;
  lua_pop(L, 1);
  size_t body_len = 0;
  const char *body = field_string(L, t, "message_body", &body_len);
  luari_http_result_t res = {
    .err = status > 0 ? LUARI_HTTP_OK : LUARI_HTTP_ERROR,
    .status = status,
    .reason = field_string(L, t, "reason_phrase", NULL),
    .content_type = field_string(L, t, "content_type", NULL),
    .body = body ? body : "",
    .body_len = body ? body_len : 0,
    .errmsg = "a RESTResponse without a status_code",
  };
  if (finish(L, r)) {
    luari_http_push_result(host, L, &res);
    luari_host_call(host, 6, 0, "REST over WebSocket reply");
  }
  lua_settop(L, t - 1);
}

/* Every request waiting on `ws` fails: its reply cannot come any more. */
void luari_rest_ws_down(luari_host_t *host, luari_events_t *ws, const char *why) {
  lua_State *L = host->L;
  if (host->rest_pending_ref == LUA_NOREF || host->rest_waiting == 0)
    return;
  int top = lua_gettop(L);
  push_pending(host, L);
  int pending = lua_gettop(L);
  lua_newtable(L); /* the requests, taken first: their callbacks may start new ones */
  int list = lua_gettop(L);
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, pending)) {
    lua_rawseti(L, list, ++n);
  }
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    wsreq_t *r = lua_touserdata(L, -1);
    if (r && r->ws == ws)
      fail(r, LUARI_HTTP_CONN, why);
    lua_pop(L, 1);
  }
  lua_settop(L, top);
}

int luari_rest_ws_waiting(const luari_host_t *host) {
  return host->rest_waiting;
}

/* --- the handle --- */

static int l_cancel(lua_State *L) {
  wsreq_t *r = luaL_checkudata(L, 1, WSREQ_MT);
  if (finish(L, r))
    lua_pop(L, 1);
  return 0;
}

static int l_gc(lua_State *L) {
  wsreq_t *r = luaL_checkudata(L, 1, WSREQ_MT);
  if (r->waiting) {
    /* Only at lua_close, which frees the pending table with the rest. */
    ev_timer_stop(r->host->loop, &r->timer);
    r->waiting = 0;
    r->host->rest_waiting--;
  }
  return 0;
}

void luari_rest_ws_open(lua_State *L) {
  static const luaL_Reg methods[] = { { "cancel", l_cancel }, { NULL, NULL } };
  luari_new_metatable(L, WSREQ_MT, methods, l_gc);
}
