/* pipeline.c: read -> parse -> check and lower -> autodiff -> plan -> fuse.
 * (The build step that runs the C compiler is build.c.) */
#include "pipeline.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "ast.h"
#include "autodiff.h"
#include "emit.h"
#include "lower.h"
#include "passes.h"

/* A .dln file is text of at most this many bytes: a bound for /dev/zero,
 * a runaway pipe or a file given by mistake. */
enum { MAX_SOURCE = 16 << 20 };

static void *read_error(FILE *f, char *buf, const char *path, const char *why) {
  fprintf(stderr, "dlnc: error: cannot read %s: %s\n", path, why);
  if (f) fclose(f);
  free(buf);
  return NULL;
}

/* The whole file as a string; NULL after a message.  Directories are
 * refused; pipes, FIFOs and devices are read up to MAX_SOURCE bytes, and
 * reading stops at the first NUL byte (not text). */
static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "dlnc: error: cannot open '%s': %s\n", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode))
    return read_error(f, NULL, path, "it is a directory");
  if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > MAX_SOURCE)
    return read_error(f, NULL, path, "larger than 16 MiB, too large for a .dln file");
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  for (size_t got; buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
    if (memchr(buf + len, 0, got))
      return read_error(f, buf, path, "not a text file (it contains a NUL byte)");
    len += got;
    if (len > MAX_SOURCE) return read_error(f, buf, path, "larger than 16 MiB, too large for a .dln file");
    if (cap - len - 1 == 0) {
      char *nb = realloc(buf, cap *= 2);
      if (!nb) free(buf);
      buf = nb;
    }
  }
  if (!buf) return read_error(f, NULL, path, "out of memory");
  if (ferror(f)) return read_error(f, buf, path, strerror(errno));
  fclose(f);
  buf[len] = 0;
  return buf;
}

ir_graph *pipeline_compile(const char *path, int plan, FILE *ast_out) {
  char *text = read_file(path);
  if (!text) return NULL;
  /* A UTF-8 byte order mark (which some editors write) is not part of the
   * source: line 1 starts after it, so columns are the same with or without. */
  const char *src = strncmp(text, "\xEF\xBB\xBF", 3) == 0 ? text + 3 : text;
  diag_set_source(path, src);
  ast_program *ast = parse_program(src);
  ir_graph *g = NULL;
  if (ast) {
    if (ast_out) ast_dump(ast, ast_out);
    g = lower_program(ast, path, src);
    ast_free(ast);
  }
  diag_set_source(path, NULL); /* diagnostics end with the front end */
  free(text);
  if (g && plan && !g->model_name) {
    /* valid (an empty program), but there is nothing to emit */
    diag_error((dl_loc){0, 0}, "no model to build: the file has no model block (model NAME { ... })");
    ir_free(g);
    return NULL;
  }
  if (!g || !plan) return g;
  if (autodiff(g) || memplan(g) || fuse(g)) {
    ir_free(g);
    return NULL;
  }
  return g;
}
