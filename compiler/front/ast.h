/* ast.h: the syntax tree of a .dln file, as the parser builds it.
 * It is deliberately generic: a model block, a train block and a reusable
 * block (with its parameters) are all a list of statements, every right-hand side is an expression, and calls are
 * resolved by name in sema (compiler/ir/lower.c), not by the grammar.
 * That keeps the grammar small and lets new ops need no parser change. */
#ifndef DLNC_AST_H
#define DLNC_AST_H
#include <stdint.h>
#include <stdio.h>
#include "diag.h"

typedef enum {
  EX_NUM,     /* 1e-3, 256                     num, is_int            */
  EX_STR,     /* "train.gz"                    str                    */
  EX_IDENT,   /* h1, he_normal, true           str                    */
  EX_CALL,    /* dense(h1, 128, bias = false)  str = callee, args     */
  EX_BINOP,   /* a + b, a - b, a * b, a / b    op, lhs, rhs           */
  EX_NEG,     /* -a                            lhs                    */
} ast_expr_kind;

typedef struct ast_expr ast_expr;

typedef struct ast_arg {
  char *name;          /* keyword argument name, or NULL if positional */
  dl_loc name_loc;
  ast_expr *value;
} ast_arg;

struct ast_expr {
  ast_expr_kind kind;
  dl_loc loc;          /* first character of the expression (of the operator for EX_BINOP) */
  double num;
  int is_int;          /* EX_NUM written without '.', 'e' */
  char *str;
  char op;             /* '+', '-', '*', '/' */
  ast_expr *lhs, *rhs;
  ast_arg *args;
  int nargs;
};

/* `f32[784]`, `f32[28, 28]`, `class[10]`, `f32` */
typedef struct ast_type {
  char *elem;
  dl_loc loc;
  int64_t dims[8];
  dl_loc dim_locs[8];
  int ndims;
} ast_type;

typedef enum {
  ST_INPUT,            /* input NAME : TYPE   */
  ST_LABEL,            /* label NAME : TYPE   */
  ST_BIND,             /* NAME = EXPR         */
  ST_UNPACK,           /* A, B, ... = EXPR    names */
  ST_RETURN,           /* return A, B, ...    names (in a block) */
} ast_stmt_kind;

typedef struct ast_stmt {
  ast_stmt_kind kind;
  dl_loc loc;          /* start of the statement */
  char *name;          /* NULL for ST_UNPACK and ST_RETURN */
  dl_loc name_loc;
  ast_type type;       /* ST_INPUT, ST_LABEL (elem NULL: `input x` in a block, no type) */
  ast_expr *value;     /* ST_BIND, ST_UNPACK */
  char **names;        /* ST_UNPACK, ST_RETURN */
  dl_loc *name_locs;
  int nnames;
} ast_stmt;

typedef enum { BLK_MODEL, BLK_TRAIN, BLK_BLOCK } ast_block_kind;

typedef struct ast_block {
  ast_block_kind kind;
  char *name;
  dl_loc loc, name_loc;
  ast_stmt *stmts;
  int nstmts;
  ast_arg *params;     /* BLK_BLOCK: NAME [= default] (value NULL: none) */
  int nparams;
} ast_block;

typedef struct ast_program {
  ast_block *blocks;
  int nblocks;
} ast_program;

/* Parse `text` (diag_set_source must have been called).  Syntax errors are
 * reported through diag; returns NULL if any were. */
ast_program *parse_program(const char *text);
void ast_free(ast_program *p);
/* Writes the tree as an S-expression (for parser tests: dlnc check --ast). */
void ast_dump(const ast_program *p, FILE *out);

/* ---- building the tree (parser.y; ast.c) ----------------------------------
 * Constructors take ownership of the strings and subtrees they are given and
 * exit with "out of memory" if malloc fails. */
ast_expr *ast_num(dl_loc loc, double v, int is_int);
ast_expr *ast_string(dl_loc loc, char *s);
ast_expr *ast_ident(dl_loc loc, char *name);
ast_expr *ast_call(dl_loc loc, char *callee, ast_arg *args, int nargs);
ast_expr *ast_binop(dl_loc loc, char op, ast_expr *lhs, ast_expr *rhs);
ast_expr *ast_neg(dl_loc loc, ast_expr *e);
void ast_expr_free(ast_expr *e);
void ast_stmt_clear(ast_stmt *s);     /* frees what the statement owns */
/* A deep copy of e (for lowering a block's body once per application). */
ast_expr *ast_expr_copy(const ast_expr *e);
void *ast_xrealloc(void *p, size_t n);

#endif
