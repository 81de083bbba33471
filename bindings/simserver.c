/* luari.simserver: the network face of the simulated Asterisk, from Lua.
 * C serves HTTP and WebSocket bytes; Lua (luari.sim.server) decides what
 * every request gets. */
#include "host.h"

#include "../core/simserver.h"

#include <lauxlib.h>
#include <string.h>

#define SERVER_MT "luari.simserver"
#define REQ_MT "luari.simserver.request"
#define CONN_MT "luari.simserver.conn"

typedef struct server_ud {
  luari_host_t *host;
  luari_simserver_t *srv;
  int on_request_ref;
  int on_open_ref;
  int on_message_ref;
  int on_close_ref;
  int conns_ref; /* lightuserdata(conn) -> conn userdata */
  int self_ref;
} server_ud_t;

typedef struct req_ud {
  luari_simreq_t *req; /* NULL once answered or gone */
} req_ud_t;

typedef struct conn_ud {
  luari_simconn_t *conn; /* NULL once closed */
} conn_ud_t;

/* --- requests --- */

static void req_gone(void *owner) {
  req_ud_t *r = owner;
  r->req = NULL;
}

static req_ud_t *check_req(lua_State *L) {
  return luaL_checkudata(L, 1, REQ_MT);
}

static luari_simreq_t *live_req(lua_State *L) {
  req_ud_t *r = check_req(L);
  if (!r->req)
    luaL_error(L, "the request has already been answered or its client went away");
  return r->req;
}

static int l_req_method(lua_State *L) {
  lua_pushstring(L, luari_simreq_method(live_req(L)));
  return 1;
}

static int l_req_path(lua_State *L) {
  lua_pushstring(L, luari_simreq_path(live_req(L)));
  return 1;
}

/* args() -> { name = value }, { { name, value }, ... } */
static int l_req_args(lua_State *L) {
  luari_simreq_t *req = live_req(L);
  size_t n = luari_simreq_nargs(req);
  lua_createtable(L, 0, (int)n);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    const char *name, *value;
    luari_simreq_arg(req, i, &name, &value);
    lua_pushstring(L, value);
    lua_setfield(L, -3, name);
    lua_createtable(L, 2, 0);
    lua_pushstring(L, name);
    lua_rawseti(L, -2, 1);
    lua_pushstring(L, value);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, (int)i + 1);
  }
  return 2;
}

static int l_req_header(lua_State *L) {
  const char *v = luari_simreq_header(live_req(L), luaL_checkstring(L, 2));
  if (v)
    lua_pushstring(L, v);
  else
    lua_pushnil(L);
  return 1;
}

static int l_req_body(lua_State *L) {
  size_t len;
  const char *body = luari_simreq_body(live_req(L), &len);
  lua_pushlstring(L, body, len);
  return 1;
}

static int l_req_received(lua_State *L) {
  lua_pushnumber(L, luari_simreq_received(live_req(L)));
  return 1;
}

static int l_req_is_upgrade(lua_State *L) {
  lua_pushboolean(L, luari_simreq_is_upgrade(live_req(L)));
  return 1;
}

static int l_req_pending(lua_State *L) {
  lua_pushboolean(L, check_req(L)->req != NULL);
  return 1;
}

/* Collects { name = value } into a NULL-terminated array on the C stack. */
static size_t collect_headers(lua_State *L, int idx, const char **out, size_t cap) {
  size_t n = 0;
  if (!lua_istable(L, idx))
    return 0;
  lua_pushnil(L);
  while (n + 2 < cap && lua_next(L, idx) != 0) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
      out[n++] = lua_tostring(L, -2);
      out[n++] = lua_tostring(L, -1); /* the table keeps it alive */
    }
    lua_pop(L, 1);
  }
  out[n] = NULL;
  return n;
}

/* respond(status, headers, body, ws_tag) -> true, or false when the client is gone */
static int l_req_respond(lua_State *L) {
  req_ud_t *r = check_req(L);
  int status = (int)luaL_checkinteger(L, 2);
  size_t len = 0;
  const char *body = luaL_optlstring(L, 4, "", &len);
  if (!r->req) {
    lua_pushboolean(L, 0);
    return 1;
  }
  const char *headers[2 * 16 + 1];
  collect_headers(L, 3, headers, sizeof headers / sizeof headers[0]);
  luari_simresp_t resp = { status, body, len, headers, (unsigned long)luaL_optnumber(L, 5, 0), 0, 0 };
  if (lua_isnumber(L, 6)) {
    /* respond(status, headers, body, nil, n): fault injection, the body cut after n bytes */
    resp.truncate = 1;
    resp.truncate_at = (size_t)lua_tonumber(L, 6);
  }
  luari_simreq_t *req = r->req;
  r->req = NULL;
  luari_simreq_set_owner(req, NULL, NULL);
  lua_pushboolean(L, luari_simreq_respond(req, &resp) == 0);
  return 1;
}

