/* ast.c: constructors, freeing and the S-expression dump of the syntax tree.
 *
 * The dump (dlnc check --ast) puts every node on its own line with its
 * location as @LINE:COL, and a name with its own location as NAME@LINE:COL:
 *
 *   (program
 *     (model @1:1 m@1:7
 *       (input @2:3 x@2:9 (type @2:13 f32 784@2:17))
 *       (bind @3:3 h@3:3
 *         (call @3:7 dense
 *           (ident @3:13 x)
 *           (int @3:16 10)
 *           l2@3:20 = (real @3:25 0.0001)))))
 *
 * A type is (type ELEM DIM@LOC...).  Expressions: (int N) and (real X) for
 * numbers written without and with a '.' or an exponent, (str "..."),
 * (ident NAME), (call NAME ARGS...) where a keyword argument is written
 * NAME@LOC = VALUE, (+ A B) and the other binary operators (located at the
 * operator), and (neg A).  Parentheses leave no node. */
#include "ast.h"
#include <stdlib.h>
#include <string.h>

void *ast_xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) {
    fprintf(stderr, "dlnc: out of memory\n");
    exit(1);
  }
  return p;
}

/* ---- constructors --------------------------------------------------------- */

static ast_expr *new_expr(ast_expr_kind kind, dl_loc loc) {
  ast_expr *e = ast_xrealloc(NULL, sizeof *e);
  memset(e, 0, sizeof *e);
  e->kind = kind;
  e->loc = loc;
  return e;
}

ast_expr *ast_num(dl_loc loc, double v, int is_int) {
  ast_expr *e = new_expr(EX_NUM, loc);
  e->num = v;
  e->is_int = is_int;
  return e;
}

ast_expr *ast_string(dl_loc loc, char *s) {
  ast_expr *e = new_expr(EX_STR, loc);
  e->str = s;
  return e;
}

ast_expr *ast_ident(dl_loc loc, char *name) {
  ast_expr *e = new_expr(EX_IDENT, loc);
  e->str = name;
  return e;
}

ast_expr *ast_call(dl_loc loc, char *callee, ast_arg *args, int nargs) {
  ast_expr *e = new_expr(EX_CALL, loc);
  e->str = callee;
  e->args = args;
  e->nargs = nargs;
  return e;
}

ast_expr *ast_binop(dl_loc loc, char op, ast_expr *lhs, ast_expr *rhs) {
  ast_expr *e = new_expr(EX_BINOP, loc);
  e->op = op;
  e->lhs = lhs;
  e->rhs = rhs;
  return e;
}

ast_expr *ast_neg(dl_loc loc, ast_expr *operand) {
  ast_expr *e = new_expr(EX_NEG, loc);
  e->lhs = operand;
  return e;
}

/* ---- freeing ---------------------------------------------------------------- */

void ast_expr_free(ast_expr *e) {
  if (!e) return;
  free(e->str);
  ast_expr_free(e->lhs);
  ast_expr_free(e->rhs);
  for (int i = 0; i < e->nargs; i++) {
    free(e->args[i].name);
    ast_expr_free(e->args[i].value);
  }
  free(e->args);
  free(e);
}

static char *copy_str(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  return memcpy(ast_xrealloc(NULL, n), s, n);
}

ast_expr *ast_expr_copy(const ast_expr *e) {
  if (!e) return NULL;
  ast_expr *c = new_expr(e->kind, e->loc);
  *c = *e;
  c->str = copy_str(e->str);
  c->lhs = ast_expr_copy(e->lhs);
  c->rhs = ast_expr_copy(e->rhs);
  if (e->nargs) {
    c->args = ast_xrealloc(NULL, (size_t)e->nargs * sizeof *c->args);
    for (int i = 0; i < e->nargs; i++) {
      c->args[i] = e->args[i];
      c->args[i].name = copy_str(e->args[i].name);
      c->args[i].value = ast_expr_copy(e->args[i].value);
    }
  } else {
    c->args = NULL;
  }
  return c;
}

void ast_stmt_clear(ast_stmt *s) {
  free(s->name);
  free(s->type.elem);
  ast_expr_free(s->value);
  for (int i = 0; i < s->nnames; i++) free(s->names[i]);
  free(s->names);
  free(s->name_locs);
  memset(s, 0, sizeof *s);
}

static void ast_block_clear(ast_block *b) {
  free(b->name);
  for (int i = 0; i < b->nstmts; i++) ast_stmt_clear(&b->stmts[i]);
  free(b->stmts);
  for (int i = 0; i < b->nparams; i++) {
    free(b->params[i].name);
    ast_expr_free(b->params[i].value);
  }
  free(b->params);
  memset(b, 0, sizeof *b);
}

void ast_free(ast_program *p) {
  if (!p) return;
  for (int i = 0; i < p->nblocks; i++) ast_block_clear(&p->blocks[i]);
  free(p->blocks);
  free(p);
}

