/* Watching FLOWS for changes with inotify, without any event loop: the
 * loop only has to call luari_watch_read when luari_watch_fd is readable
 * (watch_ev.c does that for libev). A directory is watched with all its
 * subdirectories, which are followed as they come and go; a single file is
 * watched through its directory, because editors that save by writing a
 * new file and renaming it over the old one replace the inode.
 *
 * Only `.lua` files are reported, never names starting with a dot (editor
 * lock files, .git), and a file is reported once it has been written and
 * closed, not when it is created empty. */
#ifndef LUARI_WATCH_H
#define LUARI_WATCH_H

#include "log.h"

#include <stddef.h>

typedef struct luari_watch luari_watch_t;

enum {
  LUARI_WATCH_CHANGED = 1, /* a .lua file was written, moved in or linked; or a directory appeared */
  LUARI_WATCH_REMOVED,     /* a .lua file or a directory was deleted or moved away */
  LUARI_WATCH_RESCAN,      /* the kernel dropped events: anything may have changed */
  LUARI_WATCH_LOST         /* FLOWS itself went away: nothing is watched until a resync succeeds */
};

/* `path` is relative to the watched directory ("hello.lua", "lib/util.lua");
 * "" for RESCAN and LOST. */
typedef void (*luari_watch_fn)(void *data, int what, const char *path);

/* Watches `path` (a directory, recursively, or one file). NULL on failure,
 * with the reason in err (e.g. the inotify limits, which are per user). */
luari_watch_t *luari_watch_new(const char *path, luari_watch_fn fn, void *data, luari_log_t *log,
                               char *err, size_t errlen);

/* The inotify descriptor (non-blocking); it stays the same for the life of the watch. */
int luari_watch_fd(const luari_watch_t *w);

/* Reads and reports everything pending. 0, or -1 when reading failed. */
int luari_watch_read(luari_watch_t *w);

/* Reports the inotify records in buf (what read() returns on the descriptor).
 * -1 when a record is cut short. */
int luari_watch_process(luari_watch_t *w, const char *buf, size_t len);

/* Drops every watch and starts again from the path given to luari_watch_new,
 * for when FLOWS was replaced (a symlink pointed elsewhere, the directory
 * deleted and made again). -1 with a reason when the path cannot be watched. */
int luari_watch_resync(luari_watch_t *w, char *err, size_t errlen);

/* Directories watched now (0 after LOST). */
size_t luari_watch_count(const luari_watch_t *w);

/* The watch descriptor of a watched directory ("" is the top), -1 if none.
 * For tests that feed luari_watch_process records by hand. */
int luari_watch_wd(const luari_watch_t *w, const char *dir);

/* Calls fn for every .lua file below `dir`, by its path relative to dir,
 * with the rules the watch follows: names starting with a dot skipped,
 * symlinks followed, each directory visited once, MAX_DEPTH levels at
 * most. Unsorted. 0, or -1 with the reason in err when dir, or a directory
 * or entry below it, cannot be read (permissions). */
int luari_watch_list(const char *dir, void (*fn)(void *data, const char *rel), void *data, char *err,
                     size_t errlen);

/* Closes the descriptor and frees everything. Called from inside the
 * callback, it only marks the watch: nothing more is reported, and the
 * memory goes when luari_watch_read or luari_watch_process returns. */
void luari_watch_free(luari_watch_t *w);

#endif
