/* pipeline.c: read -> parse -> check and lower -> autodiff -> plan -> fuse.
 * (The build step that runs the C compiler is build.c.) */
#include "pipeline.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ast.h"
#include "autodiff.h"
#include "emit.h"
#include "lower.h"
#include "passes.h"

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
  if (autodiff(g) || memplan(g)) {
    ir_free(g);
    return NULL;
  }
  fuse(g);
  return g;
}
