# tagger_gen.awk -v n=ROWS -v seed=S: rows for tagger.dln: 12 token ids in
# 0..3, then the 12 tags (x[t] + x[t-1]) mod 3, with x[-1] = 0.
BEGIN {
  srand(seed)
  for (r = 0; r < n; r++) {
    prev = 0; line = ""; tags = ""
    for (t = 0; t < 12; t++) {
      x = int(rand() * 4)
      line = line (t ? "," : "") x
      tags = tags "," (x + prev) % 3
      prev = x
    }
    print line tags
  }
}
