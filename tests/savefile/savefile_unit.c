/* savefile_unit.c: where checkpoints may go and how they are replaced
 * (atomic_file.c), what a signal during a save leaves (trainer_signal.c),
 * and the ranges a loaded checkpoint must respect (checkpoint.c).
 * Usage: savefile_unit WORKDIR */
#if !defined(_GNU_SOURCE) && !defined(_XOPEN_SOURCE)
#define _XOPEN_SOURCE 700 /* POSIX 2008 and mknod */
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/sysmacros.h> /* makedev */
#endif
#include <unistd.h>

#include "atomic_file.h"
#include "dl_model.h"
#include "safetensors.h"
#include "trainer_internal.h"
#include "../expect.h"

static char dir[900];

static const char *path_in(const char *name) {
  static char buf[8][1200];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  EXPECT(f != NULL);
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

static int is_reg(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int mode_of(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

/* A one-tensor safetensors file holding v. */
static int save_value(const char *path, float v, char *err, size_t errlen) {
  float one[1] = {v};
  dl_st_tensor t = {"x", DL_ST_F32, 1, {1}, one};
  return dl_st_write(path, &t, 1, NULL, 0, err, errlen);
}

static float read_value(const char *path) {
  char err[512];
  dl_st_file *f = dl_st_read(path, err, sizeof err);
  float v = f && dl_st_count(f) == 1 ? ((const float *)dl_st_get(f, 0)->data)[0] : NAN;
  dl_st_close(f);
  return v;
}

/* ---- targets -------------------------------------------------------------- */

/* A character device a failed test may destroy: /dev/null itself only
 * where a rename could not replace it (not root); as root a node of our
 * own, or none (NULL) if it cannot be made. */
static const char *spare_char_device(void) {
  if (geteuid() != 0) return "/dev/null";
#ifdef __linux__
  if (mknod(path_in("cdev"), S_IFCHR | 0666, makedev(1, 3)) == 0) return path_in("cdev");
#endif
  return NULL;
}

static void expect_refused(const char *path, const char *why, int line) {
  char err[512] = "";
  if (dl_af_check(path, err, sizeof err) == 0) {
    fprintf(stderr, "savefile_unit.c:%d: FAILED: %s accepted as a save target\n", line, path);
    failures++;
    return;
  }
  expect_contains(err, why, __FILE__, line);
  /* A save there is refused the same way, and leaves it as it was. */
  if (dl_af_check(path, err, sizeof err) == 0 || save_value(path, 1, err, sizeof err) == 0) {
    fprintf(stderr, "savefile_unit.c:%d: FAILED: a save to %s succeeded\n", line, path);
    failures++;
  }
}
#define EXPECT_REFUSED(p, why) expect_refused((p), (why), __LINE__)

static void test_targets(void) {
  char err[512] = "";
  mkdir(path_in("adir"), 0755);
  EXPECT_REFUSED(path_in("adir"), "it is a directory");
  EXPECT(mkfifo(path_in("fifo"), 0644) == 0);
  EXPECT_REFUSED(path_in("fifo"), "it is a FIFO, not a regular file");
  /* /dev/null is only checked, never saved to. */
  EXPECT(dl_af_check("/dev/null", err, sizeof err) == -1);
  EXPECT_MSG(err, "it is a character device, not a regular file");
  const char *cdev = spare_char_device();
  if (cdev) {
    EXPECT_REFUSED(cdev, "it is a character device, not a regular file");
    struct stat st;
    EXPECT(stat(cdev, &st) == 0 && S_ISCHR(st.st_mode));
  }
  EXPECT_REFUSED(path_in("missing/ck.st"), "does not exist");
  EXPECT_REFUSED("", "the name is empty");
  EXPECT_REFUSED(path_in("fifo/ck.st"), "is not a directory");
  char longname[300];
  memset(longname, 'n', 250);
  longname[250] = '\0'; /* fits NAME_MAX, NAME.tmp.XXXXXX does not */
  EXPECT_REFUSED(path_in(longname), "the name is too long");
  memset(longname, 'n', 299);
  longname[299] = '\0';
  EXPECT_REFUSED(path_in(longname), "the name is too long");
  /* Links: followed to what they name. */
  EXPECT(symlink("adir", path_in("to_dir")) == 0);
  EXPECT_REFUSED(path_in("to_dir"), "it is a directory");
  EXPECT(symlink("fifo", path_in("to_fifo")) == 0);
  EXPECT_REFUSED(path_in("to_fifo"), "it is a FIFO");
  EXPECT(symlink("nowhere/x.st", path_in("dangling_dir")) == 0);
  EXPECT_REFUSED(path_in("dangling_dir"), "does not exist");
  EXPECT(symlink("loop_b", path_in("loop_a")) == 0 && symlink("loop_a", path_in("loop_b")) == 0);
  EXPECT_REFUSED(path_in("loop_a"), "too many levels of symbolic links");
  /* Root may write anywhere: an unwritable directory only binds others. */
  if (geteuid() != 0) {
    mkdir(path_in("ro"), 0755);
    chmod(path_in("ro"), 0555);
    EXPECT_REFUSED(path_in("ro/ck.st"), "cannot create a file in directory");
    chmod(path_in("ro"), 0755);
  }
  /* What may be saved: a new name, an existing file; the check leaves nothing. */
  EXPECT(dl_af_check(path_in("new.st"), err, sizeof err) == 0);
  EXPECT(access(path_in("new.st"), F_OK) != 0);
  write_text(path_in("old.st"), "old");
  EXPECT(dl_af_check(path_in("old.st"), err, sizeof err) == 0);
}

/* A link to the checkpoint stays a link, to the new contents; a dangling
 * one makes the file it names. */
static void test_links(void) {
  char err[512] = "";
  mkdir(path_in("real"), 0755);
  EXPECT(symlink("real/ck.st", path_in("link.st")) == 0);
  EXPECT(save_value(path_in("link.st"), 1, err, sizeof err) == 0);
  EXPECT(save_value(path_in("link.st"), 2, err, sizeof err) == 0);
  struct stat st;
  EXPECT(lstat(path_in("link.st"), &st) == 0 && S_ISLNK(st.st_mode));
  EXPECT(is_reg(path_in("real/ck.st")) && read_value(path_in("real/ck.st")) == 2);
  /* A chain of links, absolute and relative. */
  EXPECT(symlink(path_in("link.st"), path_in("link2.st")) == 0);
  EXPECT(save_value(path_in("link2.st"), 3, err, sizeof err) == 0);
  EXPECT(lstat(path_in("link2.st"), &st) == 0 && S_ISLNK(st.st_mode));
  EXPECT(read_value(path_in("real/ck.st")) == 3);
}

/* New files: 0666 less the umask.  Replaced files: their permissions, but
 * never setuid, setgid or sticky. */
static void test_modes(void) {
  char err[512] = "";
  mode_t old = umask(027);
  EXPECT(save_value(path_in("m1.st"), 1, err, sizeof err) == 0);
  EXPECT(mode_of(path_in("m1.st")) == 0640);
  umask(022);
  EXPECT(save_value(path_in("m2.st"), 1, err, sizeof err) == 0);
  EXPECT(mode_of(path_in("m2.st")) == 0644);
  chmod(path_in("m2.st"), 0600);
  EXPECT(save_value(path_in("m2.st"), 2, err, sizeof err) == 0);
  EXPECT(mode_of(path_in("m2.st")) == 0600);
  chmod(path_in("m2.st"), 06755);
  EXPECT(save_value(path_in("m2.st"), 3, err, sizeof err) == 0);
  EXPECT(mode_of(path_in("m2.st")) == 0755);
  umask(old);
}

/* Leftovers of killed saves go with the next save to the same file; a
 * temporary file another process is still writing (locked) stays, and so
 * does anything not named like a temporary file of this target. */
static void test_leftovers(void) {
  char err[512] = "";
  const char *keep[] = {"lo.st.tmp.abc", "lo.st.tmp.abcdefg", "lo.st.tmp.ab-def", "xlo.st.tmp.abcdef",
                        "lo.st.tmp.LIVE01"};
  write_text(path_in("lo.st.tmp.abcdef"), "killed mid-save");
  write_text(path_in("lo.st.tmp.XYZ789"), "");
  for (int i = 0; i < 5; i++) write_text(path_in(keep[i]), "keep");
  int go[2], ready[2];
  EXPECT(pipe(go) == 0 && pipe(ready) == 0);
  pid_t pid = fork();
  if (pid == 0) { /* a live writer: holds the lock until told to go */
    int fd = open(path_in("lo.st.tmp.LIVE01"), O_RDWR);
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    char c = fd >= 0 && fcntl(fd, F_SETLK, &lk) == 0 ? 'y' : 'n';
    if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) < 0) _exit(1);
    _exit(0);
  }
  char c = 'n';
  EXPECT(read(ready[0], &c, 1) == 1 && c == 'y');
  EXPECT(save_value(path_in("lo.st"), 1, err, sizeof err) == 0);
  EXPECT(write(go[1], "g", 1) == 1);
  waitpid(pid, NULL, 0);
  EXPECT(access(path_in("lo.st.tmp.abcdef"), F_OK) != 0);
  EXPECT(access(path_in("lo.st.tmp.XYZ789"), F_OK) != 0);
  for (int i = 0; i < 5; i++) EXPECT(access(path_in(keep[i]), F_OK) == 0);
  EXPECT(read_value(path_in("lo.st")) == 1);
  close(go[0]), close(go[1]), close(ready[0]), close(ready[1]);
}

/* ---- signals ---------------------------------------------------------------- */

/* How far a save has come when the second signal arrives. */
typedef enum { S_BETWEEN, S_BEFORE, S_WRITING, S_RENAMED } save_stage;

static void child_body(save_stage stage, const char *target) {
  dl_tr_signals_catch(target);
  raise(SIGINT); /* the first: only a flag */
  if (dl_tr_stop_signal() != SIGINT) _exit(3);
  dl_af f;
  char err[512];
  if (stage != S_BETWEEN) dl_tr_signals_saving(1);
  if (stage >= S_WRITING) {
    if (dl_af_open(&f, target, err, sizeof err) || dl_af_write(&f, "new", 3)) _exit(4);
    if (stage == S_RENAMED && dl_af_commit(&f, err, sizeof err)) _exit(5);
  }
  raise(SIGTERM); /* the second: at once */
  _exit(6);
}

/* child_body in a child whose stderr goes to a file: its exit status (128 +
 * signal from the handler's _exit) and what it wrote. */
static int run_child(save_stage stage, const char *target, char *said, size_t len) {
  const char *log = path_in("child.err");
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || dup2(fd, 2) < 0) _exit(2);
    child_body(stage, target);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  FILE *f = fopen(log, "r");
  size_t n = f ? fread(said, 1, len - 1, f) : 0;
  said[n] = '\0';
  if (f) fclose(f);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* No NAME.tmp.* beside dir/NAME. */
static int no_temp_files(const char *name) {
  char prefix[300];
  snprintf(prefix, sizeof prefix, "%s.tmp.", name);
  DIR *d = opendir(dir);
  int found = 0;
  for (struct dirent *e; d && (e = readdir(d));) found |= strncmp(e->d_name, prefix, strlen(prefix)) == 0;
  if (d) closedir(d);
  return d && !found;
}

static void test_second_signal(void) {
  char said[1024];
  const char *ck = path_in("sig.st");
  write_text(ck, "old");
  /* Between saves: nothing to finish. */
  EXPECT(run_child(S_BETWEEN, ck, said, sizeof said) == 128 + SIGTERM);
  EXPECT_MSG(said, "interrupted again: stopped at once between two saves");
  /* A save that has not written yet, or is writing: abandoned, the old
   * file stays, no temporary file is left. */
  EXPECT(run_child(S_BEFORE, ck, said, sizeof said) == 128 + SIGTERM);
  EXPECT_MSG(said, "before the save had written anything");
  EXPECT(run_child(S_WRITING, ck, said, sizeof said) == 128 + SIGTERM);
  EXPECT_MSG(said, "the save in progress was abandoned");
  EXPECT_MSG(said, ck);
  FILE *f = fopen(ck, "r");
  char got[8] = "";
  EXPECT(f && fgets(got, sizeof got, f) && strcmp(got, "old") == 0);
  if (f) fclose(f);
  EXPECT(no_temp_files("sig.st"));
  /* Renamed into place: the new checkpoint is complete, and said so. */
  EXPECT(run_child(S_RENAMED, ck, said, sizeof said) == 128 + SIGTERM);
  EXPECT_MSG(said, "the save in progress had finished");
  f = fopen(ck, "r");
  EXPECT(f && fgets(got, sizeof got, f) && strcmp(got, "new") == 0);
  if (f) fclose(f);
  EXPECT(no_temp_files("sig.st"));
}

/* SIGPIPE stops the run but never ends the process; SIGHUP is a request
 * like SIGTERM. */
static void test_pipe_and_hup(void) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open("/dev/null", O_WRONLY);
    if (fd < 0 || dup2(fd, 2) < 0) _exit(2);
    dl_tr_signals_catch(NULL);
    raise(SIGPIPE);
    raise(SIGPIPE);
    raise(SIGPIPE);
    if (dl_tr_stop_signal() != SIGPIPE) _exit(3);
    raise(SIGHUP); /* the first request */
    if (dl_tr_stop_signal() != SIGHUP) _exit(4);
    dl_tr_signals_restore();
    raise(SIGPIPE); /* default again: this ends it */
    _exit(5);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT(WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE);
}

