/* trainer.c: the trainer executable's command line (dl_trainer_main).
 * The commands themselves: trainer_train.c (train), trainer_eval.c (eval,
 * predict), trainer_gradcheck.c (gradcheck), trainer_sample.c (sample),
 * trainer_export.c (export);
 * what they share is in trainer_common.c. */
#include "dl_model.h"
#include "kernels.h" /* dl_gemm_precision, for --version */
#include "schedule.h"
#include "trainer_internal.h"

#include <errno.h>
#include <inttypes.h>
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#endif
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* C_ALL: the commands that run batches (not sample, which runs one row).
 * C_GENERATE: `sample` of a model with a generator (a binding `sample`):
 * images, not text; the command line picks it by the model. */
enum { C_TRAIN = 1, C_EVAL = 2, C_PREDICT = 4, C_GRADCHECK = 8, C_ALL = 15, C_SAMPLE = 16,
       C_GENERATE = 32, C_EXPORT = 64 };
enum { PREDICT_DEFAULT_BATCH = 256, GRADCHECK_DEFAULT_BATCH = 4 };
enum { SAMPLE_DEFAULT_LENGTH = 500, SAMPLE_DEFAULT_SEED = 1 };

/* The table order is the enum order and the order --help lists them in.
 * Two entries may share a name for different commands (--seed).  An entry
 * without an argument (arg NULL) is a flag: it takes no value. */
typedef enum {
  O_LOAD, O_DATA, O_EPOCHS, O_BATCH, O_LR, O_SEED, O_SAMPLE_SEED, O_THREADS,
  O_SAVE, O_SAVE_EVERY, O_RESUME, O_METRICS, O_EPS, O_TOL, O_MODE,
  O_LENGTH, O_TEMPERATURE, O_PROMPT, O_GEN_SEED, O_NUM, O_OUT, O_ONNX,
  O_JSON, O_PROBA, O_TOP, O_HEADER, O_LABELLED,
  O_VALIDATION, O_EARLY_STOP, O_PATIENCE, O_MIN_DELTA, O_SAVE_BEST,
  O_SHARDS, O_DIST_STATS, O_COUNT
} opt_id;

static const struct opt_def {
  const char *name, *arg, *help;
  unsigned cmds;
} OPTS[O_COUNT] = {
    {"load", "FILE", "checkpoint to use (required)",
     C_EVAL | C_PREDICT | C_SAMPLE | C_GENERATE | C_EXPORT},
    {"data", "DIR", "directory the data paths are relative to", C_TRAIN | C_EVAL},
    {"epochs", "N", "total epochs (with --resume: the total, not additional)", C_TRAIN},
    {"batch", "N", "rows per batch; 0 = the whole set", C_ALL | C_GENERATE},
    {"lr", "X", "base learning rate (of every update)", C_TRAIN},
    {"seed", "N", "random seed (initialisation, shuffling, dropout)", C_TRAIN | C_GRADCHECK},
    {"seed", "N", "random seed of the draws (the same seed, the same text)", C_SAMPLE},
    {"threads", "N", "worker threads", C_ALL | C_SAMPLE | C_GENERATE},
    {"save", "FILE", "checkpoint after every epoch and at the end", C_TRAIN},
    {"save-every", "N", "also checkpoint every N optimiser steps (needs --save; 0 = off)", C_TRAIN},
    {"resume", "FILE", "continue from a checkpoint (weights, optimiser, step, seed)", C_TRAIN},
    {"metrics", "FILE", "append one JSON object per epoch", C_TRAIN},
    {"eps", "X", "central-difference step", C_GRADCHECK},
    {"tol", "X", "largest error allowed", C_GRADCHECK},
    {"mode", "M", "train (batch statistics, dropout) or eval (running statistics, moved by one "
                  "training pass first)", C_GRADCHECK},
    {"length", "N", "bytes to generate after the prompt", C_SAMPLE},
    {"temperature", "T", "divides the logits before the softmax: below 1 surer, above 1 wilder",
     C_SAMPLE},
    {"prompt", "TEXT", "text to continue (printed first); without it generation starts "
                       "after a newline", C_SAMPLE},
    {"seed", "N", "random seed of the noise (the same seed, the same images)", C_GENERATE},
    {"count", "N", "images to generate (required)", C_GENERATE},
    {"out", "FILE", "the IDX file to write (required); the PNG grid goes to FILE with "
                    "the extension .png", C_GENERATE},
    {"onnx", "FILE", "the ONNX file to write (required; replaced atomically)", C_EXPORT},
    {"json", NULL, "print one JSON object (losses, accuracy, per-class accuracy, confusion "
                   "matrix) instead of text", C_EVAL},
    {"proba", NULL, "print each class's probability instead of the class", C_PREDICT},
    {"top", "K", "print the K most likely classes as class:probability, most likely first",
     C_PREDICT},
    {"header", NULL, "the input's first line is a header: skip it", C_PREDICT},
    {"labelled", NULL, "rows hold the label fields after the inputs, as the training CSV "
                       "does: checked, then ignored", C_PREDICT},
    {"validation", "F", "hold out the last fraction F (0 <= F < 1) of the train rows as a "
                        "validation set, before shuffling", C_TRAIN},
    {"early-stop", "METRIC", "stop when METRIC (val_loss, val_acc, test_loss, test_acc, "
                             "train_loss) has not improved for --patience epochs", C_TRAIN},
    {"patience", "N", "epochs without improvement before --early-stop stops", C_TRAIN},
    {"min-delta", "X", "smallest change of the metric that counts as an improvement", C_TRAIN},
    {"save-best", "FILE", "keep the checkpoint of the best epoch (by --early-stop's metric, "
                          "else val_loss)", C_TRAIN},
    {"shards", "S", "cut each batch into S micro-shards (a power of 2) whose gradients are summed "
                    "in a fixed tree: the same bits on any number of MPI processes dividing S "
                    "(default 8 in an MPI build, else 1)", C_TRAIN},
    {"dist-stats", NULL, "print the gradient exchanges' time and bytes per step, and the "
                         "evaluations' time and rows per process, at the end", C_TRAIN},
};

