/* cache.c: the runtime is the same for every model, so `dlnc build`
 * compiles it once per (compiler, flags, CPU, runtime sources) into a static
 * library kept in a cache directory ($DLNC_CACHE, else $XDG_CACHE_HOME/dlnc,
 * else ~/.cache/dlnc; DLNC_CACHE=off for none).
 *
 * The key hashes the compile flags (all but the runtime directory's path),
 * every file of the runtime directory and the compiler's predefined macros
 * under those flags: they name the compiler's version and, with
 * -march=native, the CPU's features, so a library built for another
 * machine, compiler or runtime is never linked.
 *
 * A prebuilt directory (`dlnc prebuild`: beside dlnc, made when dlnc is
 * built or installed) holds entries of the same form and key, read only:
 * a build whose key matches one links it instead of compiling the runtime,
 * with or without a cache; any other key (another compiler, flags, CPU or
 * runtime source) finds nothing there and compiles as before.
 *
 * An entry is runtime-KEY.a and its stamp runtime-KEY.a.sum (size and
 * checksum), each written to a temporary name, fsynced and renamed, so a
 * reader sees whole files.  A library that does not match its stamp (a
 * crash, a full disk, an edit) is rebuilt and replaced.  The cache is only
 * ever a saving: if it cannot be used, the build goes on without it.
 *
 * The model's own objects are kept the same way, as model-KEY.o (and
 * .o.sum), KEY hashing the runtime's key (so the compiler, flags, CPU and
 * runtime headers) and the text of the generated source and header: a
 * rebuild of an unchanged model compiles nothing.  Files that flags in
 * $DLNC_CFLAGS_EXTRA include from elsewhere are not hashed (for the
 * runtime either). */
#define _GNU_SOURCE
#include "cache.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { STAMP_MAX = 128 };
static const uint64_t FNV_OFFSET = 0xcbf29ce484222325ull;

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

/* FNV-1a of a file's bytes, and its size; -1 if it cannot be read. */
static int hash_file(const char *path, uint64_t *h, long long *size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[65536];
  uint64_t x = FNV_OFFSET;
  long long n = 0;
  ssize_t got;
  while ((got = read(fd, buf, sizeof buf)) > 0) {
    x = fnv(x, buf, (size_t)got);
    n += got;
  }
  close(fd);
  if (got < 0) return -1;
  *h = x;
  *size = n;
  return 0;
}

/* Every regular file of the runtime directory, whatever the order readdir
 * gives: each file's hash (with its name) is combined by addition. */
static int hash_runtime(const char *rt, uint64_t *out) {
  DIR *d = opendir(rt);
  if (!d) return -1;
  uint64_t sum = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    char *path = xasprintf("%s/%s", rt, e->d_name);
    uint64_t fh;
    long long size;
    if (path && hash_file(path, &fh, &size) == 0)
      sum += fnv(fnv(FNV_OFFSET, e->d_name, strlen(e->d_name) + 1), &fh, sizeof fh) * 0x9E3779B97F4A7C15ull;
    free(path);
  }
  closedir(d);
  *out = sum;
  return 0;
}

/* Whether a line of the text file path starts with prefix. */
static int file_has(const char *path, const char *prefix) {
  FILE *f = fopen(path, "r");
  char line[512];
  int found = 0;
  while (f && !found && fgets(line, sizeof line, f)) found = !strncmp(line, prefix, strlen(prefix));
  if (f) fclose(f);
  return found;
}

/* `CC FLAGS -dM -E -x c /dev/null`: the compiler's version, the target's
 * features under -march=native, the precision and sanitizer macros; *clang
 * says whether it is clang (build.c gives clang flags of its own). */
static int hash_macros(const argv_list *flags, const char *tmp, int verbose, uint64_t *out, int *clang) {
  argv_list a;
  char *dump = xasprintf("%s/macros.txt", tmp);
  int rc = -1;
  if (dump && argv_copy(&a, flags) == 0) {
    argv_add(&a, "-dM");
    argv_add(&a, "-E");
    argv_add(&a, "-x");
    argv_add(&a, "c");
    argv_add(&a, "/dev/null");
    long long size;
    pid_t pid = a.oom ? -1 : proc_start(a.v, dump, verbose);
    /* quiet: if the compiler cannot run, compiling the model will say so */
    if (pid > 0 && proc_finish(pid, NULL) == 0 && hash_file(dump, out, &size) == 0) rc = 0;
    *clang = rc == 0 && file_has(dump, "#define __clang__ ");
    unlink(dump);
  }
  argv_free(&a);
  free(dump);
  return rc;
}

static void cache_warn(const char *dir, const char *why) {
  fprintf(stderr, "dlnc: warning: cannot use the build cache %s: %s; building without it\n", dir, why);
}

