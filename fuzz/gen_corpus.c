/* gen_corpus.c: writes the seed inputs of fuzz_idx, fuzz_csv, fuzz_text and
 * fuzz_safetensors into DIR/idx, DIR/csv, DIR/text and DIR/safetensors (the
 * folders must exist).  Each seed is a small valid file or one with a single defect
 * the loader must report.  usage: gen_corpus DIR   (see fuzz/README.md) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fuzz_model.h"
#include "safetensors.h"

static const char *root;

static void save(const char *harness, const char *name, const void *data, size_t n) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s/%s", root, harness, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
    fprintf(stderr, "gen_corpus: cannot write %s\n", path);
    exit(1);
  }
}

/* ---- IDX: flags, x_size-1, n_classes-1, images length (u16 LE), images, labels */

static size_t be32(unsigned char *p, unsigned v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
  return 4;
}

/* images: n samples of dims[0] x ... (nd dims), pixel values i*7+j; `cut`
 * bytes dropped from the end, or `extra` appended. */
static size_t idx_images(unsigned char *p, unsigned magic, unsigned n, int nd, const unsigned *dims,
                         int cut, int extra) {
  size_t o = be32(p, magic), per = 1;
  o += be32(p + o, n);
  for (int i = 0; i < nd; i++) o += be32(p + o, dims[i]), per *= dims[i];
  for (size_t i = 0; i < n * per; i++) p[o++] = (unsigned char)(i * 7 + 3);
  for (int i = 0; i < extra; i++) p[o++] = 0;
  return o - (size_t)cut;
}

static size_t idx_labels(unsigned char *p, unsigned n, unsigned classes, int bad_at) {
  size_t o = be32(p, 0x801);
  o += be32(p + o, n);
  for (unsigned i = 0; i < n; i++) p[o++] = (unsigned char)((int)i == bad_at ? classes : i % classes);
  return o;
}

static void idx_seed(const char *name, int flags, int x_size, int classes, const unsigned char *im,
                     size_t nim, const unsigned char *lb, size_t nlb) {
  unsigned char buf[4096];
  buf[0] = (unsigned char)flags, buf[1] = (unsigned char)(x_size - 1);
  buf[2] = (unsigned char)(classes - 1);
  buf[3] = (unsigned char)nim, buf[4] = (unsigned char)(nim >> 8);
  memcpy(buf + 5, im, nim);
  memcpy(buf + 5 + nim, lb, nlb);
  save("idx", name, buf, 5 + nim + nlb);
}

/* A gzip stream of data (for seeds where the fuzzer mutates compressed bytes). */
static size_t gzip(unsigned char *out, size_t cap, const unsigned char *data, size_t n) {
  z_stream z = {0};
  if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) exit(1);
  z.next_in = (Bytef *)data, z.avail_in = (uInt)n;
  z.next_out = out, z.avail_out = (uInt)cap;
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) exit(1);
  deflateEnd(&z);
  return z.total_out;
}

