/* trainer_sample.c: the `sample` command: text from a next-token model
 * (x : class[T, V], y : class[T, V], one byte a token).
 *
 * Autoregressive over a sliding window of T = x_size tokens: the context
 * (the prompt's bytes, then every byte generated) has its last k = min(len, T)
 * tokens at positions 0..k-1 of one row, positions k..T-1 hold 0 (the model
 * is causal: they do not reach position k-1), and the next byte is drawn
 * from softmax(logits / temperature) at position k-1.  Draw i is the runtime
 * RNG at (seed, DL_STREAM_SAMPLE, i), so a checkpoint, the options and the
 * seed give the same text every time, with any thread count. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* fileno */
#endif
#include "dl_model.h"
#include "rng.h"
#include "trainer_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { BYTE_TOKENS = 256 };

int dl_tr_can_sample(const dl_model_desc *m, char *why, size_t len) {
  char buf[256];
  if (!why) why = buf, len = sizeof buf;
  int64_t y_len = dl_model_y_len(m);
  if (m->x_vocab < 1)
    snprintf(why, len, "its inputs are real values, not tokens");
  else if (m->x_vocab > BYTE_TOKENS)
    snprintf(why, len, "its %" PRId64 " tokens are not bytes (sample prints a byte a token, "
             "at most %d)", m->x_vocab, BYTE_TOKENS);
  else if (m->y_kind != DL_Y_CLASS)
    snprintf(why, len, m->y_kind == DL_Y_NONE ? "it has no label, so no next tokens"
                                             : "its labels are real values, not next tokens");
  else if (y_len != m->x_size)
    snprintf(why, len, "it has %" PRId64 " label(s) per sample for %" PRId64 " input tokens, "
             "not one per position", y_len, m->x_size);
  else if (m->y_size != m->x_vocab)
    snprintf(why, len, "it predicts %" PRId64 " classes for %" PRId64 " input tokens", m->y_size,
             m->x_vocab);
  else if (m->pred_kind != DL_PRED_ARGMAX || m->out_size != y_len * m->y_size)
    snprintf(why, len, "its output is not logits over the tokens at every position "
             "(cross_entropy on y : class[T, V])");
  else
    return 1;
  return 0;
}

int64_t dl_tr_draw(const dl_real *logits, int64_t n, double temperature, double u) {
  /* exp((l - max) / t) is at most 1: no overflow, however small t is; a
     tiny t leaves weight only on the largest logit (shared by equals) */
  double mx = -INFINITY;
  for (int64_t k = 0; k < n; k++) {
    if (!isfinite((double)logits[k])) return -1;
    if (logits[k] > mx) mx = logits[k];
  }
  double sum = 0.0;
  for (int64_t k = 0; k < n; k++) sum += exp(((double)logits[k] - mx) / temperature);
  double target = u * sum, acc = 0.0;
  int64_t last = 0;
  for (int64_t k = 0; k < n; k++) {
    double w = exp(((double)logits[k] - mx) / temperature);
    if (w <= 0.0) continue;
    acc += w;
    last = k;
    if (acc > target) return k;
  }
  return last; /* u * sum rounded up to the total */
}

/* The prompt's bytes must be tokens of the model. */
static int check_prompt(const dl_model_desc *m, const char *prompt) {
  for (size_t i = 0; prompt[i]; i++) {
    unsigned b = (unsigned char)prompt[i];
    if (b >= (uint64_t)m->x_vocab) {
      fprintf(stderr, "error: --prompt: byte %zu (0x%02x) is outside the vocabulary of model "
              "'%s' (%" PRId64 " tokens)\n", i + 1, b, m->name, m->x_vocab);
      return -1;
    }
  }
  return 0;
}

/* The sliding window: the last `have` (<= T) tokens of the context. */
typedef struct window {
  uint8_t *tok;
  int64_t have, cap;
} window;

static void window_push(window *w, uint8_t t) {
  if (w->have == w->cap) {
    memmove(w->tok, w->tok + 1, (size_t)w->cap - 1);
    w->have--;
  }
  w->tok[w->have++] = t;
}

/* One forward pass on the window; the drawn token, or -1 with a message. */
static int next_token(dl_ctx *ctx, const window *w, double temperature, uint64_t seed,
                      uint64_t i) {
  const dl_model_desc *m = ctx->m;
  for (int64_t j = 0; j < m->x_size; j++) ctx->x[j] = (dl_real)(j < w->have ? w->tok[j] : 0);
  m->forward(ctx, 1, 0);
  const dl_real *logits = ctx->out + (size_t)(w->have - 1) * (size_t)m->y_size;
  int64_t t = dl_tr_draw(logits, m->y_size, temperature, dl_rng_uniform(seed, DL_STREAM_SAMPLE, i));
  if (t < 0)
    fprintf(stderr, "error: sample: the model's logits at position %" PRId64 " are not finite "
            "(byte %" PRIu64 " of the generated text)\n", w->have, i + 1);
  return (int)t;
}

static int generate(dl_ctx *ctx, const dl_opts *o, window *w) {
  int flush_each = isatty(fileno(stdout));
  fputs(o->prompt, stdout);
  for (int i = 0; i < o->length; i++) {
    int t = next_token(ctx, w, o->temperature, o->seed, (uint64_t)i);
    if (t < 0) return -1;
    window_push(w, (uint8_t)t);
    putchar(t);
    if (flush_each) fflush(stdout);
  }
  putchar('\n');
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "error: sample: writing to stdout failed\n");
    return -1;
  }
  return 0;
}

int dl_tr_cmd_sample(const dl_model_desc *m, const dl_opts *o) {
  char why[256];
  if (!dl_tr_can_sample(m, why, sizeof why)) {
    fprintf(stderr, "error: model '%s'%s%s cannot sample: %s; sample needs a next-token model "
            "(x : class[T, V], y : class[T, V]) or a generator (a binding 'sample' of noise and "
            "parameters)\n", m->name, m->source ? " from " : "",
            m->source ? m->source : "", why);
    return DL_EXIT_USAGE;
  }
  if (check_prompt(m, o->prompt)) return DL_EXIT_USAGE;
  window w = {malloc((size_t)m->x_size), 0, m->x_size};
  if (!w.tok) {
    fprintf(stderr, "error: out of memory\n");
    return DL_EXIT_FAIL;
  }
  /* Without a prompt the text starts as after a line break (not printed). */
  const char *ctx0 = o->prompt[0] ? o->prompt : "\n";
  for (size_t i = 0; ctx0[i]; i++) window_push(&w, (uint8_t)ctx0[i]);
  dl_ctx *ctx = dl_tr_open_loaded(m, o, 1);
  int rc = ctx && generate(ctx, o, &w) == 0 ? DL_EXIT_OK : DL_EXIT_FAIL;
  dl_tr_ctx_close(ctx);
  free(w.tok);
  return rc;
}
