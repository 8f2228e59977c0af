/* conv.c: 2-D convolution and pooling on NCHW samples (torch.nn.Conv2d,
 * MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1)): lowering with the shape rules,
 * backward rules and emitters.
 *
 * conv2d is lowered to three nodes, run as one job per sample (a chain):
 *   conv_pad:  xpad[s] = x[s] zero-padded, [C][H+2PH][W+2PW], so
 *              that every receptive field lies inside it;
 *   conv2d:    y[s] = W . fields(xpad[s]), an implicit GEMM: the runtime
 *              (runtime/conv.c) packs the fields straight from xpad, and no
 *              im2col matrix is ever stored;
 *   conv_out:  y[s, oc, p] + b[oc], with the following activation fused.
 * Backward: db sums dy; dW^T = fields(xpad)^T-products summed over the batch
 * (dl_conv2d_weight_grad, reading xpad in place), then transposed to torch's
 * layout; dx = col2im(dy^T W), a sample at a time (the column gradient of
 * one sample, then its scatter back while it is in cache).  Sums over the
 * batch happen in fixed order, so no thread count changes a bit. */
#include "ops.h"
#include "emit_text.h"
#include <string.h>
#include "../../runtime/dl_model.h"



static int needs_image(lower_ctx *lc, const arg_val *v, const char *fn) {
  ir_node *x = ir_at(lc->g, v->node);
  if (x->batched && x->ndim == 3) return 0;
  char shape[96];
  diag_error(v->loc, "%s() needs per-sample images [channels, height, width], not %s", fn,
             x->batched && x->ndim ? ir_shape_str(x, shape, sizeof shape)
                                   : x->batched ? "a class label" : "a scalar");
  return -1;
}

/* Output size of one spatial dim, or <= 0 when the (dilated) kernel does not
 * fit in the padded input. */
static int64_t out_dim(int64_t in, int k, int s, int p, int d) {
  int64_t span = (int64_t)d * (k - 1) + 1;
  if (in + 2 * p < span) return 0;
  return (in + 2 * p - span) / s + 1;
}

static int check_range(const arg_val *v, const char *fn, const char *what, int lo, int hi) {
  if (v->num >= lo && v->num <= hi) return 0;
  diag_error(v->loc, "%s of %s() must be between %d and %d, not %g", what, fn, lo, hi, v->num);
  return -1;
}

/* conv2d(x, channels, kernel, stride = 1, padding = 0, dilation = 1,
 *        groups = 1, bias = true, init, l1 = 0, l2 = 0,
 *        weight_norm = false, spectral_norm = false) */
int lower_conv2d(lower_ctx *lc, const ast_expr *call) {
  static const arg_spec spec[] = {
    {"x", ARG_TENSOR, 1, 0},   {"channels", ARG_INT, 1, 0}, {"kernel", ARG_INT, 1, 0},
    {"stride", ARG_INT, 0, 1}, {"padding", ARG_INT, 0, 0},  {"dilation", ARG_INT, 0, 1},
    {"groups", ARG_INT, 0, 1}, {"bias", ARG_BOOL, 0, 1},    {"init", ARG_IDENT, 0, 0},
    {"l1", ARG_NUMBER, 0, 0},  {"l2", ARG_NUMBER, 0, 0},  {"weight_norm", ARG_BOOL, 0, 0},
    {"spectral_norm", ARG_BOOL, 0, 0},
  };
  arg_val v[13];
  /* weight_norm and spectral_norm are keyword-only */
  if (lower_bind_args_kw(lc, call, spec, 13, 11, v) || needs_image(lc, &v[0], "conv2d"))
    return -1;
  int wrap = lower_wrap_arg(&v[11], &v[12]);
  if (wrap < 0) return -1;
  if (check_range(&v[1], "conv2d", "channels", 1, 1 << 20) ||
      check_range(&v[2], "conv2d", "kernel", 1, 1 << 10) ||
      check_range(&v[3], "conv2d", "stride", 1, 1 << 10) ||
      check_range(&v[4], "conv2d", "padding", 0, 1 << 10) ||
      check_range(&v[5], "conv2d", "dilation", 1, 1 << 10) ||
      check_range(&v[6], "conv2d", "groups", 1, 1 << 20))
    return -1;
  for (int k = 9; k < 11; k++)
    if (v[k].num < 0) {
      diag_error(v[k].loc, "argument '%s' of conv2d() must be at least 0, not %g", spec[k].name,
                 v[k].num);
      return -1;
    }
  int init = lower_init_arg(&v[8]);
  if (init == -2) return -1;
  ir_graph *g = lc->g;
  ir_node x = *ir_at(g, v[0].node);
  int64_t C = x.dims[0], H = x.dims[1], W = x.dims[2], OC = (int64_t)v[1].num;
  int k = (int)v[2].num, s = (int)v[3].num, p = (int)v[4].num, d = (int)v[5].num;
  int groups = (int)v[6].num;
  if (C % groups || OC % groups) {
    diag_error(v[6].loc, "groups = %d must divide both the input channels (%lld) and the output "
               "channels (%lld)", groups, (long long)C, (long long)OC);
    return -1;
  }
  int64_t OH = out_dim(H, k, s, p, d), OW = out_dim(W, k, s, p, d);
  if (OH <= 0 || OW <= 0) {
    diag_error(v[2].loc, "a %dx%d kernel%s does not fit in the %lldx%lld input%s", k, k,
               d > 1 ? " (dilated)" : "", (long long)H, (long long)W,
               p ? " even with its padding" : "");
    return -1;
  }
  int64_t ckk = C / groups * k * k;
  if ((double)C * k * k * OH * OW > 2147483648.0 || (double)OC * OH * OW > 2147483648.0 ||
      (double)C * (H + 2.0 * p) * (W + 2.0 * p) > 2147483648.0 ||
      (double)OC * ckk > 2147483648.0) {
    diag_error(call->loc, "conv2d() is too large (the limit is 2147483648 values per sample)");
    return -1;
  }
  /* parameters named as torch.nn.Conv2d's: NAME.weight [OC, C/groups, k, k], NAME.bias [OC] */
  char layer[256];
  lower_layer_name(lc, layer, sizeof layer);
  int64_t wdims[4] = {OC, C / groups, k, k};
  int ins[3] = {-1, -1, -1};
  ins[1] = lower_weight(lc, layer, wrap, 4, wdims, ckk, OC * k * k, init, v[9].num, v[10].num,
                        call->loc);
  if (v[7].num) ins[2] = lower_param(lc, layer, "bias", 1, &OC, ckk, OC, init, 0, 0, call->loc);

  int pad = lower_node(lc, OP_CONV_PAD, &v[0].node, 1, call->loc);
  ir_node *c = ir_at(g, pad);
  c->batched = 1;
  c->ndim = 1;
  c->dims[0] = C * (H + 2 * p) * (W + 2 * p);
  c->conv = (ir_conv_attr){.kh = k, .kw = k, .sh = s, .sw = s, .ph = p, .pw = p, .dh = d, .dw = d,
                           .groups = groups};

  int gin[2] = {pad, ins[1]};
  int gemm = lower_node(lc, OP_CONV2D, gin, 2, call->loc);
  ir_node *yr = ir_at(g, gemm);
  yr->batched = 1;
  yr->ndim = 3;
  yr->dims[0] = OC;
  yr->dims[1] = OH;
  yr->dims[2] = OW;
  yr->conv.groups = groups;

  int oin[2] = {gemm, ins[2]};
  int id = lower_node(lc, OP_CONV_OUT, oin, v[7].num ? 2 : 1, call->loc);
  ir_copy_shape(ir_at(g, id), ir_at(g, gemm));
  return id;
}

