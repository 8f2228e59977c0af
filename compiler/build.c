/* build.c: `dlnc build`: emit the C into a temporary directory and compile
 * it with the runtime into one executable.
 *
 * The runtime comes from the cache (cache.c) when it can, and so do the
 * model's objects when its generated C is unchanged.  The executable
 * is linked under a temporary name beside BIN and renamed over it, so a
 * failed or stopped build leaves BIN as it was; BIN may not be the model,
 * a runtime file, a directory or anything but a regular file.  SIGINT,
 * SIGTERM and SIGHUP stop the compilers and remove every temporary file
 * (proc.c). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "build.h"
#include "cache.h"
#include "diag.h"
#include "emit.h"
#include "proc.h"

/* Whether dir holds the runtime (its contract header is there). */
static int is_runtime_dir(const char *dir) {
  char *p = xasprintf("%s/dl_model.h", dir);
  int ok = p && access(p, R_OK) == 0;
  free(p);
  return ok;
}

/* The directory of this executable (PREFIX/bin), from /proc/self/exe;
 * malloc'd, NULL if unknown. */
static char *exe_dir(void) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  char *slash = n > 0 ? (exe[n] = 0, strrchr(exe, '/')) : NULL;
  if (!slash) return NULL;
  *slash = 0;
  return strdup(exe);
}

/* PREFIX/share/dlnc/runtime if this dlnc is installed (the runtime is
 * there), else NULL; found once. */
static const char *installed_runtime(void) {
  static char *installed;
  static int looked;
  if (looked) return installed;
  looked = 1;
  char *bin = exe_dir();
  char *dir = bin ? xasprintf("%s/../share/dlnc/runtime", bin) : NULL;
  if (dir && is_runtime_dir(dir)) installed = dir;
  else free(dir);
  free(bin);
  return installed;
}

/* Where the runtime's sources are: $DLNC_RUNTIME if set; else the installed
 * copy beside this executable (PREFIX/bin/dlnc reads PREFIX/share/dlnc/runtime,
 * so an installed dlnc keeps working when the checkout it came from is moved
 * or deleted, and a relocated prefix works as well); else the checkout's
 * runtime/ that this dlnc was built from (a build-tree dlnc). */
const char *build_runtime_dir(void) {
  const char *env = getenv("DLNC_RUNTIME");
  if (env && *env) return env;
  const char *installed = installed_runtime();
  return installed ? installed : DLNC_RUNTIME_DIR;
}

/* Where `dlnc prebuild` writes runtimes and builds look for them:
 * $DLNC_PREBUILT (`off`: nowhere); else PREFIX/lib/dlnc/prebuilt for an
 * installed dlnc (cmake --install fills it); else the build tree's
 * prebuilt/ (DLNC_PREBUILT_DIR, filled when dlnc is built).  NULL: none. */
const char *build_prebuilt_dir(void) {
  static char *installed;
  const char *env = getenv("DLNC_PREBUILT");
  if (env && !strcmp(env, "off")) return NULL;
  if (env && *env) return env;
  if (installed) return installed;
  if (installed_runtime()) {
    char *bin = exe_dir();
    installed = bin ? xasprintf("%s/../lib/dlnc/prebuilt", bin) : NULL;
    free(bin);
    return installed;
  }
#ifdef DLNC_PREBUILT_DIR
  return DLNC_PREBUILT_DIR;
#else
  return NULL;
#endif
}

/* --target: what the trainer is compiled for, as -march.  `native` is this
 * machine's CPU (the fastest, but a trainer that may not run elsewhere);
 * the x86-64 levels are the psABI's, for a trainer to copy to other
 * machines (v3: AVX2 and FMA, v4: AVX-512); the runtime's GEMM picks its
 * kernel from what the level enables, and the trainer refuses to start on
 * a CPU without it (check_isa in runtime/trainer.c). */
