/* inotify on FLOWS: one watch per directory, a table from watch descriptor
 * to the directory's path below FLOWS, and the rules that turn raw records
 * into "this .lua file changed / went away". No loop here (see watch_ev.c). */
#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* No IN_MODIFY: a file is reported when its writer closes it, so a reload
 * never reads half a file. IN_CREATE only matters for directories, links
 * and symlinks: a regular file created empty is followed by IN_CLOSE_WRITE.
 * IN_ATTRIB: a file or directory luari could not read may have become
 * readable (chmod); a reload that finds the same texts does nothing. */
#define WATCH_MASK                                                                                 \
  (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DELETE_SELF |         \
   IN_MOVE_SELF | IN_ATTRIB | IN_ONLYDIR)

/* A tree deeper or wider than this is not a flows directory: someone
 * pointed luari at / or $HOME. Stop rather than eat the user's watches. */
#define MAX_DEPTH 16
#define MAX_DIRS 1024

typedef struct watch_dir {
  int wd;
  char *rel; /* "" for the top, "lib", "lib/sub" */
} watch_dir_t;

struct luari_watch {
  int fd;
  char *root;     /* the directory watched */
  char *only;     /* single-file mode: the one name reported; NULL for a tree */
  char *path;     /* as given, for resync */
  watch_dir_t *dirs;
  size_t ndirs, cap;
  luari_watch_fn fn;
  void *data;
  luari_log_t *log;
  int in_callback;
  int closing;    /* luari_watch_free was called from the callback */
  int parent_wd;  /* tree mode: the directory holding FLOWS, for FLOWS itself being replaced */
  char *base;     /* tree mode: FLOWS's name in that directory */
  int lost;       /* LOST was reported; quiet until resync */
  int full;       /* MAX_DIRS reached and logged once */
};

static void set_err(char *err, size_t errlen, const char *path, int e) {
  if (!err || !errlen)
    return;
  const char *why = e == ENOSPC   ? "too many inotify watches (raise fs.inotify.max_user_watches)"
                    : e == EMFILE ? "too many inotify instances (raise fs.inotify.max_user_instances)"
                                  : strerror(e);
  snprintf(err, errlen, "cannot watch %s: %s", path, why);
}

static int is_lua_name(const char *name) {
  size_t n = strlen(name);
  return name[0] != '.' && n > 4 && strcmp(name + n - 4, ".lua") == 0;
}

static watch_dir_t *find_wd(luari_watch_t *w, int wd) {
  for (size_t i = 0; i < w->ndirs; i++)
    if (w->dirs[i].wd == wd)
      return &w->dirs[i];
  return NULL;
}

static int join(char *out, size_t size, const char *a, const char *b) {
  int n = *a ? snprintf(out, size, "%s/%s", a, b) : snprintf(out, size, "%s", b);
  return n < 0 || (size_t)n >= size ? -1 : 0;
}

static void drop_at(luari_watch_t *w, size_t i) {
  free(w->dirs[i].rel);
  w->dirs[i] = w->dirs[--w->ndirs];
}

static void drop_dirs(luari_watch_t *w) {
  while (w->ndirs > 0) {
    inotify_rm_watch(w->fd, w->dirs[w->ndirs - 1].wd);
    drop_at(w, w->ndirs - 1);
  }
}

static void drop_all(luari_watch_t *w) {
  drop_dirs(w);
  if (w->parent_wd >= 0)
    inotify_rm_watch(w->fd, w->parent_wd);
  w->parent_wd = -1;
}

/* Forgets `rel` and everything below it, and tells the kernel: a directory
 * moved away, or reached through a symlink now gone, still exists and would
 * keep a watch (for a deleted one the call just fails). */
static void drop_tree(luari_watch_t *w, const char *rel) {
  size_t n = strlen(rel);
  for (size_t i = w->ndirs; i-- > 0;) {
    const char *r = w->dirs[i].rel;
    if (strncmp(r, rel, n) == 0 && (r[n] == '\0' || r[n] == '/')) {
      inotify_rm_watch(w->fd, w->dirs[i].wd);
      drop_at(w, i);
    }
  }
}

