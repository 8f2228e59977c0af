/* driver.c: the dlnc command line.
 *
 *   dlnc check [--ast] FILE.dln
 *   dlnc emit  [--ir] [--f64] FILE.dln -o DIR
 *   dlnc build [--debug] [--f64] [--mpi] [--precision P] [--target T] [-v] FILE.dln -o BIN
 *   dlnc prebuild [--f64] [--precision P] [--target T] [-v] [-o DIR]
 *   dlnc summary [--f64] FILE.dln
 *   dlnc graph [--backward] FILE.dln [-o FILE.dot]
 *   dlnc builtins
 *   dlnc --version
 *
 * Each subcommand is a row of the table below: its name, a one-line summary
 * for `dlnc --help`, its usage text for `dlnc CMD --help`, and the function
 * that runs it.  Exit status: 0 success, 1 errors in the input (or a file
 * that cannot be read or written), 2 bad usage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "../runtime/dl_model.h" /* DL_VERSION: the runtime's and dlnc's, one number */
#include "build.h"
#include "diag.h"
#include "emit.h"
#include "inspect.h"
#include "lower.h"
#include "pipeline.h"

enum { EXIT_OK = 0, EXIT_ERRORS = 1, EXIT_USAGE = 2 };

typedef struct command {
  const char *name;
  const char *summary;
  const char *usage;
  int (*run)(const struct command *self, int argc, char **argv); /* argv[0]: the command */
} command;

/* What a command was given: its flags, the .dln file and -o's value. */
typedef struct options {
  const char *path, *out, *target, *precision;
  int ast, ir, debug, f64, verbose, backward, mpi;
} options;

static int usage_error(const command *c, const char *fmt, const char *arg) {
  fprintf(stderr, "dlnc %s: ", c->name);
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", c->usage);
  return EXIT_USAGE;
}

/* Whether `word` is one of the blank-separated words of `list`. */
static int is_word_of(const char *list, const char *word) {
  size_t n = strlen(word);
  for (const char *p = list; *p;) {
    size_t len = strcspn(p, " ");
    if (len == n && !strncmp(p, word, n)) return 1;
    p += len + (p[len] == ' ');
  }
  return 0;
}

/* What parse_options requires: -o, or no input file at all. */
enum { NEEDS_OUT = 1, NO_FILE = 2 };

/* Parses argv against the flags this command accepts (`allowed` lists them,
 * e.g. "--ast"); returns -1 after printing help (done) or an error.  After
 * "--" every argument is a file name, even one that starts with '-'.
 * `needs`: NEEDS_OUT, NO_FILE or both. */
static int parse_options(const command *c, int argc, char **argv, const char *allowed,
                         int needs, options *o, int *status) {
  memset(o, 0, sizeof *o);
  int files_only = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (files_only || a[0] != '-' || !a[1]) {
      if (needs & NO_FILE) {
        *status = usage_error(c, "unexpected argument '%s'", a);
        return -1;
      }
      if (o->path) {
        *status = usage_error(c, "more than one input file ('%s')", a);
        return -1;
      }
      o->path = a;
      continue;
    }
    if (!strcmp(a, "--")) {
      files_only = 1;
      continue;
    }
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(c->usage, stdout);
      *status = EXIT_OK;
      return -1;
    }
    if (!strncmp(a, "-W", 2) && is_word_of(allowed, "-W")) {
      if (diag_lint_flag(a)) {
        *status = usage_error(c, "unknown warning option '%s' (see 'dlnc lints')", a);
        return -1;
      }
      continue;
    }
    if (!is_word_of(allowed, a)) {
      *status = usage_error(c, "unknown option '%s'", a);
      return -1;
    }
    if (!strcmp(a, "-o") || !strcmp(a, "--target") || !strcmp(a, "--precision")) {
      if (++i == argc) {
        *status = usage_error(c, "%s needs a value", a);
        return -1;
      }
      *(a[1] == 'o' ? &o->out : a[2] == 't' ? &o->target : &o->precision) = argv[i];
    } else if (!strcmp(a, "--ast")) o->ast = 1;
    else if (!strcmp(a, "--ir")) o->ir = 1;
    else if (!strcmp(a, "--debug")) o->debug = 1;
    else if (!strcmp(a, "--f64")) o->f64 = 1;
    else if (!strcmp(a, "--mpi")) o->mpi = 1;
    else if (!strcmp(a, "--backward")) o->backward = 1;
    else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) o->verbose = 1;
  }
  if (!o->path && !(needs & NO_FILE)) {
    *status = usage_error(c, "%s", "no input file");
    return -1;
  }
  if ((needs & NEEDS_OUT) && !o->out) {
    *status = usage_error(c, "%s", "-o is required");
    return -1;
  }
  return 0;
}

