/* parser.y: the grammar of .dln files (docs/language.md has the same EBNF).
 *
 * A pure parser over the reentrant scanner in lexer.l.  It builds the
 * generic tree of ast.h: calls are not checked here (sema resolves names),
 * only the syntax, and the shape of types: dimensions must be positive
 * integers, at most 8 of them.
 *
 * Error recovery.  After a syntax error the parser pops back to the
 * statement list of the enclosing block (or to the top level) and asks the
 * scanner to skip to where a new statement (or block) starts: see
 * lex_skip() in lexer.l.  The scanner then sends SYNC, which completes the
 * error rule, and the parser goes on reporting errors right away (yyerrok).
 * A block header without its '{' skips to the block's '}'.  The tree built
 * around errors is thrown away: parse_program returns NULL. */

%require "3.8"
%define api.pure full
%define parse.error custom
%locations
%param {yyscan_t scanner}
%parse-param {ast_program *prog}

%code requires {
#include "ast.h"
#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif

/* A number token: its value, whether it was written as an integer, and
 * whether it was malformed (already reported; keeps the parser quiet). */
typedef struct dl_numtok {
  double v;
  int is_int, bad;
} dl_numtok;

/* An expression while parsing, with the depth of its tree (see deep()). */
typedef struct dl_xp { ast_expr *e; int depth; } dl_xp;
typedef struct dl_argtok { ast_arg a; int depth; } dl_argtok;

/* Growable lists while parsing. */
typedef struct arg_list { ast_arg *v; int n, cap, depth; } arg_list;
typedef struct stmt_list { ast_stmt *v; int n, cap; } stmt_list;
typedef struct name_list { char **v; dl_loc *locs; int n, cap; } name_list;
}

%code provides {
int yylex(YYSTYPE *val, YYLTYPE *loc, yyscan_t scanner);
/* lexer.l: the scanner over `text` (not copied), and its end. */
yyscan_t lex_open(const char *text);
void lex_close(yyscan_t scanner);
/* lexer.l: skip to the next statement (SKIP_STMT) or block (SKIP_TOP). */
enum { SKIP_STMT = 1, SKIP_TOP = 2 };
void lex_skip(yyscan_t scanner, int level);
/* lexer.l: skipping stopped at end of file (then the parser stays quiet:
 * what is missing at the end is most likely a consequence of the error). */
int lex_synced_at_eof(yyscan_t scanner);
/* lexer.l: the parser's lookahead, or the token before it, had a lexical
 * error (a syntax error there is most likely a consequence: not reported). */
int lex_recent_error(yyscan_t scanner);
}

%code {
#include <stdlib.h>
#include <string.h>

static void yyerror(YYLTYPE *loc, yyscan_t scanner, ast_program *prog, const char *msg);
static dl_loc at(YYLTYPE l) { return (dl_loc){l.first_line, l.first_column}; }
enum { MAX_EXPR_DEPTH = 256 };
#define DEPTH2(a, b) (((a).depth > (b).depth ? (a).depth : (b).depth) + 1)
static dl_xp deep(ast_expr *e, int depth);
static arg_list *args_push(arg_list *l, dl_argtok a);
static void args_free(arg_list *l);
static stmt_list *stmts_push(stmt_list *l, ast_stmt *s);
static void stmts_free(stmt_list *l);
static ast_stmt *new_stmt(ast_stmt_kind kind, YYLTYPE loc, char *name, YYLTYPE name_loc);
static ast_type *type_dim(ast_type *t, dl_numtok n, YYLTYPE loc);
static void add_block(ast_program *prog, ast_block_kind kind, YYLTYPE loc, char *name,
                      YYLTYPE name_loc, stmt_list *body);
static name_list *names_push(name_list *l, char *name, YYLTYPE loc);
static void names_free(name_list *l);
static ast_stmt *names_stmt(ast_stmt_kind kind, YYLTYPE loc, name_list *names);
}

%union {
  char *str;
  dl_numtok num;
  dl_xp xp;
  dl_argtok arg;
  arg_list *args;
  ast_type *type;
  ast_stmt *stmt;
  stmt_list *stmts;
  ast_block_kind kind;
  name_list *names;
}

%token MODEL "'model'" TRAIN "'train'" INPUT "'input'" LABEL "'label'"
%token BLOCK "'block'" RETURN "'return'"
%token <str> IDENT "identifier" STRING "string"
%token <num> NUMBER "number"
/* The punctuation in the order the grammar first used it, which is the
 * order "expecting ..." lists it in (a block's parameters came later). */
%token '{' '}' ';' ':' '=' ']' '[' ','
/* Sent by the scanner where it stops skipping after an error (lex_skip). */
%token SYNC "end of skipped text"

