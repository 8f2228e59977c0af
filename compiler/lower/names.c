/* names.c: which model names can become C.  A model named NAME is the files
 * NAME.c, NAME.h and NAME_main.c and the identifiers NAME_desc, NAME_model,
 * NAME_new, NAME_load, NAME_predict, NAME_free (and NAME_INPUT_SIZE,
 * NAME_OUTPUT_SIZE in capitals).  Files cannot shadow headers (the generated
 * directory is searched for #include "..." only, and the generated code
 * includes the runtime's and the system's headers with <...>), and C
 * keywords are harmless since every identifier has a suffix.  What remains
 * is refused here, at the model's name:
 *   - a name longer than MAX_MODEL_NAME (NAME_main.c must be a legal file name);
 *   - a leading '_' (reserved to the C implementation at file scope);
 *   - dl and dl_... in any case: the runtime's names (dl_ctx_new, DL_...);
 *   - forward_X and backward_X, the functions of a layer X, equal to one of
 *     the model's API names (model `forward` with a layer `new`).
 * And the names a model or a block binds: new in their scope, not too long
 * (lower_check_new_name). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "lower.h"

enum { MAX_MODEL_NAME = 128 };

static const char *const api_suffixes[] = {"desc", "model", "new", "load", "predict", "free"};
static const char *const layer_prefixes[] = {"forward", "backward"};

static int is_runtime_name(const char *name) {
  return tolower((unsigned char)name[0]) == 'd' && tolower((unsigned char)name[1]) == 'l' &&
         (name[2] == 0 || name[2] == '_');
}

/* The API suffix for which NAME_suffix is PREFIX_layer, or NULL.  (name
 * is at most MAX_MODEL_NAME long, so a longer layer name cannot match.) */
static const char *clash(const char *name, const char *prefix, const char *layer) {
  char fn[2 * MAX_MODEL_NAME], api[2 * MAX_MODEL_NAME];
  if (strlen(layer) > MAX_MODEL_NAME) return NULL;
  snprintf(fn, sizeof fn, "%s_%s", prefix, layer);
  for (size_t i = 0; i < sizeof api_suffixes / sizeof *api_suffixes; i++) {
    snprintf(api, sizeof api, "%s_%s", name, api_suffixes[i]);
    if (!strcmp(fn, api)) return api_suffixes[i];
  }
  return NULL;
}

/* 0, or -1 after a diagnostic at loc (the model's name). */
int check_model_name(const ir_graph *g, const char *name, dl_loc loc) {
  if (strlen(name) > MAX_MODEL_NAME) {
    diag_error(loc, "a model name is at most %d characters (this one has %zu): it names the files NAME.c, "
               "NAME.h and NAME_main.c", MAX_MODEL_NAME, strlen(name));
    return -1;
  }
  if (name[0] == '_') {
    diag_error(loc, "a model name cannot start with '_': its C names (%s_new, ...) would be reserved "
               "identifiers", name);
    return -1;
  }
  if (is_runtime_name(name)) {
    diag_error(loc, "model name '%s': the names dl and dl_... (in any case) are reserved for the "
               "runtime, whose C names start with dl_", name);
    return -1;
  }
  for (int i = 0; i < g->ngroups; i++)
    for (size_t p = 0; p < sizeof layer_prefixes / sizeof *layer_prefixes; p++) {
      const char *api = clash(name, layer_prefixes[p], g->groups[i].name);
      if (api) {
        diag_error(loc, "model name '%s': its C function %s_%s would clash with the %s function of "
                   "layer '%s' (line %d); rename one of them", name, name, api, layer_prefixes[p],
                   g->groups[i].name, g->groups[i].line);
        return -1;
      }
    }
  return 0;
}

/* 0 if `name` is new in this scope (the model's, or an application's of a
 * block); else reports it, with the first definition. */
int lower_check_new_name(lower_ctx *lc, const char *name, dl_loc loc) {
  if (strlen(name) > LOWER_MAX_NAME) {
    diag_error(loc, "a name is at most %d characters; this one has %zu", LOWER_MAX_NAME, strlen(name));
    /* its uses are not reported again */
    if (lower_find_sym(lc, name) < 0) lower_add_sym(lc, name, -1, loc);
    return -1;
  }
  int prev = lower_find_sym(lc, name);
  if (prev < 0) return 0;
  diag_error(loc, "'%s' is already defined", name);
  diag_note(lc->syms[prev].loc, "'%s' was defined here", name);
  return -1;
}