static const struct cmd_def {
  const char *name, *args, *help;
  unsigned bit;
} CMDS[] = {
    {"train", "[options]", "train the model", C_TRAIN},
    {"eval", "--load FILE [options]", "loss and accuracy of a checkpoint on the test set", C_EVAL},
    {"predict", "--load FILE [options]", "read CSV rows from stdin, print predictions",
     C_PREDICT},
    {"gradcheck", "[options]", "compare gradients with central differences", C_GRADCHECK},
    {"sample", "--load FILE [options]", "generate text from a checkpoint, one byte at a time",
     C_SAMPLE},
    {"sample", "--load FILE --count N --out FILE [options]",
     "draw images from the model's generator (its binding 'sample')", C_GENERATE},
    {"export", "--load FILE --onnx FILE", "the checkpoint's inference graph as an ONNX file",
     C_EXPORT},
};
enum { N_CMDS = (int)(sizeof CMDS / sizeof CMDS[0]) };

static double default_eps(void) { return DL_REAL_IS_F64 ? 1e-6 : 1e-3; }
static double default_tol(void) { return DL_REAL_IS_F64 ? 1e-6 : 2e-2; }

static int default_batch(const dl_model_desc *m, unsigned cmd) {
  if (cmd == C_GRADCHECK) return GRADCHECK_DEFAULT_BATCH;
  if (cmd == C_GENERATE) return m->defaults.batch > 0 ? m->defaults.batch : PREDICT_DEFAULT_BATCH;
  /* predict reads a stream of unknown length: "whole set" has no meaning. */
  if (cmd == C_PREDICT) return m->defaults.batch > 0 ? m->defaults.batch : PREDICT_DEFAULT_BATCH;
  return m->defaults.batch;
}

static const char *default_data_dir(const dl_model_desc *m) {
  return m->defaults.data_dir && m->defaults.data_dir[0] ? m->defaults.data_dir : ".";
}

/* ---- usage ------------------------------------------------------------- */

