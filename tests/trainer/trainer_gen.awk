# trainer_gen.awk -v kind=reg|cls|idxx|idxy -v n=ROWS -v seed=S
# Small deterministic data sets (own LCG: awk's rand() differs between awks).
#   reg: CSV x1,x2,x3 -> y1 = 2 x1 - x2 + x3/2 + 1, y2 = -x1 + 3 x3 - 1/2
#   cls: CSV x1,x2,x3 -> class (x1 + x2 - x3 > 0.1)
#   idxx, idxy: bytes a,b,c -> class (a + b - c > 128), as printf(1) octal
#     escapes of the IDX payload (images [n,3], labels [n]; no header)
function rnd() { s = (s * 16807) % 2147483647; return s / 2147483647 * 2 - 1 }
BEGIN {
  s = seed + 12345
  if (kind == "idxx" || kind == "idxy") { idx(); exit }
  print "x1,x2,x3,y1" (kind == "reg" ? ",y2" : "")
  for (i = 0; i < n; i++) {
    a = rnd(); b = rnd(); c = rnd()
    if (kind == "reg")
      printf "%.6f,%.6f,%.6f,%.6f,%.6f\n", a, b, c, 2*a - b + 0.5*c + 1, -a + 3*c - 0.5
    else
      printf "%.6f,%.6f,%.6f,%d\n", a, b, c, (a + b - c > 0.1) ? 1 : 0
  }
}

function byte(v) { return sprintf("\\%03o", v) }
function idx(   i, a, b, c, out) {
  for (i = 0; i < n; i++) {
    a = int((rnd() + 1) * 127.99); b = int((rnd() + 1) * 127.99); c = int((rnd() + 1) * 127.99)
    out = out (kind == "idxx" ? byte(a) byte(b) byte(c) : byte(a + b - c > 128 ? 1 : 0))
  }
  printf "%s", out
}
