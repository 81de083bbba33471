/* The FLOWS watch without a loop: real inotify on a temporary directory,
 * read by hand after each file operation (the kernel queues the records
 * during the system call), plus records fed by hand for what a test cannot
 * provoke (a queue overflow, a record cut short). */
#include "../../core/watch.h"
#include "test.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct seen {
  char lines[64][PATH_MAX + 16];
  int n;
  int free_on; /* free the watch from inside the callback at this report (1-based) */
  luari_watch_t *w;
} seen_t;

static void on_change(void *data, int what, const char *path) {
  static const char *const names[] = { "?", "changed", "removed", "rescan", "lost" };
  seen_t *s = data;
  if (s->n < 64)
    snprintf(s->lines[s->n], sizeof s->lines[0], "%s %s", names[what], path);
  s->n++;
  if (s->free_on && s->n == s->free_on)
    luari_watch_free(s->w);
}

static char root[256];

static const char *at(const char *rel) {
  static char buf[4][PATH_MAX];
  static int i;
  i = (i + 1) % 4;
  snprintf(buf[i], sizeof buf[i], "%s/%s", root, rel);
  return buf[i];
}

static void write_file(const char *rel, const char *text) {
  FILE *f = fopen(at(rel), "w");
  if (f) {
    fputs(text, f);
    fclose(f);
  }
}

/* Reads what is pending; the reports joined with "; ". */
static const char *drain(luari_watch_t *w, seen_t *s) {
  static char out[4096];
  s->n = 0;
  luari_watch_read(w);
  out[0] = '\0';
  for (int i = 0; i < s->n && i < 64; i++) {
    if (i)
      strncat(out, "; ", sizeof out - strlen(out) - 1);
    strncat(out, s->lines[i], sizeof out - strlen(out) - 1);
  }
  return out;
}

static luari_watch_t *open_watch(const char *path, seen_t *s) {
  char err[256] = "";
  memset(s, 0, sizeof *s);
  luari_watch_t *w = luari_watch_new(path, on_change, s, NULL, err, sizeof err);
  if (!w)
    printf("# %s\n", err);
  s->w = w;
  return w;
}

static void test_open_errors(void) {
  char err[256] = "";
  seen_t s;
  luari_watch_t *w = luari_watch_new(at("missing"), on_change, &s, NULL, err, sizeof err);
  CHECK(w == NULL, "a path that does not exist cannot be watched");
  CHECK(strstr(err, "missing") && strstr(err, "No such file"), "the reason names the path: %s", err);
}

static void test_files(void) {
  seen_t s;
  luari_watch_t *w = open_watch(root, &s);
  CHECK(w != NULL && luari_watch_count(w) == 1, "a directory is watched");
  if (!w)
    return;
  write_file("hello.lua", "return function() end");
  CHECK_STR(drain(w, &s), "changed hello.lua", "a new file: one report, once written and closed");
  write_file("hello.lua", "return function() end -- 2");
  CHECK_STR(drain(w, &s), "changed hello.lua", "rewritten in place");
  chmod(at("hello.lua"), 0600);
  CHECK_STR(drain(w, &s), "changed hello.lua", "its permissions changed (it may have become readable)");

  write_file("notes.txt", "x");
  write_file(".hello.lua.swp", "x");
  write_file("hello.lua~", "x");
  write_file("4913", "x"); /* vim's probe for a writable directory */
  symlink("nobody@host.1234", at(".#hello.lua")); /* an Emacs lock */
  CHECK_STR(drain(w, &s), "", "other files, dot files and editor droppings are not reported");

  write_file("hello.lua.tmp", "return function() end -- 3");
  rename(at("hello.lua.tmp"), at("hello.lua"));
  CHECK_STR(drain(w, &s), "changed hello.lua", "written to a temporary file and renamed over");

  /* vim with backupcopy=no: the old file becomes the backup, a new one is written */
  rename(at("hello.lua"), at("hello.lua~"));
  write_file("hello.lua", "return function() end -- 4");
  CHECK_STR(drain(w, &s), "removed hello.lua; changed hello.lua", "saved by rename and rewrite");

  link(at("hello.lua"), at("linked.lua"));
  symlink(at("hello.lua"), at("sym.lua"));
  CHECK_STR(drain(w, &s), "changed linked.lua; changed sym.lua", "hard links and symlinks are reported at once");

  unlink(at("hello.lua"));
  rename(at("linked.lua"), at("elsewhere.txt"));
  CHECK_STR(drain(w, &s), "removed hello.lua; removed linked.lua", "deleted, or renamed to a non-flow name");

  unlink(at("sym.lua"));
  unlink(at("elsewhere.txt"));
  unlink(at("notes.txt"));
  unlink(at(".hello.lua.swp"));
  unlink(at("hello.lua~"));
  unlink(at("4913"));
  unlink(at(".#hello.lua"));
  luari_watch_free(w);
}

