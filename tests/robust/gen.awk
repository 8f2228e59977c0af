# gen.awk: deterministic data sets for the robustness tests.
#   awk -v kind=K -v n=N -v seed=S -f gen.awk
# kind=wide: 32 inputs in [-1, 1], then a class in 0..3 (the group of 8
#            inputs with the largest sum): CSV, no header.
# kind=reg:  4 inputs, then y = x0 - 2 x1 + 0.5 x2 + x3: CSV, no header.
# kind=img:  n samples of px bytes (default 16) as octal escapes for printf;
# kind=lab:  their labels: the class is which quarter of the image is brightest.
# Park-Miller: the products stay below 2^53, exact in any awk.
function rnd() { state = (state * 16807) % 2147483647; return state / 2147483647 }
BEGIN {
  state = seed + 1
  for (k = 0; k < 4; k++) rnd()   # small seeds start near 0
  if (px == "") px = 16
  for (i = 0; i < n; i++) {
    if (kind == "wide") {
      best = 0; bsum = -1e9; line = ""
      for (g = 0; g < 4; g++) {
        s = 0
        for (j = 0; j < 8; j++) { v = 2 * rnd() - 1; s += v; line = line sprintf("%.4f,", v) }
        if (s > bsum) { bsum = s; best = g }
      }
      print line best
    } else if (kind == "reg") {
      for (j = 0; j < 4; j++) x[j] = 2 * rnd() - 1
      printf "%.4f,%.4f,%.4f,%.4f,%.4f\n", x[0], x[1], x[2], x[3], x[0] - 2 * x[1] + 0.5 * x[2] + x[3]
    } else if (kind == "img" || kind == "lab") {
      # Both kinds draw the same numbers, so labels match their images.
      cls = int(rnd() * 4)
      img = ""
      for (j = 0; j < px; j++) {
        v = int(rnd() * 100) + (int(j * 4 / px) == cls ? 150 : 0)
        img = img sprintf("\\%03o", v)
      }
      printf "%s", kind == "lab" ? sprintf("\\%03o", cls) : img
    }
  }
}
