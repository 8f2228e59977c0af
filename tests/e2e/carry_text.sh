#!/bin/sh
# carry_lstm.dln's text on stdout: 3 * N letters, a counter mod 16, a
# period-5 pattern and their sum, interleaved (as tests/torch/tbptt.py's).
# usage: carry_text.sh N
awk -v n="$1" 'BEGIN { for (k = 0; k < n; k++)
  printf "%c%c%c", 97 + k % 16, 97 + (k * 3) % 5, 97 + (k + (k * 3) % 5) % 16 }'