static void test_tree(void) {
  seen_t s;
  luari_watch_t *w = open_watch(root, &s);
  if (!w)
    return;
  mkdir(at("lib"), 0755);
  CHECK_STR(drain(w, &s), "changed lib", "a new subdirectory is reported");
  CHECK(luari_watch_count(w) == 2, "and watched");
  write_file("lib/util.lua", "return {}");
  CHECK_STR(drain(w, &s), "changed lib/util.lua", "a module in it, with its path below FLOWS");

  /* Made and filled before luari could add a watch: the directory is
   * reported, so the reload (which reads the whole tree) sees the file. */
  mkdir(at("a"), 0755);
  mkdir(at("a/b"), 0755);
  write_file("a/b/m.lua", "return {}");
  CHECK_STR(drain(w, &s), "changed a", "a directory filled at once is reported as a whole");
  CHECK(luari_watch_count(w) == 4 && luari_watch_wd(w, "a/b") >= 0, "its subdirectories are watched");
  write_file("a/b/m.lua", "return { 2 }");
  CHECK_STR(drain(w, &s), "changed a/b/m.lua", "and report from then on");

  mkdir(at(".git"), 0755);
  write_file(".git/hook.lua", "x");
  CHECK_STR(drain(w, &s), "", "dot directories are ignored");
  CHECK(luari_watch_wd(w, ".git") < 0, "and not watched");

  rename(at("lib"), at("lib2"));
  CHECK_STR(drain(w, &s), "removed lib; changed lib2", "a directory renamed inside FLOWS");
  write_file("lib2/util.lua", "return { 3 }");
  CHECK_STR(drain(w, &s), "changed lib2/util.lua", "is followed under its new name");
  CHECK(luari_watch_wd(w, "lib") < 0 && luari_watch_wd(w, "lib2") >= 0, "the old name is forgotten");

  rename(at("lib2"), at(".moved-out"));
  CHECK_STR(drain(w, &s), "removed lib2", "a directory moved away");
  write_file(".moved-out/util.lua", "return { 4 }");
  CHECK_STR(drain(w, &s), "", "is not heard of again");

  unlink(at("a/b/m.lua"));
  rmdir(at("a/b"));
  rmdir(at("a"));
  CHECK_STR(drain(w, &s), "removed a/b/m.lua; removed a/b; removed a", "a tree deleted bottom up");
  CHECK(luari_watch_count(w) == 1, "leaves only the top watched");

  /* A symlink back to the top must not be followed round and round. */
  symlink(root, at("loop"));
  CHECK_STR(drain(w, &s), "changed loop", "a symlink to a directory is a directory");
  CHECK(luari_watch_count(w) == 1, "a symlink loop adds no watch");

  mkdir(at(".shared"), 0755);
  symlink(at(".shared"), at("shared"));
  CHECK_STR(drain(w, &s), "changed shared", "a symlinked module directory");
  write_file(".shared/x.lua", "return {}");
  CHECK_STR(drain(w, &s), "changed shared/x.lua", "is watched through the link");
  unlink(at("shared"));
  CHECK_STR(drain(w, &s), "removed shared", "and forgotten with the link");
  write_file(".shared/x.lua", "return { 2 }");
  CHECK_STR(drain(w, &s), "", "so its files are not heard of again");

  /* A Kubernetes ConfigMap volume: files are symlinks through ..data,
   * which is swapped atomically to a new directory on update. */
  mkdir(at("..2024_1"), 0755);
  symlink("..2024_1", at("..data_tmp"));
  rename(at("..data_tmp"), at("..data"));
  CHECK_STR(drain(w, &s), "changed ", "a ConfigMap update (..data swapped) is a change of everything");
  luari_watch_free(w);
  unlink(at("..data"));
  rmdir(at("..2024_1"));
  unlink(at(".shared/x.lua"));
  rmdir(at(".shared"));
  unlink(at("loop"));
  unlink(at(".moved-out/util.lua"));
  rmdir(at(".moved-out"));
  unlink(at(".git/hook.lua"));
  rmdir(at(".git"));
  unlink(at("lib2/util.lua")); /* gone with .moved-out already; harmless */
}

