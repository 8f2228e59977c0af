/* fuzz_dln.c: the input is a .dln file, run through what `dlnc check` does
 * (read, parse, check and lower) and, when it checks clean, what `dlnc emit
 * --ir` does too (autodiff, memory plan, fusion, IR dump, C emission into a
 * scratch directory).  The syntax tree and IR dumps go to /dev/null.
 * Diagnostics go to stderr: run with -close_fd_mask=2 to silence them. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"
#include "emit.h"
#include "fuzz_util.h"
#include "pipeline.h"

static fuzz_file src;
static FILE *devnull;
static char out_dir[256];

static void remove_outputs(void) {
  DIR *d = opendir(out_dir);
  if (!d) return;
  char p[512];
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "%s/%s", out_dir, e->d_name);
    unlink(p);
  }
  closedir(d);
}

static void cleanup(void) {
  remove_outputs();
  rmdir(out_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  fuzz_file_open(&src, "dln");
  devnull = fopen("/dev/null", "w");
  /* tmpfs when there is one: emission writes three files per clean input */
  const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  snprintf(out_dir, sizeof out_dir, "%s/dlnc-fuzz-emit-XXXXXX", base);
  if (!devnull || !mkdtemp(out_dir)) {
    perror("fuzz_dln: setup");
    abort();
  }
  atexit(cleanup);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_file_set(&src, data, size);
  diag_reset();
  ir_graph *g = pipeline_compile(src.path, 1, devnull);
  if (g) {
    ir_dump(g, devnull);
    emit_c(g, out_dir, size & 1); /* f32 or f64 by the input's parity */
    remove_outputs();
    ir_free(g);
  }
  return 0;
}
