/* optim.c: the optimiser step, emitted as one fused pass per parameter
 * (gradient clipping scale, weight decay, state update and parameter update
 * in a single loop), with torch.optim's formulas.  The optimiser state
 * buffers carry torch's names (exp_avg, momentum_buffer, ...) in checkpoints.
 *
 * The same loop watches what it writes: the largest sign-cleared bit
 * pattern of every new weight and state value (dl_real.h) is NaN or
 * infinity exactly when one of them is.  Every value is already in a
 * register there, so the check is an integer max per value, where a
 * separate scan would read the parameters and the state again; and it
 * covers the state, which can overflow while the weights stay finite
 * (Adam's squared gradients: m / sqrt(inf) is 0).  apply_update returns
 * whether any was bad; the trainer then looks for which. */
#include "ops.h"
#include <string.h>

/* How many state buffers per parameter the optimiser keeps, and their names. */
int optim_state_count(const ir_optim *o, const char **names) {
  int n = 0;
  switch (o->kind) {
  case OPT_SGD:
    if (o->momentum > 0) names[n++] = "momentum_buffer";
    break;
  case OPT_ADAM:
  case OPT_ADAMW:
    names[n++] = "exp_avg";
    names[n++] = "exp_avg_sq";
    break;
  case OPT_RMSPROP:
    names[n++] = "square_avg";
    if (o->momentum > 0) names[n++] = "momentum_buffer";
    if (o->centered) names[n++] = "grad_avg";
    break;
  case OPT_ADAGRAD:
    names[n++] = "sum";
    break;
  }
  return n;
}

static const char *optim_name(ir_optim_kind k) {
  static const char *const names[] = {"sgd", "adam", "adamw", "rmsprop", "adagrad"};
  return names[k];
}

/* The body of the per-element update, reading g (gradient) and w (param). */
static void emit_rule(FILE *o, const ir_optim *op, int has_momentum_buf) {
  const char *in = "        ";
  if (op->weight_decay != 0 && op->kind != OPT_ADAMW)
    fprintf(o, "%sg += (dl_real)%.17g * w[k];                 /* L2 weight decay */\n", in,
            op->weight_decay);
  switch (op->kind) {
  case OPT_SGD:
    if (op->momentum > 0) {
      fprintf(o, "%s/* buf = first ? g : momentum * buf + (1 - dampening) * g */\n", in);
      fprintf(o, "%ss0[k] = first ? g : (dl_real)%.17g * s0[k] + (dl_real)%.17g * g;\n", in,
              op->momentum, 1 - op->dampening);
      if (op->nesterov)
        fprintf(o, "%sg = g + (dl_real)%.17g * s0[k];\n", in, op->momentum);
      else
        fprintf(o, "%sg = s0[k];\n", in);
    }
    fprintf(o, "%sw[k] -= lr * g;\n", in);
    break;
  case OPT_ADAM:
  case OPT_ADAMW:
    if (op->kind == OPT_ADAMW && op->weight_decay != 0)
      fprintf(o, "%sw[k] *= 1 - lr * (dl_real)%.17g;          /* decoupled weight decay */\n", in,
              op->weight_decay);
    fprintf(o, "%s/* m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  w -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps) */\n", in);
    fprintf(o, "%ss0[k] = (dl_real)%.17g * s0[k] + (dl_real)%.17g * g;\n", in, op->beta1, 1 - op->beta1);
    fprintf(o, "%ss1[k] = (dl_real)%.17g * s1[k] + (dl_real)%.17g * g * g;\n", in, op->beta2, 1 - op->beta2);
    fprintf(o, "%sw[k] -= step_size * s0[k] / (dl_sqrt(s1[k]) * inv_sqrt_bc2 + (dl_real)%.17g);\n", in, op->eps);
    break;
  case OPT_RMSPROP: {
    int centered_buf = 1 + has_momentum_buf;
    fprintf(o, "%ss0[k] = (dl_real)%.17g * s0[k] + (dl_real)%.17g * g * g;  /* square_avg */\n", in,
            op->alpha, 1 - op->alpha);
    if (op->centered) {
      fprintf(o, "%ss%d[k] = (dl_real)%.17g * s%d[k] + (dl_real)%.17g * g;  /* grad_avg */\n", in,
              centered_buf, op->alpha, centered_buf, 1 - op->alpha);
      fprintf(o, "%sconst dl_real avg = dl_sqrt(s0[k] - s%d[k] * s%d[k]) + (dl_real)%.17g;\n", in,
              centered_buf, centered_buf, op->eps);
    } else {
      fprintf(o, "%sconst dl_real avg = dl_sqrt(s0[k]) + (dl_real)%.17g;\n", in, op->eps);
    }
    if (has_momentum_buf) {
      fprintf(o, "%ss1[k] = (dl_real)%.17g * s1[k] + g / avg;\n", in, op->momentum);
      fprintf(o, "%sw[k] -= lr * s1[k];\n", in);
    } else {
      fprintf(o, "%sw[k] -= lr * g / avg;\n", in);
    }
    break;
  }
  case OPT_ADAGRAD:
    fprintf(o, "%ss0[k] += g * g;                         /* sum */\n", in);
    fprintf(o, "%sw[k] -= clr * g / (dl_sqrt(s0[k]) + (dl_real)%.17g);\n", in, op->eps);
    break;
  }
}

