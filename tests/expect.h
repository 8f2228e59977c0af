/* expect.h: the assertions of the runtime's C unit tests (robust_unit.c,
 * savefile_unit.c, trainer_unit.c).  Header-only, so each test stays one C
 * program: a failed expectation is printed with its place and counted in
 * `failures`, and the test goes on to report every failure in one run. */
#ifndef DLNC_TESTS_EXPECT_H
#define DLNC_TESTS_EXPECT_H
#include <stdio.h>
#include <string.h>

static int failures;

#define EXPECT(cond)                                                         \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond);     \
      failures++;                                                            \
    }                                                                        \
  } while (0)

static void expect_contains(const char *s, const char *part, const char *file, int line) {
  if (!strstr(s, part)) {
    fprintf(stderr, "%s:%d: FAILED: message \"%s\" lacks \"%s\"\n", file, line, s, part);
    failures++;
  }
}
#define EXPECT_MSG(s, part) expect_contains((s), (part), __FILE__, __LINE__)

#endif
