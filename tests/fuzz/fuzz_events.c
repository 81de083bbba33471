/* libFuzzer target: a text message from the events WebSocket, through
 * what luari does with it: cjson decoding in C, routing, and the
 * dispatcher with flows waiting in each call method (events_harness.lua). */
#include "../../bindings/host.h"

#include <lauxlib.h>
#include <luajit.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libFuzzer only sees coverage of C code; the routing and dispatch are Lua.
 * A line hook turns every Lua line run into a feature in these extra
 * counters, so mutations that reach new Lua code are kept. */
#ifdef __clang__
__attribute__((section("__libfuzzer_extra_counters")))
#endif
static uint8_t lua_lines[1 << 16];

static void line_hook(lua_State *L, lua_Debug *ar) {
  if (lua_getinfo(L, "S", ar) == 0)
    return;
  uintptr_t h = (uintptr_t)ar->source * 31u + (uintptr_t)ar->currentline * 2654435761u;
  lua_lines[h % sizeof lua_lines]++;
}

static luari_host_t *host;
static int dispatch_ref = LUA_NOREF;

/* tests/fuzz/events_harness.lua, found beside this file. */
static const char *harness_path(void) {
  static char path[512];
  const char *file = __FILE__;
  const char *slash = strrchr(file, '/');
  int dir_len = slash ? (int)(slash - file) + 1 : 0;
  snprintf(path, sizeof path, "%.*sevents_harness.lua", dir_len, file);
  return path;
}

static void free_host(void) {
  luari_host_free(host);
  host = NULL;
}

static int dispatch(const uint8_t *data, size_t size);

/* Lazy one-time allocations (cjson's encode buffer, ...) happen here, not
 * inside the first input, where libFuzzer would count them as a leak. */
static const char WARM_UP[] =
    "{\"type\":\"StasisStart\",\"args\":[],\"application\":\"luari\",\"channel\":{\"id\":\"w\","
    "\"state\":\"Up\"}}";

static int init(void) {
  struct ev_loop *loop = ev_default_loop(0);
  host = luari_host_new(loop);
  if (!host || luari_host_open_lua(host) != 0)
    return -1;
  lua_State *L = host->L;
  /* Compiled code calls no hooks: interpret everything. */
  luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
  if (luaL_loadfile(L, harness_path()) != 0 || lua_pcall(L, 0, 1, 0) != 0) {
    fprintf(stderr, "fuzz harness: %s\n", lua_tostring(L, -1));
    return -1;
  }
  /* After the harness: the runtime it made set its own (instruction
   * budget) hook, and Lua has one hook at a time. */
  lua_sethook(L, line_hook, LUA_MASKLINE, 0);
  luari_ref_set(L, &dispatch_ref, -1);
  lua_pop(L, 1);
  atexit(free_host);
  dispatch((const uint8_t *)WARM_UP, sizeof WARM_UP - 1);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!host && init() != 0)
    abort(); /* the harness itself is broken: stop the fuzzer */
  return dispatch(data, size);
}

static int dispatch(const uint8_t *data, size_t size) {
  lua_State *L = host->L;
  int top = lua_gettop(L);
  if (luari_json_decode(host, L, (const char *)data, size) == 0 && lua_istable(L, -1)) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, dispatch_ref);
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 1, 0) != 0) {
      /* A Lua error on any event is a bug: events must never raise. */
      fprintf(stderr, "dispatch raised: %s\n", lua_tostring(L, -1));
      abort();
    }
    if (lua_isstring(L, -1)) {
      /* Nor may they make a flow, or luari's own code, fail. */
      fprintf(stderr, "dispatch failed: %s\n", lua_tostring(L, -1));
      abort();
    }
  }
  lua_settop(L, top);
  return 0;
}