/* Parameters at least this large are updated by all threads, each on its
 * own contiguous range: elementwise, so the result does not depend on the
 * split; smaller ones are not worth the hand-off. */
enum { PARALLEL_UPDATE = 1 << 15, UPDATE_GRAIN = 1 << 13 };

/* The step's constants, computed once in apply_update and shared by the
 * per-parameter range functions. */
static void emit_update_args(FILE *o) {
  fprintf(o, "typedef struct update_args {\n  dl_ctx *ctx;\n");
  fprintf(o, "  dl_real lr, step_size, inv_sqrt_bc2, clr, clip_scale;\n  int first;\n");
  fprintf(o, "  atomic_int bad;  /* a range wrote a NaN or an infinity */\n} update_args;\n\n");
}

/* update_P(args, begin, end): the fused update of elements [begin, end) of param P. */
static void emit_param_update(emit_ctx *ec, int index, const ir_param *p, int nstate) {
  FILE *o = ec->out;
  const ir_optim *op = &ec->g->train.optim;
  fprintf(o, "/* %s [", p->name);
  for (int d = 0; d < p->ndim; d++) fprintf(o, "%s%lld", d ? ", " : "", (long long)p->dims[d]);
  fprintf(o, "] (.dln line %d) */\n", p->line);
  fprintf(o, "static void update_%d(void *arg, int64_t begin, int64_t end) {\n", index);
  fprintf(o, "  update_args *u = arg;\n  dl_ctx *ctx = u->ctx;\n");
  fprintf(o, "  const dl_real lr = u->lr, step_size = u->step_size, inv_sqrt_bc2 = u->inv_sqrt_bc2;\n");
  fprintf(o, "  const dl_real clr = u->clr, clip_scale = u->clip_scale;\n  const int first = u->first;\n");
  fprintf(o, "  (void)lr, (void)step_size, (void)inv_sqrt_bc2, (void)clr, (void)clip_scale, (void)first;\n");
  fprintf(o, "  dl_real *restrict w = ST(%zu);\n  const dl_real *restrict grad = ST(%zu);\n", p->offset,
          p->grad_offset);
  for (int s = 0; s < nstate; s++)
    fprintf(o, "  dl_real *restrict s%d = ST(%zu);\n", s, p->opt_offset[s]);
  fprintf(o, "  dl_bits top = 0;  /* largest |bits| written */\n");
  fprintf(o, "  for (int64_t k = begin; k < end; k++) {\n");
  fprintf(o, "        dl_real g = grad[k]%s;\n", ec->g->train.clip > 0 ? " * clip_scale" : "");
  emit_rule(o, op, op->kind == OPT_RMSPROP && op->momentum > 0);
  /* one max into `top` per element: a chain of them is not recognised as
     a reduction, and the loop would not be vectorised */
  fprintf(o, "        top = dl_bits_max(top, ");
  for (int s = 0; s < nstate; s++) fprintf(o, "dl_bits_max(dl_abs_bits(s%d[k]), ", s);
  fprintf(o, "dl_abs_bits(w[k])");
  for (int s = 0; s < nstate; s++) fputc(')', o);
  fprintf(o, ");\n");
  fprintf(o, "  }\n");
  fprintf(o, "  if (top >= DL_INF_BITS) atomic_store_explicit(&u->bad, 1, memory_order_relaxed);\n}\n\n");
}