static int cmd_check(const command *self, int argc, char **argv) {
  options o;
  int status;
  if (parse_options(self, argc, argv, "--ast -W", 0, &o, &status)) return status;
  ir_graph *g = pipeline_compile(o.path, 0, o.ast ? stdout : NULL);
  status = g ? EXIT_OK : EXIT_ERRORS;
  ir_free(g);
  return status;
}

static int cmd_emit(const command *self, int argc, char **argv) {
  options o;
  int status;
  if (parse_options(self, argc, argv, "--ir --f64 -o -W", NEEDS_OUT, &o, &status)) return status;
  ir_graph *g = pipeline_compile(o.path, 1, NULL);
  if (!g) return EXIT_ERRORS;
  if (o.ir) ir_dump(g, stdout);
  if (mkdir(o.out, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "dlnc: error: cannot create directory %s: %s\n", o.out, strerror(errno));
    ir_free(g);
    return EXIT_ERRORS;
  }
  status = build_check_emit(o.out, g->model_name, o.path) || emit_c(g, o.out, o.f64) ? EXIT_ERRORS
                                                                                   : EXIT_OK;
  ir_free(g);
  return status;
}

/* --target and --precision (with --f64) into bo; an exit status if bad. */
static int build_options(const command *self, const options *o, build_opts *bo) {
  if (o->target && !build_target_known(o->target)) return EXIT_USAGE;
  int bf16 = 0;
  if (o->precision && o->f64)
    return usage_error(self, "%s", "--precision and --f64 do not go together (--f64 is double "
                                   "precision throughout, for gradient checks)");
  if (o->precision && build_precision(o->precision, &bf16)) return EXIT_USAGE;
  *bo = (build_opts){.debug = o->debug, .f64 = o->f64, .bf16 = bf16, .verbose = o->verbose,
                     .target = o->target, .mpi = o->mpi};
  return EXIT_OK;
}

static int cmd_build(const command *self, int argc, char **argv) {
  options o;
  int status;
  if (parse_options(self, argc, argv, "--debug --f64 --mpi --precision --target -v --verbose -o -W",
                    NEEDS_OUT, &o, &status))
    return status;
  build_opts bo;
  if ((status = build_options(self, &o, &bo)) != EXIT_OK) return status;
  ir_graph *g = pipeline_compile(o.path, 1, NULL);
  if (!g) return EXIT_ERRORS;
  status = build_trainer(g, o.path, o.out, &bo) ? EXIT_ERRORS : EXIT_OK;
  ir_free(g);
  return status;
}

static int cmd_prebuild(const command *self, int argc, char **argv) {
  options o;
  int status;
  if (parse_options(self, argc, argv, "--f64 --precision --target -v --verbose -o", NO_FILE, &o,
                    &status))
    return status;
  build_opts bo;
  if ((status = build_options(self, &o, &bo)) != EXIT_OK) return status;
  const char *dir = o.out ? o.out : build_prebuilt_dir();
  if (!dir) return usage_error(self, "%s", "-o is required (DLNC_PREBUILT is off)");
  return build_prebuild(dir, &bo) ? EXIT_ERRORS : EXIT_OK;
}

static int cmd_summary(const command *self, int argc, char **argv) {
  options o;
  int status;
  if (parse_options(self, argc, argv, "--f64", 0, &o, &status)) return status;
  ir_graph *g = pipeline_compile(o.path, 1, NULL);
  if (!g) return EXIT_ERRORS;
  inspect_summary(g, o.f64, stdout);
  ir_free(g);
  return EXIT_OK;
}

