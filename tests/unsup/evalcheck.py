#!/usr/bin/python3
# evalcheck.py CKPT IMAGES LOSS: recomputes ae.dln's test loss with numpy from
# the checkpoint (safetensors, read by hand) and the IDX images, and checks
# that LOSS (what `eval` printed) is it: binary cross-entropy summed over the
# 64 pixels (torch's log clamped at -100), the mean over every test image.
import json, struct, sys
import numpy as np
ckpt, images, got = sys.argv[1], sys.argv[2], float(sys.argv[3])
b = open(ckpt, 'rb').read()
n, = struct.unpack('<Q', b[:8])
hdr = json.loads(b[8:8 + n])
def tensor(name):
    t = hdr[name]
    lo, hi = t['data_offsets']
    dt = {'F32': np.float32, 'F64': np.float64}[t['dtype']]
    return np.frombuffer(b[8 + n + lo:8 + n + hi], dtype=dt).reshape(t['shape']).astype(np.float64)
ib = open(images, 'rb').read()
count, rows, cols = struct.unpack('>III', ib[4:16])
x = np.frombuffer(ib[16:], dtype=np.uint8).reshape(count, rows * cols).astype(np.float64) * (1 / 255)
h = np.tanh(x @ tensor('h.weight').T + tensor('h.bias'))
p = 1 / (1 + np.exp(-(h @ tensor('recon.weight').T + tensor('recon.bias'))))
bce = -(x * np.maximum(np.log(p), -100) + (1 - x) * np.maximum(np.log(1 - p), -100))
want = bce.sum(axis=1).mean()
if abs(got - want) > 1e-4 * abs(want):
    sys.exit('FAIL: eval reports %.7g, the mean over %d images of the per-image loss is %.7g'
             % (got, count, want))
print('eval loss %.7g = numpy %.7g (nats per image, %d images)' % (got, want, count))