static void default_text(const dl_model_desc *m, unsigned cmd, opt_id id, char *buf, size_t len) {
  buf[0] = '\0';
  switch (id) {
  case O_DATA: snprintf(buf, len, "%s", default_data_dir(m)); break;
  case O_EPOCHS: snprintf(buf, len, "%d", m->defaults.epochs); break;
  case O_BATCH: {
    int b = default_batch(m, cmd);
    snprintf(buf, len, b > 0 ? "%d" : "%d, the whole set", b);
    break;
  }
  case O_LR:
    if (m->n_updates) { /* --lr sets every update's */
      size_t at = (size_t)snprintf(buf, len, "each update's own:");
      for (int k = 0; k < m->n_updates && at < len; k++)
        at += (size_t)snprintf(buf + at, len - at, " %s %g,", m->updates[k].name, m->updates[k].lr);
      if (at < len) snprintf(buf + at, len - at, " schedule %s", dl_sched_name(m->defaults.schedule.kind));
      break;
    }
    snprintf(buf, len, "%g, schedule %s", m->defaults.lr, dl_sched_name(m->defaults.schedule.kind));
    break;
  case O_SEED: snprintf(buf, len, "%" PRIu64, m->defaults.seed); break;
  case O_SAMPLE_SEED: snprintf(buf, len, "%d", SAMPLE_DEFAULT_SEED); break;
  case O_GEN_SEED: snprintf(buf, len, "%" PRIu64 ", the train block's", m->defaults.seed); break;
  case O_LENGTH: snprintf(buf, len, "%d", SAMPLE_DEFAULT_LENGTH); break;
  case O_TEMPERATURE: snprintf(buf, len, "1"); break;
  case O_THREADS: snprintf(buf, len, "1"); break;
  case O_SAVE_EVERY: snprintf(buf, len, "0"); break;
  case O_EPS: snprintf(buf, len, "%g", default_eps()); break;
  case O_TOL: snprintf(buf, len, "%g", default_tol()); break;
  case O_MODE: snprintf(buf, len, "train"); break;
  case O_VALIDATION:
    if (m->defaults.val_data.kind != DL_DATA_NONE) snprintf(buf, len, "the train block's set");
    else snprintf(buf, len, m->defaults.validation > 0 ? "%g" : "0, none", m->defaults.validation);
    break;
  case O_EARLY_STOP: snprintf(buf, len, "%s", m->defaults.early_stop ? m->defaults.early_stop : "off"); break;
  case O_PATIENCE: snprintf(buf, len, "%d", m->defaults.patience > 0 ? m->defaults.patience : 5); break;
  case O_MIN_DELTA: snprintf(buf, len, "%g", m->defaults.min_delta); break;
  default: break;
  }
}

static void usage_cmd(FILE *out, const dl_model_desc *m, const char *prog, const struct cmd_def *c) {
  fprintf(out, "usage: %s %s %s\n%s (model '%s'%s%s).\n\noptions:\n", prog, c->name, c->args,
          c->help, m->name, m->source ? " from " : "", m->source ? m->source : "");
  for (int i = 0; i < O_COUNT; i++) {
    if (!(OPTS[i].cmds & c->bit)) continue;
    char flag[32], def[128];
    snprintf(flag, sizeof flag, "--%s%s%s", OPTS[i].name, OPTS[i].arg ? " " : "",
             OPTS[i].arg ? OPTS[i].arg : "");
    default_text(m, c->bit, (opt_id)i, def, sizeof def);
    fprintf(out, "  %-16s %s%s%s%s\n", flag, OPTS[i].help, def[0] ? " (default: " : "", def,
            def[0] ? ")" : "");
  }
  fprintf(out, "  %-16s %s\n", "--help", "this text");
  if (c->bit == C_GRADCHECK && !DL_REAL_IS_F64)
    fprintf(out, "\nnote: this is a float32 build; gradcheck is meant for --f64 builds.\n");
  char why[256];
  if (c->bit == C_SAMPLE && !dl_tr_can_sample(m, why, sizeof why))
    fprintf(out, "\nnote: model '%s' cannot sample: %s.\n", m->name, why);
}

/* Commands this model has: sample for a next-token model (text), or for
 * one with a generator (images; that one wins). */
static int cmd_listed(const dl_model_desc *m, const struct cmd_def *c) {
  if (c->bit == C_GENERATE) return m->generate != NULL;
  return c->bit != C_SAMPLE || (!m->generate && dl_tr_can_sample(m, NULL, 0));
}

static void usage_main(FILE *out, const dl_model_desc *m, const char *prog) {
  fprintf(out, "usage: %s COMMAND [options]\ntrainer for model '%s'%s%s (%s)\n\ncommands:\n",
          prog, m->name, m->source ? " from " : "", m->source ? m->source : "",
          DL_REAL_IS_F64 ? "float64" : "float32");
  for (int i = 0; i < N_CMDS; i++)
    if (cmd_listed(m, &CMDS[i])) fprintf(out, "  %-10s %s\n", CMDS[i].name, CMDS[i].help);
  fprintf(out, "\n'%s COMMAND --help' lists a command's options and defaults.\n", prog);
  fprintf(out, "'%s --version' says which dlnc built it, and for which CPU.\n", prog);
}

