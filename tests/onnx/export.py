#!/usr/bin/python3
"""export.py DLNC SRC WORK: `BIN export --onnx` against independent runtimes.

Each model of MODELS (tests/onnx/*.dln; together they use every op the
export maps) is trained briefly on synthetic data, exported, checked by
onnx.checker (full_check: shapes inferred through every node), and run by
OpenCV's DNN module (cv2.dnn.readNetFromONNX) on rows that `BIN predict`
also reads: the outputs must agree within 1e-4 (for a classifier, whose
predict prints the class, the class must be the ONNX output's argmax).
A model OpenCV 4.6 cannot import is run instead by a small interpreter of
the ONNX nodes in torch (TORCH_OPS; python3-onnx 1.12 has no reference
evaluator and Debian has no onnxruntime), which also runs every model
OpenCV runs, so each is checked twice; the report says which checker ran
which model.  examples/norms.dln, trained one epoch on Fashion-MNIST
(Debian's dataset-fashion-mnist), must give predict's classes in OpenCV
on 500 test images; a --debug trainer (ASan, UBSan) must write the same
bytes as the release one.  Then the refusals: a model with an op without a
mapping (an LSTM) names the op and its .dln line and writes nothing, and a
bad --onnx path (a missing directory, a directory, the checkpoint itself)
is refused without touching what is there.  Exit 77 (skipped) without python3-onnx or
python3-opencv.
"""
import os
import shutil
import subprocess
import sys

import numpy as np

TOL = 1e-4
ROWS = 24
# what OpenCV 4.6's importer cannot run (ReduceSum, ReduceMean): every other
# model must run there, so a regression cannot hide behind the torch check
NOT_OPENCV = {"red"}

# model: (train rows, input shape, label: ("real", n) or ("class", n), the
# ops its graph must contain)
MODELS = {
    "acts": (96, (6,), ("real", 4),
             {"Gemm", "Relu", "Sigmoid", "Tanh", "LeakyRelu", "Erf", "Concat",
              "Add", "Sub", "Mul", "Div", "Exp", "Log", "Sqrt", "Abs", "Softmax"}),
    "cnn": (48, (2, 12, 12), ("real", 3),
            {"Conv", "BatchNormalization", "InstanceNormalization", "MaxPool", "AveragePool",
             "GlobalAveragePool", "Flatten", "Reshape", "Relu", "Concat", "Gemm", "Pad"}),
    "seq": (96, (24,), ("real01", 2),
            {"Reshape", "Gemm", "Erf", "InstanceNormalization", "BatchNormalization", "Flatten",
             "Tanh", "Sigmoid"}),
    "cls": (96, (5,), ("class", 3), {"Gemm", "Relu"}),
    "red": (96, (6,), ("real", 3), {"ReduceSum", "ReduceMean", "Reshape"}),
}


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, **kw)


def write_csv(path, x, y):
    with open(path, "w") as f:
        for xr, yr in zip(x, y):
            f.write(",".join("%.6g" % v for v in list(xr.ravel()) + list(np.atleast_1d(yr))) + "\n")


def synthetic(rng, n, shape, label):
    x = rng.normal(size=(n,) + shape).astype(np.float32)
    kind, k = label
    if kind == "class":
        y = rng.integers(0, k, size=n)
    elif kind == "real01":
        y = (rng.random(size=(n, k)) > 0.5).astype(np.float32)
    else:
        y = rng.normal(size=(n, k)).astype(np.float32)
    return x, y


# ---- the torch interpreter (for what OpenCV cannot import) ----------------

