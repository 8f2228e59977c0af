#!/usr/bin/python3
"""An op family is registered by its block in compiler/ir/ops.def alone
(docs/design.md, "How to add an op").  Reads ops.def's rows and the
compiler's sources and fails, saying which file and line, when

  - a function a row names (an IR_OP row's backward and emit, an
    IR_BUILTIN row's lowering, an IR_ONNX row's mapping) is declared by
    hand anywhere in compiler/:
    ops/ops.h declares them all from the table;
  - such a function is not defined in exactly one file of compiler/ops/, or
    no_backward / no_emit (the rows' "none", NULL in ops.c) is defined;
  - an attribute struct ir_*_attr is written out in a header instead of
    being an IR_ATTR row, or a row's member is not used by any family file;
  - the demonstration family, softplus, is named in any compiler file but
    ops.def and its own ops/softplus.c.

usage: registry.py SOURCE_DIR"""
import os
import re
import sys

NONE = {"no_backward", "no_emit"}
DEMO = "softplus"


def rows(text):
    """The rows of ops.def as (kind, [args], line), comments removed."""
    code = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
    for m in re.finditer(r"^(IR_OP|IR_BUILTIN|IR_ATTR|IR_ONNX)\((.*?)\)\s*$", code, re.M | re.S):
        args = [a.strip() for a in m.group(2).split(",")]
        yield m.group(1), args, code.count("\n", 0, m.start()) + 1


def sources(top):
    for dirpath, _, files in os.walk(top):
        for f in sorted(files):
            if f.endswith((".c", ".h", ".l", ".y", ".def")):
                yield os.path.join(dirpath, f)


def main(src):
    comp = os.path.join(src, "compiler")
    opsdef = os.path.join(comp, "ir", "ops.def")
    with open(opsdef) as f:
        table = f.read()
    funcs, members = {}, set()
    for kind, args, line in rows(table):
        if kind == "IR_OP":
            names = args[3:5]
        elif kind in ("IR_BUILTIN", "IR_ONNX"):
            names = args[1:2]
        else:
            members.add(args[0])
            continue
        for n in names:
            funcs.setdefault(n, line)
    errors = []
    if len(funcs) < 10 or not members:
        errors.append("%s: found %d functions and %d attribute rows: not an op table"
                      % (opsdef, len(funcs), len(members)))
    defined = {}
    texts = {}
    for path in sources(comp):
        with open(path, errors="replace") as f:
            texts[path] = f.read()
    for path, text in texts.items():
        rel = os.path.relpath(path, src)
        for n in funcs:
            # a prototype: return type, the name, a parameter list, ';'
            for m in re.finditer(r"^(?:int|void)\s+%s\s*\([^;{]*\)\s*;" % re.escape(n), text, re.M):
                errors.append("%s:%d: %s is declared by hand (ops.h declares the rows' functions)"
                              % (rel, text.count("\n", 0, m.start()) + 1, n))
            if re.search(r"^(?:int|void)\s+%s\s*\([^;{]*\)\s*\{" % re.escape(n), text, re.M):
                defined.setdefault(n, []).append(rel)
        if path.endswith(".h"):
            for m in re.finditer(r"typedef\s+struct\s+ir_\w+_attr\s*\{", text):
                errors.append("%s:%d: an attribute struct written out, not an IR_ATTR row "
                              "of ops.def" % (rel, text.count("\n", 0, m.start()) + 1))
        if path != opsdef and not rel.endswith(os.path.join("ops", DEMO + ".c")):
            for m in re.finditer(DEMO, text, re.I):
                errors.append("%s:%d: names %s, whose family is ops.def's block and %s.c alone"
                              % (rel, text.count("\n", 0, m.start()) + 1, DEMO, DEMO))
                break
    for n, line in sorted(funcs.items()):
        where = defined.get(n, [])
        if n in NONE:
            if where:
                errors.append("%s: defines %s, which ops.c makes NULL" % (where[0], n))
            continue
        if len(where) != 1 or not where[0].startswith(os.path.join("compiler", "ops") + os.sep):
            errors.append("compiler/ir/ops.def:%d: %s is defined in %s, not in one family file of "
                          "compiler/ops/" % (line, n, ", ".join(where) or "no file"))
    for m in sorted(members):
        used = any(re.search(r"(->|\.)%s\b" % re.escape(m), t)
                   for p, t in texts.items() if os.sep + "ops" + os.sep in p)
        if not used:
            errors.append("compiler/ir/ops.def: attribute member %s is used by no family file" % m)
    for e in errors:
        print("FAIL: " + e)
    if not errors:
        print("ok: %d functions and %d attribute structs, each registered in ops.def alone"
              % (len(funcs) - len(NONE & set(funcs)), len(members)))
    return 1 if errors else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
