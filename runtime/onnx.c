/* onnx.c: a model's inference graph (dl_onnx_graph, written into NAME.c by
 * the compiler's emit_onnx.c) and a loaded context's weights as an ONNX
 * ModelProto (opset 17, IR version 8), written atomically.
 *
 * The protobuf encoding is written by hand.  protobuf-c would need the ONNX
 * schema compiled by protoc-c at build time (and a library in every
 * trainer) for what is a handful of fields of ModelProto, GraphProto,
 * NodeProto, AttributeProto, TensorProto and ValueInfoProto: varints,
 * little-endian floats and length-delimited submessages, a few dozen lines.
 * A submessage is encoded into its own buffer first, so its length is known
 * when its parent writes the tag and the length before it. */
#include "onnx.h"
#include "atomic_file.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ONNX_IR_VERSION = 8, ONNX_OPSET = 17 };
/* TensorProto.DataType and AttributeProto.AttributeType */
enum { T_FLOAT = 1, T_INT64 = 7 };
enum { A_FLOAT = 1, A_INT = 2, A_INTS = 7 };

/* ---- the protobuf encoding ------------------------------------------------ */

typedef struct pb {
  unsigned char *p;
  size_t len, cap;
  int oom;
} pb;

static void pb_bytes(pb *b, const void *data, size_t n) {
  if (b->oom) return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    unsigned char *q = realloc(b->p, cap);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q, b->cap = cap;
  }
  if (n) memcpy(b->p + b->len, data, n);
  b->len += n;
}

static void pb_varint(pb *b, uint64_t v) {
  unsigned char buf[10];
  int n = 0;
  do {
    buf[n] = (unsigned char)(v & 0x7f);
    v >>= 7;
    if (v) buf[n] |= 0x80;
    n++;
  } while (v);
  pb_bytes(b, buf, (size_t)n);
}

/* wire types: 0 varint, 2 length-delimited, 5 32-bit */
static void pb_tag(pb *b, int field, int wire) { pb_varint(b, (uint64_t)field << 3 | (unsigned)wire); }
static void pb_int(pb *b, int field, int64_t v) {
  pb_tag(b, field, 0);
  pb_varint(b, (uint64_t)v); /* negative int64: ten bytes, two's complement */
}
static void pb_len(pb *b, int field, const void *data, size_t n) {
  pb_tag(b, field, 2);
  pb_varint(b, n);
  pb_bytes(b, data, n);
}
static void pb_str(pb *b, int field, const char *s) { pb_len(b, field, s, strlen(s)); }
/* Appends sub as a submessage and frees it. */
static void pb_msg(pb *b, int field, pb *sub) {
  if (sub->oom) b->oom = 1;
  pb_len(b, field, sub->p, sub->len);
  free(sub->p);
  *sub = (pb){0};
}
static void pb_float(pb *b, int field, float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  unsigned char le[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                         (unsigned char)(u >> 24)};
  pb_tag(b, field, 5);
  pb_bytes(b, le, 4);
}

/* ---- the messages ---------------------------------------------------------- */

static void attribute(pb *node, const dl_onnx_attr *a) {
  pb m = {0};
  pb_str(&m, 1, a->name);
  if (a->type == DL_ONNX_FLOAT) {
    pb_float(&m, 2, (float)a->f);
    pb_int(&m, 20, A_FLOAT);
  } else if (a->type == DL_ONNX_INT) {
    pb_int(&m, 3, a->i[0]);
    pb_int(&m, 20, A_INT);
  } else {
    for (int k = 0; k < a->n; k++) pb_int(&m, 8, a->i[k]);
    pb_int(&m, 20, A_INTS);
  }
  pb_msg(node, 5, &m);
}

static void node(pb *graph, const dl_onnx_node *n, int index) {
  pb m = {0};
  char name[32];
  for (int k = 0; k < n->nin; k++) pb_str(&m, 1, n->in[k]);
  pb_str(&m, 2, n->out);
  snprintf(name, sizeof name, "n%d", index);
  pb_str(&m, 3, name);
  pb_str(&m, 4, n->op);
  for (int k = 0; k < n->nattr; k++) attribute(&m, &n->attr[k]);
  pb_msg(graph, 1, &m);
}

