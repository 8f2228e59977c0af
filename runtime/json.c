/* json.c: the JSON a safetensors header needs, both ways: a growable string
 * that writes JSON string literals, and a complete reader (files come from
 * Python too: any key order, whitespace, escapes, extra fields) that never
 * trusts its input. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { JSON_MAX_DEPTH = 64 };

/* ---- writing -------------------------------------------------------------- */

void sb_reserve(sbuf *b, size_t extra) {
  if (b->oom || b->len + extra + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) {
    b->oom = 1;
    return;
  }
  b->p = p;
  b->cap = cap;
}

void sb_putc(sbuf *b, char c) {
  sb_reserve(b, 1);
  if (b->oom) return;
  b->p[b->len++] = c;
  b->p[b->len] = '\0';
}

void sb_printf(sbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->oom = 1;
    return;
  }
  sb_reserve(b, (size_t)n);
  if (b->oom) return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void sb_json_str(sbuf *b, const char *s) {
  sb_putc(b, '"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') sb_printf(b, "\\%c", c);
    else if (c == '\n') sb_printf(b, "\\n");
    else if (c == '\t') sb_printf(b, "\\t");
    else if (c == '\r') sb_printf(b, "\\r");
    else if (c < 0x20) sb_printf(b, "\\u%04x", c);
    else sb_putc(b, (char)c);
  }
  sb_putc(b, '"');
}

/* ---- reading -------------------------------------------------------------- */

void jv_free(jv *v) {
  for (int i = 0; i < v->n; i++) {
    jv_free(&v->items[i]);
    if (v->keys) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
  free(v->str);
  memset(v, 0, sizeof *v);
}

typedef struct jparser {
  const char *s, *begin, *end;
  char *err;
  size_t errlen;
} jparser;

static int jp_fail(jparser *p, const char *what) {
  if (p->err && p->errlen) snprintf(p->err, p->errlen, "bad JSON at byte %zu: %s", (size_t)(p->s - p->begin), what);
  return -1;
}

static void jp_ws(jparser *p) {
  while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
    p->s++;
}

static int jp_value(jparser *p, jv *v, int depth);

static int hex4(const char *s, uint32_t *out) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    char c = s[i];
    int d = c >= '0' && c <= '9' ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return -1;
    v = v << 4 | (uint32_t)d;
  }
  *out = v;
  return 0;
}