static const struct target {
  const char *name, *march, *what;
} targets[] = {
    {"native", "native", "this machine's CPU (default)"},
#if defined(__x86_64__)
    {"x86-64", "x86-64", "any x86-64 CPU (SSE2)"},
    {"x86-64-v2", "x86-64-v2", "SSE4.2 and POPCNT (2009 on)"},
    {"x86-64-v3", "x86-64-v3", "AVX2 and FMA (Haswell, Zen 1 on)"},
    {"x86-64-v4", "x86-64-v4", "AVX-512 F/BW/CD/DQ/VL (Skylake-X, Zen 4 on)"},
#elif defined(__aarch64__)
    {"armv8-a", "armv8-a", "any 64-bit Arm CPU (NEON)"},
    {"armv8.2-a", "armv8.2-a", "Armv8.2-A (fp16)"},
#endif
};
enum { NTARGETS = sizeof targets / sizeof targets[0] };

static const struct target *find_target(const char *name) {
  for (int i = 0; i < NTARGETS; i++)
    if (!strcmp(targets[i].name, name ? name : "native")) return &targets[i];
  return NULL;
}

int build_target_known(const char *name) {
  if (find_target(name)) return 1;
  fprintf(stderr, "dlnc build: unknown --target '%s'; the targets are:\n", name);
  for (int i = 0; i < NTARGETS; i++)
    fprintf(stderr, "  %-10s %s\n", targets[i].name, targets[i].what);
  return 0;
}

/* --precision: what the GEMMs' operands are.  Only the operands: the sums,
 * the weights, the optimiser state and every other kernel stay fp32 (the
 * rule is in runtime/gemm_bf16.h).  bf16 compiles the runtime and the model
 * with -DDL_GEMM_BF16, which is in the runtime cache's key (the flags). */
static const struct precision {
  const char *name, *what;
} precisions[] = {
    {"f32", "fp32 operands (default)"},
    {"bf16", "operands rounded to bf16, fp32 accumulation (AVX512_BF16 if the target has it, "
             "else emulated)"},
};
enum { NPRECISIONS = sizeof precisions / sizeof precisions[0] };

int build_precision(const char *name, int *bf16) {
  for (int i = 0; i < NPRECISIONS; i++)
    if (!strcmp(precisions[i].name, name)) {
      *bf16 = !strcmp(name, "bf16");
      return 0;
    }
  fprintf(stderr, "dlnc build: unknown --precision '%s'; the precisions are:\n", name);
  for (int i = 0; i < NPRECISIONS; i++)
    fprintf(stderr, "  %-5s %s\n", precisions[i].name, precisions[i].what);
  return -1;
}

/* ---- --mpi ---------------------------------------------------------------- */

/* $MPICC, else mpicc: the MPI compiler wrapper, asked only for its flags,
 * so the trainer is still compiled by $CC (clang) like any other. */
static const char *mpicc(void) {
  const char *e = getenv("MPICC");
  return e && *e ? e : "mpicc";
}

/* A linker's word, which a compile step would warn about as unused. */
static int is_link_word(const char *w) {
  return !strncmp(w, "-l", 2) || !strncmp(w, "-L", 2) || !strncmp(w, "-Wl,", 4);
}

/* Adds the words `cmd` prints to f (skip: words to drop first, MPICH's
 * compiler name; compile: only those a compile step uses, for MPICH's
 * -compile-info, which prints the link flags too); 0, or -1 if it failed
 * or printed nothing. */
static int add_command_words(argv_list *f, const char *cmd, int skip, int compile) {
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  char buf[8192];
  size_t n = fread(buf, 1, sizeof buf - 1, p);
  int rc = pclose(p);
  buf[n] = 0;
  if (rc != 0 || n == 0 || n == sizeof buf - 1) return -1;
  int words = 0;
  for (char *w = strtok(buf, " \t\n"); w; w = strtok(NULL, " \t\n"))
    if (words++ >= skip && strcmp(w, "-c") && !(compile && is_link_word(w)))
      argv_own(f, strdup(w));
  return words > skip ? 0 : -1;
}

/* MPI's compile (which = "compile") or link ("link") flags: Open MPI's
 * `mpicc --showme:compile`, else MPICH's `mpicc -compile-info` (the whole
 * command, its first word the compiler). */