static int add_dir(luari_watch_t *w, const char *rel, int *wd_out, int *err_out) {
  char full[PATH_MAX];
  if (join(full, sizeof full, w->root, rel) != 0) {
    *err_out = ENAMETOOLONG;
    return -1;
  }
  int wd = inotify_add_watch(w->fd, full, WATCH_MASK);
  if (wd < 0) {
    *err_out = errno;
    return -1;
  }
  *wd_out = wd;
  /* The same directory reached twice (a symlink loop, a bind mount): the
   * kernel hands back the descriptor it already gave. */
  if (find_wd(w, wd))
    return 1;
  if (w->ndirs == w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 8;
    watch_dir_t *d = realloc(w->dirs, cap * sizeof *d);
    if (!d) {
      *err_out = ENOMEM;
      return -1;
    }
    w->dirs = d;
    w->cap = cap;
  }
  char *copy = strdup(rel);
  if (!copy) {
    *err_out = ENOMEM;
    return -1;
  }
  w->dirs[w->ndirs].wd = wd;
  w->dirs[w->ndirs].rel = copy;
  w->ndirs++;
  return 0;
}

/* Watches rel and, in tree mode, the directories below it. Only the top
 * failing is an error; a subdirectory that cannot be watched is logged. */
static int add_tree(luari_watch_t *w, const char *rel, int depth, char *err, size_t errlen) {
  int wd, e = 0;
  if (w->ndirs >= MAX_DIRS) {
    if (!w->full)
      luari_log(w->log, LUARI_LOG_WARN, "watch: more than %d directories under %s: the rest is not watched",
                MAX_DIRS, w->root);
    w->full = 1;
    return 0;
  }
  int rc = add_dir(w, rel, &wd, &e);
  if (rc < 0) {
    if (depth == 0) {
      set_err(err, errlen, w->root, e);
      return -1;
    }
    luari_log(w->log, LUARI_LOG_WARN, "watch: cannot watch %s/%s: %s", w->root, rel, strerror(e));
    return 0;
  }
  if (rc == 1 || w->only || depth >= MAX_DEPTH)
    return 0;
  char full[PATH_MAX];
  if (join(full, sizeof full, w->root, rel) != 0)
    return 0;
  DIR *d = opendir(full);
  if (!d)
    return 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    char sub[PATH_MAX], subfull[PATH_MAX];
    struct stat st;
    if (join(sub, sizeof sub, rel, de->d_name) != 0 || join(subfull, sizeof subfull, w->root, sub) != 0)
      continue;
    /* stat, not lstat: a symlinked module directory is part of the flows. */
    if (stat(subfull, &st) == 0 && S_ISDIR(st.st_mode))
      add_tree(w, sub, depth + 1, err, errlen);
  }
  closedir(d);
  return 0;
}

static int depth_of(const char *rel) {
  int n = *rel ? 1 : 0;
  for (; *rel; rel++)
    n += *rel == '/';
  return n;
}

/* FLOWS replaced as a whole (a release symlink pointed elsewhere, a new
 * directory moved into place) shows only in the directory that holds it.
 * IN_MASK_ADD: that directory may be watched already, as part of the tree. */
static void watch_parent(luari_watch_t *w) {
  if (w->only || w->parent_wd >= 0)
    return;
  char parent[PATH_MAX];
  const char *slash = strrchr(w->root, '/');
  if (!slash)
    snprintf(parent, sizeof parent, ".");
  else if (slash == w->root)
    snprintf(parent, sizeof parent, "/");
  else
    snprintf(parent, sizeof parent, "%.*s", (int)(slash - w->root), w->root);
  w->parent_wd = inotify_add_watch(w->fd, parent, IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR |
                                                      IN_MASK_ADD);
}

static int start(luari_watch_t *w, char *err, size_t errlen) {
  w->lost = 0;
  w->full = 0;
  /* First, so that a FLOWS missing now is noticed when it comes back. */
  watch_parent(w);
  return add_tree(w, "", 0, err, errlen);
}

