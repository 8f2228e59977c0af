/* gemm_shapes.h: the GEMMs one training step of each bench/run workload makes,
 * for bench/gemm_bench.c.  Read off the generated C (`dlnc emit MODEL -o DIR`,
 * then the dl_gemm_* calls; bench/gemm_shapes.sh lists them) at the batch size
 * bench/run trains with; M is the batch, or batch x positions for the
 * sequence models, or one sample's output positions for a convolution run per
 * sample.  Identical calls of one workload share a row and add up in `calls`
 * (calls per training step; evaluation passes and sampling are not counted).
 * Roles: fwd (a layer's forward, y = x W^T), dX (an input gradient,
 * dx = dy W), dW (a weight gradient, dW = dy^T x); attention's products are
 * filed under the role they play there.  Leading dimensions are 0 where they
 * are the logical widths (dense operands), else as generated.  Update this
 * table when the code generator changes how a layer calls the GEMM. */
#ifndef GEMM_SHAPES_H
#define GEMM_SHAPES_H

enum {
    SH_PACKED = 1, /* dlnc: dl_gemm_packed on a B packed once beforehand (a
                    * recurrent W_hh, packed once per pass of 128 steps) */
    SH_SERIAL = 2, /* one thread: the generated code calls it with no pool from
                    * a loop over samples that is itself split over the pool */
    SH_ACC = 4,    /* accumulates into C (beta = 1) */
};

typedef struct {
    const char *workload, *what, *role;
    char kind; /* 't' = nt: A[M,K] B[N,K]^T; 'n' = nn: A[M,K] B[K,N];
                * 'T' = tn: A[K,M]^T B[K,N] */
    int M, N, K;
    int lda, ldb, ldc; /* 0: the logical width */
    int calls;         /* per training step */
    unsigned flags;
} shape;

/* In bench/run's order of workloads; "extra" keeps the hand-picked shapes of
 * earlier versions of this benchmark (other batch sizes, a tiny product,
 * squares).  bench/tiny.dln makes no GEMM call (batch 1, 16 wide: dot loops),
 * and "check" is the tiny shape of the ctest gemm_bench_check. */