/* ---- checkpoint ranges --------------------------------------------------------- */

enum { NW = 4, O_W = 0, O_G = NW, O_M = 2 * NW, O_N = 3 * NW, N_STATE = 3 * NW + 2 };
static const dl_tensor_desc tensors[] = {
    {"w", DL_T_PARAM, 1, {NW}, O_W, NW, DL_INIT_ZERO, 1, 1, 0, 1, -1},
    {"w.grad", DL_T_GRAD, 1, {NW}, O_G, NW, DL_INIT_ZERO, 0, 0, 0, 1, -1},
    {"w.momentum_buffer", DL_T_OPT, 1, {NW}, O_M, NW, DL_INIT_ZERO, 0, 0, 0, 1, -1},
    /* an int64 in the room of 8 bytes of state */
    {"bn.num_batches_tracked", DL_T_COUNT, 0, {0}, O_N, 1, DL_INIT_ZERO, 0, 0, 0, 1, -1},
};

static dl_model_desc make_desc(void) {
  dl_model_desc m;
  memset(&m, 0, sizeof m);
  m.name = "c";
  m.x_size = 1;
  m.y_kind = DL_Y_REAL;
  m.y_size = 1;
  m.out_size = 1;
  m.state_elems = N_STATE;
  m.act_elems_per_sample = 1;
  m.n_tensors = (int)(sizeof tensors / sizeof tensors[0]);
  m.tensors = tensors;
  return m;
}

