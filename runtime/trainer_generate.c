/* trainer_generate.c: `sample` of a model with a generator, a binding
 * `sample` that reads no input and no label (only noise and parameters):
 *
 *   BIN sample --load F --count N --out FILE [--seed S] [--batch B]
 *
 * draws N samples, B at a time (the train block's batch by default), the
 * noise of chunk k keyed on (S, step k), so one seed gives the same files.
 * They are images: a sample of shape [H, W], [1, H, W] or [P] with P a
 * perfect square (P = 784: 28 x 28); other shapes are refused.  Two files,
 * each written atomically (atomic_file.c):
 *
 *   FILE           IDX, magic 0x00000803 (ubyte, 3 dims [N, H, W]): the
 *                  Fashion-MNIST images format.  A value v becomes the byte
 *                  round(v / scale), clamped to 0..255 (NaN: 0), scale being
 *                  the training data's (`idx(..., scale = 1/255)`), so bytes
 *                  come back as they went in.  Without a positive scale (no
 *                  training data, text, scale <= 0) values are taken to be
 *                  in [0, 1]: round(v * 255).
 *   FILE.png       (FILE's extension replaced by .png, or .png appended) a
 *                  grid of the N images, 8-bit grey, ceil(sqrt(N)) columns,
 *                  each image framed by 1 pixel of grey 128.  Written with
 *                  libpng. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "atomic_file.h"
#include "dl_model.h"
#include "trainer_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { GRID_GAP = 1, GRID_GAP_GREY = 128 };
/* The bytes of all images at once are kept: 2 GiB at most. */
#define MAX_IMAGE_BYTES (2147483648.0)

/* H and W of the model's samples as images; 0, or -1 with why. */
static int image_shape(const dl_model_desc *m, int64_t *h, int64_t *w, char *why, size_t len) {
  const int64_t *s = m->sample_shape;
  if (m->sample_ndim == 1) {
    int64_t r = (int64_t)llround(sqrt((double)s[0]));
    if (r * r == s[0]) {
      *h = *w = r;
      return 0;
    }
  } else if (m->sample_ndim == 2 || (m->sample_ndim == 3 && s[0] == 1)) {
    *h = s[m->sample_ndim - 2];
    *w = s[m->sample_ndim - 1];
    return 0;
  }
  char dims[160] = "";
  size_t k = 0;
  for (int d = 0; d < m->sample_ndim && k < sizeof dims; d++)
    k += (size_t)snprintf(dims + k, sizeof dims - k, "%s%" PRId64, d ? ", " : "", s[d]);
  snprintf(why, len, "its 'sample' has shape [%s], which is not an image: sample writes "
           "[H, W], [1, H, W] or [P] with P a perfect square (784 = 28 x 28)", dims);
  return -1;
}

/* The factor that took a byte to the value the model saw in training. */
static double byte_scale(const dl_model_desc *m) {
  const dl_data_spec *s = &m->defaults.train;
  if ((s->kind == DL_DATA_IDX || s->kind == DL_DATA_CSV) && s->scale > 0) return s->scale;
  return 1.0 / 255.0;
}

static uint8_t to_byte(double v, double scale) {
  double b = v / scale;
  if (!(b > 0)) return 0; /* NaN too */
  if (b >= 255) return 255;
  return (uint8_t)lround(b);
}

/* FILE with its extension replaced by .png (a dot in the last component,
 * not leading it), or .png appended; NULL when out of memory. */
static char *png_path(const char *out) {
  const char *base = strrchr(out, '/');
  base = base ? base + 1 : out;
  const char *dot = strrchr(base, '.');
  size_t keep = dot && dot > base ? (size_t)(dot - out) : strlen(out);
  char *p = malloc(keep + 5);
  if (!p) return NULL;
  memcpy(p, out, keep);
  memcpy(p + keep, ".png", 5);
  return p;
}

