/* luari.loop: the event loop seen from Lua: monotonic time, one-shot
 * timers, signals, logging, run and stop. */
#include "host.h"
#include "../core/clock.h"

#include <lauxlib.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TIMER_MT "luari.loop.timer"
#define SIGNAL_MT "luari.loop.signal"

typedef struct timer_ud {
  ev_timer timer;
  luari_host_t *host;
  int fn_ref;   /* the callback */
  int self_ref; /* keeps the userdata alive while the timer runs */
} timer_ud_t;

typedef struct signal_ud {
  ev_signal sig;
  luari_host_t *host;
  int fn_ref;
  int self_ref;
} signal_ud_t;

static int l_now(lua_State *L) {
  lua_pushnumber(L, luari_monotonic_now());
  return 1;
}

static int l_wall(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
  return 1;
}

/* stat(path) -> { mode = n, uid = n } or nil, message */
static int l_stat(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(errno));
    return 2;
  }
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
  lua_setfield(L, -2, "mode");
  lua_pushinteger(L, (lua_Integer)st.st_uid);
  lua_setfield(L, -2, "uid");
  return 1;
}

static void timer_release(timer_ud_t *t) {
  lua_State *L = t->host->L;
  ev_timer_stop(t->host->loop, &t->timer);
  luari_ref_clear(L, &t->fn_ref);
  luari_ref_clear(L, &t->self_ref);
}

static void on_timer(EV_P_ ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  timer_ud_t *t = w->data;
  luari_host_t *host = t->host;
  lua_State *L = host->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->fn_ref);
  /* Released before the call: the callback may start a new timer at once. */
  timer_release(t);
  luari_host_call(host, 0, 0, "timer");
}

/* timer(seconds, fn) -> handle with :stop() */
static int l_timer(lua_State *L) {
  double after = luaL_checknumber(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luari_host_t *host = luari_host_get(L);
  timer_ud_t *t = lua_newuserdata(L, sizeof *t);
  memset(t, 0, sizeof *t);
  t->host = host;
  t->fn_ref = t->self_ref = LUA_NOREF;
  luaL_getmetatable(L, TIMER_MT);
  lua_setmetatable(L, -2);
  luari_ref_set(L, &t->fn_ref, 2);
  luari_ref_set(L, &t->self_ref, -1);
  ev_timer_init(&t->timer, on_timer, after > 0 ? after : 0.0, 0.0);
  t->timer.data = t;
  /* From now, not from when the loop last woke: Lua may have run for long
   * since (a flow blocking, a large batch of events), and libev counts a
   * new timer from its cached time. */
  ev_now_update(host->loop);
  ev_timer_start(host->loop, &t->timer);
  return 1;
}

static int l_timer_stop(lua_State *L) {
  timer_ud_t *t = luaL_checkudata(L, 1, TIMER_MT);
  if (t->host)
    timer_release(t);
  return 0;
}

static int l_timer_active(lua_State *L) {
  timer_ud_t *t = luaL_checkudata(L, 1, TIMER_MT);
  lua_pushboolean(L, t->host && ev_is_active(&t->timer));
  return 1;
}

static int l_timer_gc(lua_State *L) {
  timer_ud_t *t = luaL_checkudata(L, 1, TIMER_MT);
  if (t->host)
    ev_timer_stop(t->host->loop, &t->timer);
  return 0;
}

static void on_signal(EV_P_ ev_signal *w, int revents) {
  (void)loop;
  (void)revents;
  signal_ud_t *s = w->data;
  lua_rawgeti(s->host->L, LUA_REGISTRYINDEX, s->fn_ref);
  lua_pushinteger(s->host->L, w->signum);
  luari_host_call(s->host, 1, 0, "signal");
}

static int signal_number(lua_State *L, int idx) {
  static const struct {
    const char *name;
    int num;
  } names[] = { { "INT", SIGINT }, { "TERM", SIGTERM }, { "HUP", SIGHUP }, { "USR1", SIGUSR1 },
                { "USR2", SIGUSR2 } };
  const char *name = luaL_checkstring(L, idx);
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(name, names[i].name) == 0)
      return names[i].num;
  return luaL_argerror(L, idx, "unknown signal (INT, TERM, HUP, USR1, USR2)");
}