/* The directory named by the environment, made if missing; NULL for none. */
static char *choose_dir(void) {
  const char *env = getenv("DLNC_CACHE");
  char *dir;
  if (env && strcmp(env, "off") == 0) return NULL;
  if (env && *env) dir = xasprintf("%s", env);
  else if ((env = getenv("XDG_CACHE_HOME")) && *env) dir = xasprintf("%s/dlnc", env);
  else if ((env = getenv("HOME")) && *env) dir = xasprintf("%s/.cache/dlnc", env);
  else return NULL;
  if (!dir) return NULL;
  for (char *p = dir + 1; *p; p++) /* each missing level */
    if (*p == '/') {
      *p = 0;
      mkdir(dir, 0777);
      *p = '/';
    }
  struct stat st;
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) cache_warn(dir, strerror(errno));
  else if (stat(dir, &st) != 0) cache_warn(dir, strerror(errno));
  else if (!S_ISDIR(st.st_mode)) cache_warn(dir, "not a directory");
  else if (access(dir, W_OK | X_OK) != 0) cache_warn(dir, strerror(errno));
  else return dir;
  free(dir);
  return NULL;
}

/* The key: the flags (but the runtime's directory, -I rt: its files are
 * hashed, wherever they are, so a prebuilt runtime made in a staged
 * install, DESTDIR, matches the installed sources), the salt, the runtime's
 * files and the compiler's macros.  -1 if the files or macros cannot be read. */
static int runtime_key(const argv_list *flags, const char *salt, const char *rt, uint64_t macros,
                       uint64_t *key) {
  uint64_t h = FNV_OFFSET, files;
  for (int i = 0; i < flags->n; i++)
    if (!(i > 0 && !strcmp(flags->v[i - 1], "-I") && !strcmp(flags->v[i], rt)))
      h = fnv(h, flags->v[i], strlen(flags->v[i]) + 1);
  h = fnv(h, salt, strlen(salt) + 1);
  if (hash_runtime(rt, &files)) return -1;
  *key = fnv(fnv(h, &files, sizeof files), &macros, sizeof macros);
  return 0;
}

/* DIR/runtime-KEY.a and its stamp, malloc'd (NULL when out of memory). */
static void entry_paths(const char *dir, uint64_t key, char **lib, char **stamp) {
  *lib = xasprintf("%s/runtime-%016" PRIx64 ".a", dir, key);
  *stamp = xasprintf("%s/runtime-%016" PRIx64 ".a.sum", dir, key);
}

/* Opens the cache `dir` (owned; NULL for none) and the prebuilt directory
 * `prebuilt` (NULL for none) for these flags. */
static void open_in(rt_cache *c, char *dir, const char *prebuilt, const argv_list *flags,
                    const char *salt, const char *rt, const char *tmp, int verbose) {
  memset(c, 0, sizeof *c);
  uint64_t macros, key;
  int macros_rc = hash_macros(flags, tmp, verbose, &macros, &c->clang);
  /* no key: the build itself will say what is wrong */
  if ((!dir && !prebuilt) || macros_rc || runtime_key(flags, salt, rt, macros, &key)) {
    free(dir);
    return;
  }
  c->key = key;
  c->keyed = 1;
  if (prebuilt) entry_paths(prebuilt, key, &c->prebuilt_lib, &c->prebuilt_stamp);
  if (!dir) return;
  entry_paths(dir, key, &c->lib, &c->stamp);
  c->dir = dir;
  if (!c->lib || !c->stamp) {
    free(c->dir);
    free(c->lib);
    free(c->stamp);
    c->dir = c->lib = c->stamp = NULL;
  }
}

void cache_open(rt_cache *c, const char *prebuilt, const argv_list *flags, const char *salt,
                const char *rt, const char *tmp, int verbose) {
  open_in(c, choose_dir(), prebuilt, flags, salt, rt, tmp, verbose);
}

int cache_open_at(rt_cache *c, const char *dir, const argv_list *flags, const char *salt, const char *rt,
                  const char *tmp, int verbose) {
  char *d = strdup(dir);
  for (char *p = d ? d + 1 : NULL; p && *p; p++) /* each missing level */
    if (*p == '/') {
      *p = 0;
      mkdir(d, 0777);
      *p = '/';
    }
  if (d && mkdir(d, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "dlnc: error: cannot make %s: %s\n", d, strerror(errno));
    free(d);
    return -1;
  }
  open_in(c, d, NULL, flags, salt, rt, tmp, verbose);
  return c->dir ? 0 : -1;
}

void cache_close(rt_cache *c) {
  free(c->dir);
  free(c->lib);
  free(c->stamp);
  free(c->prebuilt_lib);
  free(c->prebuilt_stamp);
  memset(c, 0, sizeof *c);
}

/* Whether the entry `file` exists and matches its stamp; a damaged one is
 * reported, naming `what` it holds. */
