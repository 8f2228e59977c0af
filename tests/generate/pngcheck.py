#!/usr/bin/python3
# pngcheck.py FILE.png IDX W H: FILE.png is a PNG (signature, IHDR) of W x H
# 8-bit grey pixels whose grid tiles hold the images of the IDX file, framed
# by grey 128 (rows unfiltered, as trainer_generate.c writes them).
import math, struct, sys, zlib
png, idx, W, H = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
b = open(png, 'rb').read()
assert b[:8] == b'\x89PNG\r\n\x1a\n', 'no PNG signature'
assert b[12:16] == b'IHDR', 'no IHDR first'
w, h, depth, colour = struct.unpack('>IIBB', b[16:26])
assert (w, h, depth, colour) == (W, H, 8, 0), (w, h, depth, colour)
data, pos = b'', 8
while pos < len(b):
    n, = struct.unpack('>I', b[pos:pos + 4])
    if b[pos + 4:pos + 8] == b'IDAT':
        data += b[pos + 8:pos + 8 + n]
    pos += 12 + n
raw = zlib.decompress(data)
assert len(raw) == h * (w + 1), 'wrong pixel data size'
rows = [raw[y * (w + 1) + 1:(y + 1) * (w + 1)] for y in range(h)]
assert all(raw[y * (w + 1)] == 0 for y in range(h)), 'filtered rows'
ib = open(idx, 'rb').read()
n, ih, iw = struct.unpack('>III', ib[4:16])
cols = math.ceil(math.sqrt(n))
for i in range(n):
    gy, gx = divmod(i, cols)
    for y in range(ih):
        tile = rows[1 + gy * (ih + 1) + y][1 + gx * (iw + 1):1 + gx * (iw + 1) + iw]
        want = ib[16 + (i * ih + y) * iw:16 + (i * ih + y + 1) * iw]
        assert tile == want, 'image %d row %d differs' % (i, y)
assert rows[0] == bytes([128]) * w, 'no grey frame'
print('png ok: %d x %d, %d images' % (w, h, n))
