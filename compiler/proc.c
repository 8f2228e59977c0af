/* proc.c: argument lists and child processes for `dlnc build` (see proc.h). */
#define _GNU_SOURCE
#include "proc.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---- argument lists ------------------------------------------------------ */

static int grow(void *pv, int *cap, int need, size_t elem) {
  void **p = pv;
  if (need <= *cap) return 0;
  int ncap = *cap ? *cap * 2 : 32;
  while (ncap < need) ncap *= 2;
  void *np = realloc(*p, (size_t)ncap * elem);
  if (!np) return -1;
  *p = np;
  *cap = ncap;
  return 0;
}

void argv_add(argv_list *a, const char *s) {
  if (!s || grow(&a->v, &a->cap, a->n + 2, sizeof *a->v)) {
    a->oom = 1;
    return;
  }
  a->v[a->n++] = (char *)s;
  a->v[a->n] = NULL;
}

void argv_own(argv_list *a, char *s) {
  if (!s || grow(&a->owned, &a->owned_cap, a->nowned + 1, sizeof *a->owned)) {
    free(s);
    a->oom = 1;
    return;
  }
  a->owned[a->nowned++] = s;
  argv_add(a, s);
}

/* The copy shares the strings: it must not outlive src. */
int argv_copy(argv_list *dst, const argv_list *src) {
  memset(dst, 0, sizeof *dst);
  for (int i = 0; i < src->n; i++) argv_add(dst, src->v[i]);
  dst->oom |= src->oom;
  return dst->oom ? -1 : 0;
}

void argv_free(argv_list *a) {
  for (int i = 0; i < a->nowned; i++) free(a->owned[i]);
  free(a->owned);
  free(a->v);
  memset(a, 0, sizeof *a);
}

char *xasprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s;
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  return n < 0 ? NULL : s;
}

/* ---- children and signals ------------------------------------------------ */

/* The running children, read by the signal handler: changed only with the
 * trapped signals blocked. */
static pid_t *kids;
static int nkids, kids_cap;
static volatile sig_atomic_t stop_signal;
static int trapped;
static struct sigaction old_actions[3];
static const int trapped_signals[3] = {SIGINT, SIGTERM, SIGHUP};

static void on_stop(int sig) {
  if (!stop_signal) stop_signal = sig;
  for (int i = 0; i < nkids; i++)
    if (kids[i] > 0) kill(-kids[i], SIGTERM);
}

static void block_signals(sigset_t *old) {
  sigset_t set;
  sigemptyset(&set);
  for (int i = 0; i < 3; i++) sigaddset(&set, trapped_signals[i]);
  sigprocmask(SIG_BLOCK, &set, old);
}

/* A signal the caller ignores (nohup, a shell's background job) stays
 * ignored, for dlnc and for the compilers. */
void proc_trap_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop; /* no SA_RESTART: waitpid returns EINTR */
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < 3; i++) {
    sigaction(trapped_signals[i], NULL, &old_actions[i]);
    if (old_actions[i].sa_handler != SIG_IGN) sigaction(trapped_signals[i], &sa, NULL);
  }
  trapped = 1;
}

int proc_stopped(void) { return stop_signal; }

void proc_untrap_signals(void) {
  if (!trapped) return;
  for (int i = 0; i < 3; i++) sigaction(trapped_signals[i], &old_actions[i], NULL);
  trapped = 0;
  free(kids);
  kids = NULL;
  nkids = kids_cap = 0;
  if (stop_signal) {
    /* end as the signal would have ended us, now that nothing is left behind */
    signal(stop_signal, SIG_DFL);
    raise(stop_signal);
  }
}

pid_t proc_start(char **argv, const char *stdout_path, int verbose) {
  if (stop_signal) return -1;
  if (verbose)
    for (char **a = argv; *a; a++) fprintf(stderr, "%s%s", *a, a[1] ? " " : "\n");
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_init(&fa);
  /* the child's own group; the default action for a signal dlnc traps
   * (on_stop is dlnc's), ignored ones stay ignored */
  sigset_t none, deflt;
  sigemptyset(&none);
  sigemptyset(&deflt);
  for (int i = 0; i < 3; i++)
    if (old_actions[i].sa_handler != SIG_IGN) sigaddset(&deflt, trapped_signals[i]);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &deflt);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  if (stdout_path)
    posix_spawn_file_actions_addopen(&fa, 1, stdout_path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  sigset_t old;
  block_signals(&old);
  pid_t pid = -1;
  int err = grow(&kids, &kids_cap, nkids + 1, sizeof *kids) ? ENOMEM : 0;
  if (!err) err = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
  if (!err) kids[nkids++] = pid;
  sigprocmask(SIG_SETMASK, &old, NULL);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (err) {
    fprintf(stderr, "dlnc: error: cannot run %s: %s\n", argv[0], strerror(err));
    return -1;
  }
  return pid;
}

static void forget(pid_t pid) {
  sigset_t old;
  block_signals(&old);
  for (int i = 0; i < nkids; i++)
    if (kids[i] == pid) kids[i] = kids[--nkids];
  sigprocmask(SIG_SETMASK, &old, NULL);
}

int proc_finish(pid_t pid, const char *what) {
  int status;
  pid_t got;
  while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
  }
  forget(pid);
  if (got < 0) {
    fprintf(stderr, "dlnc: error: lost %s: %s\n", what ? what : "a child", strerror(errno));
    return -1;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (!stop_signal && what) fprintf(stderr, "dlnc: error: %s failed\n", what);
    return -1;
  }
  return stop_signal ? -1 : 0;
}

pid_t proc_wait_any(int *ok) {
  int status;
  pid_t got;
  while ((got = waitpid(-1, &status, 0)) < 0 && errno == EINTR) {
  }
  if (got < 0) {
    fprintf(stderr, "dlnc: error: lost a child: %s\n", strerror(errno));
    return -1;
  }
  forget(got);
  *ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && !stop_signal;
  return got;
}

int proc_run(char **argv, const char *stdout_path, int verbose) {
  pid_t pid = proc_start(argv, stdout_path, verbose);
  return pid < 0 ? -1 : proc_finish(pid, argv[0]);
}
