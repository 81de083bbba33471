/* HTTP requests on curl's multi interface. The loop reaches curl only
 * through luari_http_on_socket/on_timeout; completions are read with
 * curl_multi_info_read after every action, before the handle is removed.
 * Finished easy handles are reset and kept for the next request. */
#include "http.h"

#include "buf.h"
#include "url.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct luari_http_req {
  luari_http_t *http;
  CURL *easy;
  luari_buf_t body;
  char reason[64];
  char errbuf[CURL_ERROR_SIZE];
  int socket_errno;  /* why socket() failed, when it did */
  luari_http_done_fn done;
  luari_http_connected_fn connected;
  void *ud;
  luari_http_req_t *prev, *next;
};

struct luari_http {
  CURLM *multi;
  luari_http_hooks_t hooks;
  luari_log_t *log;
  char *auth_header;
  struct curl_slist *plain_headers; /* auth, no Expect */
  struct curl_slist *json_headers;  /* the same plus Content-Type */
  int insecure;
  char *ca_file;
  luari_http_req_t *reqs;           /* every request in flight */
  int nreqs;
  CURL *pool[64];                   /* finished easy handles, reset for reuse */
  int npool;
};

static void link_req(luari_http_t *http, luari_http_req_t *r) {
  r->next = http->reqs;
  if (http->reqs)
    http->reqs->prev = r;
  http->reqs = r;
  http->nreqs++;
}

static void unlink_req(luari_http_t *http, luari_http_req_t *r) {
  if (r->prev)
    r->prev->next = r->next;
  else
    http->reqs = r->next;
  if (r->next)
    r->next->prev = r->prev;
  http->nreqs--;
}

/* curl_easy_reset keeps a handle's buffers and caches, so the next request
 * starts with less to allocate. */
static void release_easy(luari_http_t *http, CURL *e) {
  if (http->npool < (int)(sizeof http->pool / sizeof http->pool[0])) {
    curl_easy_reset(e);
    http->pool[http->npool++] = e;
  } else {
    curl_easy_cleanup(e);
  }
}

static void free_req(luari_http_req_t *r) {
  luari_http_t *http = r->http;
  unlink_req(http, r);
  curl_multi_remove_handle(http->multi, r->easy);
  release_easy(http, r->easy);
  luari_buf_free(&r->body);
  free(r);
}

static luari_http_err_t map_curl_error(CURLcode rc) {
  switch (rc) {
  case CURLE_OK:
    return LUARI_HTTP_OK;
  case CURLE_OPERATION_TIMEDOUT:
    return LUARI_HTTP_TIMEOUT;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_CONNECT:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
  case CURLE_WEIRD_SERVER_REPLY:
    return LUARI_HTTP_CONN;
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    return LUARI_HTTP_TLS;
  default:
    return LUARI_HTTP_ERROR;
  }
}

/* curl names the failure but not always its cause: a socket() refused for
 * want of file descriptors reads "Couldn't connect to server". The cause is
 * added when curl left it out. */
static const char *errmsg_for(luari_http_req_t *r, CURLcode rc) {
  if (!r->errbuf[0])
    snprintf(r->errbuf, sizeof r->errbuf, "%s", curl_easy_strerror(rc));
  long os_errno = r->socket_errno;
  if (!os_errno)
    curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os_errno);
  if (os_errno) {
    char tmp[128];
    const char *why = strerror_r((int)os_errno, tmp, sizeof tmp);
    size_t len = strlen(r->errbuf);
    if (!strstr(r->errbuf, why) && len + strlen(why) + 4 <= sizeof r->errbuf)
      snprintf(r->errbuf + len, sizeof r->errbuf - len, " (%s)", why);
  }
  return r->errbuf;
}

/* curl's own socket(), but with errno kept for the message above. */
static curl_socket_t open_socket(void *data, curlsocktype purpose, struct curl_sockaddr *addr) {
  luari_http_req_t *r = data;
  (void)purpose;
  int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
  r->socket_errno = fd < 0 ? errno : 0; /* the last try's, not an earlier address's */
  return fd < 0 ? CURL_SOCKET_BAD : fd;
}

static void finish_request(luari_http_req_t *r, CURLcode rc) {
  luari_http_result_t res;
  memset(&res, 0, sizeof res);
  res.err = map_curl_error(rc);
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res.status);
  char *ct = NULL;
  curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct);
  res.content_type = ct;
  res.reason = r->reason;
  res.body = r->body.data ? r->body.data : "";
  res.body_len = r->body.len;
  res.errmsg = res.err == LUARI_HTTP_OK ? NULL : errmsg_for(r, rc);
  luari_http_done_fn done = r->done;
  void *ud = r->ud;
  /* The callback may start or cancel requests; curl must be done with this
   * handle first, and content_type lives until the handle is cleaned up. */
  unlink_req(r->http, r);
  curl_multi_remove_handle(r->http->multi, r->easy);
  luari_http_t *http = r->http;
  done(ud, &res);
  release_easy(http, r->easy);
  luari_buf_free(&r->body);
  free(r);
}