static void test_single_file(void) {
  seen_t s;
  write_file("main.lua", "return function() end");
  luari_watch_t *w = open_watch(at("main.lua"), &s);
  CHECK(w != NULL, "a single file is watched");
  if (!w)
    return;
  write_file("other.lua", "return function() end");
  mkdir(at("sub"), 0755);
  CHECK_STR(drain(w, &s), "", "single file: other files and directories are not reported");
  write_file("main.lua.new", "return function() end -- 2");
  rename(at("main.lua.new"), at("main.lua"));
  CHECK_STR(drain(w, &s), "changed main.lua", "single file replaced by rename is still followed");
  write_file("main.lua", "return function() end -- 3");
  CHECK_STR(drain(w, &s), "changed main.lua", "and again in place");
  luari_watch_free(w);
  rmdir(at("sub"));
  unlink(at("other.lua"));
  unlink(at("main.lua"));
}

static void test_lost_and_resync(void) {
  char top[PATH_MAX + 8], moved[PATH_MAX + 16];
  snprintf(top, sizeof top, "%s/top", root);
  snprintf(moved, sizeof moved, "%s/top.old", root);
  mkdir(top, 0755);
  seen_t s;
  luari_watch_t *w = open_watch(top, &s);
  if (!w)
    return;
  rename(top, moved);
  CHECK_STR(drain(w, &s), "lost ", "FLOWS moved away is reported lost");
  CHECK(luari_watch_count(w) == 0, "nothing is watched then");
  write_file("top.old/late.lua", "x");
  CHECK_STR(drain(w, &s), "", "the old directory is not heard of again");
  char err[256] = "";
  CHECK(luari_watch_resync(w, err, sizeof err) != 0 && strstr(err, "top"), "resync fails while FLOWS is missing: %s",
        err);
  mkdir(top, 0755);
  CHECK(luari_watch_resync(w, err, sizeof err) == 0 && luari_watch_count(w) == 1, "resync once it is back");
  write_file("top/new.lua", "x");
  CHECK_STR(drain(w, &s), "changed new.lua", "and reports again");
  unlink(at("top/new.lua"));
  rmdir(top);
  CHECK_STR(drain(w, &s), "removed new.lua; lost ", "FLOWS deleted is reported lost, once");
  luari_watch_free(w);
  unlink(at("top.old/late.lua"));
  rmdir(moved);
}