static int l_req_gc(lua_State *L) {
  req_ud_t *r = check_req(L);
  if (r->req) {
    /* Dropped without an answer: do not leave the client hanging. */
    static const char body[] = "{\"message\": \"No answer from the simulator\"}";
    luari_simresp_t resp = { 500, body, sizeof body - 1, NULL, 0, 0, 0 };
    luari_simreq_t *req = r->req;
    r->req = NULL;
    luari_simreq_set_owner(req, NULL, NULL);
    luari_simreq_respond(req, &resp);
  }
  return 0;
}

static void on_request(void *data, luari_simreq_t *req) {
  server_ud_t *s = data;
  lua_State *L = s->host->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->on_request_ref);
  req_ud_t *r = lua_newuserdata(L, sizeof *r);
  r->req = req;
  luaL_getmetatable(L, REQ_MT);
  lua_setmetatable(L, -2);
  luari_simreq_set_owner(req, r, req_gone);
  luari_host_call(s->host, 1, 0, "sim-server request");
}

/* --- WebSocket connections --- */

static conn_ud_t *check_conn(lua_State *L) {
  return luaL_checkudata(L, 1, CONN_MT);
}

/* Pushes the userdata for conn, creating it the first time. */
static void push_conn(server_ud_t *s, luari_simconn_t *conn, int create) {
  lua_State *L = s->host->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->conns_ref);
  lua_pushlightuserdata(L, conn);
  lua_rawget(L, -2);
  if (lua_isnil(L, -1) && create) {
    lua_pop(L, 1);
    conn_ud_t *c = lua_newuserdata(L, sizeof *c);
    c->conn = conn;
    luaL_getmetatable(L, CONN_MT);
    lua_setmetatable(L, -2);
    lua_pushlightuserdata(L, conn);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
  }
  lua_remove(L, -2);
}

static void forget_conn(server_ud_t *s, luari_simconn_t *conn) {
  lua_State *L = s->host->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->conns_ref);
  lua_pushlightuserdata(L, conn);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

static void on_ws_open(void *data, luari_simconn_t *conn) {
  server_ud_t *s = data;
  lua_State *L = s->host->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->on_open_ref);
  push_conn(s, conn, 1);
  luari_host_call(s->host, 1, 0, "sim-server websocket open");
}

static void on_ws_message(void *data, luari_simconn_t *conn, const char *msg, size_t len) {
  server_ud_t *s = data;
  lua_State *L = s->host->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->on_message_ref);
  push_conn(s, conn, 1);
  lua_pushlstring(L, msg, len);
  luari_host_call(s->host, 2, 0, "sim-server websocket message");
}

static void on_ws_close(void *data, luari_simconn_t *conn) {
  server_ud_t *s = data;
  lua_State *L = s->host->L;
  push_conn(s, conn, 1);
  conn_ud_t *c = lua_touserdata(L, -1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->on_close_ref);
  lua_pushvalue(L, -2);
  luari_host_call(s->host, 1, 0, "sim-server websocket close");
  c->conn = NULL;
  lua_pop(L, 1);
  forget_conn(s, conn);
}

static int l_conn_send(lua_State *L) {
  conn_ud_t *c = check_conn(L);
  size_t len;
  const char *text = luaL_checklstring(L, 2, &len);
  lua_pushboolean(L, c->conn && luari_simconn_send(c->conn, text, len) == 0);
  return 1;
}

