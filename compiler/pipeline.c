/* pipeline.c: read -> parse -> check and lower -> autodiff -> plan -> fuse,
 * and the build step that runs the C compiler on the emitted code. */
#define _GNU_SOURCE
#include "pipeline.h"
#include <dirent.h>
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "ast.h"
#include "autodiff.h"
#include "emit.h"
#include "lower.h"
#include "passes.h"

extern char **environ;

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "dlnc: error: cannot open '%s': %s\n", path, strerror(errno));
    return NULL;
  }
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  for (size_t got; buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
    len += got;
    if (cap - len - 1 == 0) {
      char *nb = realloc(buf, cap *= 2);
      if (!nb) free(buf);
      buf = nb;
    }
  }
  int bad = ferror(f);
  fclose(f);
  if (!buf || bad) {
    fprintf(stderr, "dlnc: error: cannot read %s\n", path);
    free(buf);
    return NULL;
  }
  buf[len] = 0;
  if (strlen(buf) != len) {
    fprintf(stderr, "dlnc: error: %s is not a text file (it contains a NUL byte)\n", path);
    free(buf);
    return NULL;
  }
  return buf;
}

ir_graph *pipeline_compile(const char *path, int plan, FILE *ast_out) {
  char *text = read_file(path);
  if (!text) return NULL;
  diag_set_source(path, text);
  ast_program *ast = parse_program(text);
  ir_graph *g = NULL;
  if (ast) {
    if (ast_out) ast_dump(ast, ast_out);
    g = lower_program(ast, path, text);
    ast_free(ast);
  }
  diag_set_source(path, NULL); /* diagnostics end with the front end */
  free(text);
  if (!g || !plan) return g;
  if (autodiff(g) || memplan(g)) {
    ir_free(g);
    return NULL;
  }
  fuse(g);
  return g;
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
  char buf[4096];
  for (const char *p = path ? path : "/usr/bin"; *p;) {
    size_t n = strcspn(p, ":");
    snprintf(buf, sizeof buf, "%.*s/clang", (int)n, p);
    if (access(buf, X_OK) == 0) return "clang";
    p += n + (p[n] == ':');
  }
  return "cc";
}

static int run(char **argv, int verbose) {
  if (verbose) {
    for (char **a = argv; *a; a++) fprintf(stderr, "%s%s", *a, a[1] ? " " : "\n");
  }
  pid_t pid;
  int err = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
  if (err) {
    fprintf(stderr, "dlnc: error: cannot run %s: %s\n", argv[0], strerror(err));
    return -1;
  }
  int status;
  if (waitpid(pid, &status, 0) < 0) return -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "dlnc: error: %s failed on the generated code\n", argv[0]);
    return -1;
  }
  return 0;
}

static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  char p[4096];
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

int pipeline_build(ir_graph *g, const char *out, int debug, int f64, int verbose) {
  char tmp[] = "/tmp/dlnc-build-XXXXXX";
  if (!mkdtemp(tmp)) {
    fprintf(stderr, "dlnc: error: cannot make a temporary directory: %s\n", strerror(errno));
    return -1;
  }
  int rc = emit_c(g, tmp, f64);
  const char *rt = runtime_dir();
  enum { MAXARG = 64 };
  char *argv[MAXARG];
  char files[3][4200], inc_gen[4200], inc_rt[4200], rtfiles[24][4200];
  int argc = 0, nrt = 0;
  argv[argc++] = (char *)c_compiler();
  argv[argc++] = "-std=c11";
  if (debug) {
    argv[argc++] = "-O0";
    argv[argc++] = "-g";
    argv[argc++] = "-fsanitize=address,undefined";
    argv[argc++] = "-fno-omit-frame-pointer";
  } else {
    argv[argc++] = "-O3";
    argv[argc++] = "-march=native";
  }
  argv[argc++] = "-Wall";
  argv[argc++] = "-Wextra";
  argv[argc++] = "-D_GNU_SOURCE";
  if (f64) argv[argc++] = "-DDLNC_F64";
  snprintf(inc_gen, sizeof inc_gen, "-I%s", tmp);
  snprintf(inc_rt, sizeof inc_rt, "-I%s", rt);
  argv[argc++] = inc_gen;
  argv[argc++] = inc_rt;
  snprintf(files[0], sizeof files[0], "%s/%s.c", tmp, g->model_name);
  snprintf(files[1], sizeof files[1], "%s/%s_main.c", tmp, g->model_name);
  argv[argc++] = files[0];
  argv[argc++] = files[1];
  DIR *d = opendir(rt);
  if (!d) {
    fprintf(stderr, "dlnc: error: cannot open the runtime directory %s: %s (set DLNC_RUNTIME)\n", rt,
            strerror(errno));
    rc = -1;
  } else {
    for (struct dirent *e; (e = readdir(d)) && nrt < 24;) {
      size_t len = strlen(e->d_name);
      if (len < 3 || strcmp(e->d_name + len - 2, ".c")) continue;
      snprintf(rtfiles[nrt], sizeof rtfiles[nrt], "%s/%s", rt, e->d_name);
      argv[argc++] = rtfiles[nrt++];
    }
    closedir(d);
  }
  argv[argc++] = "-o";
  argv[argc++] = (char *)out;
  argv[argc++] = "-lz";
  argv[argc++] = "-lm";
  argv[argc++] = "-lpthread";
  argv[argc] = NULL;
  if (rc == 0) rc = run(argv, verbose);
  remove_dir(tmp);
  return rc;
}