static int mpi_flags(argv_list *f, const char *which) {
  char *ompi = xasprintf("%s --showme:%s 2>/dev/null", mpicc(), which);
  char *mpich = xasprintf("%s -%s-info 2>/dev/null", mpicc(), which);
  int compile = !strcmp(which, "compile");
  int rc = ompi && mpich && (add_command_words(f, ompi, 0, 0) == 0 ||
                             add_command_words(f, mpich, 1, compile) == 0) ? 0 : -1;
  free(ompi);
  free(mpich);
  if (rc)
    fprintf(stderr, "dlnc: error: --mpi: cannot get MPI's %s flags from '%s' (install Open MPI: "
            "apt-get install openmpi-bin libopenmpi-dev, or MPICH; or set MPICC)\n", which, mpicc());
  return rc;
}

/* $CC, else clang if it is on PATH, else cc. */
static const char *c_compiler(void) {
  const char *cc = getenv("CC");
  if (cc && *cc) return cc;
  const char *path = getenv("PATH");
  for (const char *p = path ? path : "/usr/bin"; *p;) {
    size_t n = strcspn(p, ":");
    char *exe = xasprintf("%.*s/clang", (int)n, p);
    int found = exe && access(exe, X_OK) == 0;
    free(exe);
    if (found) return "clang";
    p += n + (p[n] == ':');
  }
  return "cc";
}

static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  for (struct dirent *e; (e = readdir(d));) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char *p = xasprintf("%s/%s", dir, e->d_name);
    if (p) unlink(p);
    free(p);
  }
  closedir(d);
  rmdir(dir);
}

static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The runtime's .c files, sorted so that the link line is stable. */
static int runtime_sources(const char *rt, argv_list *srcs) {
  DIR *d = opendir(rt);
  if (!d) {
    fprintf(stderr, "dlnc: error: cannot open the runtime directory %s: %s (set DLNC_RUNTIME)\n",
            rt, strerror(errno));
    return -1;
  }
  int first = srcs->n;
  for (struct dirent *e; (e = readdir(d));) {
    size_t len = strlen(e->d_name);
    if (len >= 3 && e->d_name[0] != '.' && strcmp(e->d_name + len - 2, ".c") == 0)
      argv_own(srcs, xasprintf("%s/%s", rt, e->d_name));
  }
  closedir(d);
  if (srcs->oom) return -1;
  qsort(srcs->v + first, (size_t)(srcs->n - first), sizeof *srcs->v, compare_names);
  return 0;
}

/* The runtime's cold files, compiled at -O1 (after -O3, which it
 * overrides): the commands, file formats and I/O run once a run or once an
 * epoch, and -O1 compiles them in 2/3 of the time (2.8 s of CPU instead of
 * 4.2 s), a fifth of a cold build, with no trainer slower.  The hot ones
 * (gemm.c, gemm_conv.c, conv.c, data.c's batches, threads.c, text.c, the
 * evaluation in trainer_common.c, the NaN scan in trainer_finite.c) stay at
 * -O3.  The list is in the runtime cache's key. */
static const char *const cold_runtime[] = {
    "atomic_file.c",      "checkpoint.c",       "json.c",          "onnx.c",
    "progress.c",         "safetensors.c",      "schedule.c",      "trainer.c",
    "trainer_best.c",     "trainer_eval.c",     "trainer_export.c", "trainer_generate.c",
    "trainer_gradcheck.c", "trainer_lanes.c",   "trainer_sample.c", "trainer_signal.c",
    "trainer_train.c",
};
enum { NCOLD_RUNTIME = sizeof cold_runtime / sizeof cold_runtime[0] };
static const char COLD_RUNTIME_FLAG[] = "-O1";

static int is_cold_runtime(const char *path) {
  const char *slash = strrchr(path, '/');
  for (int i = 0; i < NCOLD_RUNTIME; i++)
    if (!strcmp(slash ? slash + 1 : path, cold_runtime[i])) return 1;
  return 0;
}

/* The cold list and its flag as one string, for the cache key. */
static char *cold_runtime_salt(void) {
  size_t n = sizeof COLD_RUNTIME_FLAG;
  for (int i = 0; i < NCOLD_RUNTIME; i++) n += strlen(cold_runtime[i]) + 1;
  char *s = malloc(n);
  if (!s) return NULL;
  strcpy(s, COLD_RUNTIME_FLAG);
  for (int i = 0; i < NCOLD_RUNTIME; i++) strcat(strcat(s, " "), cold_runtime[i]);
  return s;
}

