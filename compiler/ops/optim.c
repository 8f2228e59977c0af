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
#include "../../runtime/dl_hints.h" /* DL_GRAIN_VALUES */
#include "ops.h"
#include "emit_text.h"
#include <string.h>

/* ---- the table ----------------------------------------------------------
 * One row per optimiser: torch.optim's keyword arguments with their
 * defaults and the ranges torch accepts, the state it keeps per parameter
 * under torch's names (the checkpoint has W.exp_avg, ...), and the
 * emitters of its update.  Lowering, the memory plan, the tensor table and
 * the update all read the row (the state through ir_optim), so a new
 * optimiser is one row here and its emitters, plus docs and tests. */

/* Where ir_optim keeps each argument: lr in .lr, the others in .arg[A_*]. */
enum {
  A_NONE, A_LR, A_MOMENTUM, A_DAMPENING, A_NESTEROV, A_BETA1, A_BETA2, A_EPS, A_WEIGHT_DECAY,
  A_ALPHA, A_CENTERED, A_LR_DECAY, A_INIT_ACC, A_MOMENTUM_DECAY, A_COUNT
};
_Static_assert((int)A_COUNT <= (int)IR_OPTIM_ARGS, "ir_optim.arg holds every A_*");

/* The values torch.optim's constructors accept (a bool has no range). */
typedef enum { R_ANY, R_POSITIVE, R_AT_LEAST_0, R_UNIT } optim_range;

typedef struct optim_arg {
  const char *name;            /* torch's keyword; betas=(b1, b2) is beta1, beta2 */
  arg_kind kind;               /* ARG_NUMBER or ARG_BOOL */
  int required;
  double def;                  /* torch's default */
  int slot;                    /* A_*: where ir_optim keeps it */
  optim_range range;
} optim_arg;

typedef struct optim_state_def {
  const char *name;            /* torch's state name */
  int when;                    /* A_*: kept only if that argument is nonzero; 0: always */
  int start;                   /* A_*: starts at that argument's value; 0: at init */
  double init;
  int scalar;                  /* one number per parameter (nadam's mu_product) */
} optim_state_def;

enum { OPTIM_MAX_ARGS = 8 };

typedef struct optim_def {
  const char *name;
  optim_arg args[OPTIM_MAX_ARGS];              /* until a NULL name */
  optim_state_def state[IR_OPTIM_STATES];      /* until a NULL name; s0, s1, ... in the rule */
  int decoupled_decay;         /* weight decay scales w (adamw) instead of adding to g */
  const char *step_fields;     /* more per-step constants in update_args, or NULL */
  /* Rules between arguments, reported at v[i].loc; nonzero if one fails. */
  int (*check)(const ir_optim *op, const arg_val *v);
  /* The emitters write through the writer of the function they are in
   * (emit_text.h), at its depth. */
  /* apply_update: this step's constants into u (t is the step, from 1). */
  void (*step)(emit_text *o, const ir_optim *op);
  /* apply_update: once per trained parameter and step, before its pass. */
  void (*param_step)(emit_text *o, const ir_optim *op, const ir_param *p);
  /* update_P: after the state pointers, before the loop. */
  void (*prologue)(emit_text *o, const ir_optim *op);
  /* The per-element update: reads g (gradient, after L2 decay) and writes
   * w[k] and the state s0[k], s1[k], ... */
  void (*rule)(emit_text *o, const ir_optim *op);
} optim_def;

#define ARG(o, a) ((o)->arg[A_##a])

/* v[3]: nesterov, sgd's fourth argument */
static int sgd_check(const ir_optim *op, const arg_val *v) {
  if (!ARG(op, NESTEROV) || (ARG(op, MOMENTUM) > 0 && ARG(op, DAMPENING) == 0)) return 0;
  diag_error(v[3].loc, "nesterov momentum needs momentum > 0 and dampening = 0 (as in PyTorch)");
  return -1;
}

static void sgd_rule(emit_text *o, const ir_optim *op) {
  if (ARG(op, MOMENTUM) > 0) {
    emit_line(o, "/* buf = first ? g : momentum * buf + (1 - dampening) * g */");
    emit_line(o, "s0[k] = first ? g : (dl_real)%.17g * s0[k] + (dl_real)%.17g * g;",
              ARG(op, MOMENTUM), 1 - ARG(op, DAMPENING));
    if (ARG(op, NESTEROV))
      emit_line(o, "g = g + (dl_real)%.17g * s0[k];", ARG(op, MOMENTUM));
    else
      emit_line(o, "g = s0[k];");
  }
  emit_line(o, "w[k] -= lr * g;");
}