/* ---- dump ------------------------------------------------------------------- */

static void indent(FILE *out, int depth) {
  fprintf(out, "\n%*s", 2 * depth, "");
}

/* Whole numbers as such (4.0 as 4), others in the shortest "%g" form that
 * reads back as the same double. */
static void put_real(FILE *out, double v) {
  char buf[32];
  if (v > -1e15 && v < 1e15 && v == (double)(long long)v) { /* range first: cast is UB outside */
    fprintf(out, "%lld", (long long)v);
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  fputs(buf, out);
}

static void put_string(FILE *out, const char *s) {
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(out, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f)
      fprintf(out, "\\x%02x", *p);
    else
      fputc(*p, out);
  }
  fputc('"', out);
}

static void dump_expr(const ast_expr *e, FILE *out, int depth) {
  fprintf(out, "(");
  switch (e->kind) {
  case EX_NUM:
    if (e->is_int) {
      fprintf(out, "int @%d:%d %.0f", e->loc.line, e->loc.col, e->num);
    } else {
      fprintf(out, "real @%d:%d ", e->loc.line, e->loc.col);
      put_real(out, e->num);
    }
    break;
  case EX_STR:
    fprintf(out, "str @%d:%d ", e->loc.line, e->loc.col);
    put_string(out, e->str);
    break;
  case EX_IDENT:
    fprintf(out, "ident @%d:%d %s", e->loc.line, e->loc.col, e->str);
    break;
  case EX_CALL:
    fprintf(out, "call @%d:%d %s", e->loc.line, e->loc.col, e->str);
    for (int i = 0; i < e->nargs; i++) {
      indent(out, depth + 1);
      if (e->args[i].name)
        fprintf(out, "%s@%d:%d = ", e->args[i].name, e->args[i].name_loc.line,
                e->args[i].name_loc.col);
      dump_expr(e->args[i].value, out, depth + 1);
    }
    break;
  case EX_BINOP:
    fprintf(out, "%c @%d:%d", e->op, e->loc.line, e->loc.col);
    indent(out, depth + 1);
    dump_expr(e->lhs, out, depth + 1);
    indent(out, depth + 1);
    dump_expr(e->rhs, out, depth + 1);
    break;
  case EX_NEG:
    fprintf(out, "neg @%d:%d", e->loc.line, e->loc.col);
    indent(out, depth + 1);
    dump_expr(e->lhs, out, depth + 1);
    break;
  }
  fprintf(out, ")");
}

static void dump_type(const ast_type *t, FILE *out) {
  fprintf(out, "(type @%d:%d %s", t->loc.line, t->loc.col, t->elem);
  for (int d = 0; d < t->ndims; d++)
    fprintf(out, " %lld@%d:%d", (long long)t->dims[d], t->dim_locs[d].line, t->dim_locs[d].col);
  fprintf(out, ")");
}

static void dump_stmt(const ast_stmt *s, FILE *out, int depth) {
  static const char *const kinds[] = {"input", "label", "bind", "unpack", "return"};
  fprintf(out, "(%s @%d:%d", kinds[s->kind], s->loc.line, s->loc.col);
  if (s->name) fprintf(out, " %s@%d:%d", s->name, s->name_loc.line, s->name_loc.col);
  for (int i = 0; i < s->nnames; i++)
    fprintf(out, " %s@%d:%d", s->names[i], s->name_locs[i].line, s->name_locs[i].col);
  if (s->value) {
    indent(out, depth + 1);
    dump_expr(s->value, out, depth + 1);
  } else if (s->type.elem) {
    fputc(' ', out);
    dump_type(&s->type, out);
  }
  fprintf(out, ")");
}

static const char *block_kw(ast_block_kind k) {
  return k == BLK_MODEL ? "model" : k == BLK_TRAIN ? "train" : "block";
}

void ast_dump(const ast_program *p, FILE *out) {
  fprintf(out, "(program");
  for (int i = 0; i < p->nblocks; i++) {
    const ast_block *b = &p->blocks[i];
    indent(out, 1);
    fprintf(out, "(%s @%d:%d %s@%d:%d", block_kw(b->kind), b->loc.line, b->loc.col, b->name,
            b->name_loc.line, b->name_loc.col);
    for (int j = 0; j < b->nparams; j++) {
      indent(out, 2);
      fprintf(out, "(param %s@%d:%d", b->params[j].name, b->params[j].name_loc.line,
              b->params[j].name_loc.col);
      if (b->params[j].value) {
        fputc(' ', out);
        dump_expr(b->params[j].value, out, 3);
      }
      fputc(')', out);
    }
    for (int j = 0; j < b->nstmts; j++) {
      indent(out, 2);
      dump_stmt(&b->stmts[j], out, 2);
    }
    fprintf(out, ")");
  }
  fprintf(out, ")\n");
}
