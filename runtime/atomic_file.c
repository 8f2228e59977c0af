/* atomic_file.c: replacing a file atomically (see atomic_file.h).
 *
 * The new contents go to TARGET.tmp.XXXXXX in the target's directory, are
 * flushed to disk, and are renamed over the target (rename is atomic within
 * a file system), then the directory is flushed so the rename survives a
 * crash.  Three things make this safe whatever the path names:
 *   - the target is the path with its symbolic links followed, so a link
 *     keeps pointing at the file it names instead of being replaced;
 *   - only a regular file is ever replaced: a rename over /dev/null (as
 *     root), a FIFO or a socket would destroy it;
 *   - each temporary file is locked (fcntl) while it is written, so a later
 *     save can tell the leftovers of a killed run (unlocked) from the file
 *     another live process is writing (locked) and remove only the former. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* fsync, O_DIRECTORY, O_NOFOLLOW, O_CLOEXEC, readlink */
#endif
#include "atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { MAX_LINKS = 40, SUFFIX_LEN = 6, HANDLER_PATH = 4200 };
static const char TMP_INFIX[] = ".tmp.";

/* ---- names ---------------------------------------------------------------- */

/* The directory part of path ("." if none), malloc'd. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  size_t len = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
  char *d = malloc(len + 1);
  if (!d) return NULL;
  memcpy(d, slash ? path : ".", len);
  d[len] = '\0';
  return d;
}

static const char *base_of(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

/* dir/name, malloc'd. */
static char *join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, name);
  return p;
}

/* Why path cannot be looked up, from the errno of lstat or stat. */
static void explain_lookup(const char *path, int e, char *err, size_t errlen) {
  char *dir = dir_of(path);
  if (e == ENAMETOOLONG) snprintf(err, errlen, "the name is too long");
  else if (e == ENOTDIR) snprintf(err, errlen, "%s is not a directory", dir ? dir : path);
  else snprintf(err, errlen, "%s", strerror(e));
  free(dir);
}

/* The path with the symbolic links of its last component followed (the
 * kernel follows those of the directories on the way): where a save must
 * put the file.  A link to a file that does not exist yet resolves to that
 * name.  NULL and why in err. */
static char *resolve(const char *path, char *err, size_t errlen) {
  if (!*path) { /* would make a file named ".tmp.XXXXXX", then fail to rename it */
    snprintf(err, errlen, "the name is empty");
    return NULL;
  }
  char *p = strdup(path);
  for (int hops = 0; p; hops++) {
    struct stat st;
    if (lstat(p, &st)) {
      if (errno == ENOENT) return p; /* to be created (the directory is checked later) */
      explain_lookup(p, errno, err, errlen);
      free(p);
      return NULL;
    }
    if (!S_ISLNK(st.st_mode)) return p;
    if (hops == MAX_LINKS) {
      snprintf(err, errlen, "too many levels of symbolic links");
      free(p);
      return NULL;
    }
    /* st_size is the link's length, but it can change under us: read into
     * a buffer with room to spare and retry if it filled up. */
    size_t cap = (size_t)st.st_size + 64;
    char *link = malloc(cap);
    ssize_t n = link ? readlink(p, link, cap) : -1;
    if (n < 0 || (size_t)n >= cap) {
      free(link);
      if (n >= 0) continue; /* it grew: look again */
      snprintf(err, errlen, "cannot read the symbolic link %s: %s", p, strerror(errno));
      free(p);
      return NULL;
    }
    link[n] = '\0';
    char *next = link;
    if (link[0] != '/') { /* relative to the link's own directory */
      char *dir = dir_of(p);
      next = dir ? join(dir, link) : NULL;
      free(dir);
      free(link);
    }
    free(p);
    p = next;
  }
  snprintf(err, errlen, "out of memory");
  return NULL;
}

/* What a file that is not a regular one is, for a message. */
static const char *kind_of(mode_t m) {
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  return "a special file";
}

/* 0 if target is absent or a regular file (*mode gets its permissions, or
 * -1 when absent); else -1 and why. */
static int check_existing(const char *target, int *mode, char *err, size_t errlen) {
  struct stat st;
  *mode = -1;
  if (stat(target, &st)) {
    if (errno == ENOENT) return 0;
    explain_lookup(target, errno, err, errlen);
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    if (S_ISDIR(st.st_mode)) snprintf(err, errlen, "it is a directory");
    else snprintf(err, errlen, "it is %s, not a regular file", kind_of(st.st_mode));
    return -1;
  }
  /* Not setuid, setgid or sticky: a new file must not gain privileges. */
  *mode = (int)(st.st_mode & 0777);
  return 0;
}