/* Adam's bias corrections: 1 - beta^t, for the step size and sqrt(v). */
static void adam_step(emit_text *o, const ir_optim *op) {
  emit_line(o, "u.step_size = u.lr / (dl_real)(1 - pow(%.17g, (double)t));", ARG(op, BETA1));
  emit_line(o, "u.inv_sqrt_bc2 = (dl_real)(1 / sqrt(1 - pow(%.17g, (double)t)));", ARG(op, BETA2));
}

/* Adam's two moving averages, in state s[m] (exp_avg) and s[m + 1]
 * (exp_avg_sq): m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2. */
static void emit_moments(emit_text *o, const ir_optim *op, int m) {
  emit_line(o, "s%d[k] = (dl_real)%.17g * s%d[k] + (dl_real)%.17g * g;", m, ARG(op, BETA1), m,
            1 - ARG(op, BETA1));
  emit_line(o, "s%d[k] = (dl_real)%.17g * s%d[k] + (dl_real)%.17g * g * g;", m + 1, ARG(op, BETA2),
            m + 1, 1 - ARG(op, BETA2));
}

static void adam_rule(emit_text *o, const ir_optim *op) {
  emit_line(o, "/* m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  w -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps) */");
  emit_moments(o, op, 0);
  emit_line(o, "w[k] -= step_size * s0[k] / (dl_sqrt(s1[k]) * inv_sqrt_bc2 + (dl_real)%.17g);",
            ARG(op, EPS));
}

static void adamw_rule(emit_text *o, const ir_optim *op) {
  if (ARG(op, WEIGHT_DECAY) != 0)
    emit_line(o, "w[k] *= 1 - lr * (dl_real)%.17g;          /* decoupled weight decay */",
              ARG(op, WEIGHT_DECAY));
  adam_rule(o, op);
}

/* The state order is square_avg, then momentum_buffer and grad_avg when kept. */
static void rmsprop_rule(emit_text *o, const ir_optim *op) {
  int has_momentum_buf = ARG(op, MOMENTUM) > 0, centered_buf = 1 + has_momentum_buf;
  double alpha = ARG(op, ALPHA), eps = ARG(op, EPS);
  emit_line(o, "s0[k] = (dl_real)%.17g * s0[k] + (dl_real)%.17g * g * g;  /* square_avg */",
            alpha, 1 - alpha);
  if (ARG(op, CENTERED)) {
    emit_line(o, "s%d[k] = (dl_real)%.17g * s%d[k] + (dl_real)%.17g * g;  /* grad_avg */",
              centered_buf, alpha, centered_buf, 1 - alpha);
    emit_line(o, "const dl_real avg = dl_sqrt(s0[k] - s%d[k] * s%d[k]) + (dl_real)%.17g;",
              centered_buf, centered_buf, eps);
  } else {
    emit_line(o, "const dl_real avg = dl_sqrt(s0[k]) + (dl_real)%.17g;", eps);
  }
  if (has_momentum_buf) {
    emit_line(o, "s1[k] = (dl_real)%.17g * s1[k] + g / avg;", ARG(op, MOMENTUM));
    emit_line(o, "w[k] -= lr * s1[k];");
  } else {
    emit_line(o, "w[k] -= lr * g / avg;");
  }
}

static void adagrad_step(emit_text *o, const ir_optim *op) {
  emit_line(o, "u.clr = u.lr / (dl_real)(1 + (double)(t - 1) * %.17g);", ARG(op, LR_DECAY));
}

static void adagrad_rule(emit_text *o, const ir_optim *op) {
  emit_line(o, "s0[k] += g * g;                         /* sum */");
  emit_line(o, "w[k] -= clr * g / (dl_sqrt(s0[k]) + (dl_real)%.17g);", ARG(op, EPS));
}

/* NAdam (Dozat 2016) as torch.optim.NAdam documents it: Adam whose step
 * looks one momentum step ahead, with momentum mu_t = beta1 (1 - 0.5 *
 * 0.96^(t psi)) and its running product kept per parameter (mu_product).
 * The step uses prod(mu_1..mu_t) and prod(mu_1..mu_t+1) = mu_product *
 * mu_next, as the documented formula, torch 1.13's foreach path and torch 2
 * do (1.13's single-tensor path multiplies mu in twice). */
