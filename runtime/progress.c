/* progress.c: progress bar, epoch summary line and metrics JSON. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "progress.h"

#include <math.h>
#include <time.h>
#include <unistd.h>

enum { BAR_WIDTH = 30 };
static const double REDRAW_SECONDS = 0.1;

double dl_progress_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void dl_progress_init(dl_progress *p, int force_off) {
  p->enabled = !force_off && isatty(STDERR_FILENO);
  p->drawn = 0;
  p->epoch = p->epochs = 0;
  p->total = p->skipped = 0;
  p->t0 = p->last = 0.0;
}

void dl_progress_begin(dl_progress *p, int epoch, int epochs, int64_t total) {
  p->epoch = epoch;
  p->epochs = epochs;
  p->total = total;
  p->skipped = 0;
  p->t0 = dl_progress_now();
  /* Draw the first update immediately. */
  p->last = p->t0 - REDRAW_SECONDS;
}

/* h:mm:ss, or m:ss under an hour. */
static void fmt_duration(char *buf, size_t len, double s) {
  long t = s < 0 ? 0 : s > 359999999.0 ? 359999999L : (long)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

void dl_progress_eta(double elapsed, int64_t skipped, int64_t done, int64_t total, int epoch,
                     int epochs, double *epoch_left, double *run_left) {
  *epoch_left = *run_left = -1.0;
  if (done <= skipped || total <= 0 || elapsed <= 0.0) return;
  double per_sample = elapsed / (double)(done - skipped);
  *epoch_left = per_sample * (double)(total - done);
  /* the epochs after this one at this epoch's rate (evaluation not counted) */
  if (epochs >= epoch) *run_left = *epoch_left + per_sample * (double)total * (double)(epochs - epoch);
}

void dl_progress_skip(dl_progress *p, int64_t skipped) { p->skipped = skipped; }

void dl_progress_update(dl_progress *p, int64_t done, double mean_loss) {
  if (!p->enabled) return;
  double now = dl_progress_now();
  if (now - p->last < REDRAW_SECONDS && done < p->total) return;
  p->last = now;
  double frac = p->total > 0 ? (double)done / (double)p->total : 1.0;
  int fill = (int)(frac * BAR_WIDTH);
  char bar[BAR_WIDTH + 1];
  for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
  bar[BAR_WIDTH] = '\0';
  /* \r + erase-to-end-of-line: redraw in place without leftovers. */
  /* ETA of the epoch from its rate so far, and of the run when more
     epochs follow */
  double epoch_left, run_left;
  char eta[64] = "", e1[24], e2[24];
  dl_progress_eta(now - p->t0, p->skipped, done, p->total, p->epoch, p->epochs, &epoch_left,
                  &run_left);
  if (epoch_left >= 0.0 && done < p->total) {
    fmt_duration(e1, sizeof e1, epoch_left);
    fmt_duration(e2, sizeof e2, run_left);
    if (p->epoch < p->epochs)
      snprintf(eta, sizeof eta, "  ETA %s (run %s)", e1, e2);
    else
      snprintf(eta, sizeof eta, "  ETA %s", e1);
  }
  fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %3d%%  %lld/%lld  loss %.4f  %.1f s%s", p->epoch,
          p->epochs, bar, (int)(frac * 100.0), (long long)done, (long long)p->total, mean_loss,
          now - p->t0, eta);
  fflush(stderr);
  p->drawn = 1;
}

void dl_progress_end(dl_progress *p) {
  if (!p->enabled || !p->drawn) return;
  fputs("\r\033[K", stderr);
  fflush(stderr);
  p->drawn = 0;
}