static int l_conn_send_binary(lua_State *L) {
  conn_ud_t *c = check_conn(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  lua_pushboolean(L, c->conn && luari_simconn_send_binary(c->conn, data, len) == 0);
  return 1;
}

static int l_conn_send_raw(lua_State *L) {
  conn_ud_t *c = check_conn(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  lua_pushboolean(L, c->conn && luari_simconn_send_raw(c->conn, data, len) == 0);
  return 1;
}

static int l_conn_close(lua_State *L) {
  conn_ud_t *c = check_conn(L);
  if (c->conn)
    luari_simconn_close(c->conn, (int)luaL_optinteger(L, 2, 1000));
  return 0;
}

static int l_conn_tag(lua_State *L) {
  conn_ud_t *c = check_conn(L);
  if (!c->conn)
    return 0;
  lua_pushnumber(L, (double)luari_simconn_tag(c->conn));
  return 1;
}

static int l_conn_is_open(lua_State *L) {
  lua_pushboolean(L, check_conn(L)->conn != NULL);
  return 1;
}

/* --- the server --- */

static void set_callback(lua_State *L, int idx, const char *key, int *ref) {
  lua_getfield(L, idx, key);
  if (!lua_isfunction(L, -1))
    luaL_error(L, "luari.simserver.listen: %s must be a function", key);
  luari_ref_set(L, ref, -1);
  lua_pop(L, 1);
}

/* listen{ host, port, on_request, on_ws_open, on_ws_message, on_ws_close } -> server */
static int l_listen(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luari_host_t *host = luari_host_get(L);
  lua_getfield(L, 1, "host");
  const char *addr = luaL_optstring(L, -1, "127.0.0.1");
  lua_getfield(L, 1, "port");
  int port = (int)luaL_optinteger(L, -1, 8088);
  server_ud_t *s = lua_newuserdata(L, sizeof *s);
  memset(s, 0, sizeof *s);
  s->host = host;
  s->on_request_ref = s->on_open_ref = s->on_message_ref = s->on_close_ref = LUA_NOREF;
  s->conns_ref = s->self_ref = LUA_NOREF;
  luaL_getmetatable(L, SERVER_MT);
  lua_setmetatable(L, -2);
  set_callback(L, 1, "on_request", &s->on_request_ref);
  set_callback(L, 1, "on_ws_open", &s->on_open_ref);
  set_callback(L, 1, "on_ws_message", &s->on_message_ref);
  set_callback(L, 1, "on_ws_close", &s->on_close_ref);
  lua_newtable(L);
  luari_ref_set(L, &s->conns_ref, -1);
  lua_pop(L, 1);
  luari_simserver_handler_t h = { s, on_request, on_ws_open, on_ws_message, on_ws_close };
  s->srv = luari_simserver_new(host->loop, &host->log, addr, port, &h);
  if (!s->srv) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot listen on %s:%d", addr, port);
    return 2;
  }
  lua_getfield(L, 1, "write_timeout");
  if (lua_isnumber(L, -1))
    luari_simserver_set_write_timeout(s->srv, lua_tonumber(L, -1));
  lua_pop(L, 1);
  lua_getfield(L, 1, "idle_timeout");
  if (lua_isnumber(L, -1) && lua_tonumber(L, -1) >= 1)
    luari_simserver_set_idle_timeout(s->srv, (unsigned)lua_tonumber(L, -1));
  lua_pop(L, 1);
  luari_ref_set(L, &s->self_ref, -1);
  return 1;
}

static server_ud_t *check_server(lua_State *L) {
  return luaL_checkudata(L, 1, SERVER_MT);
}

static int l_port(lua_State *L) {
  server_ud_t *s = check_server(L);
  lua_pushinteger(L, s->srv ? luari_simserver_port(s->srv) : 0);
  return 1;
}

/* Conn handles outlive the server in Lua: make them inert. */
static void disown_conns(lua_State *L, server_ud_t *s) {
  if (s->conns_ref == LUA_NOREF)
    return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->conns_ref);
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    conn_ud_t *c = lua_touserdata(L, -1);
    if (c)
      c->conn = NULL;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void server_free(lua_State *L, server_ud_t *s) {
  disown_conns(L, s);
  if (s->srv) {
    luari_simserver_free(s->srv);
    s->srv = NULL;
  }
  luari_ref_clear(L, &s->on_request_ref);
  luari_ref_clear(L, &s->on_open_ref);
  luari_ref_clear(L, &s->on_message_ref);
  luari_ref_clear(L, &s->on_close_ref);
  luari_ref_clear(L, &s->conns_ref);
  luari_ref_clear(L, &s->self_ref);
}

static int l_close(lua_State *L) {
  server_free(L, check_server(L));
  return 0;
}

/* Also what frees the callbacks of a server that never started listening. */
static int l_server_gc(lua_State *L) {
  server_free(L, check_server(L));
  return 0;
}

int luaopen_luari_simserver(lua_State *L) {
  static const luaL_Reg server_methods[] = { { "port", l_port }, { "close", l_close }, { NULL, NULL } };
  static const luaL_Reg req_methods[] = { { "method", l_req_method },   { "path", l_req_path },
                                          { "args", l_req_args },       { "header", l_req_header },
                                          { "body", l_req_body },       { "is_upgrade", l_req_is_upgrade },
                                          { "respond", l_req_respond }, { "pending", l_req_pending },
                                          { "received", l_req_received },
                                          { NULL, NULL } };
  static const luaL_Reg conn_methods[] = { { "send", l_conn_send },         { "send_binary", l_conn_send_binary },
                                           { "send_raw", l_conn_send_raw }, { "close", l_conn_close },
                                           { "tag", l_conn_tag },           { "is_open", l_conn_is_open },
                                           { NULL, NULL } };
  static const luaL_Reg funcs[] = { { "listen", l_listen }, { NULL, NULL } };
  luari_new_metatable(L, SERVER_MT, server_methods, l_server_gc);
  luari_new_metatable(L, REQ_MT, req_methods, l_req_gc);
  luari_new_metatable(L, CONN_MT, conn_methods, NULL);
  lua_newtable(L);
  luaL_register(L, NULL, funcs);
  return 1;
}