static void nadam_step(emit_text *o, const ir_optim *op) {
  double b1 = ARG(op, BETA1), psi = ARG(op, MOMENTUM_DECAY);
  emit_line(o, "u.inv_sqrt_bc2 = (dl_real)(1 / sqrt(1 - pow(%.17g, (double)t)));", ARG(op, BETA2));
  emit_line(o, "u.mu = (dl_real)(%.17g * (1 - 0.5 * pow(0.96, (double)t * %.17g)));", b1, psi);
  emit_line(o, "u.mu_next = (dl_real)(%.17g * (1 - 0.5 * pow(0.96, (double)(t + 1) * %.17g)));",
            b1, psi);
}

static void nadam_param_step(emit_text *o, const ir_optim *op, const ir_param *p) {
  (void)op;
  emit_line(o, "ST(%zu)[0] *= u.mu;  /* %s.mu_product */", p->opt_offset[0], p->name);
}

/* The two step sizes of the update, from this parameter's mu_product (s0). */
static void nadam_prologue(emit_text *o, const ir_optim *op) {
  (void)op;
  emit_line(o, "const dl_real grad_coef = lr * (1 - u->mu) / (1 - s0[0]);");
  emit_line(o, "const dl_real avg_coef = lr * u->mu_next / (1 - s0[0] * u->mu_next);");
}

static void nadam_rule(emit_text *o, const ir_optim *op) {
  emit_line(o, "/* m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  w -= (grad_coef g + avg_coef m) / (sqrt(v)/sqrt(bc2) + eps) */");
  emit_moments(o, op, 1);
  emit_line(o, "const dl_real denom = dl_sqrt(s2[k]) * inv_sqrt_bc2 + (dl_real)%.17g;",
            ARG(op, EPS));
  emit_line(o, "w[k] -= grad_coef * g / denom + avg_coef * s1[k] / denom;");
}