/* $DLNC_CFLAGS_EXTRA: more flags, split at blanks, however many and however
 * long (a DLNC_SANITIZE build's tests set the sanitizer flags here).  The
 * cache key hashes the whole list. */
static void add_extra_flags(argv_list *f) {
  const char *env = getenv("DLNC_CFLAGS_EXTRA");
  for (const char *p = env ? env : ""; *p;) {
    size_t n = strcspn(p, " \t\n");
    if (n) argv_own(f, strndup(p, n));
    p += n;
    p += strspn(p, " \t\n");
  }
}

static void compile_flags(argv_list *f, const build_opts *o, const char *rt) {
  argv_add(f, c_compiler());
  argv_add(f, "-std=c11");
  if (o->debug) {
    argv_add(f, "-O0");
    argv_add(f, "-g");
    argv_add(f, "-fsanitize=address,undefined");
    argv_add(f, "-fno-omit-frame-pointer");
  } else {
    argv_add(f, "-O3");
  }
  const struct target *t = find_target(o->target);
  argv_own(f, xasprintf("-march=%s", t->march));
  /* the trainer's --version and its CPU check say what it was built for */
  argv_own(f, xasprintf("-DDL_TARGET=\"%s\"", t->name));
  /* sqrt/exp without errno: lets the optimiser and activation loops vectorise */
  argv_add(f, "-fno-math-errno");
  /* Nothing reads the floating-point exception flags, so gcc may evaluate
   * both arms of a select (leaky_relu's `x > 0 ? x : a * x`, dl_exp's
   * clamp and float-to-int conversion): with its default -ftrapping-math
   * gcc 12 leaves those loops scalar ("control flow in loop").  clang
   * already assumes this by default. */
  argv_add(f, "-fno-trapping-math");
  argv_add(f, "-Wall");
  argv_add(f, "-Wextra");
  argv_add(f, "-D_GNU_SOURCE");
  if (o->f64) argv_add(f, "-DDLNC_F64");
  if (o->bf16) argv_add(f, "-DDL_GEMM_BF16");
  if (o->mpi) argv_add(f, "-DDL_MPI");
  add_extra_flags(f);
  argv_add(f, "-I");
  argv_add(f, rt);
}

/* ---- where the executable goes ------------------------------------------- */

static int same_file(const struct stat *a, const char *path) {
  struct stat b;
  return stat(path, &b) == 0 && a->st_dev == b.st_dev && a->st_ino == b.st_ino;
}

/* The file that -o names (through a symbolic link, which stays), after
 * checking it is not an input or something a build must not replace;
 * malloc'd, or NULL after a message. */
static char *output_target(const char *out, const char *input, const char *rt) {
  struct stat st;
  char *target = NULL;
  if (lstat(out, &st) == 0 && S_ISLNK(st.st_mode)) target = realpath(out, NULL);
  if (!target) target = strdup(out);
  if (!target) return NULL;
  const char *why = NULL;
  if (stat(target, &st) == 0) {
    if (S_ISDIR(st.st_mode)) why = "is a directory (-o names the executable to write)";
    else if (!S_ISREG(st.st_mode)) why = "exists and is not a regular file";
    else if (same_file(&st, input)) why = "is the model's source file; the executable would replace it";
    DIR *d = why ? NULL : opendir(rt);
    for (struct dirent *e; d && !why && (e = readdir(d));) {
      char *p = xasprintf("%s/%s", rt, e->d_name);
      if (p && e->d_name[0] != '.' && same_file(&st, p)) why = "is a file of the runtime; the executable would replace it";
      free(p);
    }
    if (d) closedir(d);
  }
  if (why) {
    fprintf(stderr, "dlnc: error: -o %s: %s\n", out, why);
    free(target);
    return NULL;
  }
  return target;
}

/* A temporary name in target's directory, so that renaming it is atomic. */
static char *partial_name(const char *target) {
  const char *slash = strrchr(target, '/');
  int dirlen = slash ? (int)(slash - target) + 1 : 0;
  char *p = xasprintf("%.*s.dlnc-%ld.tmp", dirlen, target, (long)getpid());
  if (p) {
    char *dir = dirlen ? strndup(target, (size_t)dirlen) : strdup(".");
    if (dir && access(dir, W_OK | X_OK) != 0) {
      fprintf(stderr, "dlnc: error: -o %s: cannot write in %s: %s\n", target, dir, strerror(errno));
      free(p);
      p = NULL;
    }
    free(dir);
  }
  return p;
}