/* ---- option values ------------------------------------------------------ */

static int bad_value(const char *opt, const char *v, const char *want) {
  fprintf(stderr, "error: --%s: expected %s, got '%s'\n", opt, want, v);
  return -1;
}

static int parse_int(const char *opt, const char *v, long lo, long hi, int *out) {
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  char want[96];
  snprintf(want, sizeof want, "an integer in [%ld, %ld]", lo, hi);
  if (!*v || *end || errno || x < lo || x > hi) return bad_value(opt, v, want);
  *out = (int)x;
  return 0;
}

static int parse_u64(const char *opt, const char *v, uint64_t *out) {
  char *end;
  errno = 0;
  /* strtoull accepts "-1" (wrapping it): insist on a digit first. */
  unsigned long long x = (*v >= '0' && *v <= '9') ? strtoull(v, &end, 10) : 0;
  if (*v < '0' || *v > '9' || *end || errno) return bad_value(opt, v, "a non-negative integer");
  *out = (uint64_t)x;
  return 0;
}

static int parse_real(const char *opt, const char *v, int positive, double *out) {
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (!*v || *end || errno == ERANGE || !isfinite(x) || x < 0 || (positive && x == 0))
    return bad_value(opt, v, positive ? "a positive number" : "a non-negative number");
  *out = x;
  return 0;
}

static int set_opt(dl_opts *o, opt_id id, const char *v) {
  const char *n = OPTS[id].name;
  switch (id) {
  case O_LOAD: o->load = v; return 0;
  case O_DATA: o->data_dir = v; return 0;
  case O_SAVE: o->save = v; return 0;
  case O_RESUME: o->resume = v; return 0;
  case O_METRICS: o->metrics = v; return 0;
  case O_EPOCHS: return parse_int(n, v, 1, 1000000000, &o->epochs);
  case O_BATCH: return parse_int(n, v, 0, INT_MAX, &o->batch);
  case O_THREADS: return parse_int(n, v, 1, 1024, &o->threads);
  case O_SAVE_EVERY: return parse_int(n, v, 0, INT_MAX, &o->save_every);
  case O_LR: o->lr_given = 1; return parse_real(n, v, 0, &o->lr);
  case O_EPS: return parse_real(n, v, 1, &o->eps);
  case O_TOL: return parse_real(n, v, 0, &o->tol);
  case O_SEED:
  case O_SAMPLE_SEED:
  case O_GEN_SEED: o->seed_given = 1; return parse_u64(n, v, &o->seed);
  case O_NUM: return parse_int(n, v, 1, DL_GENERATE_MAX_COUNT, &o->count);
  case O_OUT: o->out = v; return 0;
  case O_LENGTH: return parse_int(n, v, 0, INT_MAX, &o->length);
  case O_TEMPERATURE: return parse_real(n, v, 1, &o->temperature);
  case O_PROMPT: o->prompt = v; return 0;
  case O_ONNX: o->onnx = v; return 0;
  case O_JSON: o->json = 1; return 0;
  case O_PROBA: o->proba = 1; return 0;
  case O_TOP: return parse_int(n, v, 1, INT_MAX, &o->top);
  case O_HEADER: o->header = 1; return 0;
  case O_LABELLED: o->labelled = 1; return 0;
  case O_VALIDATION:
    o->validation_given = 1;
    if (parse_real(n, v, 0, &o->validation)) return -1;
    if (o->validation >= 1) return bad_value(n, v, "a fraction in [0, 1)");
    return 0;
  case O_EARLY_STOP:
    if (!dl_tr_metric_known(v))
      return bad_value(n, v, "val_loss, val_acc, test_loss, test_acc or train_loss");
    o->early_stop = v;
    return 0;
  case O_PATIENCE: return parse_int(n, v, 1, INT_MAX, &o->patience);
  case O_MIN_DELTA: return parse_real(n, v, 0, &o->min_delta);
  case O_SAVE_BEST: o->save_best = v; return 0;
  case O_SHARDS: return parse_int(n, v, 1, 65536, &o->shards);
  case O_DIST_STATS: o->dist_stats = 1; return 0;
  case O_MODE:
    if (strcmp(v, "train") && strcmp(v, "eval")) return bad_value(n, v, "train or eval");
    o->eval_mode = strcmp(v, "eval") == 0;
    return 0;
  default: return -1;
  }
}