/* Row 0 is the optimiser of a train block that names none (with lr 1e-2). */
static const optim_def optim_table[] = {
  {.name = "sgd",
   .args = {{"lr", ARG_NUMBER, 1, 0, A_LR, R_POSITIVE},
            {"momentum", ARG_NUMBER, 0, 0, A_MOMENTUM, R_AT_LEAST_0},
            {"dampening", ARG_NUMBER, 0, 0, A_DAMPENING, R_AT_LEAST_0},
            {"nesterov", ARG_BOOL, 0, 0, A_NESTEROV, R_ANY},
            {"weight_decay", ARG_NUMBER, 0, 0, A_WEIGHT_DECAY, R_AT_LEAST_0}},
   .state = {{.name = "momentum_buffer", .when = A_MOMENTUM}},
   .check = sgd_check,
   .rule = sgd_rule},
  {.name = "adam",
   .args = {{"lr", ARG_NUMBER, 0, 1e-3, A_LR, R_POSITIVE},
            {"beta1", ARG_NUMBER, 0, 0.9, A_BETA1, R_UNIT},
            {"beta2", ARG_NUMBER, 0, 0.999, A_BETA2, R_UNIT},
            {"eps", ARG_NUMBER, 0, 1e-8, A_EPS, R_AT_LEAST_0},
            {"weight_decay", ARG_NUMBER, 0, 0, A_WEIGHT_DECAY, R_AT_LEAST_0}},
   .state = {{.name = "exp_avg"}, {.name = "exp_avg_sq"}},
   .step = adam_step,
   .rule = adam_rule},
  {.name = "adamw",
   .args = {{"lr", ARG_NUMBER, 0, 1e-3, A_LR, R_POSITIVE},
            {"beta1", ARG_NUMBER, 0, 0.9, A_BETA1, R_UNIT},
            {"beta2", ARG_NUMBER, 0, 0.999, A_BETA2, R_UNIT},
            {"eps", ARG_NUMBER, 0, 1e-8, A_EPS, R_AT_LEAST_0},
            {"weight_decay", ARG_NUMBER, 0, 1e-2, A_WEIGHT_DECAY, R_AT_LEAST_0}},
   .state = {{.name = "exp_avg"}, {.name = "exp_avg_sq"}},
   .decoupled_decay = 1,
   .step = adam_step,
   .rule = adamw_rule},
  {.name = "rmsprop",
   .args = {{"lr", ARG_NUMBER, 0, 1e-2, A_LR, R_POSITIVE},
            {"alpha", ARG_NUMBER, 0, 0.99, A_ALPHA, R_AT_LEAST_0},
            {"eps", ARG_NUMBER, 0, 1e-8, A_EPS, R_AT_LEAST_0},
            {"momentum", ARG_NUMBER, 0, 0, A_MOMENTUM, R_AT_LEAST_0},
            {"centered", ARG_BOOL, 0, 0, A_CENTERED, R_ANY},
            {"weight_decay", ARG_NUMBER, 0, 0, A_WEIGHT_DECAY, R_AT_LEAST_0}},
   .state = {{.name = "square_avg"}, {.name = "momentum_buffer", .when = A_MOMENTUM},
             {.name = "grad_avg", .when = A_CENTERED}},
   .rule = rmsprop_rule},
  {.name = "adagrad",
   .args = {{"lr", ARG_NUMBER, 0, 1e-2, A_LR, R_POSITIVE},
            {"lr_decay", ARG_NUMBER, 0, 0, A_LR_DECAY, R_AT_LEAST_0},
            {"weight_decay", ARG_NUMBER, 0, 0, A_WEIGHT_DECAY, R_AT_LEAST_0},
            {"initial_accumulator_value", ARG_NUMBER, 0, 0, A_INIT_ACC, R_AT_LEAST_0},
            {"eps", ARG_NUMBER, 0, 1e-10, A_EPS, R_AT_LEAST_0}},
   .state = {{.name = "sum", .start = A_INIT_ACC}},
   .step = adagrad_step,
   .rule = adagrad_rule},
  {.name = "nadam",
   .args = {{"lr", ARG_NUMBER, 0, 2e-3, A_LR, R_POSITIVE},
            {"beta1", ARG_NUMBER, 0, 0.9, A_BETA1, R_UNIT},
            {"beta2", ARG_NUMBER, 0, 0.999, A_BETA2, R_UNIT},
            {"eps", ARG_NUMBER, 0, 1e-8, A_EPS, R_AT_LEAST_0},
            {"weight_decay", ARG_NUMBER, 0, 0, A_WEIGHT_DECAY, R_AT_LEAST_0},
            {"momentum_decay", ARG_NUMBER, 0, 4e-3, A_MOMENTUM_DECAY, R_AT_LEAST_0}},
   .state = {{.name = "mu_product", .init = 1, .scalar = 1}, {.name = "exp_avg"},
             {.name = "exp_avg_sq"}},
   .step_fields = "dl_real mu, mu_next;  /* nadam's momentum at t and t + 1 */",
   .step = nadam_step,
   .param_step = nadam_param_step,
   .prologue = nadam_prologue,
   .rule = nadam_rule},
};
enum { N_OPTIMS = sizeof optim_table / sizeof *optim_table };

const char *optim_name(int kind) {
  return kind >= 0 && kind < N_OPTIMS ? optim_table[kind].name : NULL;
}

int optim_find(const char *name) {
  for (int k = 0; k < N_OPTIMS; k++)
    if (!strcmp(name, optim_table[k].name)) return k;
  return -1;
}

/* ---- lowering ------------------------------------------------------------ */

/* As torch.optim checks its arguments (given ones: defaults are valid). */
static int check_ranges(const ast_expr *call, const optim_arg *a, const arg_val *v, int n) {
  static const char *const want[] = {
    [R_POSITIVE] = "positive", [R_AT_LEAST_0] = "at least 0", [R_UNIT] = "in [0, 1)",
  };
  int err = 0;
  for (int i = 0; i < n; i++) {
    double x = v[i].num;
    int ok = !v[i].present || a[i].range == R_ANY || (a[i].range == R_POSITIVE && x > 0) ||
             (a[i].range == R_AT_LEAST_0 && x >= 0) || (a[i].range == R_UNIT && x >= 0 && x < 1);
    if (ok) continue;
    diag_error(v[i].loc, "argument '%s' of %s() must be %s, not %g", a[i].name, call->str,
               want[a[i].range], x);
    err = -1;
  }
  return err;
}

/* optimizer = NAME(...), NAME being row `kind`: binds the arguments to *o
 * and sets the state it keeps; reports what is wrong and leaves the rest. */