/* ---- the build ------------------------------------------------------------ */

typedef struct build {
  const char *rt;
  char *tmp;          /* the scratch directory */
  argv_list flags;    /* compiler and flags, shared by every command */
  argv_list srcs;     /* model.c, model_main.c, then (unless cached) the runtime's */
  argv_list objs;     /* one per source */
  int nrt_first;      /* index of the first runtime source in srcs */
  char *hdr;          /* the generated header, hashed with each model source */
  rt_cache cache;
  int have_lib;       /* link the cached runtime library */
  char *lib;          /* its path: the cache's, or the one built in tmp */
  char *target, *partial;
  int debug; /* --debug: -O0 for every file */
  int mpi;   /* --mpi: link MPI's libraries */
} build;

/* The model's sources: NAME.c twice, its two halves compiled at once on two
 * cores (the backward pass is about half of the compile time, and a
 * model's C at -O3 is the longest compile of a build with the runtime
 * cached), then NAME_main.c.  Each half has its own cache entry. */
enum { MODEL_SRCS = 3 };
static const char *const model_part[MODEL_SRCS] = {"-DDL_PART=1", "-DDL_PART=2", NULL};

/* clang's flags for the model's C (not the runtime, whose GEMM kernels
 * want them): no partial or runtime unrolling.  On top of the vectoriser's
 * own interleaving it tripled the code the back end selects and allocates
 * registers for (2/3 of a model's compile time) and made no trainer
 * faster; full unrolling of short constant loops (a pooling window) stays,
 * as that one pays.  gcc does neither at -O3. */
static const char *const clang_model_flags[] = {"-mllvm", "-unroll-allow-partial=false", "-mllvm",
                                                "-unroll-runtime=false"};
enum { NCLANG_MODEL_FLAGS = sizeof clang_model_flags / sizeof clang_model_flags[0] };

/* The extra flags of the model's source i, NULL-terminated in out. */
static void model_flags(const build *b, int i, const char *out[NCLANG_MODEL_FLAGS + 2]) {
  int n = 0;
  for (int f = 0; b->cache.clang && f < NCLANG_MODEL_FLAGS; f++) out[n++] = clang_model_flags[f];
  if (model_part[i]) out[n++] = model_part[i];
  out[n] = NULL;
}

/* The model's source i from the cache: its object's entry in *entry (NULL
 * without a cache); 1 if the entry is good, and then objs[i] is it. */
static int cached_object(build *b, int i, char **entry, int verbose) {
  const char *flags[NCLANG_MODEL_FLAGS + 2];
  model_flags(b, i, flags);
  *entry = cache_object(&b->cache, b->srcs.v[i], b->hdr, flags);
  if (!cache_object_lookup(&b->cache, *entry)) return 0;
  if (verbose) {
    const char *slash = strrchr(b->srcs.v[i], '/');
    fprintf(stderr, "dlnc: %s: reusing the cached object %s\n", slash ? slash + 1 : b->srcs.v[i], *entry);
  }
  argv_own(&b->objs, strdup(*entry));
  return 1;
}

/* The runtime's slowest file by far: gemm.c's kernels are about 4 s of
 * compiler CPU, as much as the rest of the runtime.  Started first, it has a
 * core to itself while the other core takes everything else; started among
 * thirty others, it got a thirtieth of a core and a cold build ended waiting
 * for it alone. */
static const char *const slow_runtime[] = {"gemm.c"};
enum { NSLOW_RUNTIME = sizeof slow_runtime / sizeof slow_runtime[0] };

static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

/* When source i starts, longest first: the slow runtime file (0), the
 * model's halves and main (1), the hot runtime files (2), the cold ones at
 * -O1 (3). */
static int start_rank(const build *b, int i) {
  if (i < b->nrt_first) return 1;
  for (int k = 0; k < NSLOW_RUNTIME; k++)
    if (!strcmp(base_name(b->srcs.v[i]), slow_runtime[k])) return 0;
  return is_cold_runtime(b->srcs.v[i]) ? 3 : 2;
}

