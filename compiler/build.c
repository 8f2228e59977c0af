/* build.c: `dlnc build`: emit the C into a temporary directory and compile
 * it with the runtime into one executable.
 *
 * The runtime is the same for every model, so it is compiled once per
 * (compiler, flags, runtime sources) into a static library kept in a cache
 * directory ($DLNC_CACHE, else $XDG_CACHE_HOME/dlnc, else ~/.cache/dlnc), and
 * later builds only compile the model.  The cache key hashes the runtime's
 * sources and headers, so an edited runtime is never linked stale; a cache
 * that cannot be used (DLNC_CACHE=off, unwritable) just means compiling the
 * runtime sources with the model, as before. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "emit.h"
#include "pipeline.h"

extern char **environ;

enum { MAX_ARGS = 96, MAX_RT_FILES = 40, PATH_LEN = 4200 };

typedef struct argv_list {
  char *v[MAX_ARGS];
  int n;
} argv_list;

static void add(argv_list *a, const char *s) {
  if (a->n < MAX_ARGS - 1) a->v[a->n++] = (char *)s;
  a->v[a->n] = NULL;
}

static const char *runtime_dir(void) {
  const char *env = getenv("DLNC_RUNTIME");
  return env && *env ? env : DLNC_RUNTIME_DIR;
}

/* $CC, else clang if it is on PATH, else cc. */
static const char *c_compiler(void) {
  const char *cc = getenv("CC");
  if (cc && *cc) return cc;
  const char *path = getenv("PATH");
  char buf[PATH_LEN];
  for (const char *p = path ? path : "/usr/bin"; *p;) {
    size_t n = strcspn(p, ":");
    snprintf(buf, sizeof buf, "%.*s/clang", (int)n, p);
    if (access(buf, X_OK) == 0) return "clang";
    p += n + (p[n] == ':');
  }
  return "cc";
}

/* Starts argv; the pid, or -1 after a message. */
static pid_t start(char **argv, int verbose) {
  if (verbose)
    for (char **a = argv; *a; a++) fprintf(stderr, "%s%s", *a, a[1] ? " " : "\n");
  pid_t pid;
  int err = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
  if (err) {
    fprintf(stderr, "dlnc: error: cannot run %s: %s\n", argv[0], strerror(err));
    return -1;
  }
  return pid;
}

/* Waits for pid; 0 if it exited with status 0. */
static int finish(pid_t pid, const char *what) {
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "dlnc: error: %s failed\n", what);
    return -1;
  }
  return 0;
}

static int run(char **argv, int verbose) {
  pid_t pid = start(argv, verbose);
  return pid < 0 ? -1 : finish(pid, argv[0]);
}

static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  char p[PATH_LEN];
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

static int compare_paths(const void *a, const void *b) { return strcmp(a, b); }

/* The runtime's .c files (sorted, so the key and the link line are stable). */
static int runtime_sources(const char *rt, char names[][PATH_LEN], int max) {
  DIR *d = opendir(rt);
  if (!d) {
    fprintf(stderr, "dlnc: error: cannot open the runtime directory %s: %s (set DLNC_RUNTIME)\n",
            rt, strerror(errno));
    return -1;
  }
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) && n < max;) {
    size_t len = strlen(e->d_name);
    if (len >= 3 && strcmp(e->d_name + len - 2, ".c") == 0)
      snprintf(names[n++], PATH_LEN, "%s/%s", rt, e->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n, PATH_LEN, compare_paths);
  return n;
}

/* FNV-1a over the flags and every file in the runtime directory. */
static uint64_t fnv(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

static int runtime_key(const char *rt, const argv_list *flags, uint64_t *key) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < flags->n; i++) h = fnv(h, flags->v[i], strlen(flags->v[i]) + 1);
  DIR *d = opendir(rt);
  if (!d) return -1;
  char path[PATH_LEN], buf[8192];
  uint64_t files = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", rt, e->d_name);
    FILE *f = fopen(path, "rb");
    if (!f) continue;
    /* order-independent: hash each file alone, then combine by addition */
    uint64_t fh = fnv(0xcbf29ce484222325ull, e->d_name, strlen(e->d_name));
    for (size_t got; (got = fread(buf, 1, sizeof buf, f)) > 0;) fh = fnv(fh, buf, got);
    fclose(f);
    files += fh * 0x9E3779B97F4A7C15ull;
  }
  closedir(d);
  *key = fnv(h, &files, sizeof files);
  return 0;
}

static int cache_dir(char *out, size_t len) {
  const char *env = getenv("DLNC_CACHE");
  if (env && strcmp(env, "off") == 0) return -1;
  if (env && *env) snprintf(out, len, "%s", env);
  else if ((env = getenv("XDG_CACHE_HOME")) && *env) snprintf(out, len, "%s/dlnc", env);
  else if ((env = getenv("HOME")) && *env) snprintf(out, len, "%s/.cache/dlnc", env);
  else return -1;
  /* make each missing level */
  for (char *p = out + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      mkdir(out, 0777);
      *p = '/';
    }
  return mkdir(out, 0777) == 0 || errno == EEXIST ? 0 : -1;
}

/* Starts `flags -c src -o obj`. */
static pid_t start_compile(const argv_list *flags, const char *src, const char *obj, int verbose) {
  argv_list cc = *flags;
  add(&cc, "-c");
  add(&cc, src);
  add(&cc, "-o");
  add(&cc, obj);
  return start(cc.v, verbose);
}