static void gen_idx(void) {
  unsigned char im[1024], lb[256], gz[1024];
  const unsigned d22[] = {2, 2}, d222[] = {2, 2, 2};
  size_t ni = idx_images(im, 0x803, 3, 2, d22, 0, 0), nl = idx_labels(lb, 3, 10, -1);
  idx_seed("plain", 0, 4, 10, im, ni, lb, nl);
  idx_seed("gzip_both", 3, 4, 10, im, ni, lb, nl);
  idx_seed("gzip_images", 1, 4, 10, im, ni, lb, nl);
  idx_seed("gzip_labels", 2, 4, 10, im, ni, lb, nl);
  idx_seed("raw_gzip_images", 0, 4, 10, gz, gzip(gz, sizeof gz, im, ni), lb, nl);
  idx_seed("label_out_of_range", 0, 4, 10, im, ni, lb, idx_labels(lb, 3, 10, 1));
  idx_seed("images_truncated", 0, 4, 10, im, idx_images(im, 0x803, 3, 2, d22, 2, 0), lb, nl);
  idx_seed("images_too_long", 1, 4, 10, im, idx_images(im, 0x803, 3, 2, d22, 0, 3), lb, nl);
  idx_seed("bad_magic", 0, 4, 10, im, idx_images(im, 0x10803, 3, 2, d22, 0, 0), lb, nl);
  idx_seed("gzip_magic_junk", 0, 4, 10, im, idx_images(im, 0x1f8b0803, 3, 2, d22, 0, 0), lb, nl);
  idx_seed("element_type", 0, 4, 10, im, idx_images(im, 0x0d03, 3, 2, d22, 0, 0), lb, nl);
  idx_seed("count_mismatch", 0, 4, 10, im, idx_images(im, 0x803, 2, 2, d22, 0, 0), lb, nl);
  idx_seed("no_samples", 0, 4, 10, im, idx_images(im, 0x803, 0, 2, d22, 0, 0), lb,
           idx_labels(lb, 0, 10, -1));
  idx_seed("three_dims", 0, 8, 4, im, idx_images(im, 0x804, 3, 3, d222, 0, 0), lb,
           idx_labels(lb, 3, 4, -1));
  idx_seed("wrong_x_size", 0, 5, 10, im, idx_images(im, 0x803, 3, 2, d22, 0, 0), lb, nl);
  /* a header promising 2^30 samples, with no data after it */
  size_t o = be32(im, 0x803);
  o += be32(im + o, 0x40000000), o += be32(im + o, 1), o += be32(im + o, 3);
  idx_seed("huge_count", 0, 3, 2, im, o, lb, idx_labels(lb, 2, 2, -1));
  /* one image of 8x8 for the fuzzer to grow and shrink */
  const unsigned d88[] = {8, 8};
  idx_seed("one_8x8", 3, 64, 3, im, idx_images(im, 0x803, 1, 2, d88, 0, 0), lb,
           idx_labels(lb, 1, 3, -1));
}

/* ---- CSV: flags (bit 0 header, bit 1 class labels), x-1 | (y-1) << 4, text - */

static void csv_seed(const char *name, int flags, int x_size, int y_size, const char *text) {
  char buf[4096];
  size_t n = strlen(text);
  buf[0] = (char)flags, buf[1] = (char)((x_size - 1) | (y_size - 1) << 4);
  memcpy(buf + 2, text, n);
  save("csv", name, buf, n + 2);
}

static void gen_csv(void) {
  csv_seed("xor_class", 2, 2, 2, "0,0,0\n0,1,1\n1,0,1\n1,1,0\n");
  csv_seed("regression_header", 1, 3, 2, "a,b,c,y1,y2\n1,2,3,4,5\n-1.5,2e-3,0.25,1e3,-7\n");
  csv_seed("crlf_blank_lines", 0, 2, 1, "1,2,3\r\n\r\n  \n4 , 5 ,\t6\r\n");
  csv_seed("no_trailing_newline", 2, 1, 3, "0.5,2\n1.5,1");
  csv_seed("hex_and_exponents", 0, 2, 1, "0x1p3,1E-2,.5\n+1,-0,1e+2\n");
  csv_seed("nan", 0, 1, 1, "nan,1\n");
  csv_seed("inf", 0, 1, 1, "1,-inf\n");
  csv_seed("out_of_float_range", 0, 1, 1, "1e39,0\n");
  csv_seed("empty_field", 0, 2, 1, "1,,3\n");
  csv_seed("bad_number", 1, 2, 1, "x,y,z\n1,2b,3\n");
  csv_seed("header_not_skipped", 0, 2, 1, "x,y,z\n1,2,3\n");
  csv_seed("too_few_fields", 0, 3, 1, "1,2,3\n");
  csv_seed("too_many_fields", 0, 1, 1, "1,2,3\n");
  csv_seed("class_out_of_range", 2, 1, 3, "0.5,3\n");
  csv_seed("class_not_integer", 2, 1, 3, "0.5,1.5\n");
  csv_seed("only_header", 1, 1, 1, "x,y\n\n");
  csv_seed("empty", 0, 1, 1, "");
  csv_seed("wide", 0, 16, 16,
           "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16\n");
}

