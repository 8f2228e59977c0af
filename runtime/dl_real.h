/* dl_real.h: the element type of a build.  `dlnc build --f64` compiles the
 * generated code and the runtime with -DDLNC_F64 (used by gradient checks). */
#ifndef DL_REAL_H
#define DL_REAL_H
#ifdef DLNC_F64
typedef double dl_real;
#define DL_REAL_ST_DTYPE "F64"
#define DL_REAL_IS_F64 1
#else
typedef float dl_real;
#define DL_REAL_ST_DTYPE "F32"
#define DL_REAL_IS_F64 0
#endif
#endif