static int cmd_graph(const command *self, int argc, char **argv) {
  options o;
  int status;
  if (parse_options(self, argc, argv, "--backward -o", 0, &o, &status)) return status;
  ir_graph *g = pipeline_compile(o.path, 1, NULL);
  if (!g) return EXIT_ERRORS;
  FILE *out = o.out ? fopen(o.out, "w") : stdout;
  if (!out) {
    fprintf(stderr, "dlnc: error: cannot write %s: %s\n", o.out, strerror(errno));
    ir_free(g);
    return EXIT_ERRORS;
  }
  inspect_graph(g, o.backward, out);
  status = fflush(out) || ferror(out) ? EXIT_ERRORS : EXIT_OK;
  if (out != stdout && fclose(out)) status = EXIT_ERRORS;
  if (status) fprintf(stderr, "dlnc: error: writing %s failed\n", o.out ? o.out : "the graph");
  ir_free(g);
  return status;
}

static int cmd_lints(const command *self, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      fputs(self->usage, stdout);
      return EXIT_OK;
    }
    return usage_error(self, "unexpected argument '%s'", argv[i]);
  }
  diag_lint_describe(stdout);
  return EXIT_OK;
}

static int cmd_builtins(const command *self, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      fputs(self->usage, stdout);
      return EXIT_OK;
    }
    return usage_error(self, "unexpected argument '%s'", argv[i]);
  }
  lower_describe(stdout);
  return EXIT_OK;
}