/* ---- the command line ------------------------------------------------- */

static void opts_defaults(dl_opts *o, const dl_model_desc *m, const char *prog, const struct cmd_def *c) {
  memset(o, 0, sizeof *o);
  o->prog = prog;
  o->cmd = c->name;
  o->data_dir = default_data_dir(m);
  o->epochs = m->defaults.epochs;
  o->batch = default_batch(m, c->bit);
  o->threads = 1;
  o->lr = m->defaults.lr;
  o->seed = m->defaults.seed;
  o->eps = default_eps();
  o->tol = default_tol();
  o->length = SAMPLE_DEFAULT_LENGTH;
  o->temperature = 1.0;
  o->prompt = "";
  /* the train block's validation and early stopping; the options override */
  o->validation = m->defaults.validation;
  o->early_stop = m->defaults.early_stop;
  o->patience = m->defaults.patience > 0 ? m->defaults.patience : 5;
  o->min_delta = m->defaults.min_delta;
  /* not the model's training seed: sample's output is a function of its
     own options and the checkpoint only */
  if (c->bit == C_SAMPLE) o->seed = SAMPLE_DEFAULT_SEED;
}

static int is_help(const char *a) {
  return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

/* Finds the option named by arg ("--name" or "--name=value"); *inline_val
 * gets the value after '=' if any. */
static int find_opt(const char *arg, unsigned cmd, const char **inline_val) {
  if (strncmp(arg, "--", 2) != 0) return -1;
  const char *name = arg + 2, *eq = strchr(name, '=');
  size_t len = eq ? (size_t)(eq - name) : strlen(name);
  *inline_val = eq ? eq + 1 : NULL;
  for (int i = 0; i < O_COUNT; i++)
    if ((OPTS[i].cmds & cmd) && strlen(OPTS[i].name) == len && strncmp(OPTS[i].name, name, len) == 0)
      return i;
  return -1;
}

/* Edit distance of a and b (at most 31 characters each; more counts as far). */
static int opt_distance(const char *a, size_t la, const char *b) {
  size_t lb = strlen(b);
  if (la > 31 || lb > 31) return 99;
  int d[32][32];
  for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
  for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      int v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
      d[i][j] = v;
    }
  return d[la][lb];
}

/* Other tools' spellings of this trainer's options. */
static const struct { const char *name, *say; } FOREIGN_OPTS[] = {
    {"batch-size", "batch"}, {"batch_size", "batch"}, {"learning-rate", "lr"},
    {"learning_rate", "lr"}, {"num-threads", "threads"}, {"checkpoint", "save"},
    {"data-dir", "data"}, {"data_dir", "data"},
};

/* The option of command `cmd` an unknown "--name[=value]" probably meant
 * (one edit for names up to 4 characters, two beyond), or NULL. */
static const char *suggest_opt(const char *arg, unsigned cmd) {
  if (strncmp(arg, "--", 2) != 0 && strncmp(arg, "-", 1) != 0) return NULL;
  const char *name = arg + (arg[1] == '-' ? 2 : 1), *eq = strchr(name, '=');
  size_t len = eq ? (size_t)(eq - name) : strlen(name);
  for (size_t i = 0; i < sizeof FOREIGN_OPTS / sizeof *FOREIGN_OPTS; i++)
    if (strlen(FOREIGN_OPTS[i].name) == len && !strncmp(FOREIGN_OPTS[i].name, name, len))
      for (int k = 0; k < O_COUNT; k++)
        if ((OPTS[k].cmds & cmd) && !strcmp(OPTS[k].name, FOREIGN_OPTS[i].say)) return OPTS[k].name;
  const char *best = NULL;
  int bestd = (len <= 4 ? 1 : 2) + 1;
  for (int i = 0; i < O_COUNT; i++) {
    if (!(OPTS[i].cmds & cmd)) continue;
    int d = opt_distance(name, len, OPTS[i].name);
    if (d < bestd && (size_t)d < len) bestd = d, best = OPTS[i].name;
  }
  return best;
}