luari_watch_t *luari_watch_new(const char *path, luari_watch_fn fn, void *data, luari_log_t *log,
                               char *err, size_t errlen) {
  struct stat st;
  if (stat(path, &st) != 0) {
    set_err(err, errlen, path, errno);
    return NULL;
  }
  luari_watch_t *w = calloc(1, sizeof *w);
  if (!w) {
    set_err(err, errlen, path, ENOMEM);
    return NULL;
  }
  w->fn = fn;
  w->data = data;
  w->log = log;
  w->fd = -1;
  w->parent_wd = -1;
  w->path = strdup(path);
  if (S_ISDIR(st.st_mode)) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
      n--;
    w->root = strndup(path, n);
    const char *slash = w->root ? strrchr(w->root, '/') : NULL;
    w->base = w->root ? strdup(slash ? slash + 1 : w->root) : NULL;
  } else {
    const char *slash = strrchr(path, '/');
    w->only = strdup(slash ? slash + 1 : path);
    w->root = slash == path ? strdup("/") : slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
  }
  if (!w->path || !w->root || (!S_ISDIR(st.st_mode) ? !w->only : !w->base)) {
    set_err(err, errlen, path, ENOMEM);
    luari_watch_free(w);
    return NULL;
  }
  w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (w->fd < 0) {
    set_err(err, errlen, path, errno);
    luari_watch_free(w);
    return NULL;
  }
  if (start(w, err, errlen) != 0) {
    luari_watch_free(w);
    return NULL;
  }
  return w;
}

int luari_watch_fd(const luari_watch_t *w) {
  return w->fd;
}

size_t luari_watch_count(const luari_watch_t *w) {
  return w->ndirs;
}

int luari_watch_wd(const luari_watch_t *w, const char *dir) {
  for (size_t i = 0; i < w->ndirs; i++)
    if (strcmp(w->dirs[i].rel, dir) == 0)
      return w->dirs[i].wd;
  return -1;
}

/* Returns 0 when the watch may go on, -1 once the callback closed it. */
static int report(luari_watch_t *w, int what, const char *path) {
  w->in_callback++;
  w->fn(w->data, what, path);
  w->in_callback--;
  return w->closing ? -1 : 0;
}

int luari_watch_resync(luari_watch_t *w, char *err, size_t errlen) {
  drop_all(w);
  /* FLOWS may now be a file where a directory was, or the other way round;
   * the mode chosen at the start is kept. */
  int rc = start(w, err, errlen);
  if (rc != 0)
    w->lost = 1;
  return rc;
}

/* The directory holding FLOWS stays watched, to see it come back. */
static int lose(luari_watch_t *w) {
  drop_dirs(w);
  if (w->lost)
    return 0;
  w->lost = 1;
  return report(w, LUARI_WATCH_LOST, "");
}

/* A symlink to a directory comes without IN_ISDIR. Such a link going away
 * can no longer be looked at: it is one if it was being watched. */
static int symlinked_dir(luari_watch_t *w, const struct inotify_event *ev, const char *path) {
  if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
    return luari_watch_wd(w, path) >= 0;
  char full[PATH_MAX];
  struct stat st;
  return join(full, sizeof full, w->root, path) == 0 && stat(full, &st) == 0 && S_ISDIR(st.st_mode);
}

/* FLOWS's name in its directory: a new one is watched from scratch. */
static int parent_event(luari_watch_t *w, const struct inotify_event *ev) {
  if (ev->mask & IN_IGNORED) {
    w->parent_wd = -1;
    return 0;
  }
  if (ev->len == 0 || strcmp(ev->name, w->base) != 0)
    return 0;
  if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
    return lose(w);
  if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
    char err[256];
    if (luari_watch_resync(w, err, sizeof err) != 0)
      return lose(w);
    return report(w, LUARI_WATCH_RESCAN, "");
  }
  return 0;
}