/* Both outputs can be written before any work is done. */
static int check_outputs(const char *out, const char *png) {
  char why[512];
  if (strcmp(out, png) == 0) {
    fprintf(stderr, "error: --out %s: the PNG grid would be written over the IDX file; give "
            "the IDX file another extension (samples.idx)\n", out);
    return -1;
  }
  const char *bad = dl_af_check(out, why, sizeof why) ? out
                    : dl_af_check(png, why, sizeof why) ? png : NULL;
  if (!bad) return 0;
  fprintf(stderr, "error: --out %s: cannot write %s: %s\n", out, bad, why);
  return -1;
}

static void be32(uint8_t *p, uint64_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static int write_idx(const char *path, const uint8_t *img, int64_t n, int64_t h, int64_t w) {
  char err[512];
  uint8_t hdr[16];
  be32(hdr, 0x00000803);
  be32(hdr + 4, (uint64_t)n);
  be32(hdr + 8, (uint64_t)h);
  be32(hdr + 12, (uint64_t)w);
  dl_af f;
  if (dl_af_open(&f, path, err, sizeof err)) {
    fprintf(stderr, "error: cannot write %s: %s\n", path, err);
    return -1;
  }
  if (dl_af_write(&f, hdr, sizeof hdr) || dl_af_write(&f, img, (uint64_t)(n * h * w))) {
    fprintf(stderr, "error: writing %s failed: %s\n", path, strerror(errno));
    dl_af_discard(&f);
    return -1;
  }
  if (dl_af_commit(&f, err, sizeof err)) {
    fprintf(stderr, "error: cannot write %s: %s\n", path, err);
    return -1;
  }
  return 0;
}

/* libpng writes through this into the temporary file; a failed write
 * longjmps out of png_write_* via png_error. */
static void png_out(png_structp png, png_bytep data, size_t len) {
  if (dl_af_write(png_get_io_ptr(png), data, len)) png_error(png, strerror(errno));
}
static void png_flush(png_structp png) { (void)png; }

static void png_fail(png_structp png, png_const_charp msg) {
  fprintf(stderr, "error: libpng: %s\n", msg);
  png_longjmp(png, 1);
}

/* Row y of the grid: the images' rows, framed and separated by grey. */
static void grid_row(png_bytep row, const uint8_t *img, int64_t n, int64_t h, int64_t w,
                     int64_t cols, int64_t y, int64_t width) {
  memset(row, GRID_GAP_GREY, (size_t)width);
  int64_t cell = h + GRID_GAP, gr = y / cell, iy = y % cell - GRID_GAP;
  if (iy < 0) return;
  for (int64_t c = 0; c < cols; c++) {
    int64_t i = gr * cols + c;
    uint8_t *dst = row + GRID_GAP + c * (w + GRID_GAP);
    if (i < n) memcpy(dst, img + (size_t)((i * h + iy) * w), (size_t)w);
    else memset(dst, 0, (size_t)w);
  }
}

static int write_png_grid(const char *path, const uint8_t *img, int64_t n, int64_t h, int64_t w) {
  int64_t cols = (int64_t)ceil(sqrt((double)n)), rows = (n + cols - 1) / cols;
  int64_t width = cols * (w + GRID_GAP) + GRID_GAP, height = rows * (h + GRID_GAP) + GRID_GAP;
  if (width > PNG_UINT_31_MAX || height > PNG_UINT_31_MAX) {
    fprintf(stderr, "error: %s: a grid of %" PRId64 " x %" PRId64 " pixels is too large for PNG\n",
            path, width, height);
    return -1;
  }
  char err[512];
  dl_af f;
  if (dl_af_open(&f, path, err, sizeof err)) {
    fprintf(stderr, "error: cannot write %s: %s\n", path, err);
    return -1;
  }
  png_bytep volatile row = malloc((size_t)width);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_fail, NULL);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!row || !png || !info) {
    fprintf(stderr, "error: out of memory writing %s\n", path);
    png_destroy_write_struct(&png, &info);
    free(row);
    dl_af_discard(&f);
    return -1;
  }
  if (setjmp(png_jmpbuf(png))) {
    fprintf(stderr, "error: writing %s failed\n", path);
    png_destroy_write_struct(&png, &info);
    free(row);
    dl_af_discard(&f);
    return -1;
  }
  png_set_write_fn(png, &f, png_out, png_flush);
  png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_GRAY,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  /* no row filters: a reader (tests/generate) finds each row's bytes as
     they are after inflating, and grids of few grey levels lose nothing */
  png_set_filter(png, 0, PNG_FILTER_NONE);
  png_write_info(png, info);
  for (int64_t y = 0; y < height; y++) {
    grid_row(row, img, n, h, w, cols, y, width);
    png_write_row(png, row);
  }
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  free(row);
  if (dl_af_commit(&f, err, sizeof err)) {
    fprintf(stderr, "error: cannot write %s: %s\n", path, err);
    return -1;
  }
  return 0;
}

