/* URL parsing and building: what reaches Asterisk must decode to exactly
 * what the flow gave. */
#include "../../core/url.h"
#include "test.h"

static void check_escape(const char *in, const char *want) {
  luari_buf_t b = LUARI_BUF_INIT;
  luari_url_escape(&b, in, strlen(in));
  CHECK_STR(b.data ? b.data : "", want, "escape '%s'", in);
  luari_buf_free(&b);
}

static void test_escape(void) {
  check_escape("PJSIP/100", "PJSIP%2F100");
  check_escape("Local/1000@ivr", "Local%2F1000%40ivr");
  check_escape("hello world", "hello%20world");
  check_escape("+15551234", "%2B15551234");
  check_escape("\"Alice\" <100>", "%22Alice%22%20%3C100%3E");
  check_escape("caf\xc3\xa9", "caf%C3%A9");
  check_escape("a-b.c_d~e", "a-b.c_d~e");
  check_escape("x&y=z?#", "x%26y%3Dz%3F%23");
  check_escape("", "");
}

static void test_query(void) {
  luari_buf_t url = LUARI_BUF_INIT;
  luari_buf_appends(&url, "http://h:8088/ari");
  luari_url_add_segment(&url, "channels", 8);
  luari_url_add_query(&url, "endpoint", "PJSIP/100", 9);
  luari_url_add_query(&url, "app", "luari", 5);
  luari_url_add_query(&url, "callerId", "Alice <+1 555>", 14);
  CHECK_STR(url.data, "http://h:8088/ari/channels?endpoint=PJSIP%2F100&app=luari&callerId=Alice%20%3C%2B1%20555%3E",
            "query string with several parameters");
  luari_buf_free(&url);

  luari_buf_appends(&url, "http://h/ari");
  luari_url_add_segment(&url, "channels", 8);
  luari_url_add_segment(&url, "a/b;2", 5);
  luari_url_add_segment(&url, "play", 4);
  const char *media[] = { "sound:hello-world", "digits:42", "sound:a b" };
  size_t lens[] = { 17, 9, 9 };
  luari_url_add_query_list(&url, "media", media, lens, 3);
  CHECK_STR(url.data, "http://h/ari/channels/a%2Fb%3B2/play?media=sound%3Ahello-world,digits%3A42,sound%3Aa%20b",
            "path segment escaped, list joined with literal commas");
  luari_buf_free(&url);
}

static void test_parse(void) {
  luari_url_t u;
  const char *err = NULL;
  CHECK(luari_url_parse("http://127.0.0.1:8088/ari", &u, &err) == 0, "parse plain URL");
  CHECK(!u.tls && u.port == 8088 && strcmp(u.host, "127.0.0.1") == 0 && strcmp(u.path, "/ari") == 0,
        "host, port and path");
  CHECK(luari_url_parse("https://pbx.example.com/ari/", &u, &err) == 0 && u.tls && u.port == 443 &&
            strcmp(u.path, "/ari") == 0,
        "https: default port 443, trailing slash dropped");
  CHECK(luari_url_parse("wss://[::1]:8089", &u, &err) == 0 && u.tls && u.ipv6 && u.port == 8089 &&
            strcmp(u.host, "::1") == 0 && strcmp(u.path, "/ari") == 0,
        "IPv6 literal, no path means /ari");
  CHECK(luari_url_parse("http://bob:s%40cret@h:80/ari", &u, &err) == 0 && u.has_userinfo &&
            strcmp(u.user, "bob") == 0 && strcmp(u.password, "s@cret") == 0 && strcmp(u.host, "h") == 0,
        "user info is taken out of the URL and decoded");
  luari_buf_t b = LUARI_BUF_INIT;
  luari_url_format_base(&b, &u, 0);
  CHECK_STR(b.data, "http://h:80/ari", "formatted URL never shows the credentials");
  luari_buf_free(&b);
  CHECK(luari_url_parse("ftp://h/", &u, &err) == -1 && err != NULL, "unknown scheme refused");
  CHECK(luari_url_parse("http://h:99999/ari", &u, &err) == -1, "port out of range refused");
  CHECK(luari_url_parse("http://:80/ari", &u, &err) == -1, "missing host refused");
  CHECK(luari_url_parse("http://h/ari?x=1", &u, &err) == -1, "query in base URL refused");
}

static void test_base64(void) {
  const char *cases[][2] = { { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
                             { "foob", "Zm9vYg==" }, { "asterisk:asterisk", "YXN0ZXJpc2s6YXN0ZXJpc2s=" } };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    luari_buf_t b = LUARI_BUF_INIT;
    luari_base64(&b, cases[i][0], strlen(cases[i][0]));
    CHECK_STR(b.data ? b.data : "", cases[i][1], "base64 of '%s'", cases[i][0]);
    luari_buf_free(&b);
  }
  luari_buf_t h = LUARI_BUF_INIT;
  luari_basic_auth_header(&h, "asterisk", "asterisk");
  CHECK_STR(h.data, "Authorization: Basic YXN0ZXJpc2s6YXN0ZXJpc2s=", "Basic auth header");
  luari_buf_free(&h);
}

/* A buffer that held a password is zeroed to its capacity, not just
 * truncated, and is still usable afterwards. */
static void test_wipe(void) {
  luari_buf_t b = LUARI_BUF_INIT;
  luari_basic_auth_header(&b, "asterisk", "s3cret");
  size_t cap = b.cap;
  luari_buf_consume(&b, 10); /* moved, as after a partial send */
  luari_buf_wipe(&b);
  int zero = 1;
  for (size_t i = 0; i < cap; i++)
    zero &= b.data[i] == 0;
  CHECK(zero && b.len == 0 && b.cap == cap, "a wiped buffer is zero to its capacity");
  luari_buf_appends(&b, "again");
  CHECK_STR(b.data, "again", "a wiped buffer can be written again");
  luari_buf_wipe_free(&b);
  CHECK(b.data == NULL && b.cap == 0, "wipe_free frees the buffer");
}

int main(void) {
  test_escape();
  test_query();
  test_parse();
  test_base64();
  test_wipe();
  TEST_DONE();
}
