/* diag.h: every stage of dlnc reports through here.
 *   FILE:LINE:COL: error: MESSAGE
 *     <the source line>
 *     <spaces>^
 * Errors are counted; a stage keeps going where it can so that one run
 * reports several mistakes, and the driver exits 1 if any were reported. */
#ifndef DLNC_DIAG_H
#define DLNC_DIAG_H

#include <stdio.h>

typedef struct dl_loc {
  int line, col;     /* 1-based; 0 = unknown */
} dl_loc;

/* The file being compiled: its name as given and its whole text (kept, not copied). */
void diag_set_source(const char *path, const char *text);
/* Line `line` (1-based) of that text and its length without "\n" or "\r\n";
 * NULL past the end.  Lines are indexed once, so each lookup is O(1). */
const char *diag_line(int line, int *len);
void diag_error(dl_loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_note(dl_loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* FILE:LINE:COL: warning: ...: reported, not counted as an error. */
void diag_warning(dl_loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Lints: warnings with a name, each of which can be turned off. */
typedef enum {
#define LINT(id, name, on, what) LINT_##id,
#include "lints.def"
#undef LINT
  LINT_COUNT
} diag_lint_id;
/* FILE:LINE:COL: warning: ... [-WNAME], unless the lint is off; an error
 * instead (counted) under -Werror. */
void diag_lint(diag_lint_id id, dl_loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int diag_lint_enabled(diag_lint_id id);
/* A -W flag: "-Wno-NAME", "-WNAME", "-Wno-all", "-Wall", "-Werror".  0: done;
 * -1: not a known flag (nothing changed). */
int diag_lint_flag(const char *flag);
/* The lints' table, for `dlnc lints`. */
void diag_lint_describe(FILE *out);
int diag_error_count(void);
/* While on, errors are counted but not printed. */
void diag_set_quiet(int on);
void diag_reset(void);

/* Reporting stops after 20 errors: the next error prints "too many errors"
 * instead, and diag_too_many() turns true so stages can stop. */
int diag_too_many(void);

#endif