static int entry_ok(const char *file, const char *stamp, const char *what) {
  if (access(file, F_OK) != 0) return 0;
  char text[STAMP_MAX] = "";
  FILE *f = fopen(stamp, "r");
  long long want_size = -1, size;
  uint64_t want_sum = 0, sum;
  if (f) {
    if (!fgets(text, sizeof text, f)) text[0] = 0;
    fclose(f);
    if (sscanf(text, "dlnc-runtime-cache size %lld fnv1a %" SCNx64, &want_size, &want_sum) != 2)
      want_size = -1;
  }
  /* no stamp: a build that stopped between the two renames, or one that is
   * writing the entry right now; either way the file is rebuilt quietly */
  if (!f) return 0;
  const char *why = NULL;
  if (want_size < 0) why = "its stamp is unreadable";
  else if (hash_file(file, &sum, &size) != 0) why = strerror(errno);
  else if (size != want_size) why = "its size is not the size recorded";
  else if (sum != want_sum) why = "its checksum is not the checksum recorded";
  if (!why) return 1;
  fprintf(stderr, "dlnc: warning: the cached %s %s is damaged (%s); rebuilding it\n", what, file, why);
  return 0;
}

const char *cache_lookup(const rt_cache *c) {
  if (c->dir && entry_ok(c->lib, c->stamp, "runtime")) return c->lib;
  if (c->prebuilt_lib && c->prebuilt_stamp && entry_ok(c->prebuilt_lib, c->prebuilt_stamp, "prebuilt runtime"))
    return c->prebuilt_lib;
  return NULL;
}

/* Writes n bytes; -1 with errno on failure. */
static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Copies src to a temporary name beside dst (or writes text if src is
 * NULL), fsyncs and renames it over dst.  -1 with errno on failure. */
static int replace_file(const char *src, const char *text, const char *dst, uint64_t *sum, long long *size) {
  char *part = xasprintf("%s.%ld.tmp", dst, (long)getpid());
  if (!part) return -1;
  int in = src ? open(src, O_RDONLY | O_CLOEXEC) : -1;
  int out = src && in < 0 ? -1 : open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  int rc = out < 0 ? -1 : 0;
  uint64_t h = FNV_OFFSET;
  long long n = 0;
  if (rc == 0 && src) {
    char buf[65536];
    ssize_t got;
    while ((got = read(in, buf, sizeof buf)) > 0 && (rc = write_all(out, buf, (size_t)got)) == 0) {
      h = fnv(h, buf, (size_t)got);
      n += got;
    }
    if (got < 0) rc = -1;
  } else if (rc == 0) {
    rc = write_all(out, text, strlen(text));
  }
  int err = errno;
  if (rc == 0 && fsync(out) != 0) rc = -1, err = errno;
  if (out >= 0 && close(out) != 0 && rc == 0) rc = -1, err = errno;
  if (in >= 0) close(in);
  if (rc == 0 && rename(part, dst) != 0) rc = -1, err = errno;
  if (rc != 0 && out >= 0) unlink(part);
  free(part);
  if (sum) *sum = h;
  if (size) *size = n;
  errno = err;
  return rc;
}

/* Copies built into the cache as file, then writes its stamp; a warning,
 * never an error, if it cannot. */
static void entry_store(const char *dir, const char *built, const char *file, const char *stamp) {
  uint64_t sum;
  long long size;
  char text[STAMP_MAX];
  int rc = replace_file(built, NULL, file, &sum, &size);
  if (rc == 0) {
    snprintf(text, sizeof text, "dlnc-runtime-cache size %lld fnv1a %016" PRIx64 "\n", size, sum);
    rc = replace_file(NULL, text, stamp, NULL, NULL);
  }
  if (rc != 0) {
    fprintf(stderr, "dlnc: warning: cannot store %s in the build cache %s: %s\n", built, dir,
            strerror(errno));
    return;
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* the renames themselves */
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

void cache_store(const rt_cache *c, const char *lib) {
  if (c->dir) entry_store(c->dir, lib, c->lib, c->stamp);
}

/* ---- the model's objects ---------------------------------------------------- */

char *cache_object(const rt_cache *c, const char *src, const char *hdr, const char *const *flags) {
  if (!c->dir || !c->keyed) return NULL;
  uint64_t h = c->key, fh;
  for (const char *const *f = flags; *f; f++) h = fnv(h, *f, strlen(*f) + 1);
  long long size;
  const char *files[] = {src, hdr};
  for (int i = 0; i < 2; i++) {
    if (hash_file(files[i], &fh, &size) != 0) return NULL; /* the compile will say why */
    h = fnv(fnv(h, &fh, sizeof fh), &size, sizeof size);
  }
  return xasprintf("%s/model-%016" PRIx64 ".o", c->dir, h);
}

static char *stamp_of(const char *obj) { return xasprintf("%s.sum", obj); }

int cache_object_lookup(const rt_cache *c, const char *obj) {
  char *stamp = c->dir && obj ? stamp_of(obj) : NULL;
  int ok = stamp && entry_ok(obj, stamp, "object");
  free(stamp);
  return ok;
}

void cache_object_store(const rt_cache *c, const char *built, const char *obj) {
  char *stamp = c->dir && obj ? stamp_of(obj) : NULL;
  if (stamp) entry_store(c->dir, built, obj, stamp);
  free(stamp);
}