/* ---- text: flags (bit 0 gzip b, bit 1 the directory), T-1, V-1, from*256,
 *      to*256-1, length of a (u16 LE), a, b.gz ------------------------------- */

static void text_seed(const char *name, int flags, int t, int vocab, int from, int to,
                      const void *a, size_t na, const void *b, size_t nb) {
  unsigned char buf[4096];
  buf[0] = (unsigned char)flags, buf[1] = (unsigned char)(t - 1);
  buf[2] = (unsigned char)(vocab - 1), buf[3] = (unsigned char)from;
  buf[4] = (unsigned char)(to - 1), buf[5] = (unsigned char)na, buf[6] = (unsigned char)(na >> 8);
  memcpy(buf + 7, a, na);
  memcpy(buf + 7 + na, b, nb);
  save("text", name, buf, 7 + na + nb);
}

static void gen_text(void) {
  static const char a[] = "Q: What is the difference between a duck?\nA: One leg is both the same.\n%\n";
  static const char b[] = "Ever notice how fast Windows runs?  Neither did I.\n%\n";
  unsigned char gz[1024];
  size_t na = sizeof a - 1, nb = sizeof b - 1;
  text_seed("file", 0, 8, 128, 0, 256, a, na, b, nb);
  text_seed("dir_gzip", 3, 16, 128, 0, 256, a, na, b, nb);
  text_seed("dir_raw_gzip", 2, 16, 128, 0, 256, a, na, gz, gzip(gz, sizeof gz, (const void *)b, nb));
  text_seed("split_test", 3, 4, 256, 230, 256, a, na, b, nb);
  text_seed("split_data", 2, 4, 256, 0, 230, a, na, b, nb);
  text_seed("t_1", 0, 1, 256, 0, 256, a, na, b, nb);
  text_seed("outside_vocab", 2, 8, 128, 0, 256, a, na, "caf\xc3\xa9\n", 6);
  text_seed("too_short", 0, 200, 128, 0, 256, a, na, b, nb);
  text_seed("bad_range", 2, 8, 128, 128, 128, a, na, b, nb);
  text_seed("empty_files", 2, 1, 256, 0, 256, "", 0, "", 0);
  text_seed("binary", 2, 3, 256, 0, 256, "\0\xff\x80\n\r\x1f\x8b", 7, "\x1f\x8b\x08", 3);
}

/* ---- safetensors: a checkpoint of fuzz_model.h, raw files ------------------- */

static void st_file(const char *name, const char *json, const void *data, size_t n) {
  unsigned char buf[4096];
  size_t h = strlen(json);
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((unsigned long long)h >> (8 * i));
  memcpy(buf + 8, json, h);
  memcpy(buf + 8 + h, data, n);
  save("safetensors", name, buf, 8 + h + n);
}

/* Writes a real checkpoint through dl_st_write into the corpus folder. */
static void st_write(const char *name, dl_st_dtype dtype, int with_opt, int with_meta,
                     const char *epoch) {
  static double d64[STATE];
  static float d32[STATE];
  for (int i = 0; i < STATE; i++) d64[i] = d32[i] = (float)(i - 10) / 8;
  dl_st_tensor ts[8];
  int n = 0;
  for (int i = 0; i < fuzz_model.n_tensors; i++) {
    const dl_tensor_desc *t = &fuzz_model.tensors[i];
    if (t->kind == DL_T_GRAD || (t->kind == DL_T_OPT && !with_opt)) continue;
    ts[n] = (dl_st_tensor){.name = t->name, .dtype = dtype, .ndim = t->ndim};
    memcpy(ts[n].shape, t->shape, sizeof t->shape);
    ts[n].data = dtype == DL_ST_F64 ? (const void *)(d64 + t->offset) : (const void *)(d32 + t->offset);
    n++;
  }
  const dl_st_meta meta[] = {{"format", "dlnc-checkpoint-1"}, {"model", "fz"},
                             {"dtype", dtype == DL_ST_F64 ? "F64" : "F32"}, {"epoch", epoch},
                             {"step", "12"}, {"seed", "7"}};
  char path[1024], err[512];
  snprintf(path, sizeof path, "%s/safetensors/%s", root, name);
  if (dl_st_write(path, ts, n, meta, with_meta ? 6 : 0, err, sizeof err)) {
    fprintf(stderr, "gen_corpus: %s\n", err);
    exit(1);
  }
}