static void test_replaced(void) {
  /* A release symlink: FLOWS is "current", pointing at one release. */
  mkdir(at("r1"), 0755);
  mkdir(at("r2"), 0755);
  symlink(at("r1"), at("current"));
  seen_t s;
  luari_watch_t *w = open_watch(at("current/"), &s);
  if (!w)
    return;
  write_file("r1/a.lua", "x");
  CHECK_STR(drain(w, &s), "changed a.lua", "FLOWS through a symlink, trailing slash and all");
  symlink(at("r2"), at("current.tmp"));
  rename(at("current.tmp"), at("current"));
  CHECK_STR(drain(w, &s), "rescan ", "the symlink pointed at another release: everything may have changed");
  write_file("r2/b.lua", "x");
  write_file("r1/a.lua", "y");
  CHECK_STR(drain(w, &s), "changed b.lua", "the new release is watched, the old one no more");

  /* A new directory moved into place, the old one moved aside. */
  unlink(at("current"));
  CHECK_STR(drain(w, &s), "lost ", "FLOWS removed");
  rename(at("r2"), at("current"));
  CHECK_STR(drain(w, &s), "rescan ", "FLOWS back, without being asked to resync");
  write_file("current/c.lua", "x");
  CHECK_STR(drain(w, &s), "changed c.lua", "and watched");
  rename(at("current"), at("r2"));
  mkdir(at("current"), 0755);
  write_file("current/d.lua", "x"); /* before luari could watch it: the rescan covers it */
  CHECK_STR(drain(w, &s), "lost ; rescan ", "moved away and made anew");
  write_file("current/d.lua", "y");
  CHECK_STR(drain(w, &s), "changed d.lua", "and watched");
  luari_watch_free(w);
  const char *files[] = { "current/d.lua", "r2/b.lua", "r2/c.lua", "r1/a.lua" };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
    unlink(at(files[i]));
  rmdir(at("current"));
  rmdir(at("r2"));
  rmdir(at("r1"));
}

/* Records built by hand, as read() would return them. */
static size_t record(char *buf, size_t off, int wd, unsigned mask, const char *name) {
  struct inotify_event ev;
  size_t len = name ? ((strlen(name) + 1 + 15) / 16) * 16 : 0;
  memset(&ev, 0, sizeof ev);
  ev.wd = wd;
  ev.mask = mask;
  ev.len = (unsigned)len;
  memcpy(buf + off, &ev, sizeof ev);
  memset(buf + off + sizeof ev, 0, len);
  if (name)
    memcpy(buf + off + sizeof ev, name, strlen(name));
  return off + sizeof ev + len;
}

static void test_records(void) {
  seen_t s;
  luari_watch_t *w = open_watch(root, &s);
  if (!w)
    return;
  _Alignas(struct inotify_event) char buf[1024];
  int top = luari_watch_wd(w, "");
  size_t n = record(buf, 0, top, IN_CLOSE_WRITE, "x.lua");
  n = record(buf, n, top, IN_MOVED_FROM, "y.lua");
  n = record(buf, n, 9999, IN_CLOSE_WRITE, "stale.lua");
  n = record(buf, n, -1, IN_Q_OVERFLOW, NULL);
  CHECK(luari_watch_process(w, buf, n) == 0, "well-formed records are accepted");
  CHECK(s.n == 3 && strcmp(s.lines[0], "changed x.lua") == 0 && strcmp(s.lines[1], "removed y.lua") == 0 &&
            strcmp(s.lines[2], "rescan ") == 0,
        "changed, removed, a stale descriptor skipped, and an overflow asks for a rescan");
  CHECK(luari_watch_count(w) == 1, "the overflow re-watches FLOWS");

  s.n = 0;
  n = record(buf, 0, luari_watch_wd(w, ""), IN_CLOSE_WRITE, "cut.lua");
  CHECK(luari_watch_process(w, buf, n - 4) == -1 && s.n == 0, "a record cut short is refused, not reported");

  /* Freed from inside the callback: the second record is never reported,
   * and the memory goes when processing returns (ASan and valgrind watch). */
  s.n = 0;
  s.free_on = 1;
  n = record(buf, 0, luari_watch_wd(w, ""), IN_CLOSE_WRITE, "first.lua");
  n = record(buf, n, luari_watch_wd(w, ""), IN_CLOSE_WRITE, "second.lua");
  luari_watch_process(w, buf, n);
  CHECK(s.n == 1, "a watch freed by its callback reports nothing more");
}

