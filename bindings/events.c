/* luari.events: the ARI events WebSocket from Lua. Each text message is
 * decoded with cjson here, in C, and handed to on_event as a table. */
#include "host.h"

#include "../core/events.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#define EVENTS_MT "luari.events"

typedef struct events_ud {
  luari_host_t *host;
  luari_events_t *ev;
  int on_open_ref;
  int on_event_ref;
  int on_bad_ref;
  int on_down_ref;
  int self_ref;
  unsigned long bad_json;
} events_ud_t;

static int push_ref(lua_State *L, int ref) {
  if (ref == LUA_NOREF)
    return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  return 1;
}

static void on_open(void *data) {
  events_ud_t *e = data;
  if (push_ref(e->host->L, e->on_open_ref))
    luari_host_call(e->host, 0, 0, "events on_open");
}

/* An ARI event is a JSON object with a string "type": anything else (an
 * array, an object without one) is dropped as malformed, not routed.
 * `rest_reply`: the event is a RESTResponse. */
static const char *not_an_event(lua_State *L, int *rest_reply) {
  if (!lua_istable(L, -1))
    return "not a JSON object";
  lua_getfield(L, -1, "type");
  int typed = lua_type(L, -1) == LUA_TSTRING;
  *rest_reply = typed && strcmp(lua_tostring(L, -1), "RESTResponse") == 0;
  lua_pop(L, 1);
  return typed ? NULL : "no \"type\": not an ARI event";
}

static void on_message(void *data, const char *json, size_t len) {
  events_ud_t *e = data;
  luari_host_t *host = e->host;
  lua_State *L = host->L;
  int failed = luari_json_decode(host, L, json, len) != 0;
  int rest_reply = 0;
  const char *bad = failed ? NULL : not_an_event(L, &rest_reply);
  if (failed || bad) {
    e->bad_json++;
    const char *why = failed && lua_isstring(L, -1) ? lua_tostring(L, -1) : bad ? bad : "not a JSON object";
    luari_log(&host->log, LUARI_LOG_ERROR, "events: malformed event dropped (%s): %.*s", why,
              (int)(len > 120 ? 120 : len), json);
    lua_pop(L, 1);
    if (push_ref(L, e->on_bad_ref)) {
      lua_pushstring(L, "malformed JSON");
      lua_pushlstring(L, json, len);
      luari_host_call(host, 2, 0, "events on_bad_event");
    }
    return;
  }
  if (rest_reply) {
    luari_rest_ws_reply(host, L); /* a reply to REST over this WebSocket */
    return;
  }
  if (!push_ref(L, e->on_event_ref)) {
    lua_pop(L, 1);
    return;
  }
  lua_insert(L, -2);
  luari_host_call(host, 1, 0, "events on_event");
}

/* Requests waiting on this WebSocket will get no reply now. */
static void rest_ws_gone(events_ud_t *e, const char *why) {
  luari_host_t *host = e->host;
  if (host->rest_ws == e->ev)
    host->rest_ws = NULL;
  luari_rest_ws_down(host, e->ev, why);
}

static const char *down_kind(int kind) {
  switch (kind) {
  case LUARI_EVENTS_DOWN_CONNECT:
    return "connect";
  case LUARI_EVENTS_DOWN_TLS:
    return "tls";
  case LUARI_EVENTS_DOWN_HTTP:
    return "http";
  case LUARI_EVENTS_DOWN_PROTOCOL:
    return "protocol";
  case LUARI_EVENTS_DOWN_CLOSED:
    return "closed";
  case LUARI_EVENTS_DOWN_TIMEOUT:
    return "timeout";
  default:
    return "stopped";
  }
}