def torch_run(model, x):
    import torch
    import torch.nn.functional as F
    from onnx import numpy_helper
    g = model.graph
    env = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in g.initializer}
    env[g.input[0].name] = torch.from_numpy(x)

    def attrs(n):
        from onnx import helper
        return {a.name: helper.get_attribute_value(a) for a in n.attribute}

    for n in g.node:
        a = attrs(n)
        i = [env[v] if v else None for v in n.input]
        op = n.op_type
        if op == "Gemm":
            y = i[0] @ (i[1].t() if a.get("transB") else i[1])
            y = y + i[2] if len(i) > 2 else y
        elif op in ("Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Abs", "Erf"):
            y = getattr(torch, op.lower())(i[0])
        elif op == "LeakyRelu":
            y = F.leaky_relu(i[0], a.get("alpha", 0.01))
        elif op == "Softplus":
            y = torch.log1p(torch.exp(i[0]))
        elif op == "Softmax":
            y = torch.softmax(i[0], a.get("axis", -1))
        elif op in ("Add", "Sub", "Mul", "Div"):
            y = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div}[op](i[0], i[1])
        elif op == "Clip":
            y = torch.clamp(i[0], None if i[1] is None else float(i[1]),
                            None if len(i) < 3 or i[2] is None else float(i[2]))
        elif op == "Concat":
            y = torch.cat(i, a["axis"])
        elif op == "Reshape":
            y = i[0].reshape([int(v) for v in i[1]])
        elif op == "Flatten":
            y = i[0].reshape(i[0].shape[0], -1)
        elif op == "ArgMax":
            y = torch.argmax(i[0], a["axis"], keepdim=bool(a.get("keepdims", 1)))
        elif op in ("Identity", "Dropout"):
            y = i[0]
        elif op == "Conv":
            p = a["pads"]
            y = F.conv2d(i[0], i[1], i[2] if len(i) > 2 else None, a["strides"], (p[0], p[1]),
                         a["dilations"], a["group"])
        elif op in ("ReduceSum", "ReduceMean"):
            axes = [int(v) for v in (i[1] if op == "ReduceSum" else a["axes"])]
            f = torch.sum if op == "ReduceSum" else torch.mean
            y = f(i[0], dim=axes, keepdim=bool(a.get("keepdims", 1)))
        elif op == "Pad":
            p = [int(v) for v in i[1]]  # [x1_begin, x2_begin, ..., x1_end, ...]
            h = len(p) // 2
            y = F.pad(i[0], [v for d in reversed(range(h)) for v in (p[d], p[h + d])])
        elif op == "MaxPool":
            p = a["pads"]
            y = F.max_pool2d(i[0], a["kernel_shape"], a["strides"], (p[0], p[1]))
        elif op == "AveragePool":
            p = a["pads"]
            y = F.avg_pool2d(i[0], a["kernel_shape"], a["strides"], (p[0], p[1]),
                             count_include_pad=bool(a.get("count_include_pad", 0)))
        elif op == "GlobalAveragePool":
            y = i[0].mean(dim=(2, 3), keepdim=True)
        elif op == "BatchNormalization":
            y = F.batch_norm(i[0], i[3], i[4], i[1], i[2], False, 0.0, a.get("epsilon", 1e-5))
        elif op == "InstanceNormalization":
            y = F.instance_norm(i[0], weight=i[1], bias=i[2], eps=a.get("epsilon", 1e-5))
        else:
            raise RuntimeError("the torch interpreter has no " + op)
        env[n.output[0]] = y
    return [env[o.name].numpy() for o in g.output]


def opencv_run(path, x, names):
    import cv2
    net = cv2.dnn.readNetFromONNX(path)
    net.setInput(x)
    return net.forward(names)


# ---- one model ----------------------------------------------------------------

