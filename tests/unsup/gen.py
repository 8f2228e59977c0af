#!/usr/bin/python3
import gzip, struct, sys, random
# gen.py DIR: small IDX image sets (8x8 bytes) and a label-free CSV
d = sys.argv[1]
rnd = random.Random(7)
def images(n, path, gz):
    data = struct.pack('>IIII', 0x803, n, 8, 8) + bytes(rnd.randrange(256) for _ in range(n * 64))
    (gzip.open if gz else open)(path, 'wb').write(data)
def labels(n, path):
    open(path, 'wb').write(struct.pack('>II', 0x801, n) + bytes(rnd.randrange(3) for _ in range(n)))
images(100, d + '/train-images.gz', True)
images(37, d + '/test-images.idx', False)
labels(100, d + '/train-labels.idx')
labels(37, d + '/test-labels.idx')
with open(d + '/rows.csv', 'w') as f:
    for i in range(50):
        f.write(','.join('%.3f' % rnd.random() for _ in range(64)) + '\n')