static void on_down(void *data, const luari_events_down_t *down) {
  events_ud_t *e = data;
  lua_State *L = e->host->L;
  char why[200];
  snprintf(why, sizeof why, "the events WebSocket went down before the reply (%s)",
           down->message ? down->message : down_kind(down->kind));
  rest_ws_gone(e, why);
  if (!push_ref(L, e->on_down_ref))
    return;
  lua_createtable(L, 0, 5);
  lua_pushstring(L, down_kind(down->kind));
  lua_setfield(L, -2, "kind");
  lua_pushinteger(L, down->status);
  lua_setfield(L, -2, "status");
  lua_pushinteger(L, down->close_code);
  lua_setfield(L, -2, "close_code");
  lua_pushstring(L, down->message ? down->message : "");
  lua_setfield(L, -2, "message");
  lua_pushnumber(L, down->retry_in);
  lua_setfield(L, -2, "retry_in");
  luari_host_call(e->host, 1, 0, "events on_down");
}

static const char *field_string(lua_State *L, int idx, const char *key) {
  lua_getfield(L, idx, key);
  const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL; /* the table anchors it */
  lua_pop(L, 1);
  return s;
}

static double field_number(lua_State *L, int idx, const char *key, double dflt) {
  lua_getfield(L, idx, key);
  double v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : dflt;
  lua_pop(L, 1);
  return v;
}

