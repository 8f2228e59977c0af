/* cache.h: the compiled runtime, kept between builds (see cache.c). */
#ifndef DLNC_CACHE_H
#define DLNC_CACHE_H
#include "proc.h"

typedef struct rt_cache {
  char *dir;   /* NULL: no cache for this build */
  char *lib;   /* DIR/runtime-KEY.a */
  char *stamp; /* DIR/runtime-KEY.a.sum: its size and checksum */
  char *prebuilt_lib, *prebuilt_stamp; /* PREBUILT/runtime-KEY.a(.sum), or NULL */
  unsigned long long key; /* KEY: compiler, flags, CPU, runtime sources */
  int keyed;   /* key is known */
  int clang;   /* the compiler defines __clang__ (known with or without a cache) */
} rt_cache;

/* Chooses the cache directory and the entry for these compile flags (and
 * salt: how the build compiles particular files, hashed too) and
 * runtime directory (tmp: a scratch directory for the compiler's output).
 * A cache that cannot be used leaves c->dir NULL after a warning.  Either
 * way it asks the compiler for its macros and sets c->clang.  `prebuilt`
 * (or NULL) is a read-only directory of runtime entries made by `dlnc
 * prebuild` (beside dlnc), looked up after the cache, whether or not
 * there is a cache. */
void cache_open(rt_cache *c, const char *prebuilt, const argv_list *flags, const char *salt,
                const char *rt, const char *tmp, int verbose);
/* `dlnc prebuild`: the cache is `dir` (made if missing), whatever
 * $DLNC_CACHE says, and there is no prebuilt directory.  -1 after a message
 * if it cannot be used. */
int cache_open_at(rt_cache *c, const char *dir, const argv_list *flags, const char *salt, const char *rt,
                  const char *tmp, int verbose);
/* The runtime library for this key that exists and matches its stamp: the
 * cache's, else the prebuilt one; NULL if neither.  A damaged one is
 * reported. */
const char *cache_lookup(const rt_cache *c);
/* Copies lib (a freshly built archive) into the cache: a warning, never an
 * error, if it cannot. */
void cache_store(const rt_cache *c, const char *lib);
void cache_close(rt_cache *c);

/* A compiled object of the model: the entry for the generated source src
 * (which includes the generated header hdr), compiled with the extra flags
 * `flags` (a NULL-terminated list) under this cache's key, as a malloc'd path
 * DIR/model-KEY.o; NULL without a cache.  Looked up and
 * stored as the runtime is (verified against a stamp, written atomically). */
char *cache_object(const rt_cache *c, const char *src, const char *hdr, const char *const *flags);
int cache_object_lookup(const rt_cache *c, const char *obj);
void cache_object_store(const rt_cache *c, const char *built, const char *obj);

#endif
