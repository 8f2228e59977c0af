#!/bin/sh
# conv_images' data (conv_images.dln, tests/mpi/conv_bn.dln): ROWS rows of
# 100 pixels (10x10) and a class (row mod 3), from a fixed LCG, on stdout.
# usage: conv_images.sh ROWS
awk -v rows="$1" 'BEGIN { s = 12345; for (r = 0; r < rows; r++) { line = "";
       for (i = 0; i < 100; i++) { s = (s * 1103515245 + 12345) % 2147483648;
         line = line sprintf("%.4f,", s / 2147483648) }
       print line (r % 3) } }'