static int field_bool(lua_State *L, int idx, const char *key) {
  lua_getfield(L, idx, key);
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

static void field_ref(lua_State *L, int idx, const char *key, int *ref) {
  lua_getfield(L, idx, key);
  if (lua_isfunction(L, -1))
    luari_ref_set(L, ref, -1);
  lua_pop(L, 1);
}

/* apps may be "a,b" or { "a", "b" }; leaves the joined string on the stack. */
static const char *apps_string(lua_State *L, int idx) {
  lua_getfield(L, idx, "apps");
  if (lua_istable(L, -1)) {
    int t = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t n = lua_objlen(L, t);
    for (size_t i = 1; i <= n; i++) {
      lua_rawgeti(L, t, (int)i);
      if (i > 1)
        luaL_addchar(&b, ',');
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_remove(L, t);
  }
  if (!lua_isstring(L, -1))
    luaL_error(L, "luari.events: apps must be a string or an array of strings");
  return lua_tostring(L, -1);
}

/* start{ url, apps, user, password, ..., on_open, on_event, on_bad_event, on_down } */
static int l_start(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luari_host_t *host = luari_host_get(L);
  luari_events_options_t o;
  memset(&o, 0, sizeof o);
  const char *url = field_string(L, 1, "url");
  const char *err;
  if (!url || luari_url_parse(url, &o.url, &err) != 0)
    return luaL_error(L, "bad ARI URL: %s", url ? err : "none given");
  o.apps = apps_string(L, 1);
  o.subscribe_all = field_bool(L, 1, "subscribe_all");
  o.user = field_string(L, 1, "user");
  o.password = field_string(L, 1, "password");
  if (o.url.has_userinfo && !o.user) {
    o.user = o.url.user;
    o.password = o.url.password;
  }
  if (o.user && !o.password)
    o.password = "";
  o.insecure = field_bool(L, 1, "insecure");
  o.ca_file = field_string(L, 1, "ca_file");
  o.backoff_initial = field_number(L, 1, "backoff_initial", 0);
  o.backoff_max = field_number(L, 1, "backoff_max", 0);
  o.handshake_timeout = field_number(L, 1, "handshake_timeout", 0);
  o.ping_interval = field_number(L, 1, "ping_interval", 0);
  o.max_message = (size_t)field_number(L, 1, "max_message", 0);
  events_ud_t *e = lua_newuserdata(L, sizeof *e);
  memset(e, 0, sizeof *e);
  e->host = host;
  e->on_open_ref = e->on_event_ref = e->on_bad_ref = e->on_down_ref = e->self_ref = LUA_NOREF;
  luaL_getmetatable(L, EVENTS_MT);
  lua_setmetatable(L, -2);
  field_ref(L, 1, "on_open", &e->on_open_ref);
  field_ref(L, 1, "on_event", &e->on_event_ref);
  field_ref(L, 1, "on_bad_event", &e->on_bad_ref);
  field_ref(L, 1, "on_down", &e->on_down_ref);
  luari_events_handler_t h = { e, on_open, on_message, on_down };
  e->ev = luari_events_new(host->loop, luari_host_http(host), &host->log, &o, &h);
  memset(&o.url, 0, sizeof o.url);
  if (!e->ev)
    return luaL_error(L, "luari.events: cannot set up the connection");
  luari_ref_set(L, &e->self_ref, -1);
  luari_events_start(e->ev);
  return 1;
}

static events_ud_t *check(lua_State *L) {
  return luaL_checkudata(L, 1, EVENTS_MT);
}

luari_events_t *luari_events_check(lua_State *L, int idx) {
  events_ud_t *e = luaL_checkudata(L, idx, EVENTS_MT);
  if (!e->ev)
    luaL_argerror(L, idx, "the events connection is closed");
  return e->ev;
}

static int l_stop(lua_State *L) {
  events_ud_t *e = check(L);
  if (e->ev)
    luari_events_stop(e->ev);
  return 0;
}

static int l_drop(lua_State *L) {
  events_ud_t *e = check(L);
  if (e->ev)
    luari_events_drop(e->ev);
  return 0;
}

static int l_is_open(lua_State *L) {
  events_ud_t *e = check(L);
  lua_pushboolean(L, e->ev && luari_events_is_open(e->ev));
  return 1;
}

static int l_stats(lua_State *L) {
  events_ud_t *e = check(L);
  lua_createtable(L, 0, 7);
  if (!e->ev)
    return 1;
  luari_events_stats_t s;
  luari_events_stats(e->ev, &s);
  lua_pushnumber(L, (double)s.connects);
  lua_setfield(L, -2, "connects");
  lua_pushnumber(L, (double)s.messages);
  lua_setfield(L, -2, "messages");
  lua_pushnumber(L, (double)s.dropped_binary);
  lua_setfield(L, -2, "dropped_binary");
  lua_pushnumber(L, (double)s.queued_bytes);
  lua_setfield(L, -2, "queued_bytes");
  lua_pushnumber(L, (double)s.max_queued_bytes);
  lua_setfield(L, -2, "max_queued_bytes");
  lua_pushnumber(L, (double)e->bad_json);
  lua_setfield(L, -2, "dropped_json");
  return 1;
}

/* `quiet` (from __gc): no Lua is called; requests still waiting time out. */
static void events_free(lua_State *L, events_ud_t *e, int quiet) {
  if (e->ev) {
    if (quiet && e->host->rest_ws == e->ev)
      e->host->rest_ws = NULL;
    if (!quiet)
      rest_ws_gone(e, "the events WebSocket was closed before the reply");
    luari_events_free(e->ev);
    e->ev = NULL;
  }
  luari_ref_clear(L, &e->on_open_ref);
  luari_ref_clear(L, &e->on_event_ref);
  luari_ref_clear(L, &e->on_bad_ref);
  luari_ref_clear(L, &e->on_down_ref);
  luari_ref_clear(L, &e->self_ref);
}

/* Frees the connection; the handle is inert afterwards. */
static int l_close(lua_State *L) {
  events_free(L, check(L), 0);
  return 0;
}

/* Also what frees the callbacks of a connection that could not be set up. */
static int l_gc(lua_State *L) {
  events_free(L, check(L), 1);
  return 0;
}

int luaopen_luari_events(lua_State *L) {
  static const luaL_Reg methods[] = { { "stop", l_stop },   { "drop", l_drop },   { "is_open", l_is_open },
                                      { "stats", l_stats }, { "close", l_close }, { NULL, NULL } };
  static const luaL_Reg funcs[] = { { "start", l_start }, { NULL, NULL } };
  luari_new_metatable(L, EVENTS_MT, methods, l_gc);
  lua_newtable(L);
  luaL_register(L, NULL, funcs);
  return 1;
}