%type <xp> expr term unary primary
%type <arg> arg
%type <args> args
%type <type> type dims
%type <stmt> stmt
%type <stmts> stmts
%type <kind> block_kw
%type <names> names names2
%type <args> params params_opt
%type <arg> param

%destructor { free($$); } <str>
%destructor { ast_expr_free($$.e); } <xp>
%destructor { free($$.a.name); ast_expr_free($$.a.value); } <arg>
%destructor { args_free($$); } <args>
%destructor { if ($$) free($$->elem); free($$); } <type>
%destructor { if ($$) ast_stmt_clear($$); free($$); } <stmt>
%destructor { stmts_free($$); } <stmts>
%destructor { names_free($$); } <names>

%%

/* program = { block } ; */
program:
    %empty
  | program block
  | program error { lex_skip(scanner, SKIP_TOP); if (diag_too_many()) YYABORT; } SYNC
      { if (!lex_synced_at_eof(scanner)) yyerrok; }
  ;

/* block = ( "model" | "train" ) IDENT "{" { stmt [ ";" ] } "}"
 *       | "block" IDENT "(" [ param { "," param } ] ")" "{" { stmt [ ";" ] } "}" ; */
block:
    block_kw IDENT '{' stmts '}'
      { add_block(prog, $1, @1, $2, @2, $4); }
  | block_kw error '}'
      { yyerrok; if (diag_too_many()) YYABORT; }
  | BLOCK IDENT '(' params_opt ')' '{' stmts '}'
      {
        add_block(prog, BLK_BLOCK, @1, $2, @2, $7);
        ast_block *b = &prog->blocks[prog->nblocks - 1];
        if ($4) {
          b->params = $4->v;
          b->nparams = $4->n;
          free($4);
        }
      }
  | BLOCK error '}'
      { yyerrok; if (diag_too_many()) YYABORT; }
  ;

params_opt:
    %empty                { $$ = NULL; }
  | params
  ;

params:
    param                 { $$ = args_push(NULL, $1); }
  | params ',' param      { $$ = args_push($1, $3); }
  ;

/* param = IDENT [ "=" expr ] ; */
param:
    IDENT                 { $$ = (dl_argtok){{$1, at(@1), NULL}, 0}; }
  | IDENT '=' expr        { $$ = (dl_argtok){{$1, at(@1), $3.e}, $3.depth}; }
  ;

/* block_kw = "model" | "train" ; */
block_kw:
    MODEL   { $$ = BLK_MODEL; }
  | TRAIN   { $$ = BLK_TRAIN; }
  ;

/* stmts = { stmt [ ";" ] } ; */
stmts:
    %empty                  { $$ = NULL; }
  | stmts stmt semi_opt     { $$ = stmts_push($1, $2); }
  ;

semi_opt: %empty | ';' ;

/* stmt = "input" IDENT [ ":" type ]
 *      | "label" IDENT ":" type
 *      | IDENT "=" expr
 *      | IDENT "," IDENT { "," IDENT } "=" expr
 *      | "return" IDENT { "," IDENT } ; */
stmt:
    INPUT IDENT ':' type
      { $$ = new_stmt(ST_INPUT, @1, $2, @2); $$->type = *$4; free($4); }
  | INPUT IDENT
      { $$ = new_stmt(ST_INPUT, @1, $2, @2); }
  | names2 '=' expr
      { $$ = names_stmt(ST_UNPACK, @1, $1); $$->value = $3.e; }
  | RETURN names
      { $$ = names_stmt(ST_RETURN, @1, $2); }
  | LABEL IDENT ':' type
      { $$ = new_stmt(ST_LABEL, @1, $2, @2); $$->type = *$4; free($4); }
  | IDENT '=' expr
      { $$ = new_stmt(ST_BIND, @1, $1, @1); $$->value = $3.e; }
  | error { lex_skip(scanner, SKIP_STMT); if (diag_too_many()) YYABORT; } SYNC
      { $$ = NULL; if (!lex_synced_at_eof(scanner)) yyerrok; }
  ;

/* names2 = IDENT "," IDENT { "," IDENT } ;   names = IDENT { "," IDENT } ; */
names2:
    IDENT ',' IDENT       { $$ = names_push(names_push(NULL, $1, @1), $3, @3); }
  | names2 ',' IDENT      { $$ = names_push($1, $3, @3); }
  ;

names:
    IDENT                 { $$ = names_push(NULL, $1, @1); }
  | names ',' IDENT       { $$ = names_push($1, $3, @3); }
  ;

/* type = IDENT [ "[" INT { "," INT } "]" ] ; */
type:
    IDENT
      {
        $$ = ast_xrealloc(NULL, sizeof *$$);
        memset($$, 0, sizeof *$$);
        $$->elem = $1;
        $$->loc = at(@1);
      }
  | dims ']'  { $$ = $1; }
  ;

