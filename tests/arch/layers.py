#!/usr/bin/python3
"""The stages of dlnc depend one way (docs/design.md, "Stages and what each
may include").  Reads every `#include "..."` line of compiler/ and runtime/
and fails, saying which file and line, when

  - a compiler stage (folder) includes a header of a stage after it, so an
    include circle between stages is impossible (any circle is also printed);
  - anything in emit/ or passes/ reaches, directly or through other headers,
    a header of the front end, of lowering or of the op families: they read
    the IR alone, and reach the ops through the table in ir/optable.h;
  - the runtime includes anything outside runtime/ (the trainer is built from
    runtime/ and the generated code only);
  - the .c files of the runtime, or of one compiler stage, call each other
    in a circle (trainer.c and trainer_*.c did; dense.c, reparam.c and
    norm.c did), found from the external functions each file defines.

usage: layers.py SOURCE_DIR [BUILD_DIR]"""
import os
import re
import sys

# Include order: each stage may include its own headers and those of the
# stages before it.  "runtime" is the contract with generated code
# (runtime/dl_model.h), below everything.
STAGES = ["runtime", "base", "front", "ir", "lower", "passes", "emit", "ops", "driver"]
# emit/ and passes/ must not reach these, even through another header.
IR_ONLY = {"emit": ("front", "lower", "ops"), "passes": ("front", "lower", "ops", "emit")}
# The compiler's include path (CMakeLists.txt), in order; the build dir
# holds the front end's generated parser.h and lexer.h.
COMPILER_PATH = ["", "base", "front", "lower", "ir", "ops", "passes", "emit"]
GENERATED = {"parser.h", "lexer.h"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources(top):
    for dirpath, _, files in os.walk(top):
        for f in sorted(files):
            if f.endswith((".c", ".h", ".l", ".y")):
                yield os.path.join(dirpath, f)


def c_files(top):
    return [f for f in sources(top) if f.endswith(".c")]


def includes(path):
    """(line number, included name) of each #include "..." of path."""
    text = open(path, encoding="utf-8", errors="replace").read()
    for m in INCLUDE.finditer(text):
        yield text.count("\n", 0, m.start()) + 1, m.group(1)


def resolve(src, path, name):
    """The file an #include "name" of `path` reads, as the compiler finds it;
    None if it is a generated header (GENERATED) or not found."""
    cand = [os.path.join(os.path.dirname(path), name)]
    if path.startswith(os.path.join(src, "compiler")):
        cand += [os.path.join(src, "compiler", d, name) for d in COMPILER_PATH]
    for c in cand:
        if os.path.isfile(c):
            return os.path.normpath(c)
    return None


def stage_of(src, f):
    rel = os.path.relpath(f, src).split(os.sep)
    if rel[0] == "runtime":
        return "runtime"
    if rel[0] != "compiler":
        return "outside"
    return rel[1] if len(rel) > 2 else "driver"


def main():
    src = os.path.abspath(sys.argv[1])
    rel = lambda f: os.path.relpath(f, src)
    errors = []
    edges = {}  # file -> [(line, included file)]
    stage = {}
    for top in ("compiler", "runtime"):
        for f in sources(os.path.join(src, top)):
            stage[f] = stage_of(src, f)
            edges[f] = []
            for line, name in includes(f):
                to = resolve(src, f, name)
                if to is None and os.path.basename(name) in GENERATED and stage[f] != "runtime":
                    continue
                if to is None:
                    errors.append(f"{os.path.relpath(f, src)}:{line}: #include \"{name}\": no such header")
                    continue
                edges[f].append((line, to))
    for f in edges:
        for _, to in edges[f]:
            stage.setdefault(to, stage_of(src, to))

    # 1. stage order, and the runtime alone
    for f, s in sorted(stage.items()):
        if s == "outside":
            errors.append(f"{rel(f)}: included from compiler/ or runtime/, but outside both")
    for s in sorted({s for s in stage.values() if s not in STAGES and s != "outside"}):
        errors.append(f"compiler/{s}/: a folder that is not a stage of docs/design.md (add it to STAGES)")
    stage_edges = {}
    for f, out in edges.items():
        for line, to in out:
            a, b = stage[f], stage[to]
            if a == "runtime" and b != "runtime":
                errors.append(f"{rel(f)}:{line}: the runtime includes {rel(to)}, outside runtime/")
            elif a in STAGES and b in STAGES and STAGES.index(b) > STAGES.index(a):
                errors.append(f"{rel(f)}:{line}: {a}/ includes {rel(to)} of {b}/, a later stage")
            if a != b:
                stage_edges.setdefault(a, {}).setdefault(b, (rel(f), line, rel(to)))

    # 2. circles between stages: a depth-first search over the stage graph
    state, path = {}, []

    def visit(s):
        state[s] = 1
        path.append(s)
        for t in sorted(stage_edges.get(s, {})):
            if state.get(t) == 1:
                cyc = path[path.index(t):] + [t]
                how = "; ".join("%s:%d includes %s" % stage_edges[x][y]
                                for x, y in zip(cyc, cyc[1:]))
                errors.append("include circle between stages " + " -> ".join(cyc) + ": " + how)
            elif t not in state:
                visit(t)
        path.pop()
        state[s] = 2

    for s in sorted(stage_edges):
        if s not in state:
            visit(s)

    # 3. emit/ and passes/ read the IR alone, also through other headers
    for f in sorted(edges):
        banned = IR_ONLY.get(stage[f])
        if not banned:
            continue
        seen, todo, via, told = {f}, [f], {f: None}, set()
        while todo:
            g = todo.pop()
            for _, to in edges.get(g, []):
                if to in seen:
                    continue
                seen.add(to)
                via[to] = g
                todo.append(to)
                if stage[to] in banned and stage[to] not in told:
                    told.add(stage[to])
                    chain, x = [], to
                    while x is not None:
                        chain.append(rel(x))
                        x = via[x]
                    errors.append(f"{rel(f)} reaches {stage[to]}/: " + " -> ".join(reversed(chain)))

    # 4. no two files of the runtime, or of one compiler stage, call each
    # other (directly or around a circle)
    errors += call_circles(c_files(os.path.join(src, "runtime")), "runtime")
    for d in sorted(os.listdir(os.path.join(src, "compiler"))):
        if os.path.isdir(os.path.join(src, "compiler", d)):
            errors += call_circles(c_files(os.path.join(src, "compiler", d)), f"compiler/{d}")

    for e in errors:
        print(e)
    if errors:
        print(f"layers: {len(errors)} problem(s); the rules are in docs/design.md")
        return 1
    print("layers: stages depend one way; emit/ and passes/ read the IR alone; runtime self-contained")
    return 0


DEFN = re.compile(r"^(?!static\b)[A-Za-z_][\w \t\*]*?\b(\w+)\s*\([^;{]*\)\s*\{", re.M)
WORD = re.compile(r"\b\w+\b")


def call_circles(files, where):
    """The file graph 'A calls a function defined in B' over files, from the
    external (non-static) definitions at the start of a line; a circle in it
    is reported."""
    defs, text = {}, {}
    for f in files:
        t = open(f, encoding="utf-8", errors="replace").read()
        text[f] = re.sub(r"/\*.*?\*/|//[^\n]*|\"(\\.|[^\"\\])*\"", " ", t, flags=re.S)
        for m in DEFN.finditer(text[f]):
            defs[m.group(1)] = f
    calls = {f: {} for f in files}
    for f in files:
        for w in sorted(set(WORD.findall(text[f]))):
            g = defs.get(w)
            if g and g != f:
                calls[f].setdefault(g, w)
    errors, state, path = [], {}, []

    def visit(f):
        state[f] = 1
        path.append(f)
        for g in sorted(calls[f]):
            if state.get(g) == 1:
                cyc = path[path.index(g):] + [g]
                how = ", ".join("%s calls %s" % (os.path.basename(x), calls[x][y])
                                for x, y in zip(cyc, cyc[1:]))
                errors.append(f"call circle between {where} files: " + how)
            elif g not in state:
                visit(g)
        path.pop()
        state[f] = 2

    for f in sorted(files):
        if f not in state:
            visit(f)
    return errors


if __name__ == "__main__":
    sys.exit(main())
