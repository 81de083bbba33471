/* luari.watch: FLOWS watched with inotify on the loop, seen from Lua.
 *
 *   local w, err = watch.open(path, function(what, file) end)
 *     -- what: "changed" | "removed" | "rescan" | "lost"; file relative to path
 *   w:resync() -> true | nil, err     w:count() -> directories watched
 *   w:close()
 *   watch.list(dir) -> { "hello.lua", "lib/util.lua", ... } | nil, err
 *     -- the .lua files the watch would report, unsorted
 *
 * An open watcher is anchored in the registry, like a timer, until close. */
#include "host.h"

#include "../core/watch_ev.h"

#include <lauxlib.h>
#include <string.h>

#define WATCH_MT "luari.watch"

typedef struct watch_ud {
  luari_watch_ev_t ev;
  luari_watch_t *w; /* NULL once closed */
  luari_host_t *host;
  int fn_ref;
  int self_ref;
} watch_ud_t;

static const char *const WHAT[] = { "?", "changed", "removed", "rescan", "lost" };

static void on_change(void *data, int what, const char *path) {
  watch_ud_t *u = data;
  lua_State *L = u->host->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, u->fn_ref);
  lua_pushstring(L, what >= 1 && what <= 4 ? WHAT[what] : WHAT[0]);
  lua_pushstring(L, path);
  /* Nothing after this: the callback may close the watcher, and then
   * nothing keeps `u` alive. */
  luari_host_call(u->host, 2, 0, "watch");
}

/* Stops the io watcher before the watch it reads is freed. */
static void stop(watch_ud_t *u) {
  if (!u->w)
    return;
  luari_watch_ev_stop(&u->ev);
  luari_watch_free(u->w);
  u->w = NULL;
}

static void add_name(void *data, const char *rel) {
  lua_State *L = data;
  lua_pushstring(L, rel);
  lua_rawseti(L, -2, (int)lua_objlen(L, -2) + 1);
}

/* list(dir) -> { "a.lua", "lib/m.lua", ... } (unsorted) | nil, err */
static int l_list(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  char err[512];
  lua_newtable(L);
  if (luari_watch_list(dir, add_name, L, err, sizeof err) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  return 1;
}

static int l_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luari_host_t *host = luari_host_get(L);
  watch_ud_t *u = lua_newuserdata(L, sizeof *u);
  memset(u, 0, sizeof *u);
  u->host = host;
  u->fn_ref = u->self_ref = LUA_NOREF;
  luaL_getmetatable(L, WATCH_MT);
  lua_setmetatable(L, -2);
  char err[512];
  u->w = luari_watch_new(path, on_change, u, &host->log, err, sizeof err);
  if (!u->w) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  luari_ref_set(L, &u->fn_ref, 2);
  luari_ref_set(L, &u->self_ref, -1);
  luari_watch_ev_start(&u->ev, host->loop, u->w);
  return 1;
}

static watch_ud_t *check_open(lua_State *L) {
  watch_ud_t *u = luaL_checkudata(L, 1, WATCH_MT);
  if (!u->w)
    luaL_argerror(L, 1, "watcher is closed");
  return u;
}

static int l_resync(lua_State *L) {
  watch_ud_t *u = check_open(L);
  char err[512];
  if (luari_watch_resync(u->w, err, sizeof err) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int l_count(lua_State *L) {
  watch_ud_t *u = luaL_checkudata(L, 1, WATCH_MT);
  lua_pushinteger(L, u->w ? (lua_Integer)luari_watch_count(u->w) : 0);
  return 1;
}

static int l_close(lua_State *L) {
  watch_ud_t *u = luaL_checkudata(L, 1, WATCH_MT);
  stop(u);
  luari_ref_clear(L, &u->fn_ref);
  luari_ref_clear(L, &u->self_ref);
  return 0;
}

static int l_gc(lua_State *L) {
  stop(luaL_checkudata(L, 1, WATCH_MT));
  return 0;
}

int luaopen_luari_watch(lua_State *L) {
  static const luaL_Reg methods[] = {
    { "resync", l_resync }, { "count", l_count }, { "close", l_close }, { NULL, NULL }
  };
  static const luaL_Reg funcs[] = { { "open", l_open }, { "list", l_list }, { NULL, NULL } };
  luari_new_metatable(L, WATCH_MT, methods, l_gc);
  lua_newtable(L);
  luaL_register(L, NULL, funcs);
  return 1;
}