static void test_free_while_reading(void) {
  seen_t s;
  luari_watch_t *w = open_watch(root, &s);
  if (!w)
    return;
  s.free_on = 1;
  write_file("one.lua", "x");
  write_file("two.lua", "x");
  s.n = 0;
  luari_watch_read(w);
  CHECK(s.n == 1, "freed from the callback while reading: the rest of the batch is dropped");
  unlink(at("one.lua"));
  unlink(at("two.lua"));
}

static void collect(void *data, const char *rel) {
  char *out = data;
  if (*out)
    strncat(out, " ", 1023 - strlen(out));
  strncat(out, rel, 1023 - strlen(out));
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The listing, sorted, joined with spaces. */
static const char *list(const char *dir) {
  static char out[1024], sorted[1024];
  char *names[64];
  int n = 0;
  out[0] = sorted[0] = '\0';
  if (luari_watch_list(dir, collect, out, NULL, 0) != 0)
    return "(error)";
  for (char *p = strtok(out, " "); p && n < 64; p = strtok(NULL, " "))
    names[n++] = p;
  qsort(names, (size_t)n, sizeof names[0], cmp_str);
  for (int i = 0; i < n; i++) {
    if (i)
      strcat(sorted, " ");
    strncat(sorted, names[i], sizeof sorted - strlen(sorted) - 2);
  }
  return sorted;
}

static void test_list(void) {
  mkdir(at("flows"), 0755);
  mkdir(at("flows/lib"), 0755);
  mkdir(at("flows/lib/deep"), 0755);
  mkdir(at("flows/.git"), 0755);
  mkdir(at(".outside"), 0755);
  write_file("flows/a.lua", "x");
  write_file("flows/b.lua", "x");
  write_file("flows/notes.txt", "x");
  write_file("flows/.a.lua.swp", "x");
  write_file("flows/.git/hook.lua", "x");
  write_file("flows/lib/m.lua", "x");
  write_file("flows/lib/deep/n.lua", "x");
  write_file(".outside/shared.lua", "x");
  symlink(at(".outside"), at("flows/linked"));
  symlink(at("flows"), at("flows/lib/loop"));
  symlink(at("flows/missing.lua"), at("flows/dangling.lua"));
  CHECK_STR(list(at("flows")), "a.lua b.lua lib/deep/n.lua lib/m.lua linked/shared.lua",
            "listing: .lua files at any depth, through symlinks, once each, no dot names");
  char err[256] = "", sink[1024] = "";
  CHECK(luari_watch_list(at("nowhere"), collect, sink, err, sizeof err) == -1 && strstr(err, "nowhere"),
        "listing a missing directory fails: %s", err);
  CHECK(luari_watch_list(at("flows/a.lua"), collect, sink, err, sizeof err) == -1 && strstr(err, "not a directory"),
        "listing a file fails: %s", err);
  const char *rm[] = { "flows/dangling.lua", "flows/lib/loop", "flows/linked", ".outside/shared.lua",
                       "flows/lib/deep/n.lua", "flows/lib/m.lua", "flows/.git/hook.lua", "flows/.a.lua.swp",
                       "flows/notes.txt", "flows/b.lua", "flows/a.lua" };
  for (size_t i = 0; i < sizeof rm / sizeof rm[0]; i++)
    unlink(at(rm[i]));
  const char *dirs[] = { ".outside", "flows/.git", "flows/lib/deep", "flows/lib", "flows" };
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
    rmdir(at(dirs[i]));
}

int main(void) {
  snprintf(root, sizeof root, "/tmp/luari-watch.XXXXXX");
  if (!mkdtemp(root)) {
    printf("not ok 1 - mkdtemp\n");
    return 1;
  }
  test_open_errors();
  test_files();
  test_tree();
  test_single_file();
  test_lost_and_resync();
  test_replaced();
  test_records();
  test_free_while_reading();
  test_list();
  rmdir(root);
  TEST_DONE();
}
