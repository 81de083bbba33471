/* libFuzzer target: a text message from the events WebSocket, through
 * what luari does with it: cjson decoding in C, routing, and the
 * dispatcher with flows running (on a backend that answers nothing). */
#include "../../bindings/host.h"

#include <lauxlib.h>
#include <luajit.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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

static const char HARNESS[] =
    "local App = require 'luari.app'\n"
    "local Runtime = require 'luari.runtime'\n"
    "local flows = require 'luari.flows'\n"
    "local backend = {\n"
    "  request = function(m, s, q, b, t, cb) return { cancel = function() end } end,\n"
    "  timer = function(s, fn) return { stop = function() end } end,\n"
    "  now = function() return 0 end,\n"
    "  log = function() end,\n"
    "}\n"
    "local gen = setmetatable({ flows = { f = function(call) call:answer() call:wait_event('X', 1) end },\n"
    "  files = {}, number = 1, single = 'f' }, flows.Generation)\n"
    "local rt = Runtime.new(backend)\n"
    "local function new_app() return App.new({ rt = rt, generation = gen, apps = { 'luari' } }) end\n"
    "local app = new_app()\n"
    "-- Calls here never end (no timer fires): start afresh now and then, so\n"
    "-- that memory stays bounded however long the fuzzer runs.\n"
    "return function(ev)\n"
    "  if app.stats.calls >= 1000 then app = new_app() end\n"
    "  app:on_event(ev)\n"
    "end\n";

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
  if (luaL_loadstring(L, HARNESS) != 0 || lua_pcall(L, 0, 1, 0) != 0) {
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
    if (lua_pcall(L, 1, 0, 0) != 0) {
      /* A Lua error on any event is a bug: events must never raise. */
      fprintf(stderr, "dispatch raised: %s\n", lua_tostring(L, -1));
      abort();
    }
  }
  lua_settop(L, top);
  return 0;
}