def check_model(name, dlnc, src, work, rng, onnx, f64=False):
    n, shape, label, ops = MODELS[name]
    d = os.path.join(work, name + ("_f64" if f64 else ""))
    os.makedirs(d)
    shutil.copy(os.path.join(src, "tests", "onnx", name + ".dln"), d)
    x, y = synthetic(rng, n, shape, label)
    write_csv(os.path.join(d, name + ".csv"), x, y)
    binp, ckpt, out = (os.path.join(d, name), os.path.join(d, name + ".st"),
                       os.path.join(d, name + ".onnx"))
    r = run([dlnc, "build", os.path.join(d, name + ".dln"), "-o", binp] + (["--f64"] if f64 else []))
    if r.returncode:
        return "build failed: " + r.stderr
    r = run([binp, "train", "--save", ckpt])
    if r.returncode:
        return "training failed: " + r.stderr
    r = run([binp, "export", "--load", ckpt, "--onnx", out])
    if r.returncode or not os.path.exists(out):
        return "export failed: " + r.stderr
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    used = {nd.op_type for nd in model.graph.node}
    if not ops <= used:
        return "the graph lacks %s (has %s)" % (sorted(ops - used), sorted(used))
    if model.opset_import[0].version != 17:
        return "opset %d, not 17" % model.opset_import[0].version
    if any(t.data_type != onnx.TensorProto.FLOAT for t in model.graph.initializer
           if t.data_type != onnx.TensorProto.INT64):
        return "an initializer is not float32"
    if f64:
        name += " (--f64)"
    xt, _ = synthetic(rng, ROWS, shape, label)
    rows = "".join(",".join("%.6g" % v for v in r_.ravel()) + "\n" for r_ in xt)
    xt = np.array([[float(v) for v in line.split(",")] for line in rows.split()],
                  np.float32).reshape((ROWS,) + shape)
    r = run([binp, "predict", "--load", ckpt], input=rows)
    if r.returncode:
        return "predict failed: " + r.stderr
    # every model runs in the torch interpreter; OpenCV runs what it can import
    names = [o.name for o in model.graph.output]
    if len(names) != (2 if label[0] == "class" else 1):
        return "outputs %s" % names
    runs = {"torch": torch_run(model, xt)}
    try:
        runs["OpenCV"] = opencv_run(out, xt, names)
    except Exception as e:  # OpenCV 4.6's importer lacks a few valid ops
        if name not in NOT_OPENCV:
            return "OpenCV cannot run it: %s" % str(e).splitlines()[0]
        print("  %s: OpenCV 4.6 cannot import it (%s); the torch interpreter alone checks it"
              % (name, str(e).splitlines()[0][:100]))
    for checker, got in runs.items():
        why = compare(r.stdout, [np.asarray(v).reshape(ROWS, -1) for v in got], label)
        if why:
            return "%s: %s" % (checker, why)
    print("  %s: %d nodes, %d initializers: onnx.checker ok; within %g of predict in %s"
          % (name, len(model.graph.node), len(model.graph.initializer), TOL,
             " and ".join(sorted(runs))))
    return None


def compare(stdout, outputs, label):
    """None if the ONNX outputs match predict's stdout, else why not."""
    got = outputs[0]
    if label[0] == "class":
        want = [int(v) for v in stdout.split()]
        top = np.sort(got, axis=1)
        close = top[:, -1] - top[:, -2] < TOL  # a tie within the tolerance may go either way
        # the class output is predict's class
        cls = [int(v) for v in outputs[1].ravel()]
        if len(cls) != len(want):
            return "%d classes out, predict printed %d" % (len(cls), len(want))
        bad = [k for k in range(len(want)) if cls[k] != want[k] and not close[k]]
        if bad:
            return "the class output differs at rows %s: predict %s, ONNX %s" % (
                bad, [want[k] for k in bad], [cls[k] for k in bad])
        bad = [k for k in range(len(want)) if not close[k] and int(np.argmax(got[k])) != want[k]]
        if bad:
            return "classes differ at rows %s: predict %s, ONNX %s" % (
                bad, [want[k] for k in bad], [int(np.argmax(got[k])) for k in bad])
        return None
    want = np.array([[float(v) for v in line.split(",")] for line in stdout.split()])
    if want.shape != got.shape:
        return "predict gives %s values, the ONNX file %s" % (want.shape, got.shape)
    err = float(np.max(np.abs(want - got)))
    return None if err <= TOL else "largest difference from predict %.3g > %g" % (err, TOL)


