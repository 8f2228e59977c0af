/* test_safetensors.c: checkpoint files.  Round trip of every dtype and
 * metadata, atomic replacement, write failures, corrupt and hand-made files,
 * and interop with PyTorch (st_interop.py, path in argv[1]). */
#include "testutil.h"

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "safetensors.h"

/* ---- the tensors st_interop.py also builds ------------------------------- */

static float w_f32[12], s_f32 = 2.5f, emb[2] = {1, -2};
static double b_f64[5];
static int64_t i_i64[4] = {-(INT64_C(1) << 62), -1, 0, (INT64_C(1) << 62) + 5};
static int32_t i_i32[4] = {-7, INT32_MAX, 0, INT32_MIN};
static uint8_t u_u8[5] = {0, 50, 100, 150, 200};

enum { N_EXPECTED = 7 };
static dl_st_tensor expected[N_EXPECTED];
static const char *meta_note = "na\xc3\xafve \"q\" \\ \xf0\x9f\x98\x80";

static void init_expected(void) {
  for (int i = 0; i < 12; i++) w_f32[i] = (float)i / 4 - 1;
  for (int i = 0; i < 5; i++) b_f64[i] = (double)i * 1e100 / 3;
  dl_st_tensor t[N_EXPECTED] = {
    {"w.f32", DL_ST_F32, 2, {3, 4}, w_f32},   {"b.f64", DL_ST_F64, 1, {5}, b_f64},
    {"i.i64", DL_ST_I64, 1, {4}, i_i64},      {"i.i32", DL_ST_I32, 2, {2, 2}, i_i32},
    {"u.u8", DL_ST_U8, 1, {5}, u_u8},         {"s", DL_ST_F32, 0, {0}, &s_f32},
    {"emb.\xc3\xa9", DL_ST_F32, 1, {2}, emb},
  };
  memcpy(expected, t, sizeof t);
}

static size_t numel(const dl_st_tensor *t) {
  size_t n = 1;
  for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
  return n;
}

/* f holds every tensor of want (by name) with equal dtype, shape and bytes. */
static void check_holds(const dl_st_file *f, const dl_st_tensor *want, int n) {
  for (int i = 0; i < n; i++) {
    const dl_st_tensor *g = dl_st_find(f, want[i].name);
    CHECK(g != NULL);
    if (!g) {
      fprintf(stderr, "  missing tensor %s\n", want[i].name);
      continue;
    }
    CHECK(g->dtype == want[i].dtype && g->ndim == want[i].ndim);
    for (int d = 0; d < g->ndim; d++) CHECK(g->shape[d] == want[i].shape[d]);
    size_t bytes = numel(g) * dl_st_dtype_size(g->dtype);
    CHECK(bytes == 0 || memcmp(g->data, want[i].data, bytes) == 0);
    CHECK((uintptr_t)g->data % dl_st_dtype_size(g->dtype) == 0);
  }
}

