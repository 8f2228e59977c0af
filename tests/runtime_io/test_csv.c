/* test_csv.c: CSV datasets (class and real labels), messages, dl_parse_csv_row. */
#include "testutil.h"

#include <math.h>

#include "data.h"

static void check_class_csv(void) {
  const char *p = tmp_path("iris.csv");
  /* Header, spaces around fields, a blank line, CRLF endings, exponent form,
   * a class written as 2.0. */
  write_text(p, "a,b,c,label\r\n"
                "1.5, 2 ,-3e-1,0\r\n"
                "\r\n"
                "  4,5.25,6 , 2.0\r\n"
                "7,8,9,1");
  dl_dataset d;
  char err[512] = "";
  int rc = dl_load_csv(&d, p, 1, 0.5, 3, 1, 3, err, sizeof err);
  CHECK(rc == 0);
  if (rc) {
    fprintf(stderr, "load failed: %s\n", err);
    return;
  }
  CHECK(d.n == 3 && d.x_size == 3 && d.y_is_class && d.y_size == 3);
  CHECK(d.x_f32 && !d.x_u8 && d.y_class && !d.y_real);
  CHECK(d.x_f32[0] == 1.5f && d.x_f32[2] == -0.3f && d.x_f32[4] == 5.25f && d.x_f32[8] == 9.0f);
  CHECK(d.y_class[0] == 0 && d.y_class[1] == 2 && d.y_class[2] == 1);
  int64_t idx[2] = {2, 0};
  dl_real x[6];
  int32_t y[2];
  dl_dataset_gather(&d, idx, 2, x, y, NULL);
  CHECK(x[0] == (dl_real)3.5 && x[1] == 4 && x[2] == (dl_real)4.5);
  CHECK(x[3] == (dl_real)0.75 && x[5] == (dl_real)((double)-0.3f * 0.5));
  CHECK(y[0] == 1 && y[1] == 0);
  dl_dataset_free(&d);
}

static void check_real_csv(void) {
  const char *p = tmp_path("reg.csv");
  write_text(p, "1,2,0.5,-0.5\n3,4,1e3,7\n");
  dl_dataset d;
  char err[512] = "";
  int rc = dl_load_csv(&d, p, 0, 1.0, 2, 0, 2, err, sizeof err);
  CHECK(rc == 0);
  if (rc) {
    fprintf(stderr, "load failed: %s\n", err);
    return;
  }
  CHECK(d.n == 2 && !d.y_is_class && d.y_real && !d.y_class);
  int64_t idx[1] = {1};
  dl_real x[2], y[2];
  int32_t yc[1] = {-7};
  dl_dataset_gather(&d, idx, 1, x, yc, y);
  CHECK(x[0] == 3 && x[1] == 4 && y[0] == 1000 && y[1] == 7);
  CHECK(yc[0] == -7); /* no class labels: left alone */
  dl_dataset_free(&d);
}

/* A CSV text that must be rejected with a message holding the fragments. */
#define EXPECT_FAIL(text, header, is_class, ...)                                    \
  do {                                                                              \
    const char *p_ = tmp_path("bad.csv");                                           \
    write_text(p_, text);                                                           \
    dl_dataset d_;                                                                  \
    char err_[512] = "";                                                            \
    int rc_ = dl_load_csv(&d_, p_, header, 1.0, 2, is_class, 3, err_, sizeof err_); \
    CHECK_ERR(rc_ == -1, err_, p_, __VA_ARGS__);                                    \
    CHECK(d_.n == 0 && d_.x_f32 == NULL && d_.y_class == NULL && d_.y_real == NULL); \
  } while (0)