/* maxpool(x, kernel, stride = kernel, padding = 0)
 * avgpool(x, kernel, stride = kernel, padding = 0, count_include_pad = true)
 * global_avgpool(x): the mean of each channel, [C, H, W] -> [C] */
int lower_pool(lower_ctx *lc, const ast_expr *call) {
  int global = !strcmp(call->str, "global_avgpool"), is_max = !strcmp(call->str, "maxpool");
  static const arg_spec spec[] = {
    {"x", ARG_TENSOR, 1, 0},  {"kernel", ARG_INT, 1, 0}, {"stride", ARG_INT, ARG_DERIVED, 0},
    {"padding", ARG_INT, 0, 0}, {"count_include_pad", ARG_BOOL, 0, 1},
  };
  arg_val v[5] = {{0}};
  if (lower_bind_args(lc, call, spec, global ? 1 : is_max ? 4 : 5, v) ||
      needs_image(lc, &v[0], call->str))
    return -1;
  ir_node x = *ir_at(lc->g, v[0].node);
  int64_t C = x.dims[0], H = x.dims[1], W = x.dims[2];
  int kh, kw, s, p;
  if (global) {
    if (H > (1 << 20) || W > (1 << 20)) {
      diag_error(v[0].loc, "global_avgpool() of a %lldx%lld image is too large", (long long)H,
                 (long long)W);
      return -1;
    }
    kh = (int)H, kw = (int)W, s = 1, p = 0;
  } else {
    if (!v[2].present) v[2].num = v[1].num;
    if (check_range(&v[1], call->str, "kernel", 1, 1 << 10) ||
        check_range(&v[2], call->str, "stride", 1, 1 << 10) ||
        check_range(&v[3], call->str, "padding", 0, 1 << 10))
      return -1;
    kh = kw = (int)v[1].num, s = (int)v[2].num, p = (int)v[3].num;
    if (2 * p > kh) {
      diag_error(v[3].loc, "padding of %s() must be at most half the kernel (%d), not %d",
                 call->str, kh / 2, p);
      return -1;
    }
  }
  int64_t OH = out_dim(H, kh, s, p, 1), OW = out_dim(W, kw, s, p, 1);
  if (OH <= 0 || OW <= 0) {
    diag_error(v[1].loc, "a %dx%d window does not fit in the %lldx%lld input", kh, kw,
               (long long)H, (long long)W);
    return -1;
  }
  int id = lower_node(lc, is_max ? OP_MAXPOOL : OP_AVGPOOL, &v[0].node, 1, call->loc);
  ir_node *y = ir_at(lc->g, id);
  y->batched = 1;
  y->ndim = global ? 1 : 3;
  y->dims[0] = C;
  y->dims[1] = OH;
  y->dims[2] = OW;
  y->conv = (ir_conv_attr){.kh = kh, .kw = kw, .sh = s, .sw = s, .ph = p, .pw = p, .dh = 1, .dw = 1,
                           .groups = 1, .count_pad = global || v[4].num != 0};
  return id;
}

/* ---- backward ----------------------------------------------------------- */

/* Whether a convolution's input gradient is itself a convolution of its
 * zero-padded output gradient: stride 1 and padding at most the dilated
 * kernel's reach, so the padding of dy, (K-1)*D - P, is not negative. */
static int transposable(const ir_conv_attr *q) {
  return q->sh == 1 && q->sw == 1 && q->ph <= (q->kh - 1) * q->dh && q->pw <= (q->kw - 1) * q->dw;
}

/* The input channels of a conv_pad's image. */
static int64_t pad_channels(const ir_graph *g, const ir_node *pad) {
  return g->nodes[pad->in[0]].dims[0];
}