void dl_print_epoch(FILE *out, const dl_epoch_stats *s) {
  fprintf(out, "epoch %d/%d  train_loss %.4f", s->epoch, s->epochs, s->train_loss);
  for (int k = 0; k < s->n_losses; k++) fprintf(out, "  %s %.4f", s->loss_names[k], s->train_losses[k]);
  if (s->has_bpc) fprintf(out, "  train_bpc %.4f", s->train_bpc);
  if (s->has_test) fprintf(out, "  test_loss %.4f", s->test_loss);
  for (int k = 0; s->has_test && k < s->n_losses; k++)
    fprintf(out, "  test_%s %.4f", s->loss_names[k], s->test_losses[k]);
  if (s->has_test && s->has_bpc) fprintf(out, "  test_bpc %.4f", s->test_bpc);
  if (s->has_acc) fprintf(out, "  test_acc %.4f", s->test_acc);
  /* after test_acc: readers that count the line's fields keep working */
  if (s->has_train_acc) fprintf(out, "  train_acc %.4f", s->train_acc);
  if (s->has_val) fprintf(out, "  val_loss %.4f", s->val_loss);
  if (s->has_val && s->has_val_acc) fprintf(out, "  val_acc %.4f", s->val_acc);
  fprintf(out, "  %.1f s  %.0f samples/s\n", s->seconds, s->samples_per_s);
  fflush(out);
}

/* JSON has no NaN or infinity: those become null. */
static void json_num(FILE *out, const char *key, double v) {
  if (isfinite(v))
    fprintf(out, ",\"%s\":%.9g", key, v);
  else
    fprintf(out, ",\"%s\":null", key);
}

int dl_metrics_append(FILE *out, const dl_epoch_stats *s) {
  fprintf(out, "{\"epoch\":%d", s->epoch);
  json_num(out, "train_loss", s->train_loss);
  if (s->has_bpc) json_num(out, "train_bpc", s->train_bpc);
  for (int k = 0; k < s->n_losses; k++) json_num(out, s->loss_names[k], s->train_losses[k]);
  if (s->has_test) json_num(out, "test_loss", s->test_loss);
  char key[300];
  for (int k = 0; s->has_test && k < s->n_losses; k++) {
    snprintf(key, sizeof key, "test_%s", s->loss_names[k]);
    json_num(out, key, s->test_losses[k]);
  }
  if (s->has_test && s->has_bpc) json_num(out, "test_bpc", s->test_bpc);
  if (s->has_train_acc) json_num(out, "train_acc", s->train_acc);
  if (s->has_acc) json_num(out, "test_acc", s->test_acc);
  if (s->has_val) {
    json_num(out, "val_loss", s->val_loss);
    if (s->has_val_acc) json_num(out, "val_acc", s->val_acc);
    fprintf(out, ",\"val_rows\":%lld,\"train_rows\":%lld", (long long)s->val_rows,
            (long long)s->train_rows);
  }
  json_num(out, "seconds", s->seconds);
  json_num(out, "samples_per_s", s->samples_per_s);
  json_num(out, "lr", s->lr);
  fputs("}\n", out);
  return fflush(out) == 0 && !ferror(out) ? 0 : -1;
}

/* A JSON string: quotes, backslashes and control bytes escaped; other
 * bytes (UTF-8) as they are. */
static void json_str(FILE *out, const char *s) {
  fputc('"', out);
  for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
    if (*c == '"' || *c == '\\')
      fprintf(out, "\\%c", *c);
    else if (*c < 0x20)
      fprintf(out, "\\u%04x", *c);
    else
      fputc(*c, out);
  }
  fputc('"', out);
}

int dl_metrics_header(FILE *out, const dl_run_header *h) {
  char started[32] = "";
  time_t now = time(NULL);
  struct tm tm;
  if (gmtime_r(&now, &tm)) strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%SZ", &tm);
  fputs("{\"run\":{\"model\":", out);
  json_str(out, h->model);
  fputs(",\"source\":", out);
  json_str(out, h->source);
  fputs(",\"dlnc\":", out);
  json_str(out, DL_VERSION);
  fprintf(out, ",\"seed\":%llu,\"threads\":%d,\"batch\":%d,\"epochs\":%d",
          (unsigned long long)h->seed, h->threads, h->batch, h->epochs);
  json_num(out, "lr", h->lr);
  fputs(",\"resume\":", out);
  if (h->resume)
    json_str(out, h->resume);
  else
    fputs("null", out);
  fputs(",\"started\":", out);
  json_str(out, started);
  fputs(",\"options\":[", out);
  for (int i = 2; i < h->argc; i++) {
    if (i > 2) fputc(',', out);
    json_str(out, h->argv[i]);
  }
  fputs("]}}\n", out);
  return fflush(out) == 0 && !ferror(out) ? 0 : -1;
}
