/* emit_text.h: the one way the emitters write generated C, a line at a time
 * (chibicc's println, with the indentation kept here rather than in every
 * string).  A writer is plain data over a FILE: its depth is the number of
 * open levels, each two spaces.  emit_line reads the structure from the
 * line itself, as a reader of the C does:
 *   "... {"         opens a block (depth + 1 after the line);
 *   "}..."          closes one (depth - 1 before it; "} else {" does both);
 *   "for (...)", "if (...)", "else": a header without braces indents the
 *                   one statement that follows (a line, or a block up to its
 *                   "}"), then its level closes by itself;
 *   a trailing comment does not count, and a comment line or a
 *   preprocessor line ("#define ...") changes nothing.
 * Embedded newlines continue one statement (long argument lists, comments
 * over several lines): every line of it gets the writer's indentation, plus
 * the spaces written after the newline; a trailing newline adds an empty
 * line (after a function).
 *
 * Declare a writer as `emit_text o[1] = {{.f = ec->out, .depth = 1}}`, so o
 * is a pointer to pass down: a kernel (ec->out) starts at depth 1, inside
 * its layer's function; a helper function (ec->helpers) at depth 0. */
#ifndef DLNC_EMIT_TEXT_H
#define DLNC_EMIT_TEXT_H
#include <stdint.h>
#include <stdio.h>

typedef struct emit_text {
  FILE *f;
  int depth;       /* open levels: the next line's indentation is 2 * depth */
  unsigned single; /* bit d: level d was opened by a header without braces */
} emit_text;

__attribute__((format(printf, 2, 3)))
void emit_line(emit_text *t, const char *fmt, ...);

/* Sizes and offsets are int64_t, which is long on LP64 and long long
 * elsewhere: the emitters print them as %lld of ll(v), the one conversion,
 * so no format depends on the platform and no emitter writes a cast. */
static inline long long ll(int64_t v) { return v; }
/* The same for the one unsigned value, the seed: %llu of ull(v). */
static inline unsigned long long ull(uint64_t v) { return v; }

#endif