void optim_lower(lower_ctx *lc, const ast_expr *call, int kind, ir_optim *o) {
  const optim_def *d = &optim_table[kind];
  arg_spec spec[OPTIM_MAX_ARGS];
  arg_val v[OPTIM_MAX_ARGS];
  int n = 0;
  for (; n < OPTIM_MAX_ARGS && d->args[n].name; n++)
    spec[n] = (arg_spec){d->args[n].name, d->args[n].kind, d->args[n].required, d->args[n].def};
  o->line = call->loc.line;
  if (lower_bind_args(lc, call, spec, n, v) || check_ranges(call, d->args, v, n)) return;
  *o = (ir_optim){.kind = kind, .line = o->line};
  for (int i = 0; i < n; i++) {
    if (d->args[i].slot == A_LR) o->lr = v[i].num;
    else o->arg[d->args[i].slot] = v[i].num;
  }
  if (d->check && d->check(o, v)) return;
  for (int s = 0; s < IR_OPTIM_STATES && d->state[s].name; s++) {
    const optim_state_def *sd = &d->state[s];
    if (sd->when && o->arg[sd->when] == 0) continue;
    o->state[o->nstate++] = (ir_optim_state){
      .name = sd->name, .init = sd->start ? o->arg[sd->start] : sd->init, .scalar = sd->scalar};
  }
}

/* ---- the update ----------------------------------------------------------- */

/* Parameters at least this large are updated by all threads, each on its
 * own contiguous range: elementwise, so the result does not depend on the
 * split; smaller ones are not worth the hand-off.  An element's update
 * (its gradient and states read and written) is about 2 simple values'
 * work: DL_GRAIN_VALUES / 2 to a thread. */
enum { PARALLEL_UPDATE = 2 * DL_GRAIN_VALUES, UPDATE_GRAIN = DL_GRAIN_VALUES / 2 };

/* The parameter a pass updates, set by apply_update before each pass. */
#define PARAM_FIELDS "dl_real *w, *grad, *s[3];  /* the parameter, its gradient and its states */"
_Static_assert(IR_OPTIM_STATES == 3, "PARAM_FIELDS's s[] holds every state");

/* The step's constants, computed once in apply_update and shared by the
 * passes. */
static void emit_update_args(emit_text *o, const optim_def *d) {
  emit_line(o, "typedef struct update_args {");
  emit_line(o, "dl_ctx *ctx;");
  emit_line(o, "dl_real lr, step_size, inv_sqrt_bc2, clr, clip_scale;");
  emit_line(o, "int first;");
  emit_line(o, "%s", PARAM_FIELDS);
  if (d->step_fields) emit_line(o, "%s", d->step_fields);
  emit_line(o, "atomic_int bad;  /* a range wrote a NaN or an infinity */");
  emit_line(o, "} update_args;\n");
}

/* "top = max(top, |s0[k]|, |s1[k]|, ..., |w[k]|)" as nested dl_bits_max:
 * one max into `top` per element, as a chain of them is not recognised as
 * a reduction and the loop would not be vectorised; a scalar state is not
 * written in the loop. */
static void emit_watch(emit_text *o, const ir_optim *op) {
  char line[512];
  int len = snprintf(line, sizeof line, "top = dl_bits_max(top, "), nmax = 0;
  for (int s = 0; s < op->nstate; s++)
    if (!op->state[s].scalar) {
      len += snprintf(line + len, sizeof line - (size_t)len, "dl_bits_max(dl_abs_bits(s%d[k]), ", s);
      nmax++;
    }
  len += snprintf(line + len, sizeof line - (size_t)len, "dl_abs_bits(w[k])");
  while (nmax--) line[len++] = ')';
  snprintf(line + len, sizeof line - (size_t)len, ");");
  emit_line(o, "%s", line);
}

/* update_range(args, begin, end) (update_range_uK with updates): the fused
 * update of elements [begin, end) of the parameter args names.  One
 * function per optimiser, not one per parameter: the copies, each inlined
 * and vectorised for its own size, were a third of a model's compile time
 * (fashion_resnet's 17 parameters), for no speed, as the loop is the same
 * for every parameter.  DL_NOINLINE keeps it one copy. */