# ---- an example on real data -------------------------------------------------------

FASHION = "/usr/share/datasets/fashion-mnist"


def check_example(dlnc, src, work):
    """examples/norms.dln after one epoch of Fashion-MNIST: OpenCV's classes
    for 500 test images are predict's (which reads raw pixels and scales them
    by the data's 1/255; the ONNX input takes them scaled)."""
    import gzip
    images = os.path.join(FASHION, "t10k-images-idx3-ubyte.gz")
    if not os.path.exists(images):
        return "%s is missing (Debian's dataset-fashion-mnist: scripts/setup.sh deps)" % images
    d = os.path.join(work, "norms")
    os.makedirs(d)
    binp, ckpt, out = (os.path.join(d, "norms"), os.path.join(d, "norms.st"),
                       os.path.join(d, "norms.onnx"))
    r = run([dlnc, "build", os.path.join(src, "examples", "norms.dln"), "-o", binp])
    if r.returncode:
        return "build failed: " + r.stderr
    r = run([binp, "train", "--epochs", "1", "--threads", "2", "--save", ckpt])
    if r.returncode:
        return "training failed: " + r.stderr
    r = run([binp, "export", "--load", ckpt, "--onnx", out])
    if r.returncode:
        return "export failed: " + r.stderr
    with gzip.open(images) as f:
        x = np.frombuffer(f.read()[16:16 + 500 * 784], np.uint8).reshape(500, 784)
    r = run([binp, "predict", "--load", ckpt],
            input="".join(",".join(str(v) for v in row) + "\n" for row in x))
    want = [int(v) for v in r.stdout.split()]
    import onnx
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    names = [o.name for o in model.graph.output]
    logits, cls = opencv_run(out, (x.astype(np.float32) / 255).reshape(500, 1, 28, 28), names)
    why = compare(r.stdout, [np.asarray(logits).reshape(500, -1), np.asarray(cls)],
                  ("class", 10))
    if why:
        return why
    print("  examples/norms.dln, one epoch of Fashion-MNIST: OpenCV's classes of 500 test "
          "images are predict's")
    return None


# ---- the writer under AddressSanitizer and UBSan --------------------------------

def check_sanitized(dlnc, work):
    """A --debug trainer (ASan, UBSan) writes the same bytes as the release one."""
    d = os.path.join(work, "acts")
    binp = os.path.join(d, "acts_debug")
    r = run([dlnc, "build", "--debug", os.path.join(d, "acts.dln"), "-o", binp])
    if r.returncode:
        return "build --debug failed: " + r.stderr
    out = os.path.join(d, "debug.onnx")
    r = run([binp, "export", "--load", os.path.join(d, "acts.st"), "--onnx", out])
    if r.returncode or "Sanitizer" in r.stderr or "runtime error" in r.stderr:
        return "export: status %d, %r" % (r.returncode, r.stderr)
    with open(out, "rb") as a, open(os.path.join(d, "acts.onnx"), "rb") as b:
        if a.read() != b.read():
            return "the --debug trainer's file differs from the release trainer's"
    print("  acts: a --debug (ASan, UBSan) trainer exports the same bytes")
    return None


# ---- refusals -----------------------------------------------------------------