/* 0: parsed; 1: help printed; 2: usage error (message printed). */
static int parse_args(dl_opts *o, const dl_model_desc *m, const struct cmd_def *c, int argc,
                      char **argv) {
  for (int i = 2; i < argc; i++)
    if (is_help(argv[i])) {
      usage_cmd(stdout, m, o->prog, c);
      return 1;
    }
  for (int i = 2; i < argc; i++) {
    const char *val;
    int id = find_opt(argv[i], c->bit, &val);
    if (id < 0) {
      const char *hint = suggest_opt(argv[i], c->bit);
      fprintf(stderr, "error: %s: unknown %s '%s'%s%s%s (see '%s %s --help')\n", c->name,
              strncmp(argv[i], "-", 1) == 0 ? "option" : "argument", argv[i],
              hint ? "; did you mean '--" : "", hint ? hint : "", hint ? "'?" : "", o->prog, c->name);
      return 2;
    }
    if (!OPTS[id].arg) { /* a flag */
      if (val) {
        fprintf(stderr, "error: %s: --%s takes no value\n", c->name, OPTS[id].name);
        return 2;
      }
      val = "";
    } else if (!val) {
      if (i + 1 >= argc) {
        fprintf(stderr, "error: %s: --%s needs a value (%s)\n", c->name, OPTS[id].name, OPTS[id].arg);
        return 2;
      }
      val = argv[++i];
    }
    if (set_opt(o, (opt_id)id, val)) return 2;
  }
  if (o->save_every && !o->save) {
    fprintf(stderr, "error: %s: --save-every needs --save FILE (see '%s %s --help')\n", c->name,
            o->prog, c->name);
    return 2;
  }
  if (c->bit == C_GENERATE && (!o->count || !o->out)) {
    fprintf(stderr, "error: %s: --%s is required (see '%s %s --help')\n", c->name,
            !o->count ? "count N" : "out FILE", o->prog, c->name);
    return 2;
  }
  if (o->proba && o->top) {
    fprintf(stderr, "error: %s: --proba and --top are two outputs: give one (--top K prints "
            "probabilities too)\n", c->name);
    return 2;
  }
  if (c->bit == C_EXPORT && !o->onnx) {
    fprintf(stderr, "error: %s: --onnx FILE is required (see '%s %s --help')\n", c->name, o->prog,
            c->name);
    return 2;
  }
  if ((c->bit & (C_EVAL | C_PREDICT | C_SAMPLE | C_GENERATE | C_EXPORT)) && !o->load) {
    fprintf(stderr, "error: %s: --load FILE is required (see '%s %s --help')\n", c->name, o->prog,
            c->name);
    return 2;
  }
  return 0;
}

/* A trainer compiled for features this CPU lacks (dlnc build on another
 * machine, or --target x86-64-v4 here) would die of SIGILL somewhere in a
 * kernel.  Before main, check every feature the compiler was told it may
 * use, and name the missing ones.  The check itself is compiled for the
 * baseline, so it cannot fault on the instructions it looks for. */
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((unused)) /* with no feature beyond the baseline */
static void add_missing(char *list, size_t len, const char *feature) {
  size_t n = strlen(list);
  snprintf(list + n, len - n, "%s%s", n ? ", " : "", feature);
}

__attribute__((constructor, target("arch=x86-64"))) static void check_isa(void) {
  char missing[200] = "";
  __builtin_cpu_init();
  /* __builtin_cpu_supports takes a literal: one line per feature macro */
#define DL_NEED(feature) \
  if (!__builtin_cpu_supports(feature)) add_missing(missing, sizeof missing, feature)
#ifdef __SSE4_2__
  DL_NEED("sse4.2");
#endif
#ifdef __POPCNT__
  DL_NEED("popcnt");
#endif
#ifdef __AVX__
  DL_NEED("avx");
#endif
#ifdef __AVX2__
  DL_NEED("avx2");
#endif
#ifdef __FMA__
  DL_NEED("fma");
#endif
#ifdef __BMI2__
  DL_NEED("bmi2");
#endif
#ifdef __AVX512F__
  DL_NEED("avx512f");
#endif
#ifdef __AVX512BW__
  DL_NEED("avx512bw");
#endif
#ifdef __AVX512DQ__
  DL_NEED("avx512dq");
#endif
#ifdef __AVX512VL__
  DL_NEED("avx512vl");
#endif
#ifdef __AVX512BF16__
  DL_NEED("avx512bf16");
#endif
#ifdef __FMA4__ /* AMD's, before Zen: tests/install builds for it to see a refusal */
  DL_NEED("fma4");
#endif
#undef DL_NEED
  if (missing[0]) {
    fprintf(stderr, "error: this trainer was built for the CPU target '%s', and this CPU lacks %s; "
                    "build it again with `dlnc build` on this machine, or with `--target` naming "
                    "a level this CPU has (x86-64-v3: AVX2 and FMA; x86-64-v4: AVX-512)\n",
            DL_TARGET, missing);
    exit(DL_EXIT_USAGE);
  }
}
#endif