static void emit_param_update(emit_ctx *ec, int upd, const ir_optim *op) {
  emit_text o[1] = {{.f = ec->out}};
  const optim_def *d = &optim_table[op->kind];
  char name[32] = "update_range";
  if (upd >= 0) snprintf(name, sizeof name, "update_range_u%d", upd);
  emit_line(o, "DL_NOINLINE static void %s(void *arg, int64_t begin, int64_t end) {", name);
  emit_line(o, "update_args *u = arg;");
  emit_line(o, "const dl_real lr = u->lr, step_size = u->step_size, inv_sqrt_bc2 = u->inv_sqrt_bc2;");
  emit_line(o, "const dl_real clr = u->clr, clip_scale = u->clip_scale;");
  emit_line(o, "const int first = u->first;");
  emit_line(o, "(void)lr, (void)step_size, (void)inv_sqrt_bc2, (void)clr, (void)clip_scale, (void)first;");
  emit_line(o, "dl_real *restrict w = u->w;");
  emit_line(o, "const dl_real *restrict grad = u->grad;");
  for (int s = 0; s < op->nstate; s++) emit_line(o, "dl_real *restrict s%d = u->s[%d];", s, s);
  if (d->prologue) d->prologue(o, op);
  emit_line(o, "dl_bits top = 0;  /* largest |bits| written */");
  emit_line(o, "for (int64_t k = begin; k < end; k++) {");
  /* the loop's body has always been indented by 8, two levels more than
     its block: kept, so the generated C did not change with emit_line */
  o->depth += 2;
  emit_line(o, "dl_real g = grad[k]%s;", ec->g->train.clip > 0 ? " * clip_scale" : "");
  if (ARG(op, WEIGHT_DECAY) != 0 && !d->decoupled_decay)
    emit_line(o, "g += (dl_real)%.17g * w[k];                 /* L2 weight decay */",
              ARG(op, WEIGHT_DECAY));
  d->rule(o, op);
  emit_watch(o, op);
  o->depth -= 2;
  emit_line(o, "}");
  emit_line(o, "if (top >= DL_INF_BITS) atomic_store_explicit(&u->bad, 1, memory_order_relaxed);");
  emit_line(o, "}\n");
}

/* A parameter the loss does not reach has no gradient (autodiff.c): as
 * torch.optim does with a .grad of None, the step skips it, so neither
 * weight decay nor momentum moves it and its state stays as it started. */
static int trained(const ir_param *p) { return p->grad >= 0; }

static int in_update(const ir_param *p, int upd) { return upd < 0 || p->update == upd; }

/* Whether update upd (-1: the one optimiser) trains a parameter: else it
 * has no pass and no update_range (unused, it would be a warning). */
static int any_trained(const ir_graph *g, int upd) {
  for (int p = 0; p < g->nparams; p++)
    if (trained(&g->params[p]) && in_update(&g->params[p], upd)) return 1;
  return 0;
}

/* The body of an apply_update: the step's constants and clip scale, then
 * one pass per parameter of update upd (-1: every parameter). */
static void emit_apply_body(emit_ctx *ec, const ir_optim *op, int upd);

/* With updates: the step constants' struct holds every optimiser's fields,
 * each parameter's pass follows its update's optimiser, and apply_update_uK
 * steps update K's parameters.  The step count t is the batch's (each
 * update runs once a batch, so every optimiser has taken as many steps as
 * the batches trained, as each torch optimiser's own count); the trainer
 * advances ctx->step after the batch's last update. */
static void emit_updates(emit_ctx *ec) {
  emit_text o[1] = {{.f = ec->out}};
  ir_graph *g = ec->g;
  emit_line(o, "typedef struct update_args {");
  emit_line(o, "dl_ctx *ctx;");
  emit_line(o, "dl_real lr, step_size, inv_sqrt_bc2, clr, clip_scale;");
  emit_line(o, "int first;");
  emit_line(o, "%s", PARAM_FIELDS);
  for (int kind = 0; kind < N_OPTIMS; kind++) {
    int used = 0;
    for (int k = 0; k < g->nupdates; k++) used |= g->updates[k].optim.kind == kind;
    if (used && optim_table[kind].step_fields) emit_line(o, "%s", optim_table[kind].step_fields);
  }
  emit_line(o, "atomic_int bad;  /* a range wrote a NaN or an infinity */");
  emit_line(o, "} update_args;\n");
  for (int k = 0; k < g->nupdates; k++)
    if (any_trained(g, k)) emit_param_update(ec, k, &g->updates[k].optim);
  for (int k = 0; k < g->nupdates; k++) {
    const ir_optim *op = &g->updates[k].optim;
    emit_line(o, "/* Update %d's optimiser step: %s (.dln line %d), one fused pass per parameter. */",
              k, optim_table[op->kind].name, op->line);
    emit_line(o, "static int apply_update_u%d(dl_ctx *ctx) {", k);
    emit_apply_body(ec, op, k);
    emit_line(o, "return atomic_load_explicit(&u.bad, memory_order_relaxed);");
    emit_line(o, "}\n");
  }
}