/* One record. Returns -1 once the callback closed the watch. */
static int handle(luari_watch_t *w, const struct inotify_event *ev) {
  if (ev->mask & IN_Q_OVERFLOW) {
    /* Directories made while events were dropped have no watch yet. */
    char err[256];
    if (luari_watch_resync(w, err, sizeof err) != 0)
      return lose(w);
    return report(w, LUARI_WATCH_RESCAN, "");
  }
  if (w->parent_wd >= 0 && ev->wd == w->parent_wd) {
    if (parent_event(w, ev) != 0)
      return -1;
    if (!find_wd(w, ev->wd))
      return 0;
  }
  watch_dir_t *d = find_wd(w, ev->wd);
  if (!d)
    return 0; /* a directory forgotten already; its records trail behind */
  int top = d->rel[0] == '\0';
  if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
    if (top)
      return lose(w);
    /* Below the top, the parent's IN_DELETE / IN_MOVED_FROM did the work;
     * IN_IGNORED also comes when a watch is removed by hand. */
    if (ev->mask & IN_IGNORED)
      drop_at(w, (size_t)(d - w->dirs));
    return 0;
  }
  if (ev->len == 0)
    return 0;
  /* Kubernetes updates a ConfigMap volume by pointing the symlink ..data
   * at a new directory; the visible files are symlinks through it. */
  if (strcmp(ev->name, "..data") == 0 && (ev->mask & (IN_CREATE | IN_MOVED_TO)))
    return report(w, LUARI_WATCH_CHANGED, "");
  if (ev->name[0] == '.')
    return 0;
  char path[PATH_MAX];
  if (join(path, sizeof path, d->rel, ev->name) != 0)
    return 0;
  int isdir = (ev->mask & IN_ISDIR) != 0;
  if (!isdir && !w->only && !is_lua_name(ev->name))
    isdir = symlinked_dir(w, ev, path);
  if (isdir) {
    if (w->only)
      return 0;
    if (ev->mask & (IN_CREATE | IN_MOVED_TO | IN_ATTRIB)) {
      /* Files written into it before its watch existed are found by the
       * reload, which reads the whole tree: report the directory. (After
       * a chmod, the watch it could not have before.) */
      add_tree(w, path, depth_of(path), NULL, 0);
      return report(w, LUARI_WATCH_CHANGED, path);
    }
    if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
      drop_tree(w, path);
      return report(w, LUARI_WATCH_REMOVED, path);
    }
    return 0;
  }
  if (!is_lua_name(ev->name) || (w->only && strcmp(ev->name, w->only) != 0))
    return 0;
  if (ev->mask & IN_CREATE) {
    char full[PATH_MAX];
    struct stat st;
    if (join(full, sizeof full, w->root, path) != 0)
      return 0;
    /* A new regular file is being written: wait for IN_CLOSE_WRITE. A
     * symlink or a hard link to a finished file gets nothing more. */
    if (lstat(full, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1)
      return 0;
    return report(w, LUARI_WATCH_CHANGED, path);
  }
  if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_ATTRIB))
    return report(w, LUARI_WATCH_CHANGED, path);
  if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
    return report(w, LUARI_WATCH_REMOVED, path);
  return 0;
}

static void destroy(luari_watch_t *w) {
  for (size_t i = 0; i < w->ndirs; i++)
    free(w->dirs[i].rel);
  free(w->dirs);
  if (w->fd >= 0)
    close(w->fd); /* the kernel drops the watches with the descriptor */
  free(w->root);
  free(w->base);
  free(w->only);
  free(w->path);
  free(w);
}

static int process(luari_watch_t *w, const char *buf, size_t len) {
  size_t off = 0;
  while (off < len) {
    const struct inotify_event *ev;
    if (len - off < sizeof *ev)
      return -1;
    ev = (const struct inotify_event *)(const void *)(buf + off);
    if (len - off - sizeof *ev < ev->len)
      return -1;
    if (handle(w, ev) != 0)
      return 0;
    off += sizeof *ev + ev->len;
  }
  return 0;
}

int luari_watch_process(luari_watch_t *w, const char *buf, size_t len) {
  w->in_callback++;
  int rc = process(w, buf, len);
  w->in_callback--;
  if (w->closing && w->in_callback == 0)
    destroy(w);
  return rc;
}

