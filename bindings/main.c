/* luari's main: a libev loop, a Lua state with every module built in, and
 * luari.main (Lua) to read the command line and run the subcommand. */
#include "host.h"

#include <curl/curl.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>

static int traceback(lua_State *L) {
  luaL_traceback(L, L, lua_tostring(L, 1), 1);
  return 1;
}

static int run_main(luari_host_t *host, int argc, char **argv) {
  lua_State *L = host->L;
  lua_pushcfunction(L, traceback);
  lua_getfield(L, LUA_GLOBALSINDEX, "require");
  lua_pushstring(L, "luari.main");
  if (lua_pcall(L, 1, 1, 1) != 0) {
    fprintf(stderr, "luari: %s\n", lua_tostring(L, -1));
    return 70;
  }
  lua_getfield(L, -1, "main");
  lua_createtable(L, argc, 0);
  for (int i = 1; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  if (lua_pcall(L, 1, 1, 1) != 0) {
    fprintf(stderr, "luari: internal error: %s\n", lua_tostring(L, -1));
    return 70;
  }
  return lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : 0;
}

int main(int argc, char **argv) {
  /* A peer that closes its socket must not kill the process. */
  signal(SIGPIPE, SIG_IGN);
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
    fprintf(stderr, "luari: cannot initialise libcurl\n");
    return 70;
  }
  struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
  luari_host_t *host = loop ? luari_host_new(loop) : NULL;
  if (!host || luari_host_open_lua(host) != 0) {
    fprintf(stderr, "luari: cannot start (out of memory?)\n");
    luari_host_free(host);
    curl_global_cleanup();
    return 70;
  }
  int rc = run_main(host, argc, argv);
  luari_host_free(host);
  ev_loop_destroy(loop);
  curl_global_cleanup();
  return rc;
}
