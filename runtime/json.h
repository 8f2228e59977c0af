/* json.h: the JSON of safetensors headers (json.c).  Runtime-internal. */
#ifndef DL_JSON_H
#define DL_JSON_H
#include <stddef.h>
#include <stdint.h>

/* Every external name of the runtime starts with dl_, the prefix model names
 * may not take: a model named jv defines jv_free, json_... its own API. */
#define sb_reserve dl_sb_reserve
#define sb_putc dl_sb_putc
#define sb_printf dl_sb_printf
#define sb_json_str dl_sb_json_str
#define json_parse_object dl_json_parse_object
#define jv_free dl_jv_free
#define jv_get dl_jv_get
#define jv_uint dl_jv_uint

/* A growable byte string; `oom` is sticky so callers check once at the end. */
typedef struct sbuf {
  char *p;
  size_t len, cap;
  int oom;
} sbuf;

void sb_reserve(sbuf *b, size_t extra);
void sb_putc(sbuf *b, char c);
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void sb_printf(sbuf *b, const char *fmt, ...);
/* A JSON string literal.  Only '"', '\\' and control characters need
 * escaping; UTF-8 passes through (validated by the caller). */
void sb_json_str(sbuf *b, const char *s);

typedef enum { JV_NULL, JV_BOOL, JV_NUM, JV_STR, JV_ARR, JV_OBJ } jv_type;

/* A parsed value; free with jv_free. */
typedef struct jv {
  jv_type type;
  char *str;            /* JV_STR: decoded, NUL-terminated           */
  const char *num;      /* JV_NUM: the literal's text in the input   */
  size_t num_len;
  int n, cap;           /* JV_ARR / JV_OBJ: member count             */
  struct jv *items;     /* values                                    */
  char **keys;          /* JV_OBJ: decoded keys                      */
} jv;

/* text[0, len) as one JSON object followed only by whitespace.  0, or -1
 * with "bad JSON at byte N: why" in err (root then holds what was parsed:
 * free it either way). */
int json_parse_object(const char *text, size_t len, jv *root, char *err, size_t errlen);
void jv_free(jv *v);
/* The member of an object named key, or NULL. */
const jv *jv_get(const jv *obj, const char *key);
/* A non-negative integer literal (no sign, fraction or exponent): 0 or -1. */
int jv_uint(const jv *v, uint64_t *out);

#endif