/* Every sample as bytes, chunk k drawn at step k; -1 with a message. */
static int draw_all(const dl_model_desc *m, const dl_opts *o, int cap, uint8_t *img) {
  dl_ctx *ctx = dl_tr_open_loaded(m, o, cap);
  dl_real *buf = ctx ? malloc((size_t)cap * (size_t)m->sample_size * sizeof *buf) : NULL;
  if (ctx && !buf) fprintf(stderr, "error: out of memory\n");
  if (!buf) {
    dl_tr_ctx_close(ctx);
    return -1;
  }
  ctx->seed = o->seed; /* not the checkpoint's: --seed picks the noise */
  ctx->train_mode = 0;
  ctx->carry = DL_CARRY_OFF;
  double scale = byte_scale(m);
  int64_t nan = 0, size = m->sample_size;
  for (int64_t start = 0, k = 0; start < o->count; start += cap, k++) {
    int nb = (int)(o->count - start < cap ? o->count - start : cap);
    ctx->step = k;
    m->generate(ctx, nb, buf);
    for (int64_t j = 0; j < (int64_t)nb * size; j++) {
      nan += isnan((double)buf[j]);
      img[start * size + j] = to_byte((double)buf[j], scale);
    }
  }
  if (nan)
    fprintf(stderr, "warning: %" PRId64 " generated values were NaN (written as 0)\n", nan);
  free(buf);
  dl_tr_ctx_close(ctx);
  return 0;
}

int dl_tr_cmd_generate(const dl_model_desc *m, const dl_opts *o) {
  char why[512];
  int64_t h, w;
  if (!m->generate || image_shape(m, &h, &w, why, sizeof why)) {
    fprintf(stderr, "error: model '%s' cannot sample images: %s\n", m->name,
            m->generate ? why : "it has no binding 'sample'");
    return DL_EXIT_FAIL;
  }
  if ((double)o->count * (double)m->sample_size > MAX_IMAGE_BYTES) {
    fprintf(stderr, "error: --count %d: %d images of %" PRId64 " values are more than 2 GiB\n",
            o->count, o->count, m->sample_size);
    return DL_EXIT_FAIL;
  }
  char *png = png_path(o->out);
  uint8_t *img = malloc((size_t)o->count * (size_t)m->sample_size);
  int rc = DL_EXIT_FAIL;
  if (!png || !img) {
    fprintf(stderr, "error: out of memory for %d images\n", o->count);
  } else if (check_outputs(o->out, png) == 0) {
    int cap = o->batch > 0 && o->batch < o->count ? o->batch : o->count;
    if (draw_all(m, o, cap, img) == 0 && write_idx(o->out, img, o->count, h, w) == 0 &&
        write_png_grid(png, img, o->count, h, w) == 0) {
      printf("wrote %d samples of %" PRId64 " x %" PRId64 " to %s and %s\n", o->count, h, w,
             o->out, png);
      rc = fflush(stdout) == 0 ? DL_EXIT_OK : DL_EXIT_FAIL;
    }
  }
  free(png);
  free(img);
  return rc;
}
