/* luari.http: ARI REST requests from Lua. */
#ifndef LUARI_BINDINGS_HTTP_H
#define LUARI_BINDINGS_HTTP_H

#include "../core/buf.h"
#include "host.h"

/* Builds the request URL (base + escaped path segments + query) and the JSON
 * body from the Lua values at seg_idx (array of strings), query_idx (flat
 * array: name, value, ...; a value may be an array for comma separated lists)
 * and body_idx (table or nil). Returns 0, or -1 with a message pushed. */
int luari_http_build(luari_host_t *host, lua_State *L, int seg_idx, int query_idx, int body_idx,
                     luari_buf_t *url, luari_buf_t *body);

#endif