/* dims = IDENT "[" INT { "," INT } ;   (a type but its "]") */
dims:
    IDENT '[' NUMBER
      {
        $$ = ast_xrealloc(NULL, sizeof *$$);
        memset($$, 0, sizeof *$$);
        $$->elem = $1;
        $$->loc = at(@1);
        $$ = type_dim($$, $3, @3);
      }
  | dims ',' NUMBER  { $$ = type_dim($1, $3, @3); }
  ;

/* expr = term { ( "+" | "-" ) term } ; */
expr:
    term
  | expr '+' term    { $$ = deep(ast_binop(at(@2), '+', $1.e, $3.e), DEPTH2($1, $3)); }
  | expr '-' term    { $$ = deep(ast_binop(at(@2), '-', $1.e, $3.e), DEPTH2($1, $3)); }
  ;

/* term = unary { ( "*" | "/" ) unary } ; */
term:
    unary
  | term '*' unary   { $$ = deep(ast_binop(at(@2), '*', $1.e, $3.e), DEPTH2($1, $3)); }
  | term '/' unary   { $$ = deep(ast_binop(at(@2), '/', $1.e, $3.e), DEPTH2($1, $3)); }
  ;

/* unary = "-" unary | primary ; */
unary:
    '-' unary        { $$ = deep(ast_neg(at(@1), $2.e), $2.depth + 1); }
  | primary
  ;

/* primary = NUMBER | STRING | IDENT
 *         | IDENT "(" [ arg { "," arg } ] ")"
 *         | "(" expr ")" ; */
primary:
    NUMBER                { $$ = deep(ast_num(at(@1), $1.v, $1.is_int), 1); }
  | STRING                { $$ = deep(ast_string(at(@1), $1), 1); }
  | IDENT                 { $$ = deep(ast_ident(at(@1), $1), 1); }
  | IDENT '(' ')'         { $$ = deep(ast_call(at(@1), $1, NULL, 0), 1); }
  | IDENT '(' args ')'
      {
        $$ = deep(ast_call(at(@1), $1, $3->v, $3->n), $3->depth + 1);
        free($3);
      }
  | '(' expr ')'          { $$ = $2; }
  ;

/* args = arg { "," arg } ; */
args:
    arg                   { $$ = args_push(NULL, $1); }
  | args ',' arg          { $$ = args_push($1, $3); }
  ;

/* arg = [ IDENT "=" ] expr ; */
arg:
    expr                  { $$ = (dl_argtok){{NULL, {0, 0}, $1.e}, $1.depth}; }
  | IDENT '=' expr        { $$ = (dl_argtok){{$1, at(@1), $3.e}, $3.depth}; }
  ;

%%

/* As bison's "detailed" messages, but listing up to 6 expected tokens (a
 * statement may start 5 ways; bison's own limit is 4). */
static int yyreport_syntax_error(const yypcontext_t *ctx, yyscan_t scanner, ast_program *prog) {
  enum { MAX_EXPECTED = 6 };
  yysymbol_kind_t expected[MAX_EXPECTED];
  char msg[512];
  int n = yypcontext_expected_tokens(ctx, expected, MAX_EXPECTED);
  yysymbol_kind_t tok = yypcontext_token(ctx);
  size_t k = (size_t)snprintf(msg, sizeof msg, "syntax error, unexpected %s", yysymbol_name(tok));
  for (int i = 0; i < n && k < sizeof msg; i++)
    k += (size_t)snprintf(msg + k, sizeof msg - k, "%s%s", i ? " or " : ", expecting ",
                          yysymbol_name(expected[i]));
  yyerror(yypcontext_location(ctx), scanner, prog, msg);
  return 0;
}

static void yyerror(YYLTYPE *loc, yyscan_t scanner, ast_program *prog, const char *msg) {
  (void)prog;
  if (lex_recent_error(scanner)) return;
  static const char prefix[] = "syntax error, ";
  if (strcmp(msg, "memory exhausted") == 0)
    diag_error(at(*loc), "the program is nested too deeply");
  else if (strncmp(msg, prefix, sizeof prefix - 1) == 0)
    diag_error(at(*loc), "syntax error: %s", msg + sizeof prefix - 1);
  else
    diag_error(at(*loc), "%s", msg);
}

/* Later stages walk expressions recursively, so the parser bounds their
 * depth (which a long chain a + b + c + ... grows as much as parentheses).
 * The first node past the limit is reported and, like every node above it,
 * replaced by a leaf: the tree stays shallow even though the parse fails. */