static void finish_connect(luari_http_req_t *r, CURLcode rc) {
  int fd = -1;
  luari_http_err_t err = map_curl_error(rc);
  const char *msg = err == LUARI_HTTP_OK ? NULL : errmsg_for(r, rc);
  if (err == LUARI_HTTP_OK) {
    curl_socket_t s = CURL_SOCKET_BAD;
    curl_easy_getinfo(r->easy, CURLINFO_ACTIVESOCKET, &s);
    /* curl closes its socket with the handle; the duplicate is ours. */
    fd = s == CURL_SOCKET_BAD ? -1 : fcntl(s, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
      err = LUARI_HTTP_ERROR;
      msg = "could not take over the connected socket";
    }
  }
  luari_http_connected_fn connected = r->connected;
  void *ud = r->ud;
  char errcopy[CURL_ERROR_SIZE];
  snprintf(errcopy, sizeof errcopy, "%s", msg ? msg : "");
  free_req(r);
  connected(ud, fd, err, fd >= 0 ? NULL : errcopy);
}

static void read_completions(luari_http_t *http) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(http->multi, &left))) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    luari_http_req_t *r = NULL;
    CURLcode rc = msg->data.result;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    if (!r)
      continue;
    if (r->connected)
      finish_connect(r, rc);
    else
      finish_request(r, rc);
  }
}

void luari_http_on_socket(luari_http_t *http, int fd, int readable, int writable) {
  int running;
  int flags = (readable ? CURL_CSELECT_IN : 0) | (writable ? CURL_CSELECT_OUT : 0);
  CURLMcode mc = curl_multi_socket_action(http->multi, fd, flags, &running);
  if (mc != CURLM_OK)
    luari_log(http->log, LUARI_LOG_ERROR, "http: %s", curl_multi_strerror(mc));
  read_completions(http);
}

void luari_http_on_timeout(luari_http_t *http) {
  int running;
  CURLMcode mc = curl_multi_socket_action(http->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  if (mc != CURLM_OK)
    luari_log(http->log, LUARI_LOG_ERROR, "http: %s", curl_multi_strerror(mc));
  read_completions(http);
}

void luari_http_assign(luari_http_t *http, int fd, void *sockp) {
  curl_multi_assign(http->multi, fd, sockp);
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
  (void)easy;
  luari_http_t *http = userp;
  http->hooks.watch(http->hooks.data, s, what, socketp);
  return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp) {
  (void)multi;
  luari_http_t *http = userp;
  http->hooks.set_timer(http->hooks.data, timeout_ms);
  return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
  luari_http_req_t *r = ud;
  if (luari_buf_append(&r->body, data, size * n) != 0)
    return 0; /* curl turns a short count into an error */
  return size * n;
}

/* Keeps the reason phrase of the last status line (after 100 Continue). */
static size_t on_header(char *data, size_t size, size_t n, void *ud) {
  luari_http_req_t *r = ud;
  size_t len = size * n;
  if (len > 12 && strncmp(data, "HTTP/", 5) == 0) {
    const char *sp = memchr(data, ' ', len);
    const char *reason = sp ? memchr(sp + 1, ' ', len - (size_t)(sp + 1 - data)) : NULL;
    size_t rlen = 0;
    if (reason) {
      reason++;
      rlen = len - (size_t)(reason - data);
      while (rlen && (reason[rlen - 1] == '\r' || reason[rlen - 1] == '\n'))
        rlen--;
      if (rlen >= sizeof r->reason)
        rlen = sizeof r->reason - 1;
      memcpy(r->reason, reason, rlen);
    }
    r->reason[rlen] = '\0';
  }
  return len;
}

luari_http_t *luari_http_new(const luari_http_hooks_t *hooks, luari_log_t *log) {
  luari_http_t *http = calloc(1, sizeof *http);
  if (!http)
    return NULL;
  http->multi = curl_multi_init();
  if (!http->multi) {
    free(http);
    return NULL;
  }
  http->hooks = *hooks;
  http->log = log;
  curl_multi_setopt(http->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(http->multi, CURLMOPT_SOCKETDATA, http);
  curl_multi_setopt(http->multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(http->multi, CURLMOPT_TIMERDATA, http);
  /* Asterisk's HTTP server caps its sessions (http.conf sessionlimit, 100 by
   * default): queue requests on a few kept-alive connections instead. */
  luari_http_set_max_connections(http, 16);
  luari_http_set_auth(http, NULL, NULL);
  return http;
}

void luari_http_set_max_connections(luari_http_t *http, long n) {
  curl_multi_setopt(http->multi, CURLMOPT_MAX_HOST_CONNECTIONS, n);
  curl_multi_setopt(http->multi, CURLMOPT_MAXCONNECTS, n);
}

/* The header lists hold the Authorization header. */
static void free_headers(struct curl_slist *list) {
  for (struct curl_slist *s = list; s; s = s->next)
    explicit_bzero(s->data, strlen(s->data));
  curl_slist_free_all(list);
}

int luari_http_set_auth(luari_http_t *http, const char *user, const char *password) {
  free_headers(http->plain_headers);
  free_headers(http->json_headers);
  http->plain_headers = http->json_headers = NULL;
  luari_wipe_free(http->auth_header);
  http->auth_header = NULL;
  struct curl_slist *plain = curl_slist_append(NULL, "Expect:");
  if (user && password) {
    luari_buf_t h = LUARI_BUF_INIT;
    if (luari_basic_auth_header(&h, user, password) != 0) {
      luari_buf_wipe_free(&h);
      return -1;
    }
    http->auth_header = h.data;
    plain = curl_slist_append(plain, h.data);
  }
  http->plain_headers = plain;
  struct curl_slist *json = NULL;
  for (struct curl_slist *s = plain; s; s = s->next)
    json = curl_slist_append(json, s->data);
  http->json_headers = curl_slist_append(json, "Content-Type: application/json");
  return http->plain_headers && http->json_headers ? 0 : -1;
}

int luari_http_set_tls(luari_http_t *http, int insecure, const char *ca_file) {
  free(http->ca_file);
  http->ca_file = ca_file ? strdup(ca_file) : NULL;
  http->insecure = insecure;
  return ca_file && !http->ca_file ? -1 : 0;
}

static void set_tls_options(luari_http_t *http, CURL *e) {
  if (http->insecure) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (http->ca_file)
    curl_easy_setopt(e, CURLOPT_CAINFO, http->ca_file);
}

static luari_http_req_t *new_req(luari_http_t *http, void *ud) {
  luari_http_req_t *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  r->easy = http->npool > 0 ? http->pool[--http->npool] : curl_easy_init();
  if (!r->easy) {
    free(r);
    return NULL;
  }
  r->http = http;
  r->ud = ud;
  CURL *e = r->easy;
  curl_easy_setopt(e, CURLOPT_PRIVATE, r);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  /* ARI is reached directly: no proxy variables looked up per request. */
  curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
  set_tls_options(http, e);
  return r;
}

static int add_to_multi(luari_http_t *http, luari_http_req_t *r) {
  link_req(http, r);
  if (curl_multi_add_handle(http->multi, r->easy) != CURLM_OK) {
    unlink_req(http, r);
    curl_easy_cleanup(r->easy);
    free(r);
    return -1;
  }
  return 0;
}

static void set_method(CURL *e, const luari_http_request_t *req) {
  if (strcmp(req->method, "GET") == 0)
    return;
  if (strcmp(req->method, "POST") == 0 || req->body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)(req->body ? req->body_len : 0));
    /* Lua strings are gone once the caller yields: curl keeps its own copy. */
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "");
  }
  if (strcmp(req->method, "POST") != 0)
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
}