void conv_backward(ad_ctx *ad, int id, int dy) {
  ir_graph *g = ad_graph(ad);
  ir_node n = g->nodes[id];
  switch (n.op) {
  case OP_CONV_OUT: /* y = yr + b */
    if (n.nin == 2 && ad_wants(ad, n.in[1])) {
      int in[1] = {dy};
      ad_accumulate(ad, n.in[1], ad_node(ad, OP_CONV2D_DB, in, 1, n.in[1], -1));
    }
    ad_accumulate(ad, n.in[0], dy);
    break;
  case OP_CONV2D: { /* y = W . fields(xpad), per group */
    const ir_node *pad = &g->nodes[n.in[0]];
    int x = pad->in[0];
    ir_conv_attr q = pad->conv;
    int64_t groups = q.groups, CK = pad_channels(g, pad) * q.kh * q.kw, OC = n.dims[0];
    if (ad_wants(ad, n.in[1])) {
      /* dW^T [G, CKg, OCg], summed over the batch with the long CK side as
       * the GEMM's rows (each packed panel of dy serves all of them), then
       * transposed to torch's [OC, C/G, KH, KW] */
      int in[2] = {dy, n.in[0]};
      int dwt = ad_node(ad, OP_CONV2D_DW, in, 2, n.in[1], -1);
      ir_node *t = &g->nodes[dwt];
      t->conv.groups = (int)groups;
      t->batched = 0;
      t->ndim = 3;
      t->dims[0] = groups;
      t->dims[1] = CK / groups;
      t->dims[2] = OC / groups;
      int tin[1] = {dwt};
      int dw = ad_node(ad, OP_CONV2D_DW_T, tin, 1, n.in[1], -1);
      g->nodes[dw].conv.groups = (int)groups;
      ad_accumulate(ad, n.in[1], dw);
    }
    /* xpad exists for the products alone: the gradient goes to x itself */
    if (ad_wants(ad, x) && transposable(&q)) {
      /* dx = conv(dy padded by (K-1)*D - P, W flipped and transposed) */
      int in[1] = {n.in[1]};
      int wt = ad_node(ad, OP_CONV2D_DX_W, in, 1, n.in[1], -1);
      ir_node *t = &g->nodes[wt];
      t->conv.groups = (int)groups;
      int64_t OH = n.dims[1], OW = n.dims[2];
      ir_conv_attr qt = {.kh = q.kh, .kw = q.kw, .sh = 1, .sw = 1,
                         .ph = (q.kh - 1) * q.dh - q.ph, .pw = (q.kw - 1) * q.dw - q.pw,
                         .dh = q.dh, .dw = q.dw, .groups = q.groups};
      int dpad = ad_node(ad, OP_CONV_PAD, &dy, 1, n.in[0], -1);
      ir_node *dp = &g->nodes[dpad];
      dp->conv = qt;
      dp->dims[0] = OC * (OH + 2 * qt.ph) * (OW + 2 * qt.pw);
      int din[2] = {dpad, wt};
      int dx = ad_node(ad, OP_CONV2D, din, 2, x, -1);
      g->nodes[dx].conv.groups = (int)groups;
      ad_accumulate(ad, x, dx);
    } else if (ad_wants(ad, x)) {
      /* through the columns and col2im */
      int in[2] = {dy, n.in[1]};
      int dcol = ad_node(ad, OP_CONV2D_DCOL, in, 2, n.id, -1);
      ir_node *dc = &g->nodes[dcol];
      dc->conv = q;
      dc->ndim = 2;
      dc->dims[0] = n.dims[1] * n.dims[2];
      dc->dims[1] = CK;
      int dx = ad_node(ad, OP_COL2IM, &dcol, 1, x, -1);
      g->nodes[dx].conv = q;
      ad_accumulate(ad, x, dx);
    }
    break;
  }
  case OP_CONV_PAD: /* its gradient is conv2d's business (above) */
    break;
  default: /* pools */
    if (ad_wants(ad, n.in[0])) {
      int in[2] = {dy, n.in[0]};
      int dx = ad_node(ad, n.op == OP_MAXPOOL ? OP_MAXPOOL_GRAD : OP_AVGPOOL_GRAD, in,
                       n.op == OP_MAXPOOL ? 2 : 1, n.in[0], -1);
      g->nodes[dx].conv = n.conv;
      ad_accumulate(ad, n.in[0], dx);
    }
    break;
  }
}

/* ---- emission ------------------------------------------------------------ */

/* A job over items lo..hi of a range variable (samples, planes). */
static void job_begin(emit_ctx *ec, emit_text *o, const ir_node *n, const char *what,
                      const char *comment, const char *range, char *name, size_t len) {
  emit_job_begin(ec, n, what, comment, name, len);
  o->depth = 1; /* inside the function emit_job_begin opened */
  emit_line(o, "for (int64_t %s = lo; %s < hi; %s++) {", range, range, range);
}

/* Closes the loop over the job's items and the job's function. */
static void job_footer(emit_text *o) {
  emit_line(o, "}");
  emit_line(o, "}\n");
}

/* A chain member's names live in a block of their own, which is not
 * indented: the members read as one loop body. */
static void scope_open(emit_text *o) {
  emit_line(o, "{");
  o->depth--;
}

static void scope_close(emit_text *o) {
  o->depth++;
  emit_line(o, "}");
}

/* col2im for sample s: each field of dcolT [OH*OW, C*KH*KW] added back
 * where the forward pass read it,
 *   dx[c, oh*SH - PH + i*DH, ow*SW - PW + j*DW] += dcolT[oh*OW + ow, (c*KH + i)*KW + j],
 * skipping the padding. */
static void body_col2im(emit_ctx *ec, emit_text *o, const ir_node *n) {
  const ir_node *col = &ec->g->nodes[n->in[0]];
  const ir_conv_attr *q = &n->conv;
  int64_t C = n->dims[0], H = n->dims[1], W = n->dims[2];
  int64_t OH = out_dim(H, q->kh, q->sh, q->ph, q->dh);
  int64_t OW = out_dim(W, q->kw, q->sw, q->pw, q->dw), CK = col->dims[1];
  char px[96], pc[96];
  emit_ptr(ec, n->id, px, sizeof px);
  emit_ptr(ec, col->id, pc, sizeof pc);
  emit_line(o, "/* col2im: add each receptive field back where the forward pass read it */");
  scope_open(o);
  emit_line(o, "dl_real *restrict x = %s + s * %lld;", px, ll(C * H * W));
  emit_line(o, "const dl_real *restrict col = %s + s * %lld;", pc, ll(OH * OW * CK));
  emit_line(o, "memset(x, 0, %lld * sizeof *x);", ll(C * H * W));
  emit_line(o, "for (int oh = 0; oh < %lld; oh++)", ll(OH));
  emit_line(o, "for (int ow = 0; ow < %lld; ow++) {", ll(OW));
  emit_line(o, "const dl_real *field = col + (size_t)(oh * %lld + ow) * %lld;", ll(OW), ll(CK));
  emit_line(o, "DL_NO_UNROLL for (int c = 0; c < %lld; c++)", ll(C));
  emit_line(o, "for (int i = 0; i < %d; i++) {", q->kh);
  emit_line(o, "const int ih = oh * %d - %d + i * %d;", q->sh, q->ph, q->dh);
  emit_line(o, "const dl_real *f = field + (c * %d + i) * %d;", q->kh, q->kw);
  emit_line(o, "if (ih < 0 || ih >= %lld) continue;", ll(H));
  emit_line(o, "dl_real *row = x + ((size_t)c * %lld + ih) * %lld;", ll(H), ll(W));
  /* most fields lie wholly inside the image: a straight add, unrolled */
  emit_line(o, "const int iw0 = ow * %d - %d;", q->sw, q->pw);
  emit_line(o, "if (iw0 >= 0 && iw0 + %d < %lld) {", (q->kw - 1) * q->dw, ll(W));
  emit_line(o, "for (int j = 0; j < %d; j++) row[iw0 + j * %d] += f[j];", q->kw, q->dw);
  emit_line(o, "continue;");
  emit_line(o, "}");
  emit_line(o, "for (int j = 0; j < %d; j++) {", q->kw);
  emit_line(o, "const int iw = iw0 + j * %d;", q->dw);
  emit_line(o, "if (iw >= 0 && iw < %lld) row[iw] += f[j];", ll(W));
  emit_line(o, "}");
  emit_line(o, "}");
  emit_line(o, "}");
  scope_close(o);
}

