"""Safetensors interop with PyTorch, driven by test_safetensors.c.

  st_interop.py make PATH    write a file the way Python tools do
  st_interop.py check PATH   verify a file written by dl_st_write

Uses the `safetensors` package when installed; otherwise the format is
written/read by hand with struct + json exactly as that package does (data
ordered by alignment then name, header padded with spaces to 8 bytes,
json.dumps's default spacing and \\u escapes).  The tensors match
expected_tensors() in test_safetensors.c.
"""
import json
import struct
import sys

import torch

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64",
          torch.int32: "I32", torch.uint8: "U8"}
BY_NAME = {v: k for k, v in DTYPES.items()}
META = {"format": "pt", "note": "na\u00efve \"q\" \\ \U0001F600"}


def tensors():
    return {
        "w.f32": torch.arange(12, dtype=torch.float32).reshape(3, 4) / 4 - 1,
        "b.f64": torch.arange(5, dtype=torch.float64) * 1e100 / 3,
        "i.i64": torch.tensor([-(2**62), -1, 0, 2**62 + 5], dtype=torch.int64),
        "i.i32": torch.tensor([[-7, 2**31 - 1], [0, -(2**31)]], dtype=torch.int32),
        "u.u8": torch.arange(0, 250, 50, dtype=torch.uint8),
        "s": torch.tensor(2.5, dtype=torch.float32),
        "emb.\u00e9": torch.tensor([1.0, -2.0], dtype=torch.float32),
    }


def save_by_hand(ts, path, meta):
    order = sorted(ts, key=lambda k: (-ts[k].element_size(), k))
    entries, blobs, off = {}, [], 0
    for k in order:
        b = ts[k].contiguous().numpy().tobytes()
        entries[k] = {"dtype": DTYPES[ts[k].dtype], "shape": list(ts[k].shape),
                      "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    # Header keys deliberately not in data order, metadata in the middle.
    header = {}
    names = sorted(entries, reverse=True)
    for i, k in enumerate(names):
        if i == len(names) // 2:
            header["__metadata__"] = meta
        header[k] = entries[k]
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def load_by_hand(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0, "header not padded to 8"
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    spans = sorted(v["data_offsets"] for v in header.values())
    at = 0
    for b, e in spans:
        assert b == at, "data not contiguous"
        at = e
    assert at == len(data), "trailing data"
    out = {}
    for k, v in header.items():
        b, e = v["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:e]), dtype=BY_NAME[v["dtype"]]) if e > b \
            else torch.empty(0, dtype=BY_NAME[v["dtype"]])
        out[k] = t.reshape(v["shape"])
    return out, meta


def main():
    mode, path = sys.argv[1], sys.argv[2]
    try:
        from safetensors import safe_open
        from safetensors.torch import save_file
    except ImportError:
        safe_open = save_file = None
    if mode == "make":
        if save_file:
            save_file(tensors(), path, metadata=META)
        else:
            save_by_hand(tensors(), path, META)
        return 0
    got, meta = load_by_hand(path)
    if safe_open:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata()
            got = {k: f.get_tensor(k) for k in f.keys()}
    want = tensors()
    if meta != META:
        print("metadata differs:", meta)
        return 1
    if sorted(got) != sorted(want):
        print("names differ:", sorted(got))
        return 1
    for k, t in want.items():
        if got[k].dtype != t.dtype or got[k].shape != t.shape or not torch.equal(got[k], t):
            print("tensor differs:", k, got[k])
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