/* ValueInfoProto of a tensor [batch, dims...] of type elem. */
static void value_info(pb *graph, int field, const char *name, int elem, int ndim,
                       const int64_t *dims) {
  pb shape = {0}, tensor = {0}, type = {0}, vi = {0}, dim = {0};
  pb_str(&dim, 2, "batch");
  pb_msg(&shape, 1, &dim);
  for (int d = 0; d < ndim; d++) {
    pb_int(&dim, 1, dims[d]);
    pb_msg(&shape, 1, &dim);
  }
  pb_int(&tensor, 1, elem);
  pb_msg(&tensor, 2, &shape);
  pb_msg(&type, 1, &tensor);
  pb_str(&vi, 1, name);
  pb_msg(&vi, 2, &type);
  pb_msg(graph, field, &vi);
}

/* ---- initializers ------------------------------------------------------------ */

static const dl_tensor_desc *find_tensor(const dl_model_desc *m, const char *name) {
  for (int i = 0; i < m->n_tensors; i++)
    if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
  return NULL;
}

static int64_t numel_of(const dl_onnx_init *in) {
  int64_t n = 1;
  for (int d = 0; d < in->ndim; d++) n *= in->dims[d];
  return n;
}

/* W = g * v / ||v|| per row (torch's weight_norm, dim 0). */
static void weight_norm(const dl_real *g, const dl_real *v, int64_t rows, int64_t cols, double *w) {
  for (int64_t r = 0; r < rows; r++) {
    double ss = 0;
    for (int64_t c = 0; c < cols; c++) ss += (double)v[r * cols + c] * (double)v[r * cols + c];
    double s = (double)g[r] / sqrt(ss);
    for (int64_t c = 0; c < cols; c++) w[r * cols + c] = (double)v[r * cols + c] * s;
  }
}

/* W = Wo / sigma with sigma = u . (Wo v), u and v as evaluation uses them. */
static void spectral_norm(const dl_real *wo, const dl_real *u, const dl_real *v, int64_t rows,
                          int64_t cols, double *w) {
  double sigma = 0;
  for (int64_t r = 0; r < rows; r++) {
    double wv = 0;
    for (int64_t c = 0; c < cols; c++) wv += (double)wo[r * cols + c] * (double)v[c];
    sigma += (double)u[r] * wv;
  }
  for (int64_t k = 0; k < rows * cols; k++) w[k] = (double)wo[k] / sigma;
}

/* The initializer's values as doubles (n of them); 0, or -1 with a message. */
static int init_values(const dl_ctx *ctx, const dl_onnx_init *in, double *w, int64_t n, char *err,
                       size_t errlen) {
  const dl_tensor_desc *src[3] = {0};
  int nsrc = in->kind == DL_ONNX_INIT_STATE ? 1 : in->kind == DL_ONNX_INIT_WEIGHT_NORM ? 2
             : in->kind == DL_ONNX_INIT_SPECTRAL_NORM ? 3 : 0;
  for (int k = 0; k < nsrc; k++)
    if (!(src[k] = find_tensor(ctx->m, in->src[k]))) {
      snprintf(err, errlen, "the ONNX table names '%s', which model '%s' does not have", in->src[k],
               ctx->m->name);
      return -1;
    }
  /* a state tensor may be repeated to fill its shape (a layer norm's scale
     over every position); a computed weight has the weight's size */
  int64_t have = nsrc ? (int64_t)src[nsrc == 2 ? 1 : 0]->numel : n;
  if (in->kind == DL_ONNX_INIT_STATE ? have == 0 || n % have : have != n) {
    snprintf(err, errlen, "ONNX initializer '%s' has %lld values, tensor '%s' %zu", in->name,
             (long long)n, src[0]->name, src[0]->numel);
    return -1;
  }
  const dl_real *s0 = src[0] ? ctx->state + src[0]->offset : NULL;
  switch (in->kind) {
  case DL_ONNX_INIT_STATE:
    for (int64_t k = 0; k < n; k++) w[k] = (double)s0[k % have];
    return 0;
  case DL_ONNX_INIT_FILL:
    for (int64_t k = 0; k < n; k++) w[k] = in->value;
    return 0;
  case DL_ONNX_INIT_WEIGHT_NORM:
    weight_norm(s0, ctx->state + src[1]->offset, (int64_t)src[0]->numel,
                n / (int64_t)src[0]->numel, w);
    return 0;
  case DL_ONNX_INIT_SPECTRAL_NORM:
    spectral_norm(s0, ctx->state + src[1]->offset, ctx->state + src[2]->offset,
                  (int64_t)src[1]->numel, (int64_t)src[2]->numel, w);
    return 0;
  default: return 0;
  }
}

