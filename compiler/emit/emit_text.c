/* emit_text.c: generated C a line at a time, indented by the blocks the
 * lines open and close (see emit_text.h), and .dln text escaped for it
 * (emit_cstr, emit_comment_text: emit_api.h). */
#include "emit_text.h"
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The length of s without a trailing comment and the spaces before it: the
 * code that decides what the line opens or closes. */
static size_t code_len(const char *s, size_t len) {
  if (len >= 2 && s[len - 2] == '*' && s[len - 1] == '/')
    for (size_t k = len - 2; k-- > 0;)
      if (s[k] == '/' && s[k + 1] == '*') {
        len = k;
        break;
      }
  while (len > 0 && s[len - 1] == ' ') len--;
  return len;
}

/* A header without braces: `for (...)`, `if (...)`, `while (...)` (a
 * statement would end in ';', a block in '{'), or `else`. */
static int opens_single(const char *s, size_t len) {
  if (len > 0 && s[len - 1] == ')') return 1;
  return len >= 4 && !memcmp(s + len - 4, "else", 4) && (len == 4 || s[len - 5] == ' ');
}

/* Each line of s at the writer's indentation; an empty line stays empty. */
static void write_lines(emit_text *t, const char *s) {
  for (;;) {
    size_t n = strcspn(s, "\n");
    if (n > 0) fprintf(t->f, "%*s%.*s", 2 * t->depth, "", (int)n, s);
    fputc('\n', t->f);
    if (!s[n]) return;
    s += n + 1;
  }
}

/* Level d's bit in emit_text.single: the first 32 levels have one (deeper
 * headers without braces are taken for blocks, which generated C never
 * nests that far). */
static unsigned level_bit(int d) { return d < 32 ? 1u << d : 0; }

/* Levels opened by headers without braces end with the statement they hold. */
static void end_statement(emit_text *t) {
  while (t->depth > 0 && (t->single & level_bit(t->depth - 1))) {
    t->depth--;
    t->single &= ~level_bit(t->depth);
  }
}

static void put(emit_text *t, const char *s) {
  size_t end = strlen(s);
  while (end > 0 && s[end - 1] == '\n') end--; /* empty lines after it */
  end = code_len(s, end);
  const char *last = s + end; /* the last line of code */
  while (last > s && last[-1] != '\n') last--;
  size_t len = (size_t)(s + end - last);
  if (len > 0 && last[0] == '#') len = 0; /* "#define F(x) (x)" opens nothing */
  if (s[0] == '}' && t->depth > 0) t->depth--; /* the block's own level */
  write_lines(t, s);
  if (len > 0 && last[len - 1] == '{') {
    t->single &= ~level_bit(t->depth);
    t->depth++;
  } else if (opens_single(last, len)) {
    t->single |= level_bit(t->depth);
    t->depth++;
  } else if (len > 0) {
    end_statement(t);
  }
}

void emit_line(emit_text *t, const char *fmt, ...) {
  char small[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return; /* only a bad format: the printf checks rule it out */
  if ((size_t)n < sizeof small) {
    put(t, small);
    return;
  }
  char *big = malloc((size_t)n + 1);
  if (!big) {
    fprintf(stderr, "dlnc: out of memory\n");
    exit(1);
  }
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  put(t, big);
  free(big);
}

/* ---- .dln text in generated C (emit_api.h declares these) ---- */

/* Room for s escaped: at most 4 bytes for each of its bytes, the quotes
 * and the NUL. */
static char *escape_buffer(const char *s) {
  char *buf = malloc(4 * strlen(s) + 3);
  if (!buf) {
    fputs("dlnc: out of memory\n", stderr);
    exit(1);
  }
  return buf;
}

/* Every string from the .dln (or its path) that reaches the C goes through
 * one of these two, so no file name can change the program: in a literal a
 * quote, a backslash, a control or non-ASCII byte and the second '?' of a
 * "??" (a trigraph under -std=c11: "d??/" would escape the quote) are
 * escaped; in a comment, what would end it ("*" "/") or open another, a
 * trigraph, and bytes that are not printable ASCII are written as visible
 * escapes instead. */
char *emit_cstr(const char *s) {
  char *buf = escape_buffer(s ? s : "NULL"), *q = buf;
  if (!s) return memcpy(buf, "NULL", 5); /* no string: the null pointer */
  *q++ = '"';
  for (const char *p = s; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '"' || c == '\\') q += snprintf(q, 5, "\\%c", c);
    else if (c < 32 || c >= 127) q += snprintf(q, 5, "\\%03o", c);
    else if (c == '?' && p > s && p[-1] == '?') q += snprintf(q, 5, "\\?");
    else *q++ = (char)c;
  }
  *q++ = '"';
  *q = 0;
  return buf;
}

char *emit_comment_text(const char *s) {
  char *buf = escape_buffer(s), *q = buf;
  for (const char *p = s; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if ((c < 32 && c != '\t') || c >= 127) q += snprintf(q, 5, "\\x%02x", c);
    else if (c == '/' && p[1] == '*') q += snprintf(q, 5, "/\\");   /* "/\*" */
    else if (c == '*' && p[1] == '/') q += snprintf(q, 5, "*\\");   /* "*\/" */
    else if (c == '?' && p[1] == '?') q += snprintf(q, 5, "?\\");   /* "?\?" */
    else *q++ = (char)c;
  }
  *q = 0;
  return buf;
}
