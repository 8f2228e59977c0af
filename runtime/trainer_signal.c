/* trainer_signal.c: SIGINT and SIGTERM during `train`.
 *
 * Killing a trainer mid-step would lose the work since the last checkpoint;
 * killing it mid-save is harmless (writes are atomic) but loses it too.  So
 * while training, both signals only set a flag; the epoch loop looks at it
 * between steps, saves a final checkpoint and exits with 128 + the signal.
 * The handler is installed with SA_RESETHAND: if the save hangs (a stuck
 * network file system), a second Ctrl-C ends the process the usual way, and
 * the previous checkpoint is still intact.  A SIGINT that was ignored when
 * the trainer started stays ignored: shells without job control start
 * background commands so, to keep a Ctrl-C at the terminal from reaching
 * them. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* sigaction */
#endif
#include "trainer_internal.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>

/* Written by the handler, read by the main thread.  The handler may run on
 * any thread (a worker of the pool), so a volatile sig_atomic_t would be a
 * data race; a lock-free atomic is both safe to store to in a handler and
 * race-free across threads. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the stop flag must be lock-free");
static atomic_int stop_signal;

static struct sigaction old_int, old_term, old_xfsz;
static int installed;

static void on_stop(int sig) { atomic_store(&stop_signal, sig); }

void dl_tr_signals_catch(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_stop;
  /* SA_RESTART: reads and writes in progress (a checkpoint being written)
   * continue instead of failing with EINTR. */
  sa.sa_flags = SA_RESTART | SA_RESETHAND;
  atomic_store(&stop_signal, 0);
  sigaction(SIGINT, NULL, &old_int);
  if (old_int.sa_handler != SIG_IGN) sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, &old_term);
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
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  sigaction(SIGXFSZ, &old_xfsz, NULL);
  installed = 0;
}

int dl_tr_stop_signal(void) { return atomic_load(&stop_signal); }
