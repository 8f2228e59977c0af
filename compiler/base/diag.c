/* diag.c: error and note reporting with the source line and a caret.
 *
 *   model.dln:3:12: error: syntax error: unexpected identifier, expecting '='
 *       3 |   h1 relu(dense(x, 256))
 *         |      ^
 *
 * Columns count characters, not bytes (UTF-8 continuation bytes add none),
 * and a tab counts as one column; the caret line copies the tabs of the
 * source line so that the caret lands under the right character whatever
 * the terminal's tab width. */
#include "diag.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *src_path;
static const char *src_text;
static const char **line_start; /* line_start[l - 1]: where line l starts; built on first use */
static int nlines;
static int nerrors;
static const int max_errors = 20;
static int quiet;

void diag_set_source(const char *path, const char *text) {
  src_path = path;
  src_text = text;
  free(line_start);
  line_start = NULL;
  nlines = 0;
}

static int index_lines(void) {
  int n = 1;
  for (const char *p = src_text; (p = strchr(p, '\n')); p++) n++;
  line_start = malloc((size_t)n * sizeof *line_start);
  if (!line_start) return -1;
  const char *p = src_text;
  line_start[nlines++] = p;
  while ((p = strchr(p, '\n'))) line_start[nlines++] = ++p;
  return 0;
}

static const char *diag_path(void) { return src_path ? src_path : "dlnc"; }
int diag_error_count(void) { return nerrors; }
void diag_reset(void) { nerrors = 0; }
void diag_set_quiet(int on) { quiet = on; }
int diag_too_many(void) { return nerrors > max_errors; }

const char *diag_line(int line, int *len) {
  if (!src_text || line < 1) return NULL;
  if (!line_start && index_lines()) return NULL;
  if (line > nlines) return NULL;
  const char *p = line_start[line - 1];
  const char *end = strchr(p, '\n');
  if (!end) end = p + strlen(p);
  if (end > p && end[-1] == '\r') end--;
  *len = (int)(end - p);
  return p;
}

static void print_source_line(dl_loc loc) {
  int len;
  const char *s = diag_line(loc.line, &len);
  if (!s) return;
  char num[16];
  int width = snprintf(num, sizeof num, "%d", loc.line);
  if (width < 5) width = 5;
  fprintf(stderr, "%*d | %.*s\n", width, loc.line, len, s);
  if (loc.col < 1) return;
  fprintf(stderr, "%*s | ", width, "");
  /* One blank (or tab) per character before the caret's column. */
  int col = 1;
  for (int i = 0; i < len && col < loc.col; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c & 0xC0) == 0x80) continue;
    fputc(c == '\t' ? '\t' : ' ', stderr);
    col++;
  }
  for (; col < loc.col; col++) fputc(' ', stderr); /* past the end of the line */
  fputs("^\n", stderr);
}

static void report(const char *kind, dl_loc loc, const char *fmt, va_list ap) {
  if (quiet) return;
  if (loc.line > 0 && loc.col > 0)
    fprintf(stderr, "%s:%d:%d: %s: ", diag_path(), loc.line, loc.col, kind);
  else if (loc.line > 0)
    fprintf(stderr, "%s:%d: %s: ", diag_path(), loc.line, kind);
  else
    fprintf(stderr, "%s: %s: ", diag_path(), kind);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  print_source_line(loc);
}

void diag_error(dl_loc loc, const char *fmt, ...) {
  nerrors++;
  if (nerrors > max_errors) {
    if (nerrors == max_errors + 1)
      fprintf(stderr, "%s: note: too many errors, stopping after %d\n", diag_path(), max_errors);
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  report("error", loc, fmt, ap);
  va_end(ap);
}

void diag_warning(dl_loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report("warning", loc, fmt, ap);
  va_end(ap);
}

void diag_note(dl_loc loc, const char *fmt, ...) {
  if (nerrors > max_errors) return; /* notes belong to an error that was not shown */
  va_list ap;
  va_start(ap, fmt);
  report("note", loc, fmt, ap);
  va_end(ap);
}

/* ---- lints ------------------------------------------------------------------ */

static const struct {
  const char *name, *what;
  int on;
} lints[LINT_COUNT] = {
#define LINT(id, name, on, what) [LINT_##id] = {name, what, on},
#include "lints.def"
#undef LINT
};
static signed char lint_set[LINT_COUNT]; /* 0: default; 1 on; -1 off */
static int lint_werror;

int diag_lint_enabled(diag_lint_id id) {
  return lint_set[id] ? lint_set[id] > 0 : lints[id].on;
}

int diag_lint_flag(const char *flag) {
  if (strncmp(flag, "-W", 2)) return -1;
  const char *name = flag + 2;
  if (!strcmp(name, "error")) {
    lint_werror = 1;
    return 0;
  }
  int on = strncmp(name, "no-", 3) != 0;
  if (!on) name += 3;
  for (int i = 0; i < LINT_COUNT; i++)
    if (!strcmp(name, "all") || !strcmp(name, lints[i].name)) lint_set[i] = (signed char)(on ? 1 : -1);
  if (!strcmp(name, "all")) return 0;
  for (int i = 0; i < LINT_COUNT; i++)
    if (!strcmp(name, lints[i].name)) return 0;
  return -1;
}

void diag_lint_describe(FILE *out) {
  for (int i = 0; i < LINT_COUNT; i++)
    fprintf(out, "%-22s %-3s %s\n", lints[i].name, lints[i].on ? "on" : "off", lints[i].what);
}

void diag_lint(diag_lint_id id, dl_loc loc, const char *fmt, ...) {
  if (!diag_lint_enabled(id)) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (lint_werror)
    diag_error(loc, "%s [-Werror=%s]", msg, lints[id].name);
  else
    diag_warning(loc, "%s [-W%s]", msg, lints[id].name);
}