int luari_watch_read(luari_watch_t *w) {
  /* Aligned for struct inotify_event, as inotify(7) asks. */
  char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
  int rc = 0;
  w->in_callback++;
  while (!w->closing) {
    ssize_t n = read(w->fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        luari_log(w->log, LUARI_LOG_ERROR, "watch: reading inotify: %s", strerror(errno));
        rc = -1;
      }
      break;
    }
    if (n == 0 || process(w, buf, (size_t)n) != 0)
      break;
  }
  w->in_callback--;
  if (w->closing && w->in_callback == 0)
    destroy(w);
  return rc;
}

void luari_watch_free(luari_watch_t *w) {
  if (!w)
    return;
  if (w->in_callback) {
    w->closing = 1;
    return;
  }
  destroy(w);
}

/* --- listing ---------------------------------------------------------------- */

typedef struct list_ctx {
  void (*fn)(void *data, const char *rel);
  void *data;
  char *err;     /* the first directory or entry that could not be read */
  size_t errlen;
  int failed;
  struct { dev_t dev; ino_t ino; } seen[MAX_DIRS];
  size_t nseen;
} list_ctx_t;

static int seen_before(list_ctx_t *c, const struct stat *st) {
  for (size_t i = 0; i < c->nseen; i++)
    if (c->seen[i].dev == st->st_dev && c->seen[i].ino == st->st_ino)
      return 1;
  if (c->nseen == MAX_DIRS)
    return 1;
  c->seen[c->nseen].dev = st->st_dev;
  c->seen[c->nseen].ino = st->st_ino;
  c->nseen++;
  return 0;
}

/* Something there that cannot be read (permissions): listed as absent,
 * its files would read as removed, so the listing fails instead. Gone
 * since it was seen (ENOENT) or a symlink loop is not a failure. */
static void list_failed(list_ctx_t *c, const char *path) {
  if (errno == ENOENT || errno == ELOOP || c->failed)
    return;
  c->failed = 1;
  if (c->err && c->errlen)
    snprintf(c->err, c->errlen, "cannot read %s: %s", path, strerror(errno));
}

static void list_dir(list_ctx_t *c, const char *root, const char *rel, int depth) {
  char full[PATH_MAX];
  if (join(full, sizeof full, root, rel) != 0)
    return;
  DIR *d = opendir(full);
  if (!d) {
    list_failed(c, full);
    return;
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    char sub[PATH_MAX], subfull[PATH_MAX];
    struct stat st;
    if (join(sub, sizeof sub, rel, de->d_name) != 0 || join(subfull, sizeof subfull, root, sub) != 0)
      continue;
    if (stat(subfull, &st) != 0) {
      list_failed(c, subfull); /* unless a dangling symlink, or gone since readdir */
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      if (depth < MAX_DEPTH && !seen_before(c, &st))
        list_dir(c, root, sub, depth + 1);
    } else if (S_ISREG(st.st_mode) && is_lua_name(de->d_name)) {
      c->fn(c->data, sub);
    }
  }
  closedir(d);
}

int luari_watch_list(const char *dir, void (*fn)(void *data, const char *rel), void *data, char *err,
                     size_t errlen) {
  struct stat st;
  if (stat(dir, &st) != 0) {
    if (err && errlen)
      snprintf(err, errlen, "cannot read %s: %s", dir, strerror(errno));
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) {
    if (err && errlen)
      snprintf(err, errlen, "cannot read %s: not a directory", dir);
    return -1;
  }
  list_ctx_t *c = calloc(1, sizeof *c);
  if (!c) {
    if (err && errlen)
      snprintf(err, errlen, "cannot read %s: %s", dir, strerror(ENOMEM));
    return -1;
  }
  c->fn = fn;
  c->data = data;
  c->err = err;
  c->errlen = errlen;
  seen_before(c, &st);
  list_dir(c, dir, "", 0);
  int failed = c->failed;
  free(c);
  return failed ? -1 : 0;
}