static void set_count(dl_ctx *ctx, int64_t v) { memcpy(ctx->state + O_N, &v, sizeof v); }

/* Saved as it is (dl_ckpt_save writes what it is given, with a valid
 * CRC), then refused on load with `why`, leaving the context alone. */
static void expect_load_refused(dl_ctx *ctx, int params_only, const char *why, int line) {
  char err[1024] = "";
  const char *p = path_in("range.st");
  if (dl_ckpt_save(ctx, p, NULL, err, sizeof err)) {
    fprintf(stderr, "savefile_unit.c:%d: FAILED: save: %s\n", line, err);
    failures++;
    return;
  }
  dl_ctx_init_params(ctx, 1);
  ctx->step = 7;
  set_count(ctx, 5);
  dl_real before[N_STATE];
  memcpy(before, ctx->state, sizeof before);
  if (dl_ckpt_load(ctx, p, params_only, NULL, err, sizeof err) == 0) {
    fprintf(stderr, "savefile_unit.c:%d: FAILED: the load succeeded\n", line);
    failures++;
    return;
  }
  expect_contains(err, p, __FILE__, line);
  expect_contains(err, why, __FILE__, line);
  EXPECT(memcmp(before, ctx->state, sizeof before) == 0 && ctx->step == 7);
}
#define EXPECT_LOAD_REFUSED(ctx, po, why) expect_load_refused((ctx), (po), (why), __LINE__)