/* `static const dl_conv_shape q` of the convolution whose padded image is
 * node pad, with OC output channels: what the runtime's conv2d calls read. */
static void emit_shape(emit_text *o, const ir_graph *g, const ir_node *pad, int64_t OC) {
  const ir_conv_attr *q = &pad->conv;
  const ir_node *x = &g->nodes[pad->in[0]];
  int64_t H = x->dims[1], W = x->dims[2];
  emit_line(o, "static const dl_conv_shape q = {.C = %lld, .H = %lld, .W = %lld, .OC = %lld, "
               ".OH = %lld, .OW = %lld,", ll(x->dims[0]), ll(H), ll(W), ll(OC),
            ll(out_dim(H, q->kh, q->sh, q->ph, q->dh)), ll(out_dim(W, q->kw, q->sw, q->pw, q->dw)));
  emit_line(o, "    .KH = %d, .KW = %d, .SH = %d, .SW = %d, .PH = %d, .PW = %d, .DH = %d, .DW = %d, "
               ".groups = %d};", q->kh, q->kw, q->sh, q->sw, q->ph, q->pw, q->dh, q->dw, q->groups);
}

/* Sample s's padded image. */
static void body_pad(emit_ctx *ec, emit_text *o, const ir_node *n) {
  const ir_node *x = &ec->g->nodes[n->in[0]];
  char px[96], pp[96];
  emit_ptr(ec, x->id, px, sizeof px);
  emit_ptr(ec, n->id, pp, sizeof pp);
  emit_line(o, "/* the zero-padded image, which the implicit GEMMs read */");
  emit_line(o, "dl_conv2d_pad(%lld, %lld, %lld, %d, %d, %s + s * %lld, %s + s * %lld);",
            ll(x->dims[0]), ll(x->dims[1]), ll(x->dims[2]), n->conv.ph, n->conv.pw, px,
            ll(ir_numel(x)), pp, ll(n->dims[0]));
}

/* Sample s's product y_s = W . fields(xpad_s), one implicit GEMM per group. */
static void body_conv_forward(emit_ctx *ec, emit_text *o, const ir_node *n) {
  const ir_node *pad = &ec->g->nodes[n->in[0]];
  char pp[96], pw[96], py[96];
  emit_ptr(ec, pad->id, pp, sizeof pp);
  emit_ptr(ec, n->in[1], pw, sizeof pw);
  emit_ptr(ec, n->id, py, sizeof py);
  emit_line(o, "/* y_s[%lld, %lld] = W . fields(xpad_s), no im2col in memory */", ll(n->dims[0]),
            ll(n->dims[1] * n->dims[2]));
  scope_open(o);
  emit_shape(o, ec->g, pad, n->dims[0]);
  emit_line(o, "for (int g = 0; g < %d; g++)", pad->conv.groups);
  emit_line(o, "dl_conv2d_forward(&q, g, %s + s * %lld, %s, %s + s * %lld);", pp,
            ll(pad->dims[0]), pw, py, ll(ir_numel(n)));
  scope_close(o);
}

/* conv_out: y[s, oc, p] = act(yr[s, oc, p] + b[oc]), in one pass over the
 * sample's output while it is in cache. */
static void body_conv_out(emit_ctx *ec, emit_text *o, const ir_node *n) {
  ir_graph *g = ec->g;
  const ir_node *act = n->epilogue >= 0 ? &g->nodes[n->epilogue] : NULL;
  int64_t OC = n->dims[0], P = ir_numel(n) / OC;
  char pin[96], pout[96], pb[96], e[256];
  emit_ptr(ec, n->in[0], pin, sizeof pin);
  emit_ptr(ec, act ? act->id : n->id, pout, sizeof pout);
  emit_line(o, "/* y[s, oc, p] = %s(yr[s, oc, p]%s) */", act ? ir_op_name(act->op) : "",
            n->nin == 2 ? " + b[oc]" : "");
  scope_open(o);
  emit_line(o, "const dl_real *restrict in = %s + s * %lld;", pin, ll(OC * P));
  emit_line(o, "dl_real *restrict out = %s + s * %lld;", pout, ll(OC * P));
  if (n->nin == 2) {
    emit_ptr(ec, n->in[1], pb, sizeof pb);
    emit_line(o, "const dl_real *restrict b = %s;", pb);
  }
  emit_line(o, "DL_NO_UNROLL for (int oc = 0; oc < %lld; oc++)", ll(OC));
  emit_line(o, "DL_ELEMENTWISE for (int p = 0; p < %lld; p++) {", ll(P));
  emit_line(o, "const dl_real v = in[oc * %lld + p]%s;", ll(P), n->nin == 2 ? " + b[oc]" : "");
  emit_line(o, "out[oc * %lld + p] = %s;", ll(P), act ? activation_expr(act, "v", e, sizeof e) : "v");
  emit_line(o, "}");
  scope_close(o);
}

/* Sample s's column gradient dcolT_s [P, CK] = dy_s^T . W, per group. */
static void body_dcol(emit_ctx *ec, emit_text *o, const ir_node *n) {
  const ir_node *dy = &ec->g->nodes[n->in[0]];
  int groups = n->conv.groups;
  int64_t OC = dy->dims[0], P = dy->dims[1] * dy->dims[2], CK = n->dims[1];
  int64_t OCg = OC / groups, CKg = CK / groups;
  char pdy[96], pw[96], pc[96];
  emit_ptr(ec, dy->id, pdy, sizeof pdy);
  emit_ptr(ec, n->in[1], pw, sizeof pw);
  emit_ptr(ec, n->id, pc, sizeof pc);
  emit_line(o, "/* dcolT_s[%lld, %lld] = dy_s^T . W, per group */", ll(P), ll(CK));
  emit_line(o, "for (int g = 0; g < %d; g++)", groups);
  emit_line(o, "dl_gemm_tn(NULL, %lld, %lld, %lld, %s + s * %lld + (size_t)g * %lld, %lld, "
               "%s + (size_t)g * %lld, %lld,\n"
               "           %s + s * %lld + (size_t)g * %lld, %lld, 0);",
            ll(P), ll(CKg), ll(OCg), pdy, ll(OC * P), ll(OCg * P), ll(P), pw, ll(OCg * CKg),
            ll(CKg), pc, ll(P * CK), ll(CKg), ll(CK));
}