static void put_utf8(sbuf *b, uint32_t cp) {
  if (cp < 0x80) {
    sb_putc(b, (char)cp);
  } else if (cp < 0x800) {
    sb_putc(b, (char)(0xC0 | cp >> 6));
    sb_putc(b, (char)(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    sb_putc(b, (char)(0xE0 | cp >> 12));
    sb_putc(b, (char)(0x80 | (cp >> 6 & 0x3F)));
    sb_putc(b, (char)(0x80 | (cp & 0x3F)));
  } else {
    sb_putc(b, (char)(0xF0 | cp >> 18));
    sb_putc(b, (char)(0x80 | (cp >> 12 & 0x3F)));
    sb_putc(b, (char)(0x80 | (cp >> 6 & 0x3F)));
    sb_putc(b, (char)(0x80 | (cp & 0x3F)));
  }
}

/* \uXXXX, with a following \uXXXX when it is a surrogate pair.  p->s is just
 * past the 'u'. */
static int jp_unicode(jparser *p, sbuf *b) {
  uint32_t cp, lo;
  if (p->end - p->s < 4 || hex4(p->s, &cp)) return jp_fail(p, "bad \\u escape");
  p->s += 4;
  if (cp >= 0xDC00 && cp <= 0xDFFF) return jp_fail(p, "unpaired surrogate in \\u escape");
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    if (p->end - p->s < 6 || p->s[0] != '\\' || p->s[1] != 'u' || hex4(p->s + 2, &lo) ||
        lo < 0xDC00 || lo > 0xDFFF)
      return jp_fail(p, "unpaired surrogate in \\u escape");
    p->s += 6;
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  }
  /* Names become C strings: an embedded NUL would silently cut them. */
  if (cp == 0) return jp_fail(p, "\\u0000 in a string is not supported");
  put_utf8(b, cp);
  return 0;
}

static int jp_escape(jparser *p, sbuf *b) {
  if (p->s >= p->end) return jp_fail(p, "unterminated string");
  char c = *p->s++;
  switch (c) {
  case '"': case '\\': case '/': sb_putc(b, c); return 0;
  case 'b': sb_putc(b, '\b'); return 0;
  case 'f': sb_putc(b, '\f'); return 0;
  case 'n': sb_putc(b, '\n'); return 0;
  case 'r': sb_putc(b, '\r'); return 0;
  case 't': sb_putc(b, '\t'); return 0;
  case 'u': return jp_unicode(p, b);
  default: p->s--; return jp_fail(p, "bad escape in string");
  }
}

/* A string literal at p->s (which is '"'), decoded into a new C string. */
static int jp_string(jparser *p, char **out) {
  sbuf b = {0};
  p->s++;
  sb_reserve(&b, 16);
  if (b.p) b.p[0] = '\0'; /* "" decodes to an empty C string too */
  for (;;) {
    if (p->s >= p->end) {
      free(b.p);
      return jp_fail(p, "unterminated string");
    }
    unsigned char c = (unsigned char)*p->s;
    if (c == '"') break;
    if (c < 0x20) {
      free(b.p);
      return jp_fail(p, "control character in string");
    }
    p->s++;
    if (c != '\\') sb_putc(&b, (char)c);
    else if (jp_escape(p, &b)) {
      free(b.p);
      return -1;
    }
  }
  p->s++;
  if (b.oom) {
    free(b.p);
    return jp_fail(p, "out of memory");
  }
  *out = b.p;
  return 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* RFC 8259 number grammar; the text is kept and converted where used. */
static int jp_number(jparser *p, jv *v) {
  const char *s = p->s, *e = p->end;
  if (s < e && *s == '-') s++;
  if (s < e && *s == '0') s++;
  else if (s < e && is_digit(*s)) while (s < e && is_digit(*s)) s++;
  else return jp_fail(p, "bad number");
  if (s < e && *s == '.') {
    if (++s >= e || !is_digit(*s)) return jp_fail(p, "bad number");
    while (s < e && is_digit(*s)) s++;
  }
  if (s < e && (*s == 'e' || *s == 'E')) {
    if (++s < e && (*s == '+' || *s == '-')) s++;
    if (s >= e || !is_digit(*s)) return jp_fail(p, "bad number");
    while (s < e && is_digit(*s)) s++;
  }
  v->type = JV_NUM;
  v->num = p->s;
  v->num_len = (size_t)(s - p->s);
  p->s = s;
  return 0;
}

static int jp_literal(jparser *p, jv *v, const char *word, jv_type t) {
  size_t len = strlen(word);
  if ((size_t)(p->end - p->s) < len || memcmp(p->s, word, len) != 0)
    return jp_fail(p, "unexpected character");
  p->s += len;
  v->type = t;
  return 0;
}

/* Room for one more member, zeroed, so jv_free is always safe. */
static int jv_push(jv *v) {
  if (v->n == v->cap) {
    if (v->cap > (1 << 24)) return -1;
    int cap = v->cap ? v->cap * 2 : 4;
    jv *items = realloc(v->items, (size_t)cap * sizeof *items);
    if (!items) return -1;
    v->items = items;
    if (v->type == JV_OBJ) {
      char **keys = realloc(v->keys, (size_t)cap * sizeof *keys);
      if (!keys) return -1;
      v->keys = keys;
    }
    v->cap = cap;
  }
  memset(&v->items[v->n], 0, sizeof v->items[0]);
  if (v->keys) v->keys[v->n] = NULL;
  v->n++;
  return 0;
}

/* After a member: ',' continues (returns 1), the closer ends (returns 0). */
static int jp_next(jparser *p, char close) {
  jp_ws(p);
  if (p->s < p->end && *p->s == ',') {
    p->s++;
    return 1;
  }
  if (p->s < p->end && *p->s == close) {
    p->s++;
    return 0;
  }
  return jp_fail(p, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
}

static int jp_array(jparser *p, jv *v, int depth) {
  v->type = JV_ARR;
  p->s++;
  jp_ws(p);
  if (p->s < p->end && *p->s == ']') {
    p->s++;
    return 0;
  }
  for (int more = 1; more > 0;) {
    if (jv_push(v)) return jp_fail(p, "out of memory");
    if (jp_value(p, &v->items[v->n - 1], depth + 1)) return -1;
    if ((more = jp_next(p, ']')) < 0) return -1;
  }
  return 0;
}

static int jp_object(jparser *p, jv *v, int depth) {
  v->type = JV_OBJ;
  p->s++;
  jp_ws(p);
  if (p->s < p->end && *p->s == '}') {
    p->s++;
    return 0;
  }
  for (int more = 1; more > 0;) {
    jp_ws(p);
    if (p->s >= p->end || *p->s != '"') return jp_fail(p, "expected a string key");
    if (jv_push(v)) return jp_fail(p, "out of memory");
    if (jp_string(p, &v->keys[v->n - 1])) return -1;
    jp_ws(p);
    if (p->s >= p->end || *p->s != ':') return jp_fail(p, "expected ':'");
    p->s++;
    if (jp_value(p, &v->items[v->n - 1], depth + 1)) return -1;
    if ((more = jp_next(p, '}')) < 0) return -1;
  }
  return 0;
}

static int jp_value(jparser *p, jv *v, int depth) {
  if (depth > JSON_MAX_DEPTH) return jp_fail(p, "nested too deeply");
  jp_ws(p);
  if (p->s >= p->end) return jp_fail(p, "unexpected end");
  switch (*p->s) {
  case '{': return jp_object(p, v, depth);
  case '[': return jp_array(p, v, depth);
  case '"': v->type = JV_STR; return jp_string(p, &v->str);
  case 't': return jp_literal(p, v, "true", JV_BOOL);
  case 'f': return jp_literal(p, v, "false", JV_BOOL);
  case 'n': return jp_literal(p, v, "null", JV_NULL);
  default:
    if (*p->s == '-' || is_digit(*p->s)) return jp_number(p, v);
    return jp_fail(p, "unexpected character");
  }
}

int json_parse_object(const char *text, size_t len, jv *root, char *err, size_t errlen) {
  jparser parser = {text, text, text + len, err, errlen}, *p = &parser;
  jp_ws(p);
  if (p->s >= p->end || *p->s != '{') return jp_fail(p, "the header is not a JSON object");
  if (jp_value(p, root, 0)) return -1;
  jp_ws(p);
  if (p->s != p->end) return jp_fail(p, "unexpected data after the header object");
  return 0;
}

const jv *jv_get(const jv *obj, const char *key) {
  for (int i = 0; i < obj->n; i++)
    if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
  return NULL;
}

int jv_uint(const jv *v, uint64_t *out) {
  if (!v || v->type != JV_NUM) return -1;
  uint64_t x = 0;
  for (size_t i = 0; i < v->num_len; i++) {
    char c = v->num[i];
    if (!is_digit(c) || x > (UINT64_MAX - 9) / 10) return -1;
    x = x * 10 + (uint64_t)(c - '0');
  }
  *out = x;
  return 0;
}