/* Why a file cannot be created in target's directory, from open's errno. */
static void explain_create(const char *target, int e, char *err, size_t errlen) {
  char *dir = dir_of(target);
  const char *d = dir ? dir : ".";
  struct stat st;
  if (e == ENAMETOOLONG)
    snprintf(err, errlen, "the name is too long (a save first writes NAME%sXXXXXX)", TMP_INFIX);
  else if (e == ENOENT && stat(d, &st) != 0)
    snprintf(err, errlen, "directory %s does not exist", d);
  else if (e == ENOTDIR)
    snprintf(err, errlen, "%s is not a directory", d);
  else
    snprintf(err, errlen, "cannot create a file in directory %s: %s", d, strerror(e));
  free(dir);
}

/* ---- temporary files -------------------------------------------------------- */

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* TARGET.tmp.XXXXXX with a fresh suffix in the X's. */
static void new_suffix(char *x) {
  static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  static uint64_t counter; /* saves run on one thread */
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t r = mix64((uint64_t)getpid() << 40 ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)ts.tv_nsec ^
                     ++counter * 0x9E3779B97F4A7C15ull);
  for (int i = 0; i < SUFFIX_LEN; i++, r /= 62) x[i] = alnum[r % 62];
}

/* Creates tmp (from temp_name) exclusively, mode 0666 less the umask
 * (what any program gets for a new file), and locks it.  fd, or -1 with
 * errno set. */
static int create_temp(char *tmp) {
  char *x = tmp + strlen(tmp) - SUFFIX_LEN;
  for (int tries = 0; tries < 100; tries++) {
    new_suffix(x);
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno == EEXIST) continue;
    if (fd < 0) return -1;
    /* Without lock support (some network file systems) a live run's file
     * could be taken for a leftover; nothing else depends on the lock. */
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    (void)fcntl(fd, F_SETLK, &lk);
    return fd;
  }
  errno = EEXIST;
  return -1;
}

static char *temp_name(const char *target) {
  size_t n = strlen(target) + sizeof TMP_INFIX + SUFFIX_LEN;
  char *t = malloc(n);
  if (t) snprintf(t, n, "%s%sXXXXXX", target, TMP_INFIX);
  return t;
}

/* A regular file nobody holds a lock on: a killed writer's leftover. */
static int is_leftover(const char *path) {
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return 0;
  struct stat st;
  struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
  int stale = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && fcntl(fd, F_GETLK, &lk) == 0 &&
              lk.l_type == F_UNLCK;
  close(fd); /* read-only */
  return stale;
}

/* NAME.tmp. followed by exactly SUFFIX_LEN letters or digits. */
static int is_temp_of(const char *entry, const char *base) {
  size_t b = strlen(base), t = sizeof TMP_INFIX - 1;
  if (strncmp(entry, base, b) != 0 || strncmp(entry + b, TMP_INFIX, t) != 0) return 0;
  const char *s = entry + b + t;
  size_t n = 0;
  for (; s[n]; n++)
    if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9')))
      return 0;
  return n == SUFFIX_LEN;
}

/* Removes what saves to target killed mid-write left behind.  Best effort:
 * a leftover that cannot be removed costs only disk space. */
static void remove_leftovers(const char *target) {
  char *dir = dir_of(target);
  DIR *d = dir ? opendir(dir) : NULL;
  const char *base = base_of(target);
  for (struct dirent *e; d && (e = readdir(d));) {
    if (!is_temp_of(e->d_name, base)) continue;
    char *p = join(dir, e->d_name);
    if (p && is_leftover(p)) (void)unlink(p);
    free(p);
  }
  if (d) closedir(d);
  free(dir);
}

/* Makes the rename durable.  File systems that cannot sync a directory say
 * EINVAL; that is not a failure of ours. */
static int sync_dir(const char *target) {
  char *dir = dir_of(target);
  if (!dir) return -1;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(dir);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  if (rc && errno == EINVAL) rc = 0;
  int e = errno;
  close(fd); /* read-only descriptor: nothing to flush */
  errno = e;
  return rc;
}

/* ---- where a save in progress is, for a signal handler ------------------------- */

enum { PH_NOT_STARTED, PH_WRITING, PH_DONE };
static atomic_int phase;
static char handler_tmp[HANDLER_PATH]; /* the temporary file while PH_WRITING */

