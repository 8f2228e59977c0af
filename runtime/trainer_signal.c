/* trainer_signal.c: SIGINT, SIGTERM, SIGHUP and SIGPIPE during `train`.
 *
 * Killing a trainer mid-step would lose the work since the last checkpoint.
 * So while training, the first of these signals only sets a flag; the epoch
 * loop looks at it between steps, saves a final checkpoint and exits with
 * 128 + the signal.  SIGHUP (the terminal went away) is a request to stop
 * like SIGTERM.  SIGPIPE (stdout is a pipe whose reader has gone, as in
 * `train | head -1`) would kill the process at the next summary line; here
 * it too stops the run after a save, and the write itself fails with EPIPE.
 *
 * A second SIGINT, SIGTERM or SIGHUP means "now": if the save is stuck (a
 * hung network file system) the user must still be able to stop it.  The
 * handler ends the process at once, and first makes sure no save is left
 * half done: a checkpoint still being written to its temporary file is
 * abandoned (the file is removed; the previous checkpoint stays as it was),
 * one already renamed into place is complete; the message says which
 * (atomic_file.c knows where the save is).  More SIGPIPEs change nothing.
 *
 * A SIGINT or SIGHUP that was ignored when the trainer started stays
 * ignored: shells without job control start background commands with
 * SIGINT ignored, to keep a Ctrl-C at the terminal from reaching them, and
 * nohup ignores SIGHUP. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* sigaction */
#endif
#include "atomic_file.h"
#include "trainer_internal.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Written by the handler, read by the main thread.  The handler may run on
 * any thread (a worker of the pool), so a volatile sig_atomic_t would be a
 * data race; a lock-free atomic is both safe to store to in a handler and
 * race-free across threads. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the stop flag must be lock-free");
static atomic_int stop_signal;  /* the signal that asked to stop, or 0     */
static atomic_int requests;     /* SIGINT, SIGTERM and SIGHUP received      */
static atomic_int saving;       /* 1 while dl_tr_signals_saving(1) holds    */

/* What the handler writes for a second request, prepared beforehand:
 * snprintf is not async-signal-safe.  [DL_AF_*] while saving, else
 * [SAID_IDLE]. */
enum { SAID_IDLE = DL_AF_DONE + 1, N_SAID };
static char said[N_SAID][600];

static const struct {
  int sig;
  int keep_ignored;         /* a disposition of SIG_IGN at start stays */
} caught[] = {{SIGINT, 1}, {SIGTERM, 0}, {SIGHUP, 1}, {SIGPIPE, 0}};
enum { N_CAUGHT = (int)(sizeof caught / sizeof caught[0]) };
static struct sigaction old_act[N_CAUGHT], old_xfsz;
static int installed;

static void say(const char *s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = write(STDERR_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

static void on_stop(int sig) {
  if (sig == SIGPIPE) {
    int none = 0;
    atomic_compare_exchange_strong(&stop_signal, &none, sig);
    return;
  }
  if (atomic_fetch_add(&requests, 1) == 0) {
    atomic_store(&stop_signal, sig);
    return;
  }
  /* The second request: stop now, with no save left half done. */
  say(said[atomic_load(&saving) ? dl_af_interrupt() : SAID_IDLE]);
  _exit(DL_EXIT_SIGNAL_BASE + sig);
}

static void prepare_messages(const char *save) {
  static const char head[] = "interrupted again: stopped at once";
  if (!save) {
    for (int i = 0; i < N_SAID; i++)
      snprintf(said[i], sizeof said[i], "%s (nothing saved: no --save)\n", head);
    return;
  }
  snprintf(said[DL_AF_NOT_STARTED], sizeof said[0], "%s before the save had written "
           "anything; %s is as the last save left it\n", head, save);
  snprintf(said[DL_AF_ABANDONED], sizeof said[0], "%s; the save in progress was abandoned, "
           "%s is as the last save left it\n", head, save);
  snprintf(said[DL_AF_DONE], sizeof said[0], "%s; the save in progress had finished: %s "
           "holds the new checkpoint\n", head, save);
  snprintf(said[SAID_IDLE], sizeof said[0], "%s between two saves; %s is as the last save left it\n",
           head, save);
}

void dl_tr_signals_catch(const char *save) {
  prepare_messages(save);
  atomic_store(&stop_signal, 0);
  atomic_store(&requests, 0);
  atomic_store(&saving, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_stop;
  /* SA_RESTART: reads and writes in progress (a checkpoint being written)
   * continue instead of failing with EINTR. */
  sa.sa_flags = SA_RESTART;
  for (int i = 0; i < N_CAUGHT; i++) {
    sigaction(caught[i].sig, NULL, &old_act[i]);
    if (!(caught[i].keep_ignored && old_act[i].sa_handler == SIG_IGN))
      sigaction(caught[i].sig, &sa, NULL);
  }
  /* Past a file size limit (ulimit -f), write(2) raises SIGXFSZ, whose
   * default action kills the process; ignored, the write fails with EFBIG
   * and the save reports it. */
  struct sigaction ign;
  memset(&ign, 0, sizeof ign);
  sigemptyset(&ign.sa_mask);
  ign.sa_handler = SIG_IGN;
  sigaction(SIGXFSZ, &ign, &old_xfsz);
  installed = 1;
}

void dl_tr_signals_restore(void) {
  if (!installed) return;
  for (int i = 0; i < N_CAUGHT; i++) sigaction(caught[i].sig, &old_act[i], NULL);
  sigaction(SIGXFSZ, &old_xfsz, NULL);
  installed = 0;
}

void dl_tr_signals_saving(int on) {
  if (on) dl_af_mark();
  atomic_store(&saving, on);
}

int dl_tr_stop_signal(void) { return atomic_load(&stop_signal); }