/* A parameter the loss does not reach has no gradient (autodiff.c): as
 * torch.optim does with a .grad of None, the step skips it, so neither
 * weight decay nor momentum moves it and its state stays as it started. */
static int trained(const ir_param *p) { return p->grad >= 0; }

/* apply_update(): the step's constants and clip scale, then one pass per
 * parameter; nonzero if a value it wrote is not finite. */
void optim_emit_update(emit_ctx *ec) {
  FILE *o = ec->out;
  ir_graph *g = ec->g;
  const ir_optim *op = &g->train.optim;
  const char *names[3];
  int nstate = optim_state_count(op, names);
  emit_update_args(o);
  for (int p = 0; p < g->nparams; p++)
    if (trained(&g->params[p])) emit_param_update(ec, p, &g->params[p], nstate);
  fprintf(o, "/* The optimiser step: %s (.dln line %d), one fused pass per parameter. */\n",
          optim_name(op->kind), op->line);
  fprintf(o, "static int apply_update(dl_ctx *ctx) {\n");
  fprintf(o, "  const int64_t t = ctx->step + 1;\n");
  fprintf(o, "  update_args u = {.ctx = ctx, .lr = (dl_real)ctx->lr, .clip_scale = 1, .first = t == 1};\n");
  fprintf(o, "  atomic_init(&u.bad, 0);\n");
  if (op->kind == OPT_ADAM || op->kind == OPT_ADAMW) {
    fprintf(o, "  u.step_size = u.lr / (dl_real)(1 - pow(%.17g, (double)t));\n", op->beta1);
    fprintf(o, "  u.inv_sqrt_bc2 = (dl_real)(1 / sqrt(1 - pow(%.17g, (double)t)));\n", op->beta2);
  }
  if (op->kind == OPT_ADAGRAD)
    fprintf(o, "  u.clr = u.lr / (dl_real)(1 + (double)(t - 1) * %.17g);\n", op->lr_decay);
  if (g->train.clip > 0) {
    fprintf(o, "  /* clip_grad_norm_: every gradient times min(1, max_norm / (norm + 1e-6)) */\n");
    fprintf(o, "  double sq = 0;\n");
    for (int p = 0; p < g->nparams; p++)
      if (trained(&g->params[p]))
        fprintf(o, "  sq += dl_sum_squares(ST(%zu), %lld);\n", g->params[p].grad_offset,
                (long long)g->params[p].numel);
    fprintf(o, "  const double norm = sqrt(sq);\n");
    fprintf(o, "  const double coef = %.17g / (norm + 1e-6);\n", g->train.clip);
    fprintf(o, "  u.clip_scale = (dl_real)(coef < 1 ? coef : 1);\n");
  }
  for (int p = 0; p < g->nparams; p++) {
    if (!trained(&g->params[p])) {
      fprintf(o, "  /* %s: the loss does not depend on it (no gradient): left alone */\n",
              g->params[p].name);
      continue;
    }
    long long numel = (long long)g->params[p].numel;
    if (numel >= PARALLEL_UPDATE)
      fprintf(o, "  dl_parallel_for(ctx->pool, %lld, %d, update_%d, &u);\n", numel, UPDATE_GRAIN, p);
    else
      fprintf(o, "  update_%d(&u, 0, %lld);\n", p, numel);
  }
  fprintf(o, "  ctx->step = t;\n");
  fprintf(o, "  return atomic_load_explicit(&u.bad, memory_order_relaxed);\n}\n\n");
}