static void body_pool(emit_ctx *ec, emit_text *o, const ir_node *n);

/* A chain of per-sample kernels as one job over the batch: each sample's
 * intermediate results are still in cache when the next kernel reads them. */
static void emit_sample_chain(emit_ctx *ec, const ir_node *const *chain, int len,
                              const char *what, const char *comment) {
  char name[128];
  emit_text o[1] = {{.f = ec->helpers}};
  job_begin(ec, o, chain[0], what, comment, "s", name, sizeof name);
  for (int k = 0; k < len; k++) {
    const ir_node *n = chain[k];
    switch (n->op) {
    case OP_CONV_PAD: body_pad(ec, o, n); break;
    case OP_CONV2D: body_conv_forward(ec, o, n); break;
    case OP_CONV_OUT: body_conv_out(ec, o, n); break;
    case OP_CONV2D_DCOL: body_dcol(ec, o, n); break;
    case OP_MAXPOOL: case OP_AVGPOOL: body_pool(ec, o, n); break;
    default: body_col2im(ec, o, n); break;
    }
  }
  job_footer(o);
  emit_job_call(ec, name, "n", "1");
}

/* dW^T [G, CKg, OCg] summed over the batch, reading each sample's padded
 * image in place (threads share the CKg rows; fixed order of summation). */
static void emit_conv_dw(emit_ctx *ec, const ir_node *n) {
  const ir_node *pad = &ec->g->nodes[n->in[1]], *dy = &ec->g->nodes[n->in[0]];
  char pdy[96], pp[96], pt[96];
  emit_ptr(ec, dy->id, pdy, sizeof pdy);
  emit_ptr(ec, pad->id, pp, sizeof pp);
  emit_ptr(ec, n->id, pt, sizeof pt);
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  emit_line(o, "{");
  emit_line(o, "/* dW^T[g] [%lld, %lld] = sum over the batch of fields(xpad_s) . dy_s^T */",
            ll(n->dims[1]), ll(n->dims[2]));
  emit_shape(o, ec->g, pad, dy->dims[0]);
  emit_line(o, "dl_conv2d_weight_grad(ctx->pool, &q, n, %s, %s, %s);", pp, pdy, pt);
  emit_line(o, "}");
}

/* dW[g*OCg + o, k] = dW^T[g, k, o] */
static void emit_conv_dw_t(emit_ctx *ec, const ir_node *n) {
  const ir_node *t = &ec->g->nodes[n->in[0]];
  int64_t G = t->dims[0], CKg = t->dims[1], OCg = t->dims[2];
  char pt[96], pw[96];
  emit_ptr(ec, n->in[0], pt, sizeof pt);
  emit_ptr(ec, n->id, pw, sizeof pw);
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  emit_line(o, "{");
  emit_line(o, "/* dW[g*%lld + o, k] = dW^T[g, k, o] */", ll(OCg));
  emit_line(o, "const dl_real *restrict t = %s;", pt);
  emit_line(o, "dl_real *restrict dw = %s;", pw);
  emit_line(o, "for (int g = 0; g < %lld; g++)", ll(G));
  emit_line(o, "DL_NO_UNROLL for (int o = 0; o < %lld; o++)", ll(OCg));
  emit_line(o, "DL_NO_UNROLL for (int k = 0; k < %lld; k++)", ll(CKg));
  emit_line(o, "dw[((size_t)g * %lld + o) * %lld + k] = t[((size_t)g * %lld + k) * %lld + o];",
            ll(OCg), ll(CKg), ll(CKg), ll(OCg));
  emit_line(o, "}");
}

/* W' [G][Cg][OCg*KH*KW]: W [G*OCg][Cg][KH][KW] flipped in space with its
 * channels swapped, so that dx = conv(dy padded, W') at stride 1. */
static void emit_conv_dx_weight(emit_ctx *ec, const ir_node *n) {
  const ir_node *w = &ec->g->nodes[n->in[0]];
  int64_t G = n->conv.groups, OCg = w->dims[0] / G, Cg = w->dims[1], KH = w->dims[2];
  int64_t KW = w->dims[3];
  char pw[96], pt[96];
  emit_ptr(ec, w->id, pw, sizeof pw);
  emit_ptr(ec, n->id, pt, sizeof pt);
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  emit_line(o, "{");
  emit_line(o, "/* W'[g, c, oc, i, j] = W[g*%lld + oc, c, %lld - i, %lld - j] */", ll(OCg),
            ll(KH - 1), ll(KW - 1));
  emit_line(o, "const dl_real *restrict w = %s;", pw);
  emit_line(o, "dl_real *restrict t = %s;", pt);
  emit_line(o, "DL_NO_UNROLL for (int g = 0; g < %lld; g++)", ll(G));
  emit_line(o, "DL_NO_UNROLL for (int c = 0; c < %lld; c++)", ll(Cg));
  emit_line(o, "DL_NO_UNROLL for (int oc = 0; oc < %lld; oc++)", ll(OCg));
  emit_line(o, "DL_NO_UNROLL for (int k = 0; k < %lld; k++)", ll(KH * KW));
  emit_line(o, "t[((g * %lld + c) * %lld + oc) * %lld + k] = w[((g * %lld + oc) * %lld + c) * %lld + %lld - k];",
            ll(Cg), ll(OCg), ll(KH * KW), ll(OCg), ll(Cg), ll(KH * KW), ll(KH * KW - 1));
  emit_line(o, "}");
}

/* db[oc] = sum over samples and positions of dy[s, oc, p] */
static void emit_conv_db(emit_ctx *ec, const ir_node *n) {
  const ir_node *dy = &ec->g->nodes[n->in[0]];
  int64_t OC = n->dims[0], P = ir_numel(dy) / OC;
  char pdy[96], pb[96];
  emit_ptr(ec, n->in[0], pdy, sizeof pdy);
  emit_ptr(ec, n->id, pb, sizeof pb);
  emit_text o[1] = {{.f = ec->out, .depth = ec->depth}};
  emit_line(o, "{");
  emit_line(o, "/* db[oc] = sum over samples and positions of dy[s, oc, :] */");
  emit_line(o, "const dl_real *restrict dy = %s;", pdy);
  emit_line(o, "dl_real *restrict db = %s;", pb);
  emit_line(o, "for (int oc = 0; oc < %lld; oc++) {", ll(OC));
  emit_line(o, "dl_real sum = 0;");
  emit_line(o, "for (int s = 0; s < n; s++) sum += dl_sum(dy + ((size_t)s * %lld + oc) * %lld, %lld);",
            ll(OC), ll(P), ll(P));
  emit_line(o, "db[oc] = sum;");
  emit_line(o, "}");
  emit_line(o, "}");
}