static const shape shapes[] = {
    /* mlp: examples/fashion_mlp.dln, 784-256-128-10, batch 64 */
    {"mlp", "fc1", "fwd", 't', 64, 256, 784, 0, 0, 0, 1, 0},
    {"mlp", "fc2", "fwd", 't', 64, 128, 256, 0, 0, 0, 1, 0},
    {"mlp", "fc3", "fwd", 't', 64, 10, 128, 0, 0, 0, 1, 0},
    {"mlp", "fc3", "dW", 'T', 10, 128, 64, 0, 0, 0, 1, 0},
    {"mlp", "fc3", "dX", 'n', 64, 128, 10, 0, 0, 0, 1, 0},
    {"mlp", "fc2", "dW", 'T', 128, 256, 64, 0, 0, 0, 1, 0},
    {"mlp", "fc2", "dX", 'n', 64, 256, 128, 0, 0, 0, 1, 0},
    {"mlp", "fc1", "dW", 'T', 256, 784, 64, 0, 0, 0, 1, 0},

    /* wide: bench/wide.dln, 2048-2048-2048-10, batch 256 */
    {"wide", "h1,h2", "fwd", 't', 256, 2048, 2048, 0, 0, 0, 2, 0},
    {"wide", "logits", "fwd", 't', 256, 10, 2048, 0, 0, 0, 1, 0},
    {"wide", "logits", "dW", 'T', 10, 2048, 256, 0, 0, 0, 1, 0},
    {"wide", "logits", "dX", 'n', 256, 2048, 10, 0, 0, 0, 1, 0},
    {"wide", "h1,h2", "dW", 'T', 2048, 2048, 256, 0, 0, 0, 2, 0},
    {"wide", "h2", "dX", 'n', 256, 2048, 2048, 0, 0, 0, 1, 0},

    /* cnn: examples/fashion_cnn.dln, batch 64: its dense layers.  Its
     * convolutions are no GEMM calls (runtime/conv.c reads each padded
     * image in place): bench/conv_bench.c times them. */
    {"cnn", "h", "fwd", 't', 64, 128, 1568, 0, 0, 0, 1, 0},
    {"cnn", "logits", "fwd", 't', 64, 10, 128, 0, 0, 0, 1, 0},
    {"cnn", "logits", "dW", 'T', 10, 128, 64, 0, 0, 0, 1, 0},
    {"cnn", "logits", "dX", 'n', 64, 128, 10, 0, 0, 0, 1, 0},
    {"cnn", "h", "dW", 'T', 128, 1568, 64, 0, 0, 0, 1, 0},
    {"cnn", "h", "dX", 'n', 64, 1568, 128, 0, 0, 0, 1, 0},

    /* lstm: examples/char_lstm.dln, batch 32 x 128 positions = 4096 rows;
     * the recurrence is one GEMM per step over the batch, rows 128 x 1536
     * apart in the step-major state */
    {"lstm", "W_ih x", "fwd", 't', 4096, 1024, 64, 0, 0, 0, 1, 0},
    {"lstm", "W_hh h per step", "fwd", 't', 32, 1024, 256, 196608, 0, 196608, 128,
     SH_PACKED | SH_ACC},
    {"lstm", "logits", "fwd", 't', 4096, 256, 256, 0, 0, 0, 1, 0},
    {"lstm", "logits", "dW", 'T', 256, 256, 4096, 0, 0, 0, 1, 0},
    {"lstm", "logits", "dX", 'n', 4096, 256, 256, 0, 0, 0, 1, 0},
    {"lstm", "W_hh per step", "dX", 'n', 32, 256, 1024, 196608, 0, 196608, 127, SH_PACKED},
    {"lstm", "W_hh per step", "dW", 'T', 1024, 256, 32, 196608, 196608, 0, 128, SH_ACC},
    {"lstm", "W_ih", "dW", 'T', 1024, 64, 4096, 0, 0, 0, 1, 0},
    {"lstm", "W_ih", "dX", 'n', 4096, 64, 1024, 0, 0, 0, 1, 0},

    /* transformer: examples/char_transformer.dln, batch 32 x 128 positions =
     * 4096 rows, 2 blocks; attention per sample and head (4 heads of 32, q k v
     * interleaved in rows of 384), its backward recomputing q.k^T */
    {"transformer", "qkv", "fwd", 't', 4096, 384, 128, 0, 0, 0, 2, 0},
    {"transformer", "attn q.k^T", "fwd", 't', 128, 128, 32, 384, 384, 0, 512, SH_SERIAL},
    {"transformer", "attn p.v", "fwd", 'n', 128, 32, 128, 0, 384, 128, 256, SH_SERIAL},
    {"transformer", "attn out", "fwd", 't', 4096, 128, 128, 0, 0, 0, 2, 0},
    {"transformer", "mlp up", "fwd", 't', 4096, 512, 128, 0, 0, 0, 2, 0},
    {"transformer", "mlp down", "fwd", 't', 4096, 128, 512, 0, 0, 0, 2, 0},
    {"transformer", "logits", "fwd", 't', 4096, 256, 128, 0, 0, 0, 1, 0},
    {"transformer", "logits", "dW", 'T', 256, 128, 4096, 0, 0, 0, 1, 0},
    {"transformer", "logits", "dX", 'n', 4096, 128, 256, 0, 0, 0, 1, 0},
    {"transformer", "mlp down", "dW", 'T', 128, 512, 4096, 0, 0, 0, 2, 0},
    {"transformer", "mlp down", "dX", 'n', 4096, 512, 128, 0, 0, 0, 2, 0},
    {"transformer", "mlp up", "dW", 'T', 512, 128, 4096, 0, 0, 0, 2, 0},
    {"transformer", "mlp up", "dX", 'n', 4096, 128, 512, 0, 0, 0, 2, 0},
    {"transformer", "attn out", "dW", 'T', 128, 128, 4096, 0, 0, 0, 2, 0},
    {"transformer", "attn out", "dX", 'n', 4096, 128, 128, 0, 0, 0, 2, 0},
    {"transformer", "attn dv = p^T.dO", "dX", 'T', 128, 32, 128, 0, 128, 384, 256, SH_SERIAL},
    {"transformer", "attn dP = dO.v^T", "dX", 't', 128, 128, 32, 128, 384, 0, 256, SH_SERIAL},
    {"transformer", "attn dq = dP.k", "dX", 'n', 128, 32, 128, 0, 384, 384, 256, SH_SERIAL},
    {"transformer", "attn dk = dP^T.q", "dX", 'T', 128, 32, 128, 0, 384, 384, 256, SH_SERIAL},
    {"transformer", "qkv", "dW", 'T', 384, 128, 4096, 0, 0, 0, 2, 0},
    {"transformer", "qkv", "dX", 'n', 4096, 128, 384, 0, 0, 0, 2, 0},

    /* vae: examples/fashion_vae.dln, batch 128 */
    {"vae", "fc1", "fwd", 't', 128, 400, 784, 0, 0, 0, 1, 0},
    {"vae", "mu,logvar", "fwd", 't', 128, 20, 400, 0, 0, 0, 2, 0},
    {"vae", "dec fc3", "fwd", 't', 128, 400, 20, 0, 0, 0, 1, 0},
    {"vae", "dec fc4", "fwd", 't', 128, 784, 400, 0, 0, 0, 1, 0},
    {"vae", "dec fc4", "dW", 'T', 784, 400, 128, 0, 0, 0, 1, 0},
    {"vae", "dec fc4", "dX", 'n', 128, 400, 784, 0, 0, 0, 1, 0},
    {"vae", "dec fc3", "dW", 'T', 400, 20, 128, 0, 0, 0, 1, 0},
    {"vae", "dec fc3", "dX", 'n', 128, 20, 400, 0, 0, 0, 1, 0},
    {"vae", "mu,logvar", "dW", 'T', 20, 400, 128, 0, 0, 0, 2, 0},
    {"vae", "mu,logvar", "dX", 'n', 128, 400, 20, 0, 0, 0, 2, 0},
    {"vae", "fc1", "dW", 'T', 400, 784, 128, 0, 0, 0, 1, 0},

    /* gan: examples/fashion_gan.dln, batch 64; D runs three times (real,
     * detached fake, fake for G's step); its 256-1 layer is a dot, no GEMM */
    {"gan", "G fc1", "fwd", 't', 64, 256, 100, 0, 0, 0, 1, 0},
    {"gan", "G fc2", "fwd", 't', 64, 512, 256, 0, 0, 0, 1, 0},
    {"gan", "G fc3", "fwd", 't', 64, 784, 512, 0, 0, 0, 1, 0},
    {"gan", "D fc1", "fwd", 't', 64, 512, 784, 0, 0, 0, 3, 0},
    {"gan", "D fc2", "fwd", 't', 64, 256, 512, 0, 0, 0, 3, 0},
    {"gan", "D fc2", "dW", 'T', 256, 512, 64, 0, 0, 0, 2, 0},
    {"gan", "D fc2", "dX", 'n', 64, 512, 256, 0, 0, 0, 3, 0},
    {"gan", "D fc1", "dW", 'T', 512, 784, 64, 0, 0, 0, 2, 0},
    {"gan", "D fc1 (G step)", "dX", 'n', 64, 784, 512, 0, 0, 0, 1, 0},
    {"gan", "G fc3", "dW", 'T', 784, 512, 64, 0, 0, 0, 1, 0},
    {"gan", "G fc3", "dX", 'n', 64, 512, 784, 0, 0, 0, 1, 0},
    {"gan", "G fc2", "dW", 'T', 512, 256, 64, 0, 0, 0, 1, 0},
    {"gan", "G fc2", "dX", 'n', 64, 256, 512, 0, 0, 0, 1, 0},
    {"gan", "G fc1", "dW", 'T', 256, 100, 64, 0, 0, 0, 1, 0},

    /* autoencoder: examples/fashion_autoencoder.dln, 784-256-64-256-784,
     * batch 128 */
    {"autoencoder", "enc1", "fwd", 't', 128, 256, 784, 0, 0, 0, 1, 0},
    {"autoencoder", "code", "fwd", 't', 128, 64, 256, 0, 0, 0, 1, 0},
    {"autoencoder", "dec1", "fwd", 't', 128, 256, 64, 0, 0, 0, 1, 0},
    {"autoencoder", "recon", "fwd", 't', 128, 784, 256, 0, 0, 0, 1, 0},
    {"autoencoder", "recon", "dW", 'T', 784, 256, 128, 0, 0, 0, 1, 0},
    {"autoencoder", "recon", "dX", 'n', 128, 256, 784, 0, 0, 0, 1, 0},
    {"autoencoder", "dec1", "dW", 'T', 256, 64, 128, 0, 0, 0, 1, 0},
    {"autoencoder", "dec1", "dX", 'n', 128, 64, 256, 0, 0, 0, 1, 0},
    {"autoencoder", "code", "dW", 'T', 64, 256, 128, 0, 0, 0, 1, 0},
    {"autoencoder", "code", "dX", 'n', 128, 256, 64, 0, 0, 0, 1, 0},
    {"autoencoder", "enc1", "dW", 'T', 256, 784, 128, 0, 0, 0, 1, 0},

    /* extra: mlp's fc1 at other batch sizes, a tiny product, squares */
    {"extra", "fc1 b32", "fwd", 't', 32, 256, 784, 0, 0, 0, 1, 0},
    {"extra", "fc1 b32", "dW", 'T', 256, 784, 32, 0, 0, 0, 1, 0},
    {"extra", "fc1 b1", "fwd", 't', 1, 256, 784, 0, 0, 0, 1, 0},
    {"extra", "fc2 b1", "dX", 'n', 1, 256, 128, 0, 0, 0, 1, 0},
    {"extra", "fc1 b1", "dW", 'T', 256, 784, 1, 0, 0, 0, 1, 0},
    {"extra", "fc1 b256", "fwd", 't', 256, 256, 784, 0, 0, 0, 1, 0},
    {"extra", "xor b4", "fwd", 't', 4, 8, 2, 0, 0, 0, 1, 0},
    {"extra", "square 512", "fwd", 't', 512, 512, 512, 0, 0, 0, 1, 0},
    {"extra", "square 512", "dX", 'n', 512, 512, 512, 0, 0, 0, 1, 0},
    {"extra", "square 512", "dW", 'T', 512, 512, 512, 0, 0, 0, 1, 0},

    /* check: one of each kind, small, for the ctest (correctness only) */
    {"check", "small nt", "fwd", 't', 7, 19, 33, 0, 0, 0, 1, 0},
    {"check", "small nn", "dX", 'n', 7, 19, 33, 0, 0, 0, 1, 0},
    {"check", "small tn", "dW", 'T', 7, 19, 33, 0, 0, 0, 1, 0},
    {"check", "small packed", "fwd", 't', 5, 40, 17, 24, 0, 45, 1, SH_PACKED | SH_ACC},
};

#endif
