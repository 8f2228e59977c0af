/* maxrss.c: run a command and report its peak resident set size.
 *
 * usage: maxrss FILE CMD [ARG...]
 * Runs CMD with its standard streams, reaps it with wait4 and writes
 * "maxrss_kb N cpu_s X" to FILE: the child's ru_maxrss (KiB on Linux) and the
 * CPU time it used (user + system seconds); exits with the command's status
 * (128 + signal if it was killed).
 *
 * Why not os.wait4 straight from bench/run: Linux carries the resident size
 * of the address space a process replaces at exec into its ru_maxrss, so a
 * command started from Python (fork or vfork, then exec) reports at least
 * the interpreter's own RSS, ~80 MB with numpy loaded.  Started from this
 * small program it reports its own peak (within ~1 MB).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s FILE CMD [ARG...]\n", argv[0]);
    return 2;
  }
  pid_t pid = fork();
  if (pid < 0) {
    perror("maxrss: fork");
    return 127;
  }
  if (pid == 0) {
    execvp(argv[2], argv + 2);
    perror("maxrss: exec");
    _exit(127);
  }
  int status;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0) {
    perror("maxrss: wait4");
    return 127;
  }
  FILE *f = fopen(argv[1], "w");
  double cpu = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
               (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
  if (!f || fprintf(f, "maxrss_kb %ld cpu_s %.3f\n", ru.ru_maxrss, cpu) < 0 || fclose(f)) {
    perror(argv[1]);
    return 127;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
