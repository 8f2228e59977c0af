/* build.h: `dlnc build` and `dlnc emit`'s output checks (build.c). */
#ifndef DLNC_BUILD_H
#define DLNC_BUILD_H
#include "ir.h"

/* How `dlnc build` compiles. */
typedef struct build_opts {
  int debug, f64, verbose;
  int bf16;            /* --precision bf16: the runtime and the model with -DDL_GEMM_BF16 */
  const char *target;  /* a row of build.c's targets: "native" unless --target says */
  int mpi;             /* --mpi: -DDL_MPI and MPI's flags from mpicc (runtime/dist.c) */
} build_opts;

/* Emits and compiles a trainer executable at `out` (`in`: the model's
 * source, which out must not be). 0, or -1 after a message. */
int build_trainer(ir_graph *g, const char *in, const char *out, const build_opts *opts);
/* Whether `name` is a --target build_trainer knows; if not, prints the list. */
int build_target_known(const char *name);
/* --precision's value: 0 and *bf16 set for "f32" or "bf16"; else -1 after
 * a message listing the precisions. */
int build_precision(const char *name, int *bf16);
/* The runtime directory builds use (see runtime_dir in build.c). */
const char *build_runtime_dir(void);
/* The directory of prebuilt runtimes builds read (see build.c); NULL: none. */
const char *build_prebuilt_dir(void);
/* `dlnc prebuild`: compiles the runtime for these options (debug unused)
 * into `dir` as a cache entry, unless one is there already, and prints its
 * path.  0, or -1 after a message. */
int build_prebuild(const char *dir, const build_opts *opts);
/* 0 if `dlnc emit` may write NAME.c, NAME.h and NAME_main.c into dir: none
 * of them is the source `in`, a directory or another non-regular file. */
int build_check_emit(const char *dir, const char *name, const char *in);
#endif
