"""Read a dlnc checkpoint (safetensors) with numpy alone.

Debian has no `safetensors` Python package; this module is the few lines it
takes to read one, so a dlnc checkpoint loads into torch.nn (or anything
else) on a stock Debian system:

    import sys, torch
    sys.path.insert(0, "/path/to/dlnc/tools")
    from dlnc_checkpoint import load
    tensors, meta = load("model.st")
    net.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()
                         if k in net.state_dict()}, strict=True)

`tensors` maps each name (PyTorch's: "h1.weight", "bn.running_mean",
"h1.weight.exp_avg" for optimiser state) to a numpy array of the file's
dtype (float32, float64, or int64 for num_batches_tracked) and shape;
`meta` is the file's string metadata (model, dtype, epoch, step, seed, ...).
The file is checked as it is read: a header that is not JSON, a dtype this
reader does not know, or data offsets outside the file raise ValueError
naming the file and the tensor.

Command line: `python3 tools/dlnc_checkpoint.py FILE` lists the tensors.
"""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "F16": "<f2", "I32": "<i4", "U8": "u1"}


def load(path):
    """(tensors, metadata) of the safetensors file at path."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError("%s: too short to be a safetensors file (%d bytes)" % (path, len(blob)))
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise ValueError("%s: the header claims %d bytes, the file has %d after it"
                         % (path, n, len(blob) - 8))
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError("%s: the header is not JSON: %s" % (path, e))
    if not isinstance(header, dict):
        raise ValueError("%s: the header is not a JSON object" % path)
    meta = header.pop("__metadata__", {}) or {}
    data = memoryview(blob)[8 + n:]
    tensors = {}
    for name, t in header.items():
        try:
            dtype = DTYPES[t["dtype"]]
            shape = [int(d) for d in t["shape"]]
            begin, end = (int(o) for o in t["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("%s: tensor %r: a dtype this reader knows, a shape and data_offsets "
                             "expected, got %r" % (path, name, t))
        count = int(np.prod(shape)) if shape else 1
        if not 0 <= begin <= end <= len(data) or end - begin != count * np.dtype(dtype).itemsize:
            raise ValueError("%s: tensor %r: data_offsets [%d, %d) do not fit the file's %d data bytes "
                             "or its shape %s" % (path, name, begin, end, len(data), shape))
        tensors[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape).copy()
    return tensors, meta


def main(argv):
    if len(argv) != 2:
        print("usage: dlnc_checkpoint.py FILE", file=sys.stderr)
        return 2
    try:
        tensors, meta = load(argv[1])
    except (OSError, ValueError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    for k, v in sorted(meta.items()):
        print("# %s = %s" % (k, v))
    for name, t in tensors.items():
        print("%-40s %-8s %s" % (name, t.dtype, list(t.shape)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
