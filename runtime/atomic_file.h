/* atomic_file.h: replacing a file so that readers, a crash or a kill see
 * the old contents or the new, never a mix (atomic_file.c).
 * Runtime-internal: used by safetensors.c (checkpoints) and the trainer. */
#ifndef DL_ATOMIC_FILE_H
#define DL_ATOMIC_FILE_H
#include <stddef.h>
#include <stdint.h>

/* A replacement in progress: `tmp` (TARGET.tmp.XXXXXX, beside the target)
 * is written, then renamed over `target`.  `target` is the path given with
 * its symbolic links followed, so a link keeps pointing at the file. */
typedef struct dl_af {
  char *target, *tmp;
  int fd;
} dl_af;

/* 0 if a file can be saved at `path` now: the name resolves, what is there
 * (if anything) is a regular file, and a file can be created beside it.
 * Else -1 and why in err (without the path: the caller says what it is). */
int dl_af_check(const char *path, char *err, size_t errlen);

/* Starts a replacement of `path` (checked as by dl_af_check): 0, or -1 and
 * why in err.  The new file gets the permissions of the file it replaces,
 * or, for a new file, 0666 less the umask. */
int dl_af_open(dl_af *f, const char *path, char *err, size_t errlen);
/* write(2) until done: 0, or -1 with errno set (ENOSPC for a full disk). */
int dl_af_write(dl_af *f, const void *buf, uint64_t len);
/* Flushes the file to disk and renames it over the target, then removes
 * TARGET.tmp.* files that runs killed mid-save left behind.  0, or -1 and
 * why in err; on failure the target is as it was.  Either way f is done. */
int dl_af_commit(dl_af *f, char *err, size_t errlen);
/* Gives up: removes the temporary file; the target is as it was. */
void dl_af_discard(dl_af *f);

/* For a signal handler that ends the process during a save (async-signal
 * safe).  dl_af_mark() first, from the thread that saves, before the save
 * starts; then dl_af_interrupt() says where the save since that mark is:
 * not yet writing (DL_AF_NOT_STARTED), written to the temporary file, which
 * it now removes so the target stays as it was (DL_AF_ABANDONED), or
 * renamed over the target (DL_AF_DONE). */
enum { DL_AF_NOT_STARTED, DL_AF_ABANDONED, DL_AF_DONE };
void dl_af_mark(void);
int dl_af_interrupt(void);

#endif
