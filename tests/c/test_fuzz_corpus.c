/* Replays the fuzz targets' seed inputs and every input that once crashed
 * one (tests/fuzz/regress/<target>/) in the normal test run: a crash here
 * is a regression. */
#define LLVMFuzzerTestOneInput fuzz_ws_one
#include "../fuzz/fuzz_ws.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_upgrade_one
#include "../fuzz/fuzz_upgrade.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_events_one
#include "../fuzz/fuzz_events.c"
#undef LLVMFuzzerTestOneInput

#include "test.h"

#include <dirent.h>
#include <stdio.h>

typedef int (*target_fn)(const uint8_t *, size_t);

static int replay_dir(const char *dir, target_fn fn) {
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "rb");
    if (!f)
      continue;
    uint8_t buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    fn(buf, len);
    n++;
  }
  closedir(d);
  return n;
}

static void replay(const char *name, target_fn fn) {
  char dir[256];
  snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", name);
  int seeds = replay_dir(dir, fn);
  snprintf(dir, sizeof dir, "tests/fuzz/regress/%s", name);
  int regress = replay_dir(dir, fn);
  CHECK(seeds > 0, "fuzz target %s: %d seed and %d regression inputs replayed without a crash", name, seeds,
        regress);
}

int main(void) {
  replay("ws", fuzz_ws_one);
  replay("upgrade", fuzz_upgrade_one);
  replay("events", fuzz_events_one);
  TEST_DONE();
}
