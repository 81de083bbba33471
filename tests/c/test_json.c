/* JSON in C through lua-cjson: every event Asterisk sent in the captures
 * decodes and routes; request URLs and bodies are built as ARI expects. */
#include "../../bindings/host.h"
#include "../../bindings/http.h"
#include "test.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <unistd.h>

static const char *samples_dir(void) {
  static const char *const candidates[] = { "../shared/ari-samples", "/work/shared/ari-samples", NULL };
  const char *env = getenv("LUARI_SAMPLES");
  if (env && *env)
    return env;
  for (int i = 0; candidates[i]; i++)
    if (access(candidates[i], R_OK) == 0)
      return candidates[i];
  return NULL;
}

static int route_count(lua_State *L) {
  /* router.keys(ev) -> channels, bridges: how many keys in all */
  lua_getfield(L, LUA_GLOBALSINDEX, "require");
  lua_pushstring(L, "luari.router");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "keys");
  lua_pushvalue(L, -3);
  lua_call(L, 1, 2);
  int n = (int)(lua_objlen(L, -1) + lua_objlen(L, -2));
  lua_pop(L, 3);
  return n;
}

static void test_events(luari_host_t *host) {
  lua_State *L = host->L;
  const char *dir = samples_dir();
  CHECK(dir != NULL, "ari-samples found (set LUARI_SAMPLES)");
  if (!dir)
    return;
  char path[512];
  snprintf(path, sizeof path, "%s/events.jsonl", dir);
  FILE *f = fopen(path, "r");
  CHECK(f != NULL, "open %s", path);
  if (!f)
    return;
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int events = 0, decoded = 0, typed = 0, routed = 0, channel_events = 0;
  while ((n = getline(&line, &cap, f)) > 0) {
    if (luari_json_decode(host, L, line, (size_t)n) != 0) {
      lua_pop(L, 1);
      continue;
    }
    lua_getfield(L, -1, "event");
    if (lua_istable(L, -1)) {
      events++;
      /* The frame as Asterisk sent it, encoded again, then decoded as luari does. */
      const char *text;
      size_t len;
      if (luari_json_encode(host, L, -1, &text, &len) == 0 &&
          luari_json_decode(host, L, text, len) == 0 && lua_istable(L, -1)) {
        decoded++;
        lua_getfield(L, -1, "type");
        typed += lua_isstring(L, -1);
        lua_pop(L, 1);
        lua_getfield(L, -1, "channel");
        int has_channel = lua_istable(L, -1);
        lua_pop(L, 1);
        if (has_channel) {
          channel_events++;
          routed += route_count(L) > 0;
        }
      }
      lua_pop(L, 2);
    }
    lua_pop(L, 2);
  }
  free(line);
  fclose(f);
  CHECK(events > 400, "the captures hold %d events", events);
  CHECK(decoded == events, "every event decodes (%d of %d)", decoded, events);
  CHECK(typed == events, "every event has a type");
  CHECK(routed == channel_events, "every channel event routes to its channel (%d of %d)", routed, channel_events);
}

static void test_bad_json(luari_host_t *host) {
  lua_State *L = host->L;
  const char *bad[] = { "{\"type\": \"StasisStart\"", "[1,2", "nul", "{\"a\" 1}", "" };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int top = lua_gettop(L);
    int rc = luari_json_decode(host, L, bad[i], strlen(bad[i]));
    CHECK(rc == -1, "malformed JSON '%s' is an error, not a crash", bad[i]);
    lua_settop(L, top);
  }
}

static void test_build(luari_host_t *host) {
  lua_State *L = host->L;
  (void)luaL_dostring(L, "require('luari.http').configure{ url = 'http://127.0.0.1:8088/ari' }");
  (void)luaL_dostring(L, "return { 'channels' }, { 'endpoint', 'Local/1000@ivr', 'app', 'luari', "
                   "'appArgs', 'a b,c' }, { variables = { ['CALLERID(name)'] = 'Alice' } }");
  luari_buf_t url = LUARI_BUF_INIT, body = LUARI_BUF_INIT;
  int top = lua_gettop(L);
  CHECK(luari_http_build(host, L, top - 2, top - 1, top, &url, &body) == 0, "build a request");
  CHECK_STR(url.data, "http://127.0.0.1:8088/ari/channels?endpoint=Local%2F1000%40ivr&app=luari&appArgs=a%20b%2Cc",
            "URL: endpoint escaped, parameters in order");
  CHECK_STR(body.data, "{\"variables\":{\"CALLERID(name)\":\"Alice\"}}", "variables go as a JSON body");
  luari_buf_free(&url);
  luari_buf_free(&body);
  lua_settop(L, 0);

  (void)luaL_dostring(L, "return { 'channels', 'PJSIP/100;2', 'play' }, { 'media', { 'sound:hello-world', 'digits:42' } }");
  top = lua_gettop(L);
  CHECK(luari_http_build(host, L, top - 1, top, top + 1, &url, &body) == 0 && body.data == NULL,
        "build without a body");
  CHECK_STR(url.data, "http://127.0.0.1:8088/ari/channels/PJSIP%2F100%3B2/play?media=sound%3Ahello-world,digits%3A42",
            "path id escaped; a list joined by commas");
  luari_buf_free(&url);
  lua_settop(L, 0);

  (void)luaL_dostring(L, "return { 'channels' }, { 'endpoint', { 1, {} } }");
  top = lua_gettop(L);
  CHECK(luari_http_build(host, L, top - 1, top, top + 1, &url, &body) == -1, "a list of non-strings is refused");
  luari_buf_free(&url);
  lua_settop(L, 0);
}

int main(void) {
  struct ev_loop *loop = ev_default_loop(0);
  luari_host_t *host = luari_host_new(loop);
  if (!host || luari_host_open_lua(host) != 0) {
    printf("not ok 1 - host starts\n1..1\n");
    return 1;
  }
  test_events(host);
  test_bad_json(host);
  test_build(host);
  luari_host_free(host);
  ev_loop_destroy(loop);
  TEST_DONE();
}