/* Pooling windows: for each output (c, oh, ow) the input rows ih in
 * [oh*S - P, oh*S - P + K) clipped to the image, likewise iw. */
static void emit_window(emit_text *o, const ir_conv_attr *q, int64_t H, int64_t W, int64_t OH, int64_t OW) {
  emit_line(o, "for (int oh = 0; oh < %lld; oh++)", ll(OH));
  emit_line(o, "for (int ow = 0; ow < %lld; ow++) {", ll(OW));
  emit_line(o, "const int h0 = oh * %d - %d, w0 = ow * %d - %d;", q->sh, q->ph, q->sw, q->pw);
  if (q->ph == 0 && q->pw == 0) {
    /* no padding: every window lies inside the image (OH, OW say so), and
     * constant bounds let the C compiler unroll it */
    emit_line(o, "const int ha = h0, hb = h0 + %d, wa = w0, wb = w0 + %d;", q->kh, q->kw);
    return;
  }
  emit_line(o, "const int ha = h0 < 0 ? 0 : h0, hb = h0 + %d > %lld ? %lld : h0 + %d;",
            q->kh, ll(H), ll(H), q->kh);
  emit_line(o, "const int wa = w0 < 0 ? 0 : w0, wb = w0 + %d > %lld ? %lld : w0 + %d;",
            q->kw, ll(W), ll(W), q->kw);
}

/* maxpool without padding, one output row at a time with ow innermost, so
 * the C compiler vectorises across the row (a window at a time is a chain of
 * unpredictable branches).  Windows are visited in torch's order, so the
 * first maximum (or NaN) is the one that takes the gradient. */
/* Windows side by side, no gaps, no overlap, no padding. */
static int tiles(const ir_conv_attr *q) {
  return q->sh == q->kh && q->sw == q->kw && q->ph == 0 && q->pw == 0;
}

static void emit_maxpool_rows(emit_text *o, const ir_conv_attr *q, int64_t W, int64_t OH, int64_t OW, int grad,
                              const char *routed) {
  /* at[ow] = i*KW + j of the window's maximum so far: small constants
   * compared and selected lane by lane.  clang (dlnc build's default)
   * vectorises along ow: 4x faster than two passes over flat arrays for
   * fashion_cnn's 2x2 pool backward; gcc 12 does not, and is ~25% slower. */
  emit_line(o, "for (int oh = 0; oh < %lld; oh++) {", ll(OH));
  emit_line(o, "dl_real m[%lld];", ll(OW));
  if (grad) emit_line(o, "int at[%lld];", ll(OW));
  emit_line(o, "const dl_real *x0 = x + oh * %lld;", ll(q->sh * W));
  emit_line(o, "for (int ow = 0; ow < %lld; ow++) {", ll(OW));
  emit_line(o, "m[ow] = x0[ow * %d];", q->sw);
  if (grad) emit_line(o, "at[ow] = 0;");
  emit_line(o, "}");
  emit_line(o, "for (int i = 0; i < %d; i++)", q->kh);
  emit_line(o, "for (int j = 0; j < %d; j++) {", q->kw);
  emit_line(o, "const dl_real *r = x0 + i * %lld + j;", ll(W));
  emit_line(o, "for (int ow = 0; ow < %lld; ow++) {", ll(OW));
  emit_line(o, "const dl_real v = r[ow * %d];", q->sw);
  emit_line(o, "const int better = (v > m[ow]) | ((v != v) & (m[ow] == m[ow]));");
  emit_line(o, "m[ow] = better ? v : m[ow];");
  if (grad) emit_line(o, "at[ow] = better ? i * %d + j : at[ow];", q->kw);
  emit_line(o, "}");
  emit_line(o, "}");
  if (grad && tiles(q)) {
    /* windows tile the image: every dx in this row of windows is written
     * once, dy at the maximum and 0 elsewhere, no scatter */
    emit_line(o, "dl_real g[%lld];", ll(OW));
    emit_line(o, "for (int ow = 0; ow < %lld; ow++) g[ow] = %s;", ll(OW), routed);
    emit_line(o, "for (int i = 0; i < %d; i++)", q->kh);
    emit_line(o, "for (int j = 0; j < %d; j++) {", q->kw);
    emit_line(o, "dl_real *d = dx + oh * %lld + i * %lld + j;", ll(q->sh * W), ll(W));
    emit_line(o, "for (int ow = 0; ow < %lld; ow++) d[ow * %d] = at[ow] == i * %d + j ? g[ow] : 0;",
              ll(OW), q->sw, q->kw);
    emit_line(o, "}");
  } else if (grad) {
    emit_line(o, "for (int ow = 0; ow < %lld; ow++)", ll(OW));
    emit_line(o, "dx[oh * %lld + at[ow] / %d * %lld + ow * %d + at[ow] %% %d] += %s;",
              ll(q->sh * W), q->kw, ll(W), q->sw, q->kw, routed);
  } else {
    emit_line(o, "memcpy(y + oh * %lld, m, sizeof m);", ll(OW));
  }
  emit_line(o, "}");
}

/* max: the first largest element of each window, as torch picks it (a NaN
 * wins); avg: the window's sum over K*K, or over its part inside the image
 * when count_include_pad is false.  Backward routes dy the same way. */
static void emit_pool_windows(emit_text *o, const ir_conv_attr *q, int64_t H, int64_t W, int64_t OH, int64_t OW,
                              int is_max, int grad, const char *routed);

/* One plane of a pool or its gradient, sample s and channel c (variables
 * of the code around it). */