/* signal(name, fn) -> handle with :stop() */
static int l_signal(lua_State *L) {
  int signum = signal_number(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luari_host_t *host = luari_host_get(L);
  signal_ud_t *s = lua_newuserdata(L, sizeof *s);
  memset(s, 0, sizeof *s);
  s->host = host;
  s->fn_ref = s->self_ref = LUA_NOREF;
  luaL_getmetatable(L, SIGNAL_MT);
  lua_setmetatable(L, -2);
  luari_ref_set(L, &s->fn_ref, 2);
  luari_ref_set(L, &s->self_ref, -1);
  ev_signal_init(&s->sig, on_signal, signum);
  s->sig.data = s;
  ev_signal_start(host->loop, &s->sig);
  return 1;
}

static int l_signal_stop(lua_State *L) {
  signal_ud_t *s = luaL_checkudata(L, 1, SIGNAL_MT);
  ev_signal_stop(s->host->loop, &s->sig);
  luari_ref_clear(L, &s->fn_ref);
  luari_ref_clear(L, &s->self_ref);
  return 0;
}

static int l_signal_gc(lua_State *L) {
  signal_ud_t *s = luaL_checkudata(L, 1, SIGNAL_MT);
  ev_signal_stop(s->host->loop, &s->sig);
  return 0;
}

static int l_run(lua_State *L) {
  luari_host_t *host = luari_host_get(L);
  ev_run(host->loop, 0);
  return 0;
}

static int l_stop(lua_State *L) {
  luari_host_t *host = luari_host_get(L);
  ev_break(host->loop, EVBREAK_ALL);
  return 0;
}

/* log(level, message [, fields]) where fields is a table of strings. */
static int is_leading_field(const char *name) {
  return strcmp(name, "call") == 0 || strcmp(name, "flow") == 0;
}

/* A log line's fields from the table at idx, as name, value pairs: call
 * and flow first, in that order (people grep for "[call=... flow=..."),
 * then the others in the table's order. The strings stay in the table. */
static size_t log_fields(lua_State *L, int idx, const char **fields, size_t max) {
  static const char *const leading[] = { "call", "flow" };
  size_t n = 0;
  for (size_t i = 0; i < 2; i++) {
    lua_getfield(L, idx, leading[i]);
    if (lua_type(L, -1) == LUA_TSTRING && n + 2 <= max) {
      fields[n++] = leading[i];
      fields[n++] = lua_tostring(L, -1);
    }
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (n + 2 <= max && lua_next(L, idx) != 0) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING
        && !is_leading_field(lua_tostring(L, -2))) {
      fields[n++] = lua_tostring(L, -2);
      fields[n++] = lua_tostring(L, -1);
    }
    lua_pop(L, 1);
  }
  return n;
}

static int l_log(lua_State *L) {
  luari_host_t *host = luari_host_get(L);
  int level = luari_log_level_parse(luaL_checkstring(L, 1));
  if (level < 0)
    return luaL_argerror(L, 1, "level must be debug, info, warn or error");
  if (!luari_log_enabled(&host->log, level))
    return 0;
  const char *msg = luaL_checkstring(L, 2);
  const char *fields[2 * 8 + 1];
  size_t n = lua_istable(L, 3) ? log_fields(L, 3, fields, 2 * 8) : 0;
  fields[n] = NULL;
  luari_log_fields(&host->log, level, fields, msg);
  return 0;
}

static int l_log_enabled(lua_State *L) {
  luari_host_t *host = luari_host_get(L);
  int level = luari_log_level_parse(luaL_checkstring(L, 1));
  lua_pushboolean(L, level >= 0 && luari_log_enabled(&host->log, level));
  return 1;
}

/* set_log{ level = "debug", format = "json" } */
static int l_set_log(lua_State *L) {
  luari_host_t *host = luari_host_get(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "level");
  if (!lua_isnil(L, -1)) {
    int level = luari_log_level_parse(luaL_checkstring(L, -1));
    if (level < 0)
      return luaL_error(L, "log level must be debug, info, warn or error");
    host->log.level = level;
  }
  lua_getfield(L, 1, "format");
  if (!lua_isnil(L, -1)) {
    const char *f = luaL_checkstring(L, -1);
    if (strcmp(f, "json") != 0 && strcmp(f, "text") != 0)
      return luaL_error(L, "log format must be text or json");
    host->log.format = strcmp(f, "json") == 0 ? LUARI_LOG_JSON : LUARI_LOG_TEXT;
  }
  return 0;
}

int luaopen_luari_loop(lua_State *L) {
  static const luaL_Reg timer_methods[] = { { "stop", l_timer_stop },
                                            { "active", l_timer_active },
                                            { NULL, NULL } };
  static const luaL_Reg signal_methods[] = { { "stop", l_signal_stop }, { NULL, NULL } };
  static const luaL_Reg funcs[] = { { "now", l_now },         { "wall", l_wall },
                                    { "timer", l_timer },     { "signal", l_signal },
                                    { "run", l_run },         { "stop", l_stop },
                                    { "log", l_log },         { "log_enabled", l_log_enabled },
                                    { "set_log", l_set_log }, { "stat", l_stat },
                                    { NULL, NULL } };
  luari_new_metatable(L, TIMER_MT, timer_methods, l_timer_gc);
  luari_new_metatable(L, SIGNAL_MT, signal_methods, l_signal_gc);
  lua_newtable(L);
  luaL_register(L, NULL, funcs);
  return 1;
}