/* No PATH.tmp.* left behind in the temp dir. */
static int temp_files_left(void) {
  DIR *d = opendir(g_tmpdir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
  if (d) closedir(d);
  return n;
}

/* ---- round trip ------------------------------------------------------------ */

static void check_round_trip(void) {
  static float empty_dummy;
  dl_st_tensor t[N_EXPECTED + 2];
  memcpy(t, expected, sizeof expected);
  t[N_EXPECTED] = (dl_st_tensor){"odd \"name\"\\\n\t\x01", DL_ST_F32, 1, {2}, emb};
  t[N_EXPECTED + 1] = (dl_st_tensor){"empty", DL_ST_F32, 2, {0, 3}, &empty_dummy};
  dl_st_meta meta[] = {{"format", "pt"}, {"note", meta_note}, {"k\"ey\n", "v\\al\tue\x1f"}};
  const char *p = tmp_path("rt.safetensors");
  char err[512] = "";
  int rc = dl_st_write(p, t, N_EXPECTED + 2, meta, 3, err, sizeof err);
  CHECK(rc == 0);
  if (rc) fprintf(stderr, "write failed: %s\n", err);
  CHECK(temp_files_left() == 0);

  /* Raw layout: u64 LE header length, a multiple of 8, JSON object. */
  FILE *fp = fopen(p, "rb");
  unsigned char head[9] = {0};
  CHECK(fp && fread(head, 1, 9, fp) == 9);
  if (fp) fclose(fp);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | head[i];
  CHECK(hlen % 8 == 0 && head[8] == '{');

  dl_st_file *f = dl_st_read(p, err, sizeof err);
  CHECK(f != NULL);
  if (!f) {
    fprintf(stderr, "read failed: %s\n", err);
    return;
  }
  CHECK(dl_st_count(f) == N_EXPECTED + 2);
  /* Tensors come back in the order written (file order). */
  for (int i = 0; i < dl_st_count(f); i++) CHECK(strcmp(dl_st_get(f, i)->name, t[i].name) == 0);
  CHECK(dl_st_get(f, -1) == NULL && dl_st_get(f, N_EXPECTED + 2) == NULL);
  check_holds(f, t, N_EXPECTED + 2);
  CHECK(dl_st_find(f, "nope") == NULL);
  CHECK(dl_st_meta_get(f, "format") && strcmp(dl_st_meta_get(f, "format"), "pt") == 0);
  CHECK(dl_st_meta_get(f, "note") && strcmp(dl_st_meta_get(f, "note"), meta_note) == 0);
  CHECK(dl_st_meta_get(f, "k\"ey\n") && strcmp(dl_st_meta_get(f, "k\"ey\n"), "v\\al\tue\x1f") == 0);
  CHECK(dl_st_meta_get(f, "absent") == NULL);
  dl_st_close(f);

  CHECK(dl_st_dtype_size(DL_ST_F64) == 8 && dl_st_dtype_size(DL_ST_U8) == 1);
  CHECK(strcmp(dl_st_dtype_name(DL_ST_I32), "I32") == 0);
}

/* ---- atomic replacement and write failures --------------------------------- */

static void check_replace_and_failures(void) {
  const char *p = tmp_path("ckpt.safetensors");
  char err[512] = "";
  float one[1] = {1}, two[1] = {2};
  dl_st_tensor a = {"x", DL_ST_F32, 1, {1}, one}, b = {"x", DL_ST_F32, 1, {1}, two};
  CHECK(dl_st_write(p, &a, 1, NULL, 0, err, sizeof err) == 0);
  CHECK(dl_st_write(p, &b, 1, NULL, 0, err, sizeof err) == 0);
  dl_st_file *f = dl_st_read(p, err, sizeof err);
  CHECK(f && dl_st_count(f) == 1 && ((const float *)dl_st_get(f, 0)->data)[0] == 2);
  dl_st_close(f);

  /* Target directory missing: clear message, nothing created. */
  const char *q = tmp_path("no-such-dir/ckpt.safetensors");
  CHECK_ERR(dl_st_write(q, &a, 1, NULL, 0, err, sizeof err) == -1, err,
            "cannot write checkpoint", q, "does not exist");

  /* A write that runs out of room (RLIMIT_FSIZE stands in for a full disk;
   * unlike permissions it also binds root).  The old file must survive and
   * the temp file must go. */
  static float big[1 << 14];
  dl_st_tensor large = {"x", DL_ST_F32, 1, {1 << 14}, big};
  struct rlimit old, lim;
  getrlimit(RLIMIT_FSIZE, &old);
  lim = old;
  lim.rlim_cur = 4096;
  signal(SIGXFSZ, SIG_IGN);
  CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
  int rc = dl_st_write(p, &large, 1, NULL, 0, err, sizeof err);
  setrlimit(RLIMIT_FSIZE, &old);
  CHECK_ERR(rc == -1, err, "cannot write checkpoint", p, "File too large");
  CHECK(temp_files_left() == 0);
  f = dl_st_read(p, err, sizeof err);
  CHECK(f && dl_st_count(f) == 1 && dl_st_get(f, 0)->shape[0] == 1 &&
        ((const float *)dl_st_get(f, 0)->data)[0] == 2);
  dl_st_close(f);

  /* Arguments that would make a bad file. */
  dl_st_tensor dup[2] = {a, a};
  CHECK_ERR(dl_st_write(p, dup, 2, NULL, 0, err, sizeof err) == -1, err, "two tensors", "\"x\"");
  dl_st_tensor bad = {"__metadata__", DL_ST_F32, 1, {1}, one};
  CHECK_ERR(dl_st_write(p, &bad, 1, NULL, 0, err, sizeof err) == -1, err, "invalid name");
  bad = (dl_st_tensor){"y", DL_ST_F32, 9, {1}, one};
  CHECK_ERR(dl_st_write(p, &bad, 1, NULL, 0, err, sizeof err) == -1, err, "\"y\"");
  bad = (dl_st_tensor){"y", DL_ST_F32, 1, {-1}, one};
  CHECK_ERR(dl_st_write(p, &bad, 1, NULL, 0, err, sizeof err) == -1, err, "\"y\"");
  bad = (dl_st_tensor){"\xff", DL_ST_F32, 1, {1}, one};
  CHECK_ERR(dl_st_write(p, &bad, 1, NULL, 0, err, sizeof err) == -1, err, "invalid name");
  bad = (dl_st_tensor){"y", DL_ST_F32, 1, {1}, NULL};
  CHECK_ERR(dl_st_write(p, &bad, 1, NULL, 0, err, sizeof err) == -1, err, "\"y\"");
  dl_st_meta bad_meta = {"k", "\xc0\xaf"}; /* overlong UTF-8 */
  CHECK_ERR(dl_st_write(p, &a, 1, &bad_meta, 1, err, sizeof err) == -1, err, "metadata");
  CHECK(temp_files_left() == 0);
  f = dl_st_read(p, err, sizeof err);
  CHECK(f && ((const float *)dl_st_get(f, 0)->data)[0] == 2);
  dl_st_close(f);
}

/* ---- hand-made files ------------------------------------------------------- */

/* Header text (padded with spaces to 8 unless raw), then data bytes. */
static const char *make_file(const char *name, const char *header, const void *data,
                             size_t data_len, int raw) {
  const char *p = tmp_path(name);
  size_t hl = strlen(header), padded = raw ? hl : (hl + 7) / 8 * 8;
  unsigned char *buf = malloc(8 + padded + data_len);
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
  memcpy(buf + 8, header, hl);
  memset(buf + 8 + hl, ' ', padded - hl);
  if (data_len) memcpy(buf + 8 + padded, data, data_len);
  write_bytes(p, buf, 8 + padded + data_len);
  free(buf);
  return p;
}

/* The file must be rejected with a message holding every fragment. */
#define EXPECT_BAD(header, data, len, ...)                                  \
  do {                                                                      \
    const char *p_ = make_file("bad.safetensors", header, data, len, 0);    \
    char err_[512] = "";                                                    \
    dl_st_file *f_ = dl_st_read(p_, err_, sizeof err_);                     \
    CHECK_ERR(f_ == NULL, err_, "cannot read checkpoint", p_, __VA_ARGS__); \
    dl_st_close(f_);                                                        \
  } while (0)

static void check_hand_made_good(void) {
  /* Python's spacing, extra fields, keys out of data order, escapes, an
   * unaligned F32 (after one U8 byte), metadata last. */
  unsigned char data[13] = {7};
  float v[3] = {1.5f, -2, 3};
  memcpy(data + 1, v, sizeof v);
  const char *hdr =
      "{\n  \"f\\u00e9\\ud83d\\ude00\\/\": {\"dtype\": \"F32\", \"shape\": [3],"
      " \"data_offsets\": [1, 13], \"extra\": {\"a\": [null, true, false, -1.5e-3, \"s\"]}},\n"
      "  \"byte\": {\"shape\": [], \"data_offsets\": [0, 1], \"dtype\": \"U8\"},\n"
      "  \"__metadata__\": {\"a\": \"\\\"\\\\\\b\\f\\n\\r\\t\"}\r\n}\t";
  const char *p = make_file("good.safetensors", hdr, data, sizeof data, 0);
  char err[512] = "";
  dl_st_file *f = dl_st_read(p, err, sizeof err);
  CHECK(f != NULL);
  if (!f) {
    fprintf(stderr, "read failed: %s\n", err);
    return;
  }
  CHECK(dl_st_count(f) == 2);
  CHECK(strcmp(dl_st_get(f, 0)->name, "byte") == 0); /* file order, not header order */
  const dl_st_tensor *t = dl_st_find(f, "f\xc3\xa9\xf0\x9f\x98\x80/");
  CHECK(t && t->dtype == DL_ST_F32 && t->ndim == 1 && t->shape[0] == 3);
  CHECK(t && (uintptr_t)t->data % 4 == 0 && memcmp(t->data, v, sizeof v) == 0);
  t = dl_st_find(f, "byte");
  CHECK(t && t->ndim == 0 && *(const uint8_t *)t->data == 7);
  CHECK(dl_st_meta_get(f, "a") && strcmp(dl_st_meta_get(f, "a"), "\"\\\b\f\n\r\t") == 0);
  dl_st_close(f);

  /* Header not padded to 8, no tensors at all. */
  p = make_file("empty.safetensors", "{}", NULL, 0, 1);
  f = dl_st_read(p, err, sizeof err);
  CHECK(f && dl_st_count(f) == 0 && dl_st_meta_get(f, "x") == NULL);
  dl_st_close(f);
}

static void check_corrupt(void) {
  float d3[3] = {1, 2, 3};
  char err[512] = "";

  /* A good file cut short: its offsets now point past the end. */
  const char *good = tmp_path("rt.safetensors");
  FILE *fp = fopen(good, "rb");
  unsigned char buf[4096];
  size_t n = fp ? fread(buf, 1, sizeof buf, fp) : 0;
  if (fp) fclose(fp);
  CHECK(n > 100 && n < sizeof buf);
  const char *p = tmp_path("cut.safetensors");
  write_bytes(p, buf, n - 5);
  dl_st_file *f = dl_st_read(p, err, sizeof err);
  CHECK_ERR(f == NULL, err, p, "out of range", "odd \"name\"\\\\x0a\\x09\\x01");
  write_bytes(p, buf, 40); /* cut inside the header */
  f = dl_st_read(p, err, sizeof err);
  CHECK_ERR(f == NULL, err, p, "larger than the file");
  write_bytes(p, buf, 5);
  f = dl_st_read(p, err, sizeof err);
  CHECK_ERR(f == NULL, err, p, "not a safetensors file");
  p = tmp_path("absent.safetensors");
  f = dl_st_read(p, err, sizeof err);
  CHECK_ERR(f == NULL, err, "cannot open checkpoint", p, "No such file");

  /* Header size field far beyond the file. */
  memcpy(buf, "\x00\x00\x00\x00\x01\x00\x00\x00{}      ", 16);
  p = tmp_path("huge.safetensors");
  write_bytes(p, buf, 16);
  f = dl_st_read(p, err, sizeof err);
  CHECK_ERR(f == NULL, err, p, "header size 4294967296", "larger than the file");

  /* Bad JSON. */
  EXPECT_BAD("garbage!", NULL, 0, "not a JSON object");
  EXPECT_BAD("[1, 2]", NULL, 0, "not a JSON object");
  EXPECT_BAD("{\"a\": 1,}", NULL, 0, "bad JSON", "expected a string key");
  EXPECT_BAD("{\"a\" 1}", NULL, 0, "expected ':'");
  EXPECT_BAD("{\"a\": [1 2]}", NULL, 0, "expected ',' or ']'");
  EXPECT_BAD("{\"a\": \"unterminated}", NULL, 0, "unterminated string");
  EXPECT_BAD("{\"a\": \"bad \\q escape\"}", NULL, 0, "bad escape");
  EXPECT_BAD("{\"a\": \"\\u12G4\"}", NULL, 0, "bad \\u escape");
  EXPECT_BAD("{\"a\": \"\\ud800x\"}", NULL, 0, "surrogate");
  EXPECT_BAD("{\"a\": \"tab\there\"}", NULL, 0, "control character");
  EXPECT_BAD("{\"a\": 01}", NULL, 0, "bad JSON");
  EXPECT_BAD("{\"a\": 1.}", NULL, 0, "bad number");
  EXPECT_BAD("{\"a\": -}", NULL, 0, "bad number");
  EXPECT_BAD("{\"a\": tru}", NULL, 0, "unexpected character");
  EXPECT_BAD("{} {}", NULL, 0, "after the header object");
  EXPECT_BAD("{\"a\": {}", NULL, 0, "bad JSON");
  EXPECT_BAD("{\"\xc3\x28\": {}}", NULL, 0, "not UTF-8");
  char deep[400] = "{\"a\":";
  for (int i = 0; i < 100; i++) strcat(deep, "[");
  EXPECT_BAD(deep, NULL, 0, "nested too deeply");

  /* Well-formed JSON, wrong contents. */
  EXPECT_BAD("{\"x\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]}}", d3, 6,
             "\"x\"", "unsupported dtype \"BF16\"");
  EXPECT_BAD("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", d3, 12,
             "\"x\"", "out of range", "12 bytes");
  EXPECT_BAD("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,4]}}", d3, 12,
             "out of range");
  EXPECT_BAD("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", d3, 12,
             "need 8 bytes", "give 12");
  EXPECT_BAD("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", d3, 8,
             "overlap");
  EXPECT_BAD("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", d3, 12,
             "4 unused bytes before tensor \"y\"");
  EXPECT_BAD("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", d3, 12,
             "4 unused bytes after");
  EXPECT_BAD("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
             "\"x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[12,12]}}", d3, 12,
             "\"x\" appears twice");
  EXPECT_BAD("{\"x\":{\"shape\":[3],\"data_offsets\":[0,12]}}", d3, 12, "no \"dtype\"");
  EXPECT_BAD("{\"x\":{\"dtype\":\"F32\",\"data_offsets\":[0,12]}}", d3, 12, "no \"shape\"");
  EXPECT_BAD("{\"x\":{\"dtype\":\"F32\",\"shape\":[3]}}", d3, 12, "data_offsets");
  EXPECT_BAD("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12,1]}}", d3, 12,
             "data_offsets");
  EXPECT_BAD("{\"x\":{\"dtype\":\"F32\",\"shape\":[-3],\"data_offsets\":[0,12]}}", d3, 12,
             "bad dimension");
  EXPECT_BAD("{\"x\":{\"dtype\":\"F32\",\"shape\":[3.0],\"data_offsets\":[0,12]}}", d3, 12,
             "bad dimension");
  EXPECT_BAD("{\"x\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],"
             "\"data_offsets\":[0,12]}}", d3, 12, "bad dimension");
  EXPECT_BAD("{\"x\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}",
             d3, 1, "9 dims");
  EXPECT_BAD("{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
             "\"data_offsets\":[0,12]}}", d3, 12, "too large");
  EXPECT_BAD("{\"x\":[1]}", d3, 0, "not an object");
  EXPECT_BAD("{\"__metadata__\":{\"a\":1}}", NULL, 0, "metadata \"a\" is not a string");
  EXPECT_BAD("{\"__metadata__\":[]}", NULL, 0, "\"__metadata__\" is not an object");
}

/* ---- PyTorch interop ----------------------------------------------------------- */

static int run(const char *const argv[]) {
  pid_t pid = fork();
  if (pid == 0) {
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  int st;
  if (pid < 0 || waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void check_torch_interop(const char *script) {
  const char *probe[] = {"/usr/bin/python3", "-c", "import torch, numpy", NULL};
  if (!script) {
    printf("SKIPPED: PyTorch interop (no st_interop.py path in argv[1])\n");
    return;
  }
  if (run(probe) != 0) {
    printf("SKIPPED: python3-torch missing\n");
    return;
  }
  char err[512] = "";
  /* Python writes, we read. */
  const char *p = tmp_path("from_torch.safetensors");
  const char *make[] = {"/usr/bin/python3", script, "make", p, NULL};
  CHECK(run(make) == 0);
  dl_st_file *f = dl_st_read(p, err, sizeof err);
  CHECK(f != NULL);
  if (f) {
    CHECK(dl_st_count(f) == N_EXPECTED);
    check_holds(f, expected, N_EXPECTED);
    CHECK(dl_st_meta_get(f, "format") && strcmp(dl_st_meta_get(f, "format"), "pt") == 0);
    CHECK(dl_st_meta_get(f, "note") && strcmp(dl_st_meta_get(f, "note"), meta_note) == 0);
    dl_st_close(f);
  } else {
    fprintf(stderr, "reading the torch file failed: %s\n", err);
  }
  /* We write, Python reads. */
  p = tmp_path("for_torch.safetensors");
  dl_st_meta meta[] = {{"format", "pt"}, {"note", meta_note}};
  CHECK(dl_st_write(p, expected, N_EXPECTED, meta, 2, err, sizeof err) == 0);
  const char *check[] = {"/usr/bin/python3", script, "check", p, NULL};
  CHECK(run(check) == 0);
}

int main(int argc, char **argv) {
  make_tmpdir("rt_st");
  init_expected();
  check_round_trip();
  check_replace_and_failures();
  check_hand_made_good();
  check_corrupt();
  check_torch_interop(argc > 1 ? argv[1] : NULL);
  return finish("runtime_io_safetensors");
}