/* apply_update(): the step's constants and clip scale, then one pass per
 * parameter; nonzero if a value it wrote is not finite. */
void optim_emit_update(emit_ctx *ec) {
  emit_text o[1] = {{.f = ec->out}};
  ir_graph *g = ec->g;
  if (g->nupdates) {
    emit_updates(ec);
    return;
  }
  const ir_optim *op = &g->train.optim;
  const optim_def *d = &optim_table[op->kind];
  emit_update_args(o, d);
  if (any_trained(g, -1)) emit_param_update(ec, -1, op);
  emit_line(o, "/* The optimiser step: %s (.dln line %d), one fused pass per parameter. */", d->name,
            op->line);
  emit_line(o, "static int apply_update(dl_ctx *ctx) {");
  emit_apply_body(ec, op, -1);
  emit_line(o, "ctx->step = t;");
  emit_line(o, "return atomic_load_explicit(&u.bad, memory_order_relaxed);");
  emit_line(o, "}\n");
}

/* A parameter's pass: its buffers in u, then update_range over it. */
static void emit_param_pass(emit_text *o, const ir_optim *op, const ir_param *p, int upd) {
  const optim_def *d = &optim_table[op->kind];
  char dims[IR_MAX_DIMS * 24] = "", fn[32] = "update_range";
  for (int dim = 0, len = 0; dim < p->ndim; dim++)
    len += snprintf(dims + len, sizeof dims - (size_t)len, "%s%lld", dim ? ", " : "", ll(p->dims[dim]));
  if (upd >= 0) snprintf(fn, sizeof fn, "update_range_u%d", upd);
  emit_line(o, "/* %s [%s] (.dln line %d) */", p->name, dims, p->line);
  emit_line(o, "u.w = ST(%zu), u.grad = ST(%zu);", p->offset, p->grad_offset);
  for (int s = 0; s < op->nstate; s++) emit_line(o, "u.s[%d] = ST(%zu);", s, p->opt_offset[s]);
  if (d->param_step) d->param_step(o, op, p);
  long long numel = ll(p->numel);
  if (numel >= PARALLEL_UPDATE)
    emit_line(o, "dl_parallel_for(ctx->pool, %lld, %d, %s, &u);", numel, UPDATE_GRAIN, fn);
  else
    emit_line(o, "%s(&u, 0, %lld);", fn, numel);
}


static void emit_apply_body(emit_ctx *ec, const ir_optim *op, int upd) {
  emit_text o[1] = {{.f = ec->out, .depth = 1}};
  ir_graph *g = ec->g;
  const optim_def *d = &optim_table[op->kind];
  emit_line(o, "const int64_t t = ctx->step + 1;");
  emit_line(o, "update_args u = {.ctx = ctx, .lr = (dl_real)ctx->lr, .clip_scale = 1, .first = t == 1};");
  emit_line(o, "atomic_init(&u.bad, 0);");
  if (d->step) d->step(o, op);
  if (g->train.clip > 0) {
    emit_line(o, "/* clip_grad_norm_: every gradient times min(1, max_norm / (norm + 1e-6)) */");
    emit_line(o, "double sq = 0;");
    for (int p = 0; p < g->nparams; p++)
      if (trained(&g->params[p]) && in_update(&g->params[p], upd))
        emit_line(o, "sq += dl_sum_squares(ST(%zu), %lld);", g->params[p].grad_offset,
                  ll(g->params[p].numel));
    emit_line(o, "const double norm = sqrt(sq);");
    emit_line(o, "const double coef = %.17g / (norm + 1e-6);", g->train.clip);
    emit_line(o, "u.clip_scale = (dl_real)(coef < 1 ? coef : 1);");
  }
  for (int p = 0; p < g->nparams; p++) {
    if (!in_update(&g->params[p], upd)) continue;
    if (!trained(&g->params[p])) {
      emit_line(o, "/* %s: the loss does not depend on it (no gradient): left alone */",
                g->params[p].name);
      continue;
    }
    emit_param_pass(o, op, &g->params[p], upd);
  }
}