/* Flush-to-zero and denormals-are-zero: a denormal operand costs ~100 cycles
 * in some units, and values that small carry no information in training.
 * Set before the thread pool starts, whose workers inherit it. Not for
 * gradcheck, which wants exact double arithmetic. */
static void flush_denormals(void) {
#if defined(__SSE__) || defined(__x86_64__)
  _mm_setcsr(_mm_getcsr() | 0x8040);
#elif defined(__aarch64__)
  uint64_t fpcr;
  __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
  __asm__ volatile("msr fpcr, %0" : : "r"(fpcr | (1ull << 24)));
#endif
}

int dl_trainer_main(const dl_model_desc *m, int argc, char **argv) {
  const char *prog = argc > 0 && argv[0] ? argv[0] : m->name;
  if (argc < 2) {
    usage_main(stderr, m, prog);
    return DL_EXIT_USAGE;
  }
  if (is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
    usage_main(stdout, m, prog);
    return DL_EXIT_OK;
  }
  if (strcmp(argv[1], "--version") == 0) {
    /* "f32", or "f32, GEMM operands bf16 (emulated)" in a --precision bf16 build */
    const char *gemm = dl_gemm_precision();
    int own = !strcmp(gemm, DL_REAL_IS_F64 ? "f64" : "f32");
    printf("%s: trainer of model '%s'%s%s, dlnc %s, %s%s%s, CPU target %s\n", prog, m->name,
           m->source ? " from " : "", m->source ? m->source : "", DL_VERSION,
           DL_REAL_IS_F64 ? "f64" : "f32", own ? "" : ", GEMM operands ", own ? "" : gemm, DL_TARGET);
    return DL_EXIT_OK;
  }
  const struct cmd_def *c = NULL;
  for (int i = 0; i < N_CMDS; i++)
    if (strcmp(argv[1], CMDS[i].name) == 0 && (!c || cmd_listed(m, &CMDS[i]))) c = &CMDS[i];
  if (!c) {
    fprintf(stderr, "error: unknown command '%s' (commands:", argv[1]);
    for (int i = 0, k = 0; i < N_CMDS; i++)
      if (cmd_listed(m, &CMDS[i])) fprintf(stderr, "%s %s", k++ ? "," : "", CMDS[i].name);
    fprintf(stderr, "; see '%s --help')\n", prog);
    return DL_EXIT_USAGE;
  }
  dl_opts o;
  opts_defaults(&o, m, prog, c);
  o.argc = argc;
  o.argv = argv;
  /* a model that can sample nothing: say why, whatever options came with it */
  int help = 0;
  for (int i = 2; i < argc; i++) help |= is_help(argv[i]);
  if (c->bit == C_SAMPLE && !cmd_listed(m, c) && !help) return dl_tr_cmd_sample(m, &o);
  int rc = parse_args(&o, m, c, argc, argv);
  if (rc == 1) return DL_EXIT_OK;
  if (rc == 2) return DL_EXIT_USAGE;
  if (c->bit != C_GRADCHECK) flush_denormals();
  switch (c->bit) {
  case C_TRAIN: return dl_tr_cmd_train(m, &o);
  case C_EVAL: return dl_tr_cmd_eval(m, &o);
  case C_PREDICT: return dl_tr_cmd_predict(m, &o);
  case C_SAMPLE: return dl_tr_cmd_sample(m, &o);
  case C_GENERATE: return dl_tr_cmd_generate(m, &o);
  case C_EXPORT: return dl_tr_cmd_export(m, &o);
  default: return dl_tr_cmd_gradcheck(m, &o);
  }
}