static void emit_pool_plane(emit_ctx *ec, emit_text *o, const ir_node *n) {
  int grad = n->op == OP_MAXPOOL_GRAD || n->op == OP_AVGPOOL_GRAD;
  int is_max = n->op == OP_MAXPOOL || n->op == OP_MAXPOOL_GRAD;
  const ir_node *x = grad ? n : &ec->g->nodes[n->in[0]];
  const ir_conv_attr *q = &n->conv;
  int64_t C = x->dims[0], H = x->dims[1], W = x->dims[2];
  int64_t OH = out_dim(H, q->kh, q->sh, q->ph, 1), OW = out_dim(W, q->kw, q->sw, q->pw, 1);
  char px[96] = "", py[96];
  if (!grad || is_max) emit_ptr(ec, grad ? n->in[1] : n->in[0], px, sizeof px);
  emit_ptr(ec, grad ? n->in[0] : n->id, py, sizeof py);
  /* forward: x -> y; max backward: x, dy -> dx; avg backward: dy -> dx */
  if (!grad || is_max)
    emit_line(o, "const dl_real *restrict x = %s + (s * %lld + c) * %lld;", px, ll(C), ll(H * W));
  emit_line(o, "%s *restrict %s = %s + (s * %lld + c) * %lld;",
            grad ? "const dl_real" : "dl_real", grad ? "dy" : "y", py, ll(C), ll(OH * OW));
  if (grad) {
    char pdx[96];
    emit_ptr(ec, n->id, pdx, sizeof pdx);
    emit_line(o, "dl_real *restrict dx = %s + (s * %lld + c) * %lld;", pdx, ll(C), ll(H * W));
    /* all of dx is written below when the windows tile the whole image */
    if (!(is_max && tiles(q) && OH * q->kh == H && OW * q->kw == W))
      emit_line(o, "memset(dx, 0, %lld * sizeof *dx);", ll(H * W));
  }
  /* what maxpool backward adds at a window's maximum: dy, or dy * act'(x)
   * with the activation gradient fused in */
  char routed[300], dyv[64], xv[32];
  const ir_node *ag = grad && is_max && n->epilogue >= 0 ? &ec->g->nodes[n->epilogue] : NULL;
  snprintf(dyv, sizeof dyv, "dy[oh * %lld + ow]", ll(OW));
  snprintf(xv, sizeof xv, q->ph || q->pw ? "m" : "m[ow]");
  if (ag) activation_grad_expr(ag->act.fwd, ag->act.slope, dyv, xv, xv, routed, sizeof routed);
  else snprintf(routed, sizeof routed, "%s", dyv);
  if (ag) emit_line(o, "/* fused: dy * %s'(x) at each maximum x */", ir_op_name(ag->act.fwd));
  if (is_max && q->ph == 0 && q->pw == 0) {
    emit_maxpool_rows(o, q, W, OH, OW, grad, routed);
  } else {
    emit_pool_windows(o, q, H, W, OH, OW, is_max, grad, routed);
  }
}

static const char *pool_comment(const ir_node *n) {
  switch (n->op) {
  case OP_MAXPOOL_GRAD: return "maxpool backward: dy to the first maximum of each window";
  case OP_AVGPOOL_GRAD: return "avgpool backward: dy spread evenly over each window";
  case OP_MAXPOOL: return "maxpool: the largest element of each window";
  default: return "avgpool: the mean of each window";
  }
}

/* A pool as a job over the batch's planes. */
static void emit_pool(emit_ctx *ec, const ir_node *n) {
  int grad = n->op == OP_MAXPOOL_GRAD || n->op == OP_AVGPOOL_GRAD;
  int64_t C = (grad ? n : &ec->g->nodes[n->in[0]])->dims[0];
  char name[128], count[48];
  emit_text o[1] = {{.f = ec->helpers}};
  job_begin(ec, o, n, n->op == OP_MAXPOOL || n->op == OP_MAXPOOL_GRAD ? "maxpool" : "avgpool",
            pool_comment(n), "sc", name, sizeof name);
  emit_line(o, "const int64_t s = sc / %lld, c = sc %% %lld;", ll(C), ll(C));
  emit_pool_plane(ec, o, n);
  job_footer(o);
  snprintf(count, sizeof count, "n * %lld", ll(C));
  emit_job_call(ec, name, count, "1");
}

/* A pool at the end of a convolution's chain: sample s's planes, while the
 * convolution's output is still in cache. */
static void body_pool(emit_ctx *ec, emit_text *o, const ir_node *n) {
  emit_line(o, "/* %s, every channel of this sample */", pool_comment(n));
  scope_open(o);
  emit_line(o, "for (int64_t c = 0; c < %lld; c++) {", ll(ec->g->nodes[n->in[0]].dims[0]));
  emit_pool_plane(ec, o, n);
  emit_line(o, "}");
  scope_close(o);
}

/* Any pool, a window at a time (clipped to the image when padded). */
static void emit_pool_windows(emit_text *o, const ir_conv_attr *q, int64_t H, int64_t W, int64_t OH, int64_t OW,
                              int is_max, int grad, const char *routed) {
  emit_window(o, q, H, W, OH, OW);
  char yi[64];
  snprintf(yi, sizeof yi, "oh * %lld + ow", ll(OW));
  if (is_max) {
    emit_line(o, "int best = ha * %lld + wa;", ll(W));
    emit_line(o, "dl_real m = x[best];");
    emit_line(o, "for (int ih = ha; ih < hb; ih++)");
    emit_line(o, "for (int iw = wa; iw < wb; iw++) {");
    emit_line(o, "const dl_real v = x[ih * %lld + iw];", ll(W));
    emit_line(o, "if (v > m || (v != v && m == m)) {");
    emit_line(o, "m = v;");
    emit_line(o, "best = ih * %lld + iw;", ll(W));
    emit_line(o, "}");
    emit_line(o, "}");
    if (grad) {
      emit_line(o, "dx[best] += %s;", routed);
    } else {
      emit_line(o, "(void)best;");
      emit_line(o, "y[%s] = m;", yi);
    }
  } else {
    if (q->count_pad) {
      emit_line(o, "const int h1 = h0 + %d > %lld ? %lld : h0 + %d, w1 = w0 + %d > %lld ? %lld : w0 + %d;",
                q->kh, ll(H + q->ph), ll(H + q->ph), q->kh, q->kw, ll(W + q->pw), ll(W + q->pw), q->kw);
      emit_line(o, "const dl_real inv = (dl_real)1 / (dl_real)((h1 - h0) * (w1 - w0));");
    } else {
      emit_line(o, "const dl_real inv = (dl_real)1 / (dl_real)((hb - ha) * (wb - wa));");
    }
    if (grad) {
      emit_line(o, "const dl_real g = dy[%s] * inv;", yi);
      emit_line(o, "for (int ih = ha; ih < hb; ih++)");
      emit_line(o, "for (int iw = wa; iw < wb; iw++) dx[ih * %lld + iw] += g;", ll(W));
    } else {
      emit_line(o, "dl_real sum = 0;");
      emit_line(o, "for (int ih = ha; ih < hb; ih++)");
      emit_line(o, "for (int iw = wa; iw < wb; iw++) sum += x[ih * %lld + iw];", ll(W));
      emit_line(o, "y[%s] = sum * inv;", yi);
    }
  }
  emit_line(o, "}"); /* the window's loop (emit_window) */
}

