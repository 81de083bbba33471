/* The host struct, the Lua state it opens, and the C-to-Lua entry point. */
#include "host.h"

#include "../core/http_ev.h"
#include "scripts.h"

#include <lauxlib.h>
#include <lua-cjson.h>
#include <luajit.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

static const char HOST_KEY[] = "luari.host";

luari_host_t *luari_host_new(struct ev_loop *loop) {
  luari_host_t *host = calloc(1, sizeof *host);
  if (!host)
    return NULL;
  host->loop = loop;
  luari_log_init(&host->log);
  host->timeout_ms = 10000;
  host->json_decode_ref = host->json_encode_ref = host->rest_pending_ref = LUA_NOREF;
  return host;
}

luari_host_t *luari_host_get(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, HOST_KEY);
  luari_host_t *host = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return host;
}

luari_http_t *luari_host_http(luari_host_t *host) {
  if (!host->http)
    host->http = luari_http_new_ev(host->loop, &host->log);
  return host->http;
}

void luari_ref_set(lua_State *L, int *ref, int idx) {
  lua_pushvalue(L, idx);
  luari_ref_clear(L, ref);
  *ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

void luari_ref_clear(lua_State *L, int *ref) {
  if (*ref != LUA_NOREF && *ref != LUA_REFNIL)
    luaL_unref(L, LUA_REGISTRYINDEX, *ref);
  *ref = LUA_NOREF;
}

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg)
    msg = luaL_typename(L, 1);
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int luari_host_call(luari_host_t *host, int nargs, int nresults, const char *where) {
  lua_State *L = host->L;
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  int rc = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  if (rc == 0)
    return 0;
  luari_log(&host->log, LUARI_LOG_ERROR, "%s: %s", where, lua_tostring(L, -1));
  lua_pop(L, 1);
  return -1;
}

int luari_json_decode(luari_host_t *host, lua_State *L, const char *s, size_t len) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, host->json_decode_ref);
  lua_pushlstring(L, s, len);
  if (lua_pcall(L, 1, 1, 0) != 0)
    return -1;
  return 0;
}

int luari_json_encode(luari_host_t *host, lua_State *L, int idx, const char **out, size_t *len) {
  idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
  lua_rawgeti(L, LUA_REGISTRYINDEX, host->json_encode_ref);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != 0) {
    *out = lua_tostring(L, -1);
    *len = 0;
    return -1;
  }
  *out = lua_tolstring(L, -1, len);
  return 0;
}

void luari_new_metatable(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  luaL_register(L, NULL, methods);
  lua_setfield(L, -2, "__index");
  if (gc) {
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
}

/* package.preload loader for a built-in script (upvalue: its index). */
static int load_script(lua_State *L) {
  size_t i = (size_t)lua_tointeger(L, lua_upvalueindex(1));
  const luari_script_t *s = &luari_scripts[i];
  if (luaL_loadbuffer(L, (const char *)s->code, s->size, s->name) != 0)
    return lua_error(L);
  lua_pushstring(L, s->name);
  lua_call(L, 1, 1);
  return 1;
}

static void preload(lua_State *L, const char *name, lua_CFunction fn) {
  lua_getfield(L, LUA_GLOBALSINDEX, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, fn);
  lua_setfield(L, -2, name);
  lua_pop(L, 2);
}

static void preload_scripts(lua_State *L) {
  /* LUARI_SCRIPTS=dir runs the Lua side from source, for development. */
  const char *dir = getenv("LUARI_SCRIPTS");
  lua_getfield(L, LUA_GLOBALSINDEX, "package");
  if (dir && *dir) {
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", dir, dir);
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    return;
  }
  lua_getfield(L, -1, "preload");
  for (size_t i = 0; i < luari_nscripts; i++) {
    lua_pushinteger(L, (lua_Integer)i);
    lua_pushcclosure(L, load_script, 1);
    lua_setfield(L, -2, luari_scripts[i].name);
  }
  lua_pop(L, 2);
}

static int keep_json_functions(luari_host_t *host) {
  lua_State *L = host->L;
  lua_getfield(L, LUA_GLOBALSINDEX, "require");
  lua_pushstring(L, "cjson");
  if (lua_pcall(L, 1, 1, 0) != 0)
    return -1;
  lua_getfield(L, -1, "decode");
  luari_ref_set(L, &host->json_decode_ref, -1);
  lua_pop(L, 1);
  lua_getfield(L, -1, "encode");
  luari_ref_set(L, &host->json_encode_ref, -1);
  lua_pop(L, 2);
  return 0;
}

int luari_host_open_lua(luari_host_t *host) {
  lua_State *L = luaL_newstate();
  if (!L)
    return -1;
  host->L = L;
  luaL_openlibs(L);
  /* LuaJIT's interpreter only. The trace compiler of Debian 12's LuaJIT
   * (2.1.0-beta3 of 2022) crashed `luari run` in 7 of 9 soak runs (30
   * virtual minutes of traffic and faults each): compiled event dispatch
   * read through a clobbered register, once traced to a stitched side
   * trace (with stitching off, 4 of 4 runs were clean, but other trace
   * bugs of that release stay possible). Flows ran interpreted anyway
   * (the instruction budget needs hooks); for luari's own Lua the
   * compiler saved 4-10% of CPU at 1,000 calls a second. */
  luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
  lua_pushlightuserdata(L, host);
  lua_setfield(L, LUA_REGISTRYINDEX, HOST_KEY);
  preload(L, "cjson", luaopen_cjson);
  preload(L, "luari.loop", luaopen_luari_loop);
  preload(L, "luari.http", luaopen_luari_http);
  preload(L, "luari.events", luaopen_luari_events);
  preload(L, "luari.simserver", luaopen_luari_simserver);
  preload(L, "luari.watch", luaopen_luari_watch);
  preload_scripts(L);
  return keep_json_functions(host);
}

void luari_host_free(luari_host_t *host) {
  if (!host)
    return;
  if (host->L) {
    /* Userdata finalizers stop their watchers and cancel their requests. */
    lua_close(host->L);
    host->L = NULL;
  }
  luari_http_free(host->http);
  free(host);
}