static void test_ranges(dl_ctx *ctx) {
  char err[1024] = "";
  dl_ctx_init_params(ctx, 1);
  ctx->step = INT64_MAX; /* one more step would overflow */
  EXPECT_LOAD_REFUSED(ctx, 0, "metadata 'step' is '9223372036854775807', expected an integer from 0 to 9007199254740992");
  dl_ctx_init_params(ctx, 1);
  ctx->step = (int64_t)1 << 53; /* the largest allowed */
  set_count(ctx, (int64_t)1 << 53);
  EXPECT(dl_ckpt_save(ctx, path_in("max.st"), NULL, err, sizeof err) == 0);
  ctx->step = 0;
  EXPECT(dl_ckpt_load(ctx, path_in("max.st"), 0, NULL, err, sizeof err) == 0);
  EXPECT(ctx->step == (int64_t)1 << 53);
  set_count(ctx, INT64_MAX);
  EXPECT_LOAD_REFUSED(ctx, 0, "tensor 'bn.num_batches_tracked' holds the count 9223372036854775807");
  dl_ctx_init_params(ctx, 1);
  set_count(ctx, -1);
  EXPECT_LOAD_REFUSED(ctx, 1, "holds the count -1");
  /* Non-finite values, for every command that loads (params_only too). */
  dl_ctx_init_params(ctx, 1);
  ctx->state[O_W + 2] = (dl_real)NAN;
  EXPECT_LOAD_REFUSED(ctx, 1, "tensor 'w' holds nan values (the first at index 2)");
  dl_ctx_init_params(ctx, 1);
  ctx->state[O_M + 3] = (dl_real)-INFINITY;
  EXPECT_LOAD_REFUSED(ctx, 0, "tensor 'w.momentum_buffer' holds -inf values");
  /* Weights from elsewhere (no metadata) in float64: a value past float
   * range is an infinity in a float32 build. */
  double w64[NW] = {1, 2, 1e39, 4};
  dl_st_tensor t = {"w", DL_ST_F64, 1, {NW}, w64};
  int64_t n = 0;
  dl_st_tensor c = {"bn.num_batches_tracked", DL_ST_I64, 0, {0}, &n};
  dl_st_tensor both[2] = {t, c};
  EXPECT(dl_st_write(path_in("f64.st"), both, 2, NULL, 0, err, sizeof err) == 0);
  int rc = dl_ckpt_load(ctx, path_in("f64.st"), 1, NULL, err, sizeof err);
  if (DL_REAL_IS_F64) {
    EXPECT(rc == 0 && ctx->state[O_W + 2] == 1e39);
  } else {
    EXPECT(rc == -1);
    EXPECT_MSG(err, "tensor 'w' holds inf values (the first at index 2, as float32)");
  }
}

int main(int argc, char **argv) {
  snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : ".");
  test_targets();
  test_links();
  test_modes();
  test_leftovers();
  test_second_signal();
  test_pipe_and_hup();
  dl_model_desc m = make_desc();
  char err[256];
  dl_ctx *ctx = dl_ctx_new(&m, 1, err, sizeof err);
  EXPECT(ctx != NULL);
  if (ctx) test_ranges(ctx);
  dl_ctx_free(ctx);
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  else printf("savefile_unit: all checks passed\n");
  return failures ? 1 : 0;
}
