/* proc.h: what `dlnc build` needs to run compilers: argument lists of any
 * length, starting and waiting for children, and a stop on SIGINT, SIGTERM
 * or SIGHUP that takes the children (and their own children) with it. */
#ifndef DLNC_PROC_H
#define DLNC_PROC_H
#include <sys/types.h>

/* A NULL-terminated argv that grows as needed.  The strings are not owned,
 * except those added with argv_own (freed by argv_free). */
typedef struct argv_list {
  char **v;
  int n, cap;
  char **owned;
  int nowned, owned_cap;
  int oom; /* an add failed: the list is incomplete and must not be run */
} argv_list;

void argv_add(argv_list *a, const char *s);
void argv_own(argv_list *a, char *s); /* adds s and frees it with the list; s may be NULL (oom) */
int argv_copy(argv_list *dst, const argv_list *src); /* 0, or -1 out of memory */
void argv_free(argv_list *a);

/* malloc'd printf; NULL when out of memory. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Starts argv (stdout to stdout_path if not NULL); its pid, or -1 after a
 * message.  Each child leads its own process group, so a stop can end the
 * compiler's own subprocesses (cc1, as, ld) too. */
pid_t proc_start(char **argv, const char *stdout_path, int verbose);
/* Waits for pid; 0 if it exited with status 0, else -1 after a message
 * naming `what` (none if what is NULL or the build is being stopped). */
int proc_finish(pid_t pid, const char *what);
/* Waits for whichever child ends first: its pid (*ok: it exited with
 * status 0 and the build is not being stopped), or -1 after a message if
 * there is none. */
pid_t proc_wait_any(int *ok);
int proc_run(char **argv, const char *stdout_path, int verbose);

/* From proc_trap_signals until proc_untrap_signals, SIGINT, SIGTERM and
 * SIGHUP stop every running child and are remembered: proc_stopped() gives
 * the signal (0 if none), and proc_untrap_signals re-raises it after the
 * caller has cleaned up, so dlnc ends as the signal says. */
void proc_trap_signals(void);
int proc_stopped(void);
void proc_untrap_signals(void);

#endif