static void check_errors(void) {
  EXPECT_FAIL("1,2,0\n1,abc,1\n", 0, 1, "bad.csv:2:2:", "bad number \"abc\"");
  EXPECT_FAIL("1,2,0\n1,2.5x,1\n", 0, 1, "bad.csv:2:2:", "\"2.5x\"");
  EXPECT_FAIL("1,2,0\n\n1,,1\n", 0, 1, "bad.csv:3:2:", "empty field");
  EXPECT_FAIL("1,2,0,\n", 0, 1, "bad.csv:1:4:", "empty field");
  EXPECT_FAIL("1,2,0\n1,2\n", 0, 1, "bad.csv:2:", "expected 3 fields, found 2");
  EXPECT_FAIL("1,2,0\n1,2,1,1\n", 0, 1, "bad.csv:2:", "expected 3 fields, found 4");
  EXPECT_FAIL("x,y,label\n1,2,0\n", 0, 1, "bad.csv:1:1:", "\"x\"", "header");
  EXPECT_FAIL("1,2,3\n", 0, 1, "bad.csv:1:3:", "class label 3", "out of range [0, 3)");
  EXPECT_FAIL("1,2,-1\n", 0, 1, "bad.csv:1:3:", "class label -1", "out of range");
  EXPECT_FAIL("1,2,1.5\n", 0, 1, "bad.csv:1:3:", "class label 1.5", "not an integer");
  EXPECT_FAIL("1,nan,1\n", 0, 1, "bad.csv:1:2:", "not a finite number");
  EXPECT_FAIL("1,1e39,1\n", 0, 1, "bad.csv:1:2:", "out of float range");
  EXPECT_FAIL("1,2,3,4\n", 0, 0, "bad.csv:1:", "expected 5 fields, found 4");
  EXPECT_FAIL("h1,h2,h3\n\n", 1, 1, "no data rows");
  EXPECT_FAIL("", 0, 1, "no data rows");

  dl_dataset d;
  char err[512] = "";
  const char *p = tmp_path("missing.csv");
  CHECK_ERR(dl_load_csv(&d, p, 0, 1.0, 2, 1, 3, err, sizeof err) == -1, err, "cannot open", p,
            "No such file");
}

static void check_parse_row(void) {
  dl_real out[4] = {0};
  int64_t bad = 0;
  double bad_val = 0;
  CHECK(dl_parse_csv_row("1, 2.5,-3,4e1\n", out, 4, &bad, &bad_val) == 4);
  CHECK(out[0] == 1 && out[1] == (dl_real)2.5 && out[2] == -3 && out[3] == 40);
  CHECK(dl_parse_csv_row("7,8\r\n", out, 4, &bad, &bad_val) == 2 && out[0] == 7 && out[1] == 8);
  /* Too many: the count says so, and only `count` values are stored. */
  out[3] = -1;
  CHECK(dl_parse_csv_row("1,2,3,4,5,6", out, 3, &bad, &bad_val) == 6 && out[3] == -1);
  CHECK(dl_parse_csv_row("   \n", out, 4, &bad, &bad_val) == 0);
  CHECK(dl_parse_csv_row("1,x,3", out, 3, &bad, &bad_val) == -1 && bad == 2);
  CHECK(dl_parse_csv_row("1,2,", out, 3, &bad, &bad_val) == -1 && bad == 3);
  CHECK(dl_parse_csv_row(",1", out, 3, &bad, &bad_val) == -1 && bad == 1);
  CHECK(dl_parse_csv_row("1 2", out, 3, &bad, &bad_val) == -1 && bad == 1);
  CHECK(dl_parse_csv_row("inf", out, 3, &bad, &bad_val) == -1 && bad == 1);
  /* The loader's rules: past float range is refused, values are float32. */
  CHECK(dl_parse_csv_row("1,-1e39,3", out, 3, &bad, &bad_val) == -2 && bad == 2 && bad_val == -1e39);
  CHECK(dl_parse_csv_row("3e38,0.1", out, 2, &bad, &bad_val) == 2 && out[1] == (dl_real)0.1f);
}

int main(void) {
  make_tmpdir("rt_csv");
  check_class_csv();
  check_real_csv();
  check_errors();
  check_parse_row();
  return finish("runtime_io_csv");
}