/* conv_emit runs exactly im2col -> conv2d -> conv_out and conv2d_dcol -> col2im
 * as per-sample chains (fuse.c finds them by these flags of ops.def) */
_Static_assert(OPF_OF_CONV2D & OPF_CHAIN_LINK, "conv2d links a chain");
_Static_assert(OPF_OF_CONV_PAD & OPF_CHAIN_HEAD, "conv_pad heads a chain");
_Static_assert(OPF_OF_CONV_OUT & OPF_CHAIN_END, "conv_out ends a chain");
_Static_assert(OPF_OF_MAXPOOL & OPF_OF_AVGPOOL & OPF_CHAIN_TAIL, "a pool may follow it");
_Static_assert(OPF_OF_CONV2D_DCOL & OPF_CHAIN_HEAD, "conv2d_dcol heads a chain");
_Static_assert(OPF_OF_COL2IM & OPF_CHAIN_END, "col2im ends a chain");
_Static_assert(OPF_OF_CONV_OUT & OPF_EPILOGUE_HOST, "conv_out applies its epilogue (ops.def)");

void conv_emit(emit_ctx *ec, const ir_node *n) {
  const ir_node *next = n + 1, *next2 = n + 2; /* a chain's members follow its head (fuse.c) */
  switch (n->op) {
  case OP_CONV_PAD:
    if (n->chain >= 3) {
      /* the members: all but the activation, which conv_out applies */
      const ir_node *chain[4] = {n, next, next2, n + 4};
      int tail = n->chain == 5;
      emit_sample_chain(ec, chain, 3 + tail, "conv", tail
                        ? "conv2d forward, one sample at a time: the padded image, the implicit "
                          "GEMM, the bias and activation, the pool"
                        : "conv2d forward, one sample at a time: the padded image, the implicit "
                          "GEMM, the bias and activation");
      break;
    }
    if (n->chain == 2) {
      const ir_node *chain[2] = {n, next};
      emit_sample_chain(ec, chain, 2, "conv_dx", "conv2d input gradient as a convolution, one "
                        "sample at a time: dy padded, the implicit GEMM with W flipped");
      break;
    }
    emit_sample_chain(ec, &n, 1, "conv_pad", "conv2d's padded image");
    break;
  case OP_CONV2D_DCOL:
    if (n->chain) {
      const ir_node *chain[2] = {n, next};
      emit_sample_chain(ec, chain, 2, "conv_dx", "conv2d input gradient, one sample at a time: "
                        "dcolT = dy^T W, then col2im while it is in cache");
      break;
    }
    /* fall through */
  case OP_COL2IM: case OP_CONV_OUT: case OP_CONV2D:
    emit_sample_chain(ec, &n, 1, ir_op_name(n->op), ir_op_name(n->op));
    break;
  case OP_CONV2D_DW: emit_conv_dw(ec, n); break;
  case OP_CONV2D_DW_T: emit_conv_dw_t(ec, n); break;
  case OP_CONV2D_DX_W: emit_conv_dx_weight(ec, n); break;
  case OP_CONV2D_DB: emit_conv_db(ec, n); break;
  default: emit_pool(ec, n); break;
  }
}

/* ---- ONNX ------------------------------------------------------------------- */

static void conv_geometry(onnx_ctx *oc, const ir_conv_attr *c, int dilations) {
  int64_t k[2] = {c->kh, c->kw}, s[2] = {c->sh, c->sw}, p[4] = {c->ph, c->pw, c->ph, c->pw};
  int64_t d[2] = {c->dh, c->dw};
  onnx_attr_ints(oc, "kernel_shape", 2, k);
  onnx_attr_ints(oc, "strides", 2, s);
  onnx_attr_ints(oc, "pads", 4, p);
  if (dilations) onnx_attr_ints(oc, "dilations", 2, d);
}

/* conv2d is one Conv at conv_out, reading conv_pad's input and geometry and
 * conv2d's weight (conv_pad and the GEMM declare nothing); the pools, and
 * global_avgpool as GlobalAveragePool then Flatten. */
void conv_onnx(onnx_ctx *oc, const ir_node *n) {
  const ir_graph *g = onnx_graph(oc);
  switch (n->op) {
  case OP_CONV_OUT: {
    const ir_node *gemm = &g->nodes[n->in[0]], *col = &g->nodes[gemm->in[0]];
    const char *in[3] = {onnx_value(oc, col->in[0]), onnx_value(oc, gemm->in[1]),
                         n->nin > 1 ? onnx_value(oc, n->in[1]) : ""};
    conv_geometry(oc, &col->conv, 1);
    onnx_attr_int(oc, "group", col->conv.groups);
    onnx_node(oc, n, "Conv", NULL, n->nin > 1 ? 3 : 2, in);
    return;
  }
  case OP_MAXPOOL:
    conv_geometry(oc, &n->conv, 0);
    onnx_unary(oc, n, "MaxPool");
    return;
  case OP_AVGPOOL:
    if (n->ndim == 1) {
      const char *in[1] = {onnx_value(oc, n->in[0])};
      in[0] = onnx_node(oc, n, "GlobalAveragePool", onnx_temp(oc, n), 1, in);
      onnx_attr_int(oc, "axis", 1);
      onnx_node(oc, n, "Flatten", NULL, 1, in);
      return;
    }
    if (n->conv.count_pad && (n->conv.ph || n->conv.pw)) {
      /* The zeros made explicit with Pad, then a pool without padding: the
       * same means (a window never reaches past the padding), and OpenCV
       * 4.6 ignores count_include_pad = 1 */
      ir_conv_attr c = n->conv;
      int64_t pads[8] = {0, 0, c.ph, c.pw, 0, 0, c.ph, c.pw};
      const char *padded = onnx_binary(oc, n, "Pad", onnx_temp(oc, n), onnx_value(oc, n->in[0]),
                                       onnx_ints(oc, 8, pads));
      c.ph = c.pw = 0;
      conv_geometry(oc, &c, 0);
      const char *in[1] = {padded};
      onnx_node(oc, n, "AveragePool", NULL, 1, in);
      return;
    }
    conv_geometry(oc, &n->conv, 0);
    onnx_attr_int(oc, "count_include_pad", n->conv.count_pad);
    onnx_unary(oc, n, "AveragePool");
    return;
  default: return; /* conv_pad, conv2d: part of conv_out's Conv */
  }
}
