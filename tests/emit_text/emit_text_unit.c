/* emit_text_unit.c: emit_line indents by the blocks its lines open and
 * close, a header without braces indents one statement, comments change
 * nothing (nor do preprocessor lines), a statement over several lines
 * keeps its own alignment, and ll() prints any int64 with %lld. */
#include <stdint.h>
#include <stdlib.h>
#include "emit_text.h"
#include "expect.h"

typedef struct {
  emit_text t;
  char *text;
  size_t len;
} capture;

static void begin(capture *c, int depth) {
  c->text = NULL;
  c->t = (emit_text){.f = open_memstream(&c->text, &c->len), .depth = depth};
  if (!c->t.f) abort();
}

/* Whether the writer wrote exactly `want` and came back to depth `depth`. */
static void expect_text(capture *c, const char *want, int depth, int line) {
  fclose(c->t.f);
  if (strcmp(c->text, want) != 0) {
    fprintf(stderr, "%s:%d: FAILED: wrote\n%s---- instead of\n%s----\n", __FILE__, line, c->text, want);
    failures++;
  }
  if (c->t.depth != depth || c->t.single != 0) {
    fprintf(stderr, "%s:%d: FAILED: depth %d (pending %#x), not %d\n", __FILE__, line, c->t.depth,
            c->t.single, depth);
    failures++;
  }
  free(c->text);
}

static void test_blocks(void) {
  capture c;
  begin(&c, 0);
  emit_line(&c.t, "static void f(int n) {");
  emit_line(&c.t, "if (n > %d) {", 1);
  emit_line(&c.t, "g(n);");
  emit_line(&c.t, "} else {");
  emit_line(&c.t, "h(n);");
  emit_line(&c.t, "}");
  emit_line(&c.t, "}\n");
  expect_text(&c,
              "static void f(int n) {\n"
              "  if (n > 1) {\n"
              "    g(n);\n"
              "  } else {\n"
              "    h(n);\n"
              "  }\n"
              "}\n"
              "\n", 0, __LINE__);
}

/* A header without braces holds the next statement: a line, or a block up
 * to its closing brace; then every such level ends at once. */
static void test_headers(void) {
  capture c;
  begin(&c, 1);
  emit_line(&c.t, "for (int r = 0; r < n; r++)");
  emit_line(&c.t, "for (int j = 0; j < 4; j++) {");
  emit_line(&c.t, "y[j] = 0;");
  emit_line(&c.t, "}");
  emit_line(&c.t, "if (ctx->carry) /* a comment after a header */");
  emit_line(&c.t, "for (int s = 0; s < n; s++)");
  emit_line(&c.t, "x[s] = 1;");
  emit_line(&c.t, "if (a)");
  emit_line(&c.t, "b();");
  emit_line(&c.t, "else");
  emit_line(&c.t, "c();");
  emit_line(&c.t, "done();");
  expect_text(&c,
              "  for (int r = 0; r < n; r++)\n"
              "    for (int j = 0; j < 4; j++) {\n"
              "      y[j] = 0;\n"
              "    }\n"
              "  if (ctx->carry) /* a comment after a header */\n"
              "    for (int s = 0; s < n; s++)\n"
              "      x[s] = 1;\n"
              "  if (a)\n"
              "    b();\n"
              "  else\n"
              "    c();\n"
              "  done();\n", 1, __LINE__);
}

/* Comments change no depth, not even between a header and its statement;
 * a block opened before a comment over two lines is still opened. */
static void test_comments(void) {
  capture c;
  begin(&c, 1);
  emit_line(&c.t, "/* one line */");
  emit_line(&c.t, "for (int k = 0; k < 3; k++)");
  emit_line(&c.t, "/* about the statement */");
  emit_line(&c.t, "s += k;");
  emit_line(&c.t, "{ /* a block, then a comment\n"
                  "   * over two lines */");
  emit_line(&c.t, "t = s;");
  emit_line(&c.t, "}");
  expect_text(&c,
              "  /* one line */\n"
              "  for (int k = 0; k < 3; k++)\n"
              "    /* about the statement */\n"
              "    s += k;\n"
              "  { /* a block, then a comment\n"
              "     * over two lines */\n"
              "    t = s;\n"
              "  }\n", 1, __LINE__);
}

/* A statement over several lines is one call: each line gets the writer's
 * indentation plus its own, and the statement as a whole ends a header. */
static void test_continuation(void) {
  capture c;
  begin(&c, 2);
  emit_line(&c.t, "for (int g = 0; g < %d; g++)", 2);
  emit_line(&c.t, "gemm(a, b,\n"
                  "     c, d);");
  emit_line(&c.t, "static const float pe[%d] = {%s};", 3, "\n  1, 2, 3");
  expect_text(&c,
              "    for (int g = 0; g < 2; g++)\n"
              "      gemm(a, b,\n"
              "           c, d);\n"
              "    static const float pe[3] = {\n"
              "      1, 2, 3};\n", 2, __LINE__);
}

/* A line longer than the writer's own buffer, and int64 values at both ends. */
static void test_long_and_int64(void) {
  char arg[2000];
  memset(arg, 'a', sizeof arg - 1);
  arg[sizeof arg - 1] = '\0';
  capture c;
  begin(&c, 1);
  emit_line(&c.t, "x = %s;", arg);
  emit_line(&c.t, "y = %lld + %lld;", ll(INT64_MAX), ll(INT64_MIN));
  fclose(c.t.f);
  EXPECT(c.len == 2 + 4 + strlen(arg) + 2 + strlen("  y = 9223372036854775807 + -9223372036854775808;\n"));
  EXPECT(!strncmp(c.text, "  x = aaa", 9));
  EXPECT(strstr(c.text, ";\n  y = 9223372036854775807 + -9223372036854775808;\n") != NULL);
  EXPECT(c.t.depth == 1);
  free(c.text);
  begin(&c, 0);
  emit_line(&c.t, ".seed = %lluu,", ull(UINT64_MAX));
  expect_text(&c, ".seed = 18446744073709551615u,\n", 0, __LINE__);
}

/* A preprocessor line is not a statement: a macro whose body ends in ')'
 * does not indent the next line, and inside a block it keeps the block's
 * indentation. */
static void test_preprocessor(void) {
  capture c;
  begin(&c, 0);
  emit_line(&c.t, "#define ST(off) (ctx->state + (off))");
  emit_line(&c.t, "#include \"%s.h\"\n", "m");
  emit_line(&c.t, "int f(void) {");
  emit_line(&c.t, "#if X");
  emit_line(&c.t, "return 1;");
  emit_line(&c.t, "}");
  expect_text(&c,
              "#define ST(off) (ctx->state + (off))\n"
              "#include \"m.h\"\n"
              "\n"
              "int f(void) {\n"
              "  #if X\n"
              "  return 1;\n"
              "}\n", 0, __LINE__);
}

int main(void) {
  (void)expect_contains; /* expect.h's message check: no messages here */
  test_blocks();
  test_headers();
  test_comments();
  test_continuation();
  test_long_and_int64();
  test_preprocessor();
  if (failures) fprintf(stderr, "%d failure(s)\n", failures);
  return failures != 0;
}
