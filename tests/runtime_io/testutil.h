/* testutil.h: tiny helpers shared by the runtime I/O tests (header-only, so
 * each test stays a single C program). */
#ifndef RT_IO_TESTUTIL_H
#define RT_IO_TESTUTIL_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp, nftw, setrlimit */
#endif
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int g_failures;

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      g_failures++;                                                        \
    }                                                                      \
  } while (0)

/* The call failed and its message mentions every given fragment. */
#define CHECK_ERR(rc_is_error, err, ...)                                   \
  do {                                                                     \
    const char *frags_[] = {__VA_ARGS__};                                  \
    CHECK(rc_is_error);                                                    \
    CHECK(strchr(err, '\n') == NULL);                                      \
    for (size_t i_ = 0; i_ < sizeof frags_ / sizeof frags_[0]; i_++)       \
      if (!strstr(err, frags_[i_])) {                                      \
        fprintf(stderr, "%s:%d: message \"%s\" lacks \"%s\"\n", __FILE__,  \
                __LINE__, err, frags_[i_]);                                \
        g_failures++;                                                      \
      }                                                                    \
  } while (0)

static char g_tmpdir[256];

static inline const char *tmp_path(const char *name) {
  /* A ring of buffers: a result stays valid for the next 63 calls. */
  static char buf[64][512];
  static int next;
  char *p = buf[next++ % 64];
  snprintf(p, 512, "%s/%s", g_tmpdir, name);
  return p;
}

static inline void make_tmpdir(const char *tag) {
  const char *base = getenv("TMPDIR");
  snprintf(g_tmpdir, sizeof g_tmpdir, "%s/%s.XXXXXX", base && *base ? base : "/tmp", tag);
  if (!mkdtemp(g_tmpdir)) {
    perror("mkdtemp");
    exit(2);
  }
}

static inline int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
  (void)st, (void)type, (void)ftw;
  return remove(path);
}

static inline void remove_tmpdir(void) { nftw(g_tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static inline void write_bytes(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
    perror(path);
    exit(2);
  }
}

static inline void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

static inline int finish(const char *name) {
  remove_tmpdir();
  if (g_failures) fprintf(stderr, "%s: %d failure(s)\n", name, g_failures);
  else printf("%s: all checks passed\n", name);
  return g_failures ? 1 : 0;
}

#endif
