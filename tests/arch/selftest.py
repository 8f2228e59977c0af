#!/usr/bin/python3
"""layers.py must fail where the rules are broken: a small tree with one
breach of each rule, and the message each must give; and pass once the
breaches are gone.  usage: selftest.py WORK_DIR"""
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def tree(root, files):
    shutil.rmtree(root, ignore_errors=True)
    for path, text in files.items():
        p = os.path.join(root, path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)


def run(root):
    r = subprocess.run([sys.executable, os.path.join(HERE, "layers.py"), root],
                       capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


GOOD = {
    "compiler/base/diag.h": "",
    "compiler/front/ast.h": '#include "diag.h"\n',
    "compiler/ir/ir.h": '#include "diag.h"\n',
    "compiler/ir/optable.h": '#include "ir.h"\n',
    "compiler/lower/lower.h": '#include "ast.h"\n#include "ir.h"\n',
    "compiler/passes/passes.h": '#include "ir.h"\n',
    "compiler/emit/emit.c": '#include "optable.h"\n#include "../../runtime/dl_model.h"\n',
    "compiler/ops/ops.h": '#include "lower.h"\n#include "optable.h"\n',
    "compiler/driver.c": '#include "ops.h"\n#include "passes.h"\n',
    "runtime/dl_model.h": "",
    "runtime/a.c": "int dl_a(void) {\n  return 1;\n}\n",
    "runtime/b.c": "int dl_b(void) {\n  return dl_a();\n}\n",
}
BAD = dict(GOOD)
BAD.update({
    # a circle: ir includes a lowering header, lowering includes ir
    "compiler/ir/ir.h": '#include "diag.h"\n#include "lower.h"\n',
    # the emitter reaches the front end through an op family's header
    "compiler/emit/emit.c": '#include "ops.h"\n',
    # the runtime includes a compiler header
    "runtime/c.c": '#include "../compiler/ir/ir.h"\n',
    # two runtime files call each other
    "runtime/a.c": "int dl_a(void) {\n  return dl_b();\n}\n",
    # an include that resolves nowhere
    "compiler/passes/fuse.c": '#include "nowhere.h"\n',
})
WANT = [
    "compiler/ir/ir.h:2: ir/ includes compiler/lower/lower.h of lower/, a later stage",
    "include circle between stages ir -> lower -> ir",
    "compiler/emit/emit.c:1: emit/ includes compiler/ops/ops.h of ops/, a later stage",
    "compiler/emit/emit.c reaches lower/: compiler/emit/emit.c -> compiler/ops/ops.h -> compiler/lower/lower.h",
    "compiler/emit/emit.c reaches front/:",
    "runtime/c.c:1: the runtime includes compiler/ir/ir.h, outside runtime/",
    "call circle between runtime files: a.c calls dl_b, b.c calls dl_a",
    'compiler/passes/fuse.c:1: #include "nowhere.h": no such header',
]


def main():
    work = sys.argv[1]
    failed = 0
    tree(work, GOOD)
    rc, out = run(work)
    if rc != 0:
        print("a tree that keeps the rules was refused:\n" + out)
        failed = 1
    tree(work, BAD)
    rc, out = run(work)
    if rc == 0:
        print("a tree that breaks every rule passed:\n" + out)
        failed = 1
    for w in WANT:
        if w not in out:
            print(f"missing from the output: {w}")
            failed = 1
    if failed:
        print("--- layers.py said:\n" + out)
    else:
        print("selftest: layers.py accepts the good tree and names each breach of the bad one")
    return failed


if __name__ == "__main__":
    sys.exit(main())