/* Archives the runtime objects into lib (via a temporary name, renamed into
 * place so concurrent builds never see half a library). */
static int archive_runtime(const char *lib, char objs[][PATH_LEN], int nobj, int verbose) {
  char partial[PATH_LEN + 128];
  argv_list ar = {0};
  add(&ar, "ar");
  add(&ar, "rcs");
  snprintf(partial, sizeof partial, "%s.%ld.tmp", lib, (long)getpid());
  add(&ar, partial);
  for (int i = 0; i < nobj; i++) add(&ar, objs[i]);
  if (run(ar.v, verbose) || rename(partial, lib) != 0) {
    unlink(partial);
    return -1;
  }
  return 0;
}

static void compile_flags(argv_list *f, int debug, int f64, const char *inc_rt) {
  add(f, c_compiler());
  add(f, "-std=c11");
  if (debug) {
    add(f, "-O0");
    add(f, "-g");
    add(f, "-fsanitize=address,undefined");
    add(f, "-fno-omit-frame-pointer");
  } else {
    add(f, "-O3");
    add(f, "-march=native");
  }
  /* sqrt/exp without errno: lets the optimiser and activation loops vectorise */
  add(f, "-fno-math-errno");
  add(f, "-Wall");
  add(f, "-Wextra");
  add(f, "-D_GNU_SOURCE");
  if (f64) add(f, "-DDLNC_F64");
  /* $DLNC_CFLAGS_EXTRA: more flags, split at blanks (a DLNC_SANITIZE build's
   * tests set the sanitizer flags here).  The cache key hashes this list. */
  static char extra[1024];
  const char *env = getenv("DLNC_CFLAGS_EXTRA");
  snprintf(extra, sizeof extra, "%s", env ? env : "");
  for (char *t = strtok(extra, " \t\n"); t; t = strtok(NULL, " \t\n")) add(f, t);
  add(f, inc_rt);
}

/* Every compile at once, the model's two files and (unless cached) each
 * runtime file: they are independent, and on a cold cache the runtime's
 * GEMM kernels alone take longer than everything else together. */
int pipeline_build(ir_graph *g, const char *out, int debug, int f64, int verbose) {
  char tmp[] = "/tmp/dlnc-build-XXXXXX";
  if (!mkdtemp(tmp)) {
    fprintf(stderr, "dlnc: error: cannot make a temporary directory: %s\n", strerror(errno));
    return -1;
  }
  static char rtfiles[MAX_RT_FILES][PATH_LEN], objs[MAX_RT_FILES + 2][PATH_LEN];
  char inc_gen[PATH_LEN], inc_rt[PATH_LEN], dir[PATH_LEN], lib[PATH_LEN + 64];
  char model_c[PATH_LEN], main_c[PATH_LEN];
  const char *srcs[MAX_RT_FILES + 2];
  const char *rt = runtime_dir();
  argv_list flags = {0};
  snprintf(inc_rt, sizeof inc_rt, "-I%s", rt);
  compile_flags(&flags, debug, f64, inc_rt);
  int nrt = runtime_sources(rt, rtfiles, MAX_RT_FILES);
  int rc = nrt < 0 || emit_c(g, tmp, f64) ? -1 : 0;

  /* the runtime from the cache, compiled here if missing */
  uint64_t key;
  int use_cache = rc == 0 && cache_dir(dir, sizeof dir) == 0 && runtime_key(rt, &flags, &key) == 0;
  if (use_cache) snprintf(lib, sizeof lib, "%s/runtime-%016" PRIx64 ".a", dir, key);
  int have_lib = use_cache && access(lib, R_OK) == 0;

  argv_list cc = flags;
  snprintf(inc_gen, sizeof inc_gen, "-I%s", tmp);
  add(&cc, inc_gen);
  int nsrc = 0;
  snprintf(model_c, sizeof model_c, "%s/%s.c", tmp, g->model_name);
  snprintf(main_c, sizeof main_c, "%s/%s_main.c", tmp, g->model_name);
  srcs[nsrc++] = model_c;
  srcs[nsrc++] = main_c;
  if (!have_lib)
    for (int i = 0; i < nrt; i++) srcs[nsrc++] = rtfiles[i];
  pid_t pids[MAX_RT_FILES + 2];
  for (int i = 0; rc == 0 && i < nsrc; i++) {
    snprintf(objs[i], PATH_LEN, "%s/o%d.o", tmp, i);
    pids[i] = start_compile(&cc, srcs[i], objs[i], verbose);
  }
  for (int i = 0; rc == 0 && i < nsrc; i++)
    if (pids[i] < 0 || finish(pids[i], srcs[i])) rc = -1;
  if (rc == 0 && !have_lib && use_cache) have_lib = archive_runtime(lib, objs + 2, nrt, verbose) == 0;

  argv_list link = flags;
  add(&link, objs[0]);
  add(&link, objs[1]);
  if (have_lib) add(&link, lib);
  else
    for (int i = 2; i < nsrc; i++) add(&link, objs[i]);
  add(&link, "-o");
  add(&link, out);
  add(&link, "-lz");
  add(&link, "-lm");
  add(&link, "-lpthread");
  if (rc == 0) rc = run(link.v, verbose);
  remove_dir(tmp);
  return rc;
}