/* How many compiles run at once: the CPUs this process may use.  More only
 * share the same cores (a cold build's 30 compiles at once took 7 s of wall
 * time for 5 of work per core) and delay the ones started first. */
static int compile_slots(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

/* Starts the compile of source i into objs[i]; its pid, or -1. */
static pid_t start_compile(build *b, argv_list *cc, int base, int i, int verbose) {
  cc->n = base;
  const char *flags[NCLANG_MODEL_FLAGS + 2] = {NULL};
  if (i < b->nrt_first) model_flags(b, i, flags);
  for (int f = 0; flags[f]; f++) argv_add(cc, flags[f]);
  if (i >= b->nrt_first && !b->debug && is_cold_runtime(b->srcs.v[i])) argv_add(cc, COLD_RUNTIME_FLAG);
  argv_add(cc, "-c");
  argv_add(cc, b->srcs.v[i]);
  argv_add(cc, "-o");
  argv_add(cc, b->objs.v[i]);
  return cc->oom ? -1 : proc_start(cc->v, NULL, verbose);
}

enum { JOB_CACHED, JOB_WAITING, JOB_RUNNING, JOB_DONE };

/* Every compile the build needs, the model's sources (unless cached) and
 * (unless cached) each runtime file, as many at once as there are CPUs,
 * longest first (start_rank).  A compile that fails does not stop the
 * others from starting (-v prints every command, as it did when all
 * started at once); the first failure is named. */
static int compile_all(build *b, int verbose) {
  argv_list cc;
  if (argv_copy(&cc, &b->flags)) return -1;
  /* -iquote: the generated NAME.h is found by #include "NAME.h" only, so a
   * model named stdio or math cannot shadow a system header */
  argv_add(&cc, "-iquote");
  argv_add(&cc, b->tmp);
  /* --debug's objects name their source ./NAME.c, not the scratch
   * directory: the same model compiles to the same bytes, which the object
   * cache relies on when two builds store one entry at once */
  argv_own(&cc, xasprintf("-fdebug-prefix-map=%s=.", b->tmp));
  int base = cc.n, n = b->srcs.n, rc = cc.oom ? -1 : 0;
  pid_t *pids = calloc((size_t)n, sizeof *pids);
  int *state = calloc((size_t)n, sizeof *state), *order = calloc((size_t)n, sizeof *order);
  char *entries[MODEL_SRCS] = {NULL}; /* the model's objects in the cache */
  if (!pids || !state || !order) rc = -1;
  int njobs = 0;
  for (int i = 0; rc == 0 && i < n; i++) {
    if (i < b->nrt_first && cached_object(b, i, &entries[i], verbose)) continue; /* JOB_CACHED */
    argv_own(&b->objs, xasprintf("%s/o%d.o", b->tmp, i));
    state[i] = JOB_WAITING;
    if (b->objs.oom) rc = -1;
  }
  for (int rank = 0; rc == 0 && rank < 4; rank++)
    for (int i = 0; i < n; i++)
      if (state[i] == JOB_WAITING && start_rank(b, i) == rank) order[njobs++] = i;
  int slots = compile_slots(), running = 0, next = 0, broken = rc, failed = 0;
  while (running > 0 || (!broken && next < njobs)) {
    if (!broken && next < njobs && running < slots) {
      int i = order[next++];
      if ((pids[i] = start_compile(b, &cc, base, i, verbose)) < 0) broken = -1;
      else state[i] = JOB_RUNNING, running++;
      continue;
    }
    int ok;
    pid_t pid = proc_wait_any(&ok);
    if (pid < 0) {
      broken = -1;
      break;
    }
    for (int i = 0; i < n; i++)
      if (state[i] == JOB_RUNNING && pids[i] == pid) {
        running--;
        state[i] = ok ? JOB_DONE : JOB_WAITING;
        /* name the first that fails (a broken $CC fails them all) */
        if (!ok && !failed && !proc_stopped()) fprintf(stderr, "dlnc: error: %s failed\n", b->srcs.v[i]);
        if (!ok) failed = -1;
      }
  }
  if (broken || failed) rc = -1;
  for (int i = 0; i < b->nrt_first; i++) {
    if (rc == 0 && state && state[i] == JOB_DONE && entries[i] && !proc_stopped())
      cache_object_store(&b->cache, b->objs.v[i], entries[i]);
    free(entries[i]);
  }
  free(pids);
  free(state);
  free(order);
  argv_free(&cc);
  return rc;
}

/* Archives the runtime objects built here and offers them to the cache
 * (with no cache, the objects are linked as they are). */
static void archive_runtime(build *b, int verbose) {
  if (!b->cache.dir) return;
  argv_list ar = {0};
  char *lib = xasprintf("%s/runtime.a", b->tmp);
  argv_add(&ar, "ar");
  argv_add(&ar, "rcs");
  argv_add(&ar, lib);
  for (int i = b->nrt_first; i < b->objs.n; i++) argv_add(&ar, b->objs.v[i]);
  pid_t pid = ar.oom ? -1 : proc_start(ar.v, NULL, verbose);
  if (pid > 0 && proc_finish(pid, NULL) == 0) {
    cache_store(&b->cache, lib);
    b->lib = lib;
    b->have_lib = 1;
  } else {
    if (!proc_stopped())
      fprintf(stderr, "dlnc: warning: cannot archive the runtime for the build cache (ar failed); "
              "building without it\n");
    free(lib);
  }
  argv_free(&ar);
}

static int link_all(build *b, int verbose) {
  argv_list link;
  if (argv_copy(&link, &b->flags)) return -1;
  for (int i = 0; i < b->nrt_first; i++) argv_add(&link, b->objs.v[i]);
  if (b->have_lib) argv_add(&link, b->lib);
  else
    for (int i = b->nrt_first; i < b->objs.n; i++) argv_add(&link, b->objs.v[i]);
  argv_add(&link, "-o");
  argv_add(&link, b->partial);
  argv_add(&link, "-lpng"); /* trainer_generate.c: sample's PNG grid */
  argv_add(&link, "-lz");
  argv_add(&link, "-lm");
  argv_add(&link, "-lpthread");
  if (b->mpi && mpi_flags(&link, "link")) {
    argv_free(&link);
    return -1;
  }
  int rc = link.oom ? -1 : proc_run(link.v, NULL, verbose);
  argv_free(&link);
  if (rc == 0 && !proc_stopped() && rename(b->partial, b->target) != 0) {
    fprintf(stderr, "dlnc: error: cannot write %s: %s\n", b->target, strerror(errno));
    rc = -1;
  }
  return rc;
}

static int run_build(build *b, ir_graph *g, const build_opts *o) {
  int verbose = o->verbose;
  compile_flags(&b->flags, o, b->rt);
  /* MPI's include path, in the cache key with the rest */
  b->mpi = o->mpi;
  if (o->mpi && mpi_flags(&b->flags, "compile")) return -1;
  if (b->flags.oom) return -1;
  if (runtime_sources(b->rt, &b->srcs)) return -1;
  int nrt = b->srcs.n;
  if (emit_c(g, b->tmp, o->f64)) return -1;

  char *salt = cold_runtime_salt();
  if (!salt) return -1;
  /* --debug compiles everything at -O0: no cold list */
  cache_open(&b->cache, build_prebuilt_dir(), &b->flags, o->debug ? "" : salt, b->rt, b->tmp, verbose);
  free(salt);
  b->debug = o->debug;
  const char *lib = cache_lookup(&b->cache);
  b->have_lib = lib != NULL;
  if (lib) b->lib = strdup(lib);
  if (lib && verbose) fprintf(stderr, "dlnc: reusing the %s runtime %s\n",
                              lib == b->cache.lib ? "cached" : "prebuilt", lib);
  /* the sources in order: the model's, then the runtime's if needed */
  argv_list srcs = {0};
  argv_own(&srcs, xasprintf("%s/%s.c", b->tmp, g->model_name));
  argv_own(&srcs, xasprintf("%s/%s.c", b->tmp, g->model_name));
  argv_own(&srcs, xasprintf("%s/%s_main.c", b->tmp, g->model_name));
  b->nrt_first = MODEL_SRCS;
  b->hdr = xasprintf("%s/%s.h", b->tmp, g->model_name);
  for (int i = 0; !b->have_lib && i < nrt; i++) argv_own(&srcs, strdup(b->srcs.v[i]));
  argv_free(&b->srcs);
  b->srcs = srcs;
  if (b->srcs.oom || !b->hdr || (b->have_lib && !b->lib)) return -1;

  if (compile_all(b, verbose)) return -1;
  if (!b->have_lib) archive_runtime(b, verbose);
  if (proc_stopped()) return -1;
  return link_all(b, verbose);
}

/* A build's temporary directory, under $TMPDIR (else /tmp): 0, or -1 after
 * a message. */
static int make_tmp(build *b) {
  const char *tmpdir = getenv("TMPDIR");
  b->tmp = xasprintf("%s/dlnc-build-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
  if (b->tmp && mkdtemp(b->tmp)) return 0;
  fprintf(stderr, "dlnc: error: cannot make a temporary directory: %s\n", strerror(errno));
  return -1;
}

/* Removes the temporary directory and frees what the build holds. */
static void build_free(build *b) {
  if (b->tmp) remove_dir(b->tmp);
  argv_free(&b->flags);
  argv_free(&b->srcs);
  argv_free(&b->objs);
  cache_close(&b->cache);
  free(b->lib);
  free(b->hdr);
  free(b->tmp);
  free(b->target);
  free(b->partial);
}

int build_trainer(ir_graph *g, const char *in, const char *out, const build_opts *o) {
  build b = {.rt = build_runtime_dir()};
  if (!(b.target = output_target(out, in, b.rt))) return -1;
  if (!(b.partial = partial_name(b.target))) {
    free(b.target);
    return -1;
  }
  proc_trap_signals();
  int rc = make_tmp(&b) ? -1 : run_build(&b, g, o);
  if (rc != 0 || proc_stopped()) unlink(b.partial);
  build_free(&b);
  proc_untrap_signals(); /* re-raises a stopping signal, now that all is clean */
  return rc;
}

/* `dlnc prebuild`: the runtime alone, compiled as run_build would, into the
 * cache directory `dir`. */
static int run_prebuild(build *b, const char *dir, const build_opts *o) {
  compile_flags(&b->flags, o, b->rt);
  if (b->flags.oom || runtime_sources(b->rt, &b->srcs)) return -1;
  char *salt = cold_runtime_salt();
  if (!salt) return -1;
  int rc = cache_open_at(&b->cache, dir, &b->flags, salt, b->rt, b->tmp, o->verbose);
  free(salt);
  if (rc) {
    if (!proc_stopped())
      fprintf(stderr, "dlnc: error: cannot prebuild into %s (does %s run?)\n", dir, b->flags.v[0]);
    return -1;
  }
  const char *lib = cache_lookup(&b->cache);
  if (!lib) {
    b->nrt_first = 0; /* no model: every source is the runtime's */
    if (compile_all(b, o->verbose)) return -1;
    archive_runtime(b, o->verbose);
    if (proc_stopped()) return -1;
    if (!(lib = cache_lookup(&b->cache))) {
      fprintf(stderr, "dlnc: error: cannot write the runtime into %s\n", dir);
      return -1;
    }
  }
  printf("%s\n", lib);
  return 0;
}

int build_prebuild(const char *dir, const build_opts *o) {
  build b = {.rt = build_runtime_dir()};
  proc_trap_signals();
  int rc = make_tmp(&b) ? -1 : run_prebuild(&b, dir, o);
  build_free(&b);
  proc_untrap_signals();
  return rc;
}

int build_check_emit(const char *dir, const char *name, const char *in) {
  static const char *const suffixes[] = {".c", ".h", "_main.c"};
  struct stat st;
  int rc = 0;
  for (int i = 0; i < 3 && rc == 0; i++) {
    char *p = xasprintf("%s/%s%s", dir, name, suffixes[i]);
    const char *why = NULL;
    if (!p) return -1;
    if (stat(p, &st) == 0) {
      if (S_ISDIR(st.st_mode)) why = "is a directory";
      else if (!S_ISREG(st.st_mode)) why = "exists and is not a regular file";
      else if (same_file(&st, in)) why = "is the model's source file";
    }
    if (why) {
      fprintf(stderr, "dlnc: error: cannot emit %s: it %s\n", p, why);
      rc = -1;
    }
    free(p);
  }
  return rc;
}