/* Puts a new request on the wire at once instead of on the loop's next
 * turn: the caller is usually part way through a batch of events, and the
 * rest of the batch would otherwise run before the request leaves. Lua is
 * never reached from here: transfers this action finishes are read on the
 * loop's next turn. Never called from inside a curl callback. */
static void send_now(luari_http_t *http) {
  int running;
  if (curl_multi_socket_action(http->multi, CURL_SOCKET_TIMEOUT, 0, &running) != CURLM_OK
      || running < http->nreqs)
    http->hooks.set_timer(http->hooks.data, 0);
}

luari_http_req_t *luari_http_start(luari_http_t *http, const luari_http_request_t *req,
                                   luari_http_done_fn done, void *ud) {
  luari_http_req_t *r = new_req(http, ud);
  if (!r)
    return NULL;
  r->done = done;
  CURL *e = r->easy;
  curl_easy_setopt(e, CURLOPT_URL, req->url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->body ? http->json_headers : http->plain_headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 10000L);
  set_method(e, req);
  if (add_to_multi(http, r) != 0)
    return NULL;
  send_now(http);
  return r;
}

luari_http_req_t *luari_http_connect(luari_http_t *http, const char *host, int ipv6, int port,
                                     long timeout_ms, luari_http_connected_fn done, void *ud) {
  luari_http_req_t *r = new_req(http, ud);
  if (!r)
    return NULL;
  r->connected = done;
  char url[320];
  snprintf(url, sizeof url, "http://%s%s%s:%d/", ipv6 ? "[" : "", host, ipv6 ? "]" : "", port);
  CURL *e = r->easy;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
  curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 10000L);
  return add_to_multi(http, r) == 0 ? r : NULL;
}

void luari_http_cancel(luari_http_req_t *r) {
  if (r)
    free_req(r);
}

int luari_http_active(const luari_http_t *http) {
  return http->nreqs;
}

void luari_http_free(luari_http_t *http) {
  if (!http)
    return;
  while (http->reqs)
    free_req(http->reqs);
  while (http->npool > 0)
    curl_easy_cleanup(http->pool[--http->npool]);
  curl_multi_cleanup(http->multi);
  free_headers(http->plain_headers);
  free_headers(http->json_headers);
  luari_wipe_free(http->auth_header);
  free(http->ca_file);
  if (http->hooks.destroy)
    http->hooks.destroy(http->hooks.data);
  free(http);
}