static dl_xp deep(ast_expr *e, int depth) {
  if (depth <= MAX_EXPR_DEPTH) return (dl_xp){e, depth};
  dl_loc loc = e->loc;
  if (depth == MAX_EXPR_DEPTH + 1)
    diag_error(loc, "expression nested too deeply (the limit is %d levels)", MAX_EXPR_DEPTH);
  ast_expr_free(e);
  return (dl_xp){ast_num(loc, 0, 1), MAX_EXPR_DEPTH + 1};
}

static arg_list *args_push(arg_list *l, dl_argtok a) {
  if (!l) {
    l = ast_xrealloc(NULL, sizeof *l);
    memset(l, 0, sizeof *l);
  }
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 4;
    l->v = ast_xrealloc(l->v, (size_t)l->cap * sizeof *l->v);
  }
  l->v[l->n++] = a.a;
  if (a.depth > l->depth) l->depth = a.depth;
  return l;
}

static void args_free(arg_list *l) {
  if (!l) return;
  for (int i = 0; i < l->n; i++) {
    free(l->v[i].name);
    ast_expr_free(l->v[i].value);
  }
  free(l->v);
  free(l);
}

/* A NULL statement (one that had a syntax error) is left out. */
static stmt_list *stmts_push(stmt_list *l, ast_stmt *s) {
  if (!l) {
    l = ast_xrealloc(NULL, sizeof *l);
    memset(l, 0, sizeof *l);
  }
  if (!s) return l;
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 8;
    l->v = ast_xrealloc(l->v, (size_t)l->cap * sizeof *l->v);
  }
  l->v[l->n++] = *s;
  free(s);
  return l;
}

static name_list *names_push(name_list *l, char *name, YYLTYPE loc) {
  if (!l) {
    l = ast_xrealloc(NULL, sizeof *l);
    memset(l, 0, sizeof *l);
  }
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 4;
    l->v = ast_xrealloc(l->v, (size_t)l->cap * sizeof *l->v);
    l->locs = ast_xrealloc(l->locs, (size_t)l->cap * sizeof *l->locs);
  }
  l->v[l->n] = name;
  l->locs[l->n++] = at(loc);
  return l;
}

static void names_free(name_list *l) {
  if (!l) return;
  for (int i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  free(l->locs);
  free(l);
}

/* A statement of several names (unpacking, return); takes the list. */
static ast_stmt *names_stmt(ast_stmt_kind kind, YYLTYPE loc, name_list *names) {
  ast_stmt *s = new_stmt(kind, loc, NULL, loc);
  s->names = names->v;
  s->name_locs = names->locs;
  s->nnames = names->n;
  free(names);
  return s;
}

static void stmts_free(stmt_list *l) {
  if (!l) return;
  for (int i = 0; i < l->n; i++) ast_stmt_clear(&l->v[i]);
  free(l->v);
  free(l);
}

static ast_stmt *new_stmt(ast_stmt_kind kind, YYLTYPE loc, char *name, YYLTYPE name_loc) {
  ast_stmt *s = ast_xrealloc(NULL, sizeof *s);
  memset(s, 0, sizeof *s);
  s->kind = kind;
  s->loc = at(loc);
  s->name = name;
  s->name_loc = at(name_loc);
  return s;
}

/* Appends a dimension, which must be a positive integer; at most 8. */
static ast_type *type_dim(ast_type *t, dl_numtok n, YYLTYPE loc) {
  int max = (int)(sizeof t->dims / sizeof t->dims[0]);
  if (t->ndims == max) {
    diag_error(at(loc), "a type has at most %d dimensions", max);
    return t;
  }
  if (!n.bad && (!n.is_int || n.v < 1))
    diag_error(at(loc), "dimension must be a positive integer");
  t->dims[t->ndims] = n.is_int && n.v >= 1 ? (int64_t)n.v : 1;
  t->dim_locs[t->ndims] = at(loc);
  t->ndims++;
  return t;
}

static void add_block(ast_program *prog, ast_block_kind kind, YYLTYPE loc, char *name,
                      YYLTYPE name_loc, stmt_list *body) {
  prog->blocks = ast_xrealloc(prog->blocks, (size_t)(prog->nblocks + 1) * sizeof *prog->blocks);
  ast_block *b = &prog->blocks[prog->nblocks++];
  memset(b, 0, sizeof *b);
  b->kind = kind;
  b->name = name;
  b->loc = at(loc);
  b->name_loc = at(name_loc);
  if (body) {
    b->stmts = body->v;
    b->nstmts = body->n;
    free(body);
  }
}

ast_program *parse_program(const char *text) {
  ast_program *prog = ast_xrealloc(NULL, sizeof *prog);
  memset(prog, 0, sizeof *prog);
  int before = diag_error_count();
  yyscan_t scanner = lex_open(text);
  int rc = yyparse(scanner, prog);
  lex_close(scanner);
  if (rc != 0 || diag_error_count() > before) {
    ast_free(prog);
    return NULL;
  }
  return prog;
}