static int initializer(pb *graph, const dl_ctx *ctx, const dl_onnx_init *in, char *err,
                       size_t errlen) {
  pb m = {0};
  int64_t n = numel_of(in);
  for (int d = 0; d < in->ndim; d++) pb_int(&m, 1, in->dims[d]);
  pb_int(&m, 2, in->kind == DL_ONNX_INIT_INT64S ? T_INT64 : T_FLOAT);
  pb_str(&m, 8, in->name);
  size_t bytes = (size_t)n * (in->kind == DL_ONNX_INIT_INT64S ? 8 : 4);
  unsigned char *raw = malloc(bytes ? bytes : 1);
  double *w = in->kind == DL_ONNX_INIT_INT64S ? NULL : malloc((size_t)(n ? n : 1) * sizeof *w);
  int rc = !raw || (in->kind != DL_ONNX_INIT_INT64S && !w) ? -1 : 0;
  if (rc) snprintf(err, errlen, "out of memory");
  if (rc == 0 && w) rc = init_values(ctx, in, w, n, err, errlen);
  /* raw_data is little-endian whatever the host */
  for (int64_t k = 0; rc == 0 && k < n; k++) {
    if (!w) {
      uint64_t u = (uint64_t)in->ints[k];
      for (int b = 0; b < 8; b++) raw[k * 8 + b] = (unsigned char)(u >> (8 * b));
      continue;
    }
    float f = (float)w[k];
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    for (int b = 0; b < 4; b++) raw[k * 4 + b] = (unsigned char)(u >> (8 * b));
  }
  if (rc == 0) pb_len(&m, 9, raw, bytes);
  free(raw);
  free(w);
  if (rc == 0) pb_msg(graph, 5, &m);
  free(m.p);
  return rc;
}

/* ---- the model ------------------------------------------------------------------ */

static int model(pb *out, const dl_ctx *ctx, char *err, size_t errlen) {
  const dl_model_desc *m = ctx->m;
  const dl_onnx_graph *g = m->onnx;
  pb graph = {0}, opset = {0};
  for (int k = 0; k < g->n_nodes; k++) node(&graph, &g->nodes[k], k);
  pb_str(&graph, 2, m->name);
  for (int k = 0; k < g->n_inits; k++)
    if (initializer(&graph, ctx, &g->inits[k], err, errlen)) {
      free(graph.p);
      return -1;
    }
  value_info(&graph, 11, g->input, T_FLOAT, m->x_ndim, m->x_shape);
  value_info(&graph, 12, g->output, T_FLOAT, g->out_ndim, g->out_dims);
  if (g->output_class) value_info(&graph, 12, g->output_class, T_INT64, g->out_ndim - 1, g->out_dims);
  pb_int(out, 1, ONNX_IR_VERSION);
  pb_str(out, 2, "dlnc");
  pb_str(out, 3, DL_VERSION);
  pb_msg(out, 7, &graph);
  pb_str(&opset, 1, "");
  pb_int(&opset, 2, ONNX_OPSET);
  pb_msg(out, 8, &opset);
  if (out->oom) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  return 0;
}

int dl_onnx_refusal(const dl_model_desc *m, char *err, size_t errlen) {
  if (!m->onnx) {
    snprintf(err, errlen, "model '%s' was compiled without an ONNX table", m->name);
    return -1;
  }
  if (m->onnx->refusal) {
    snprintf(err, errlen, "%s", m->onnx->refusal);
    return -1;
  }
  return 0;
}

int dl_onnx_save(const dl_ctx *ctx, const char *path, char *err, size_t errlen) {
  if (dl_onnx_refusal(ctx->m, err, errlen)) return -1;
  pb out = {0};
  if (model(&out, ctx, err, errlen)) {
    free(out.p);
    return -1;
  }
  dl_af f;
  char why[512];
  int rc = dl_af_open(&f, path, why, sizeof why);
  if (rc == 0 && dl_af_write(&f, out.p, out.len)) {
    snprintf(why, sizeof why, "%s", strerror(errno));
    dl_af_discard(&f);
    rc = -1;
  } else if (rc == 0) {
    rc = dl_af_commit(&f, why, sizeof why);
  }
  free(out.p);
  if (rc) snprintf(err, errlen, "cannot write %s: %s", path, why);
  return rc;
}