void dl_af_mark(void) { atomic_store(&phase, PH_NOT_STARTED); }

int dl_af_interrupt(void) {
  int ph = atomic_load(&phase);
  if (ph == PH_DONE) return DL_AF_DONE;
  if (ph != PH_WRITING) return DL_AF_NOT_STARTED;
  /* rename is atomic: either the temporary name is still there (the target
   * is untouched, and removing the name makes sure it stays so) or it has
   * become the target. */
  int e = errno;
  int rc = unlink(handler_tmp) == 0 || errno != ENOENT ? DL_AF_ABANDONED : DL_AF_DONE;
  errno = e;
  return rc;
}

static void watch(const char *tmp) {
  if (strlen(tmp) >= sizeof handler_tmp) return; /* longer than any name open accepts */
  memcpy(handler_tmp, tmp, strlen(tmp) + 1);
  atomic_store(&phase, PH_WRITING);
}

/* ---- the interface ---------------------------------------------------------- */

int dl_af_check(const char *path, char *err, size_t errlen) {
  int mode;
  char *target = resolve(path, err, errlen);
  char *tmp = target ? temp_name(target) : NULL;
  int rc = -1;
  if (target && !tmp) snprintf(err, errlen, "out of memory");
  if (tmp && check_existing(target, &mode, err, errlen) == 0) {
    /* The one sure test that a save can create its file there (permissions,
     * ACLs, a read-only mount, name length) is to create one. */
    int fd = create_temp(tmp);
    if (fd < 0) {
      explain_create(target, errno, err, errlen);
    } else {
      close(fd); /* empty */
      unlink(tmp);
      rc = 0;
    }
  }
  free(tmp);
  free(target);
  return rc;
}

int dl_af_open(dl_af *f, const char *path, char *err, size_t errlen) {
  int mode;
  f->fd = -1;
  f->tmp = NULL;
  f->target = resolve(path, err, errlen);
  if (!f->target || check_existing(f->target, &mode, err, errlen)) goto fail;
  if (!(f->tmp = temp_name(f->target))) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  if ((f->fd = create_temp(f->tmp)) < 0) {
    explain_create(f->target, errno, err, errlen);
    goto fail;
  }
  watch(f->tmp);
  /* A replaced file keeps its permissions (a checkpoint made private stays
   * so).  A failed chmod only leaves the umask's: not worth failing for. */
  if (mode >= 0) (void)fchmod(f->fd, (mode_t)mode);
  return 0;
fail:
  free(f->target);
  free(f->tmp);
  f->target = f->tmp = NULL;
  return -1;
}

int dl_af_write(dl_af *f, const void *buf, uint64_t len) {
  const char *p = buf;
  while (len > 0) {
    size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
    ssize_t w = write(f->fd, p, chunk);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    if (w == 0) {
      errno = ENOSPC;
      return -1;
    }
    p += w;
    len -= (uint64_t)w;
  }
  return 0;
}

static void release(dl_af *f) {
  free(f->target);
  free(f->tmp);
  f->target = f->tmp = NULL;
  f->fd = -1;
}

void dl_af_discard(dl_af *f) {
  if (!f->tmp) return;
  /* Before the unlink: a signal handler must not take a missing name for a
   * finished rename. */
  atomic_store(&phase, PH_NOT_STARTED);
  if (f->fd >= 0) close(f->fd); /* being thrown away */
  unlink(f->tmp);
  release(f);
}

int dl_af_commit(dl_af *f, char *err, size_t errlen) {
  int rc = fsync(f->fd);
  int e = errno;
  /* close can report a deferred write error (NFS), so it counts too; it
   * also drops the lock, after which the file must be renamed or gone. */
  if (close(f->fd) && rc == 0) rc = -1, e = errno;
  f->fd = -1;
  if (rc == 0 && rename(f->tmp, f->target)) rc = -1, e = errno;
  if (rc) {
    /* a directory made there since the save began */
    snprintf(err, errlen, "%s", e == EISDIR ? "it is a directory" : strerror(e));
    dl_af_discard(f);
    return -1;
  }
  atomic_store(&phase, PH_DONE);
  if (sync_dir(f->target)) {
    snprintf(err, errlen, "it was written, but its directory cannot be synced to disk: %s",
             strerror(errno));
    rc = -1;
  }
  remove_leftovers(f->target);
  release(f);
  return rc;
}