def check_refusals(dlnc, src, work):
    d = os.path.join(work, "refuse")
    os.makedirs(d)
    dln = os.path.join(d, "lstm.dln")
    shutil.copy(os.path.join(src, "tests", "gradcheck", "lstm.dln"), dln)
    binp = os.path.join(d, "lstm")
    r = run([dlnc, "build", dln, "-o", binp])
    if r.returncode:
        return "build failed: " + r.stderr
    out = os.path.join(d, "lstm.onnx")
    r = run([binp, "export", "--load", os.path.join(d, "none.st"), "--onnx", out])
    line = next(i + 1 for i, t in enumerate(open(dln)) if "lstm(" in t)
    if r.returncode != 1 or ("lstm.dln:%d:" % line) not in r.stderr or \
            "no ONNX mapping" not in r.stderr or "| h1 = lstm(" not in r.stderr or \
            os.path.exists(out):
        return "lstm export: status %d, %r" % (r.returncode, r.stderr)
    print("  lstm  refused: " + r.stderr.splitlines()[0].replace(d + "/", ""))

    # bad --onnx paths, with a valid checkpoint of a model that can be exported
    binp, ckpt = os.path.join(work, "cls", "cls"), os.path.join(work, "cls", "cls.st")
    for what, path in (("a missing directory", os.path.join(d, "nodir", "m.onnx")),
                       ("a directory", d)):
        r = run([binp, "export", "--load", ckpt, "--onnx", path])
        if r.returncode != 1 or "--onnx" not in r.stderr:
            return "--onnx %s: status %d, %r" % (what, r.returncode, r.stderr)
        print("  --onnx %s refused: %s" % (what, r.stderr.strip().replace(d + "/", "")))
    if os.path.exists(os.path.join(d, "nodir")):
        return "a refused export created a directory"
    # the checkpoint itself (through a link too) is never replaced by the export
    with open(ckpt, "rb") as f:
        before = f.read()
    link = os.path.join(d, "link.st")
    os.symlink(ckpt, link)
    for path in (ckpt, link):
        r = run([binp, "export", "--load", ckpt, "--onnx", path])
        if r.returncode != 1 or "is the checkpoint --load reads" not in r.stderr:
            return "--onnx naming the checkpoint: status %d, %r" % (r.returncode, r.stderr)
    with open(ckpt, "rb") as f:
        if f.read() != before:
            return "--onnx naming the checkpoint changed it"
    print("  --onnx naming the checkpoint refused: " + r.stderr.strip().replace(work + "/", ""))
    r = run([binp, "export", "--load", ckpt])
    if r.returncode != 2 or "--onnx FILE is required" not in r.stderr:
        return "export without --onnx: status %d, %r" % (r.returncode, r.stderr)
    # a checkpoint that does not load leaves an existing file as it was
    keep = os.path.join(d, "keep.onnx")
    with open(keep, "w") as f:
        f.write("old")
    r = run([binp, "export", "--load", os.path.join(d, "none.st"), "--onnx", keep])
    if r.returncode != 1 or open(keep).read() != "old" or \
            [f for f in os.listdir(d) if ".tmp." in f]:
        return "a failed export touched %s (status %d)" % (keep, r.returncode)
    return None


def main(dlnc, src, work):
    try:
        import onnx
        import cv2  # noqa: F401
    except ImportError as e:
        print("SKIPPED: %s (Debian's python3-onnx and python3-opencv: scripts/setup.sh deps)" % e)
        return 77
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    os.environ.setdefault("DLNC_CACHE", os.path.join(work, "cache"))
    rng = np.random.default_rng(15)
    failed = 0
    # every model, and an --f64 trainer (which exports float32 weights)
    for name, f64 in [(m, False) for m in MODELS] + [("acts", True)]:
        why = check_model(name, dlnc, src, work, rng, onnx, f64)
        if why:
            print("FAIL %s%s: %s" % (name, " --f64" if f64 else "", why))
            failed += 1
    why = check_example(dlnc, src, work)
    if why:
        print("FAIL examples/norms.dln: " + why)
        failed += 1
    why = check_sanitized(dlnc, work)
    if why:
        print("FAIL sanitizers: " + why)
        failed += 1
    why = check_refusals(dlnc, src, work)
    if why:
        print("FAIL refusals: " + why)
        failed += 1
    if failed:
        return 1
    print("onnx export: %d models (and one --f64) within %g of predict; refusals ok"
          % (len(MODELS), TOL))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