static const command commands[] = {
    {"check", "check FILE.dln and report every error",
     "usage: dlnc check [--ast] [-Wno-NAME] [-Werror] FILE.dln\n"
     "\n"
     "Parses and checks FILE.dln (names, shapes, types, settings) and reports\n"
     "every error found, as FILE:LINE:COL: error: ...\n"
     "\n"
     "  --ast       print the syntax tree (an S-expression) on stdout\n"
     "  -Wno-NAME   turn warning NAME off (`dlnc lints` lists them; -Wno-all: all)\n"
     "  -Werror     report warnings as errors\n"
     "  -h, --help  show this help\n",
     cmd_check},
    {"emit", "write the generated C for FILE.dln into a directory",
     "usage: dlnc emit [--ir] [--f64] [-Wno-NAME] FILE.dln -o DIR\n"
     "\n"
     "Writes DIR/NAME.c (the model's kernels), DIR/NAME.h (the API to embed it\n"
     "in C) and DIR/NAME_main.c (the standalone trainer's main), where NAME is\n"
     "the model's name. Compile them with the .c files of runtime/.\n"
     "\n"
     "  -o DIR      the output directory (created if missing)\n"
     "  --ir        also print the planned graph IR on stdout\n"
     "  --f64       the C for double precision (compile it with -DDLNC_F64)\n"
     "  -Wno-NAME   turn warning NAME off (`dlnc lints` lists them; -Wno-all: all)\n"
     "  -Werror     report warnings as errors\n"
     "  -h, --help  show this help\n",
     cmd_emit},
    {"build", "compile FILE.dln into a standalone trainer executable",
     "usage: dlnc build [--debug] [--f64] [--mpi] [--precision P] [--target T] [-v]\n"
     "                  [-Wno-NAME]\n"
     "                  FILE.dln -o BIN\n"
     "\n"
     "Emits the C for FILE.dln and compiles it with the runtime into BIN, using\n"
     "$CC (default clang, else cc). Run `BIN --help` for the trainer's commands.\n"
     "\n"
     "  -o BIN         the executable to write\n"
     "  --debug        -O0 -g with AddressSanitizer and UndefinedBehaviorSanitizer\n"
     "  --f64          double precision throughout (for gradient checks)\n"
     "  --mpi          data-parallel training: `mpirun -np P BIN train` (MPI's flags from\n"
     "                 mpicc, or $MPICC; see docs/distributed.md)\n"
     "  --precision P  the GEMMs' operands: f32 (the default) or bf16 (rounded to bf16,\n"
     "                 fp32 sums, weights and optimiser state; AVX512_BF16 where the\n"
     "                 target has it, emulated otherwise)\n"
     "  --target T     the CPU to compile for: native (this machine's, the default),\n"
     "                 x86-64, x86-64-v2, x86-64-v3 (AVX2), x86-64-v4 (AVX-512); a\n"
     "                 trainer refuses to start on a CPU without its target's features\n"
     "  -v, --verbose  print the compiler command\n"
     "  -Wno-NAME      turn warning NAME off (`dlnc lints` lists them; -Wno-all: all)\n"
     "  -Werror        report warnings as errors\n"
     "  -h, --help     show this help\n",
     cmd_build},
    {"prebuild", "compile the runtime ahead, so that builds compile only the model",
     "usage: dlnc prebuild [--f64] [--precision P] [--target T] [-v] [-o DIR]\n"
     "\n"
     "Compiles the runtime as `dlnc build` would with these options and the same\n"
     "$CC, $DLNC_CFLAGS_EXTRA and CPU, into DIR (default: the prebuilt directory\n"
     "beside dlnc that `dlnc --version` names; made when dlnc is built and\n"
     "installed). A build whose compiler, flags, CPU and runtime sources match an\n"
     "entry there links it and compiles only the model, with or without a cache;\n"
     "any other build compiles the runtime as before. Prints the library's path.\n"
     "\n"
     "  -o DIR         where to write it (any directory of the build cache's form)\n"
     "  --f64, --precision P, --target T\n"
     "                 as for `dlnc build`\n"
     "  -v, --verbose  print the compiler commands\n"
     "  -h, --help     show this help\n",
     cmd_prebuild},
    {"summary", "print a table of FILE.dln's layers, shapes, parameters and memory",
     "usage: dlnc summary [--f64] FILE.dln\n"
     "\n"
     "Prints one row per binding of the model (the .dln line, what it computes,\n"
     "its output shape, its parameter count), the total parameters, and what the\n"
     "trainer allocates: the state block and the activation arena per sample and\n"
     "at the train block's batch.\n"
     "\n"
     "  --f64       sizes for a double-precision build\n"
     "  -h, --help  show this help\n",
     cmd_summary},
    {"graph", "write FILE.dln's graph as Graphviz DOT",
     "usage: dlnc graph [--backward] FILE.dln [-o FILE.dot]\n"
     "\n"
     "Writes the model's graph in the DOT language (render it with\n"
     "`dot -Tsvg FILE.dot -o FILE.svg`): one box per operation with its output\n"
     "shape, grouped by the .dln line it came from, and one ellipse per parameter\n"
     "with its shape and size.\n"
     "\n"
     "  --backward  also the gradient operations (dashed)\n"
     "  -o FILE     write to FILE instead of standard output\n"
     "  -h, --help  show this help\n",
     cmd_graph},
    {"builtins", "list the functions a .dln file can call, with their arguments",
     "usage: dlnc builtins\n"
     "\n"
     "Prints every function of the model and train blocks with its arguments in\n"
     "positional order and their defaults (`= ...`: a default that depends on the\n"
     "model or the train block; `NAME(...)`: any number of arguments), as the\n"
     "checks of `dlnc check` see them.\n"
     "\n"
     "  -h, --help  show this help\n",
     cmd_builtins},
    {"lints", "list the warnings dlnc gives, each of which -Wno-NAME turns off",
     "usage: dlnc lints\n"
     "\n"
     "Prints one row per warning: its name (-Wno-NAME turns it off at check,\n"
     "emit and build), whether it is on by default, and what it says.\n"
     "\n"
     "  -h, --help  show this help\n",
     cmd_lints},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static void print_help(FILE *out) {
  fprintf(out, "usage: dlnc COMMAND [OPTIONS] FILE.dln\n\ncommands:\n");
  for (int i = 0; i < NCOMMANDS; i++)
    fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\n`dlnc COMMAND --help` describes a command's options; `dlnc --version`\n"
               "prints the version and where the runtime is read from.\n");
}

static void print_version(void) {
  printf("dlnc %s\n", DL_VERSION);
  printf("runtime: %s\n", build_runtime_dir());
  const char *prebuilt = build_prebuilt_dir();
  printf("prebuilt: %s\n", prebuilt ? prebuilt : "none");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    print_help(stderr);
    return EXIT_USAGE;
  }
  if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    print_help(stdout);
    return EXIT_OK;
  }
  if (!strcmp(argv[1], "--version")) {
    print_version();
    return EXIT_OK;
  }
  for (int i = 0; i < NCOMMANDS; i++)
    if (!strcmp(argv[1], commands[i].name))
      return commands[i].run(&commands[i], argc - 1, argv + 1);
  fprintf(stderr, "dlnc: unknown command '%s'\n", argv[1]);
  print_help(stderr);
  return EXIT_USAGE;
}
