/* The host: the one struct that owns the loop, the log, the HTTP client and
 * the Lua state, reached from Lua through the registry. Every entry from C
 * into Lua goes through luari_host_call (lua_pcall with a traceback). */
#ifndef LUARI_HOST_H
#define LUARI_HOST_H

#include "../core/http.h"
#include "../core/log.h"
#include "../core/url.h"

#include <ev.h>
#include <lauxlib.h>
#include <lua.h>

typedef struct luari_host {
  struct ev_loop *loop;
  lua_State *L;
  luari_log_t log;
  luari_http_t *http;      /* created on first use */
  luari_url_t url;         /* ARI base URL for REST */
  char rest_base[600];     /* http(s)://host:port/path */
  long timeout_ms;         /* default per-request timeout */
  /* REST over the events WebSocket (rest_ws.c): requests go over rest_ws
   * while it is set and open, and wait in a registry table by id. */
  struct luari_events *rest_ws;
  int rest_pending_ref;
  unsigned long rest_next_id;
  int rest_waiting;
  int json_decode_ref;     /* cjson.decode */
  int json_encode_ref;     /* cjson.encode */
} luari_host_t;

luari_host_t *luari_host_new(struct ev_loop *loop);
/* Opens the Lua state with every luari module preloaded. */
int luari_host_open_lua(luari_host_t *host);
void luari_host_free(luari_host_t *host);

luari_host_t *luari_host_get(lua_State *L);
luari_http_t *luari_host_http(luari_host_t *host);

/* Calls the function below nargs arguments on the main state; on error logs
 * the message with its traceback (tagged `where`) and returns -1. */
int luari_host_call(luari_host_t *host, int nargs, int nresults, const char *where);

/* Pushes the decoded value and returns 0, or pushes an error message and
 * returns -1. Never raises. */
int luari_json_decode(luari_host_t *host, lua_State *L, const char *s, size_t len);
/* Encodes the value at idx into out; -1 and a message in *err on failure. */
int luari_json_encode(luari_host_t *host, lua_State *L, int idx, const char **out, size_t *len);

/* http.c: pushes what a request's callback gets: status, body, err,
 * errmsg, reason, raw body. body is the decoded JSON, or the bytes as a
 * string when they are not JSON (a stored recording's audio); raw is the
 * bytes only then (nil after JSON: a copy of every reply nobody reads). */
void luari_http_push_result(luari_host_t *host, lua_State *L, const luari_http_result_t *res);

/* rest_ws.c: REST over the events WebSocket. request: 1 and the handle
 * pushed when the request went out on `ws` (the callback is at fn_idx),
 * 0 when `ws` is not open (the caller sends it over HTTP). reply: the
 * decoded RESTResponse is on top; pops it. down: every request waiting
 * on `ws` fails with conn_lost. */
int luari_rest_ws_request(luari_host_t *host, lua_State *L, struct luari_events *ws, const char *method,
                          const char *url, const char *body, size_t body_len, double timeout, int fn_idx);
void luari_rest_ws_reply(luari_host_t *host, lua_State *L);
void luari_rest_ws_down(luari_host_t *host, struct luari_events *ws, const char *why);
int luari_rest_ws_waiting(const luari_host_t *host);
void luari_rest_ws_open(lua_State *L);

/* events.c: the connection of a luari.events handle (raises otherwise). */
struct luari_events *luari_events_check(lua_State *L, int idx);

/* Registry-anchored references (LUA_NOREF when empty). */
void luari_ref_set(lua_State *L, int *ref, int idx);
void luari_ref_clear(lua_State *L, int *ref);

/* A metatable `name` whose __index holds `methods`, with an optional __gc. */
void luari_new_metatable(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc);

/* Preload tables, one per module file. */
int luaopen_luari_loop(lua_State *L);
int luaopen_luari_http(lua_State *L);
int luaopen_luari_events(lua_State *L);
int luaopen_luari_simserver(lua_State *L);
int luaopen_luari_watch(lua_State *L);

#endif
