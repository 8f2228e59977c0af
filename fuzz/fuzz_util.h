/* fuzz_util.h: helpers shared by the libFuzzer harnesses.
 *
 * The loaders take paths, so each harness writes its input into an in-memory
 * file (memfd) and passes "/proc/self/fd/N"; opening that path gives a fresh
 * descriptor on the same file, as a real file would.  Where memfd_create is
 * missing, a temporary file under $TMPDIR (else /tmp) is used instead. */
#ifndef DLNC_FUZZ_UTIL_H
#define DLNC_FUZZ_UTIL_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct fuzz_file {
  int fd;
  char path[256];
} fuzz_file;

static inline void fuzz_file_open(fuzz_file *f, const char *name) {
  f->fd = memfd_create(name, MFD_CLOEXEC);
  if (f->fd >= 0) {
    snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
  } else {
    const char *tmp = getenv("TMPDIR");
    snprintf(f->path, sizeof f->path, "%s/dlnc-fuzz-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
    f->fd = mkstemp(f->path);
  }
  if (f->fd < 0) {
    perror("fuzz: cannot create a temporary file");
    abort();
  }
}

/* Replaces the file's contents with data[0..n). */
static inline void fuzz_file_set(fuzz_file *f, const void *data, size_t n) {
  const char *p = data;
  if (ftruncate(f->fd, 0) != 0) abort();
  for (size_t done = 0; done < n;) {
    ssize_t w = pwrite(f->fd, p + done, n - done, (off_t)done);
    if (w <= 0) abort();
    done += (size_t)w;
  }
}

/* With DLNC_FUZZ_VERBOSE set, harnesses say what each loader call returned
 * (handy when replaying one input). */
static inline void fuzz_say(const char *what, int rc, const char *err) {
  static int verbose = -1;
  if (verbose < 0) verbose = getenv("DLNC_FUZZ_VERBOSE") != NULL;
  if (verbose) fprintf(stderr, "%s: %s\n", what, rc == 0 ? "ok" : err);
}

/* Little-endian u16 at p. */
static inline unsigned fuzz_u16(const uint8_t *p) { return (unsigned)p[0] | (unsigned)p[1] << 8; }

#endif