/* A checkpoint as the trainer saves it (with position metadata and crc32). */
static void st_ctx_save(const char *name) {
  static dl_real state[STATE];
  for (int i = 0; i < STATE; i++) state[i] = (dl_real)(i % 7) / 4;
  dl_ctx ctx = {.m = &fuzz_model, .state = state, .step = 40, .seed = 9};
  char path[1024], err[512];
  snprintf(path, sizeof path, "%s/safetensors/%s", root, name);
  if (dl_ctx_save(&ctx, path, 5, err, sizeof err)) {
    fprintf(stderr, "gen_corpus: %s\n", err);
    exit(1);
  }
}

static void gen_safetensors(void) {
  st_ctx_save("checkpoint_saved");
  st_write("checkpoint_f32", DL_ST_F32, 1, 1, "3");
  st_write("checkpoint_f64", DL_ST_F64, 1, 1, "3");
  st_write("params_only_no_meta", DL_ST_F32, 0, 0, "0");
  st_write("params_only_meta", DL_ST_F32, 0, 1, "1");
  st_write("bad_epoch", DL_ST_F32, 1, 1, "-1");
  const unsigned char z[64] = {0};
  /* unaligned offsets (as other writers produce), key order and escapes */
  st_file("python_style",
          "{\"fc.bias\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
          "\"fc.weight\": {\"shape\": [2, 3], \"data_offsets\": [8, 32], \"dtype\": \"F32\"}}",
          z, 32);
  st_file("unaligned", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                       "\"b\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[1,9]}}",
          z, 9);
  st_file("all_dtypes", "{\"i\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
                        "\"j\":{\"dtype\":\"I32\",\"shape\":[1,1],\"data_offsets\":[8,12]},"
                        "\"u\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[12,13]},"
                        "\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[13,13]}}",
          z, 13);
  st_file("escapes", "{\"__metadata__\":{\"k\\u00e9\\ud83d\\ude00\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"},"
                     "\"t\\u0041\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],"
                     "\"extra\":[null,true,false,-1.5e3,{}]}}",
          z, 4);
  st_file("wrong_shape", "{\"__metadata__\":{\"format\":\"dlnc-checkpoint-1\",\"model\":\"fz\","
                         "\"epoch\":\"1\",\"step\":\"2\",\"seed\":\"3\"},"
                         "\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]},"
                         "\"fc.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]}}",
          z, 32);
  st_file("wrong_dtype", "{\"fc.weight\":{\"dtype\":\"I32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                         "\"fc.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]}}",
          z, 32);
  st_file("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
          z, 12);
  st_file("gap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", z, 8);
  st_file("duplicate", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                       "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
          z, 2);
  st_file("huge_shape", "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],"
                        "\"data_offsets\":[0,8]}}",
          z, 8);
  /* nested deeper than the reader's JSON depth limit (64) */
  char deep[256] = "{\"x\":";
  for (int i = 0; i < 70; i++) strcat(deep, "[");
  for (int i = 0; i < 70; i++) strcat(deep, "]");
  st_file("deep", strcat(deep, "}"), z, 0);
  st_file("empty_object", "{}", z, 0);
  /* a header length past the end of the file */
  unsigned char bad[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
  save("safetensors", "length_past_end", bad, 10);
  /* a header that is not UTF-8 */
  st_file("not_utf8", "{\"\xc3\x28\":1}", z, 0);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: gen_corpus DIR (writes DIR/idx, DIR/csv, DIR/text, DIR/safetensors)\n");
    return 2;
  }
  root = argv[1];
  gen_idx();
  gen_csv();
  gen_text();
  gen_safetensors();
  return 0;
}
