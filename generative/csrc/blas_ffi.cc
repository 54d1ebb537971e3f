// XLA FFI handlers for float32 matrix products on CPU (dense layers' products and a
// convolution's kernel gradient), computed by MKL's single-threaded sgemm in parts run on
// XLA's own intra-op thread pool.
// Built and loaded by generative/blas.py (see its docstring for why and when it is used).
//
// Workers claim chunks of work from a shared counter; the calling thread works too and
// never waits for a worker that has not started, so tasks queued behind busy pool threads
// cannot dead-lock it.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

extern "C" void cblas_sgemm(int layout, int trans_a, int trans_b, int m, int n, int k,
                            float alpha, const float* a, int lda, const float* b, int ldb,
                            float beta, float* c, int ldc);

namespace {

constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
constexpr double kFlopsPerPart = 8e6;  // below this a part is not worth a thread
constexpr int64_t kChunkRows = 512;  // rows of g per chunk of `Shifted`

struct Product {
  const float* a;
  const float* b;
  float* c;
  int64_t m, n, k;
  bool ta, tb;
};

// One part: rows [m0, m1), columns [n0, n1), contraction [k0, k1) into out (leading dim ldo).
void Part(const Product& p, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t k0,
          int64_t k1, float* out, int64_t ldo) {
  if (m1 <= m0 || n1 <= n0) return;
  int64_t lda = p.ta ? p.m : p.k, ldb = p.tb ? p.k : p.n;
  const float* a = p.ta ? p.a + k0 * lda + m0 : p.a + m0 * lda + k0;
  const float* b = p.tb ? p.b + n0 * ldb + k0 : p.b + k0 * ldb + n0;
  if (k1 <= k0) {
    for (int64_t i = m0; i < m1; ++i) std::fill(out + i * ldo + n0, out + i * ldo + n1, 0.f);
    return;
  }
  cblas_sgemm(kRowMajor, p.ta ? kTrans : kNoTrans, p.tb ? kTrans : kNoTrans, m1 - m0, n1 - n0,
              k1 - k0, 1.f, a, lda, b, ldb, 0.f, out + m0 * ldo + n0, ldo);
}

struct Shared {
  std::atomic<int> next{0};
  int total = 0, done = 0;
  std::mutex mu;
  std::condition_variable cv;
};

template <typename F>
void RunParts(ffi::ThreadPool& pool, int parts, F body) {
  if (parts <= 1) {
    body(0);
    return;
  }
  auto state = std::make_shared<Shared>();
  state->total = parts;
  auto work = [state, body]() {
    for (int i; (i = state->next.fetch_add(1)) < state->total;) {
      body(i);
      std::lock_guard<std::mutex> lock(state->mu);
      if (++state->done == state->total) state->cv.notify_all();
    }
  };
  for (int t = 1; t < parts; ++t) {
    auto task = work;
    pool.Schedule(std::move(task));
  }
  work();
  std::unique_lock<std::mutex> lock(state->mu);
  state->cv.wait(lock, [&] { return state->done == state->total; });
}

void Gemm(ffi::ThreadPool& pool, const Product& p) {
  int64_t threads = std::max<int64_t>(1, pool.num_threads());
  double flops = 2.0 * p.m * p.n * p.k;
  int parts = static_cast<int>(std::min<double>(threads, std::max(1.0, flops / kFlopsPerPart)));
  if (p.k >= 4 * std::max(p.m, p.n) && parts > 1) {
    std::vector<float> partial(static_cast<size_t>(parts - 1) * p.m * p.n);
    int64_t step = (p.k + parts - 1) / parts;
    RunParts(pool, parts, [&](int i) {
      float* out = i == 0 ? p.c : partial.data() + static_cast<size_t>(i - 1) * p.m * p.n;
      Part(p, 0, p.m, 0, p.n, i * step, std::min(p.k, (i + 1) * step), out, p.n);
    });
    for (int i = 1; i < parts; ++i) {
      const float* src = partial.data() + static_cast<size_t>(i - 1) * p.m * p.n;
      for (int64_t j = 0; j < p.m * p.n; ++j) p.c[j] += src[j];
    }
  } else if (p.m >= p.n) {
    int64_t step = (p.m + parts - 1) / parts;
    RunParts(pool, parts, [&](int i) {
      Part(p, i * step, std::min(p.m, (i + 1) * step), 0, p.n, 0, p.k, p.c, p.n);
    });
  } else {
    int64_t step = (p.n + parts - 1) / parts;
    RunParts(pool, parts, [&](int i) {
      Part(p, 0, p.m, i * step, std::min(p.n, (i + 1) * step), 0, p.k, p.c, p.n);
    });
  }
}

ffi::Error GemmImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> a, ffi::Buffer<ffi::F32> b,
                    ffi::ResultBuffer<ffi::F32> c, int64_t trans_a, int64_t trans_b) {
  auto da = a.dimensions(), db = b.dimensions(), dc = c->dimensions();
  size_t rank = da.size();
  if (rank < 2 || db.size() != rank || dc.size() != rank) {
    return ffi::Error::InvalidArgument("blas_sgemm: operands must have the same rank >= 2");
  }
  int64_t batch = 1;
  for (size_t i = 0; i + 2 < rank; ++i) {
    if (db[i] != da[i] || dc[i] != da[i]) {
      return ffi::Error::InvalidArgument("blas_sgemm: batch dimensions differ");
    }
    batch *= da[i];
  }
  int64_t a0 = da[rank - 2], a1 = da[rank - 1], b0 = db[rank - 2], b1 = db[rank - 1];
  Product p{nullptr, nullptr, nullptr, trans_a ? a1 : a0, trans_b ? b0 : b1,
            trans_a ? a0 : a1, trans_a != 0, trans_b != 0};
  if ((trans_b ? b1 : b0) != p.k || dc[rank - 2] != p.m || dc[rank - 1] != p.n) {
    return ffi::Error::InvalidArgument("blas_sgemm: operand shapes do not match");
  }
  for (int64_t i = 0; i < batch; ++i) {
    p.a = a.typed_data() + i * a0 * a1;
    p.b = b.typed_data() + i * b0 * b1;
    p.c = c->typed_data() + i * p.m * p.n;
    Gemm(pool, p);
  }
  return ffi::Error::Success();
}


// Kernel-gradient products without window copies:
//   out[s] = Σ_{n, q} src[n, q + start_s]ᵀ g[n, q]    (q over the Q positions of g)
// src [..., N, *H, M], g [..., N, *Q, C], out [..., S, M, C]; `starts` holds S·nd offsets.
// The rows of g are taken in chunks of whole runs along the last spatial axis (contiguous
// in g); for each chunk and shift the matching src rows are copied into a small buffer
// that stays in cache and multiplied into that worker's own [S, M, C] sums (all shifts of
// a chunk while its src rows are cached), which are added at the end.
void Shifted(ffi::ThreadPool& pool, const float* src, const float* g, float* out,
             ffi::Span<const int64_t> sdims, ffi::Span<const int64_t> gdims, int64_t nd,
             ffi::Span<const int64_t> starts) {
  int64_t n = gdims[0], m = sdims[nd + 1], c = gdims[nd + 1];
  int64_t s_count = static_cast<int64_t>(starts.size()) / nd;
  int64_t q_last = gdims[nd];
  int64_t runs = n;
  for (int64_t i = 1; i < nd; ++i) runs *= gdims[i];
  int64_t runs_per_chunk = std::max<int64_t>(1, kChunkRows / q_last);
  int64_t chunks = (runs + runs_per_chunk - 1) / runs_per_chunk;
  int64_t threads = std::max<int64_t>(1, pool.num_threads());
  double flops = 2.0 * s_count * runs * q_last * m * c;
  int parts = static_cast<int>(std::min<double>(
      std::min<int64_t>(threads, chunks), std::max(1.0, flops / kFlopsPerPart)));
  size_t acc_size = static_cast<size_t>(s_count) * m * c;
  std::vector<float> acc(static_cast<size_t>(parts) * acc_size, 0.f);
  // src row strides per spatial axis (in rows of M floats)
  std::vector<int64_t> stride(nd + 1);
  stride[nd] = 1;
  for (int64_t i = nd - 1; i >= 0; --i) stride[i] = stride[i + 1] * sdims[i + 1];
  std::atomic<int64_t> next{0};
  RunParts(pool, parts, [&](int part) {
    std::vector<float> buf(static_cast<size_t>(runs_per_chunk) * q_last * m);
    std::vector<int64_t> base(runs_per_chunk);
    float* sums = acc.data() + part * acc_size;
    for (int64_t chunk; (chunk = next.fetch_add(1)) < chunks;) {
      int64_t r0 = chunk * runs_per_chunk, r1 = std::min(runs, r0 + runs_per_chunk);
      for (int64_t r = r0; r < r1; ++r) {  // src row of (n, q_1..q_{nd-1}, 0)
        int64_t rest = r, row = 0;
        for (int64_t i = nd - 1; i >= 1; --i) {
          row += (rest % gdims[i]) * stride[i];
          rest /= gdims[i];
        }
        base[r - r0] = row + rest * stride[0];
      }
      int64_t rows = (r1 - r0) * q_last;
      const float* gc = g + r0 * q_last * c;
      for (int64_t s = 0; s < s_count; ++s) {
        int64_t shift = 0;
        for (int64_t i = 0; i < nd; ++i) shift += starts[s * nd + i] * stride[i + 1];
        for (int64_t r = r0; r < r1; ++r) {
          const float* from = src + (base[r - r0] + shift) * m;
          std::copy(from, from + q_last * m, buf.data() + (r - r0) * q_last * m);
        }
        cblas_sgemm(kRowMajor, kTrans, kNoTrans, m, c, rows, 1.f, buf.data(), m, gc, c, 1.f,
                    sums + s * m * c, c);
      }
    }
  });
  std::copy(acc.begin(), acc.begin() + acc_size, out);
  for (int p = 1; p < parts; ++p) {
    const float* from = acc.data() + p * acc_size;
    for (size_t j = 0; j < acc_size; ++j) out[j] += from[j];
  }
}

ffi::Error ShiftedImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> src, ffi::Buffer<ffi::F32> g,
                       ffi::ResultBuffer<ffi::F32> out, int64_t nd,
                       ffi::Span<const int64_t> starts) {
  auto ds = src.dimensions(), dg = g.dimensions(), dout = out->dimensions();
  int64_t nb = static_cast<int64_t>(ds.size()) - nd - 2;
  if (nd < 1 || nb < 0 || static_cast<int64_t>(dg.size()) != nb + nd + 2 ||
      static_cast<int64_t>(dout.size()) != nb + 3 || starts.size() % nd) {
    return ffi::Error::InvalidArgument("shifted_products: operand ranks do not match");
  }
  int64_t batch = 1;
  for (int64_t i = 0; i < nb; ++i) batch *= ds[i];
  ffi::Span<const int64_t> sdims(ds.begin() + nb, nd + 2), gdims(dg.begin() + nb, nd + 2);
  int64_t s_count = static_cast<int64_t>(starts.size()) / nd;
  if (dout[nb] != s_count || dout[nb + 1] != sdims[nd + 1] || dout[nb + 2] != gdims[nd + 1] ||
      sdims[0] != gdims[0]) {
    return ffi::Error::InvalidArgument("shifted_products: operand shapes do not match");
  }
  for (int64_t s = 0; s < s_count; ++s) {
    for (int64_t i = 0; i < nd; ++i) {
      int64_t a = starts[s * nd + i];
      if (a < 0 || a + gdims[1 + i] > sdims[1 + i]) {
        return ffi::Error::InvalidArgument("shifted_products: a window leaves the source");
      }
    }
  }
  int64_t src_size = 1, g_size = 1;
  for (int64_t i = 0; i < nd + 2; ++i) {
    src_size *= sdims[i];
    g_size *= gdims[i];
  }
  int64_t out_size = s_count * sdims[nd + 1] * gdims[nd + 1];
  for (int64_t b = 0; b < batch; ++b) {
    Shifted(pool, src.typed_data() + b * src_size, g.typed_data() + b * g_size,
            out->typed_data() + b * out_size, sdims, gdims, nd, starts);
  }
  return ffi::Error::Success();
}


// Winograd F(m×m, r×r) correlations of one input with P = Sy·Sx phase kernels:
//   out[f, i, ry, j, rx, :] = Σ_{a,b<r} x[f, i + oy[ry] + a, j + ox[rx] + b, :] · w[ry, rx, a, b]
// with x zero outside its [F, H, W, Cin] (the tiles across its border are copied into a
// zeroed patch first, so no padded copy of x is made); v [P, n, n, Cin, Cout] = G w Gᵀ per phase (n = m + r − 1, transformed
// by the caller); bt [n, n] = Bᵀ, at [m, n] = Aᵀ; out [F, Ho, Sy, Wo, Sx, Cout] with Ho, Wo
// multiples of m (a transposed convolution's phases, interleaved as they are written).
// Work: per phase, tiles in chunks; per chunk the input tiles are transformed into a
// per-thread buffer U [n², tiles, Cin], multiplied by v (n² sgemms) into M [n², tiles, Cout]
// and transformed back straight into their output places.
struct Wino {
  const float *x, *v, *bt, *at;
  float* out;
  int64_t frames, height, width, cin, cout, ho, wo, sy, sx, n, m;
  const int64_t *oy, *ox;
};

// The transforms run on 16 channels at a time held in registers (GCC vector extensions:
// one AVX-512 register, two AVX2 or four SSE ones), for the (n, m) pairs of F(2, 2),
// F(4, 2), F(2, 3) and F(4, 3); channel counts that are not multiples of 16 take the plain
// loops below.
typedef float V16 __attribute__((vector_size(64), aligned(4), may_alias));

// out[i][j] = Σ_{a,b} k[i][a] k[j][b] in[a][b] for k [R, N], 16 channels at a time in
// registers; in[a][b] at in + a·in_row + b·in_col (zero outside rows a0..a1, columns b0..b1
// unless kWhole), out[i][j] at out + i·out_row + j·out_col; c a multiple of 16.
template <int N, int R, bool kWhole>
__attribute__((target_clones("avx512f", "avx2", "default"))) void SeparableBlock(
    const float* __restrict k, int64_t c, const float* __restrict in, int64_t in_row,
    int64_t in_col, float* __restrict out, int64_t out_row, int64_t out_col, int a0, int a1,
    int b0, int b1) {
  for (int64_t q = 0; q < c; q += 16) {
    V16 d[N][N], t[R][N];
    for (int a = 0; a < N; ++a)
      for (int b = 0; b < N; ++b)
        d[a][b] = kWhole || (a >= a0 && a < a1 && b >= b0 && b < b1)
                      ? *reinterpret_cast<const V16*>(in + a * in_row + b * in_col + q)
                      : V16{};
    for (int i = 0; i < R; ++i)
      for (int b = 0; b < N; ++b) {
        V16 acc = k[i * N] * d[0][b];
        for (int a = 1; a < N; ++a) acc += k[i * N + a] * d[a][b];
        t[i][b] = acc;
      }
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < R; ++j) {
        V16 acc = k[j * N] * t[i][0];
        for (int b = 1; b < N; ++b) acc += k[j * N + b] * t[i][b];
        *reinterpret_cast<V16*>(out + i * out_row + j * out_col + q) = acc;
      }
  }
}

// The plain loops: out[i][j] = Σ_{a,b} k[i][a] k[j][b] in[a][b] (vectors of c channels) for
// k [rows, n], in[a][b] at in + a·in_row + b·in_col, out[i][j] at out + i·out_row + j·out_col.
void Separable(const float* k, int64_t rows, int64_t n, int64_t c, const float* in,
               int64_t in_row, int64_t in_col, float* __restrict tmp, float* out, int64_t out_row,
               int64_t out_col) {
  for (int64_t i = 0; i < rows; ++i) {  // tmp[i][b] = Σ_a k[i][a] in[a][b]
    for (int64_t b = 0; b < n; ++b) {
      float* t = tmp + (i * n + b) * c;
      std::fill(t, t + c, 0.f);
      for (int64_t a = 0; a < n; ++a) {
        const float ka = k[i * n + a];
        const float* d = in + a * in_row + b * in_col;
        for (int64_t q = 0; q < c; ++q) t[q] += ka * d[q];
      }
    }
  }
  for (int64_t i = 0; i < rows; ++i) {  // out[i][j] = Σ_b k[j][b] tmp[i][b]
    for (int64_t j = 0; j < rows; ++j) {
      float* o = out + i * out_row + j * out_col;
      std::fill(o, o + c, 0.f);
      for (int64_t b = 0; b < n; ++b) {
        const float kb = k[j * n + b];
        const float* t = tmp + (i * n + b) * c;
        for (int64_t q = 0; q < c; ++q) o[q] += kb * t[q];
      }
    }
  }
}

// The input tile at (y0, x0) of frame f into U (point stride `point_stride`); x is zero
// outside its borders.
void WinoIn(const Wino& w, int64_t f, int64_t y0, int64_t x0, float* __restrict patch,
            float* __restrict tmp, float* __restrict u, int64_t point_stride) {
  const int64_t n = w.n, c = w.cin;
  const int a0 = static_cast<int>(std::clamp<int64_t>(-y0, 0, n));
  const int a1 = static_cast<int>(std::clamp<int64_t>(w.height - y0, a0, n));
  const int b0 = static_cast<int>(std::clamp<int64_t>(-x0, 0, n));
  const int b1 = static_cast<int>(std::clamp<int64_t>(w.width - x0, b0, n));
  const int64_t row = w.width * c;
  // the tile's origin, possibly outside x (only rows a0..a1, columns b0..b1 are read)
  const float* base = w.x + (f * w.height * w.width + y0 * w.width + x0) * c;
  if (c % 16 == 0) {
    const bool whole = a0 == 0 && a1 == n && b0 == 0 && b1 == n;
#define WINO_IN(N)                                                                     \
  case N:                                                                              \
    return whole ? SeparableBlock<N, N, true>(w.bt, c, base, row, c, u, N * point_stride, \
                                              point_stride, 0, N, 0, N)                \
                 : SeparableBlock<N, N, false>(w.bt, c, base, row, c, u, N * point_stride, \
                                               point_stride, a0, a1, b0, b1);
    switch (n) { WINO_IN(3) WINO_IN(4) WINO_IN(5) WINO_IN(6) }
#undef WINO_IN
  }
  std::fill(patch, patch + n * n * c, 0.f);
  for (int64_t a = a0; a < a1; ++a) {
    if (b1 > b0) std::copy(base + a * row + b0 * c, base + a * row + b1 * c, patch + (a * n + b0) * c);
  }
  Separable(w.bt, n, n, c, patch, n * c, c, tmp, u, n * point_stride, point_stride);
}

void WinoOut(const Wino& w, const float* __restrict mm, int64_t point_stride,
             float* __restrict tmp, float* __restrict dst, int64_t dst_row, int64_t dst_col) {
  const int64_t n = w.n, m = w.m, c = w.cout;
  if (c % 16 == 0) {
#define WINO_OUT(N, M)                                                                      \
  case N * 8 + M:                                                                           \
    return SeparableBlock<N, M, true>(w.at, c, mm, N * point_stride, point_stride, dst, dst_row, \
                                      dst_col, 0, N, 0, N);
    switch (n * 8 + m) { WINO_OUT(3, 2) WINO_OUT(5, 4) WINO_OUT(4, 2) WINO_OUT(6, 4) }
#undef WINO_OUT
  }
  Separable(w.at, m, n, c, mm, n * point_stride, point_stride, tmp, dst, dst_row, dst_col);
}

constexpr int64_t kWinoBufferFloats = 1 << 19;  // per-thread U target (2 MB)

void Winograd(ffi::ThreadPool& pool, const Wino& w) {
  const int64_t n2 = w.n * w.n, th = w.ho / w.m, tw = w.wo / w.m;
  const int64_t tiles = w.frames * th * tw, phases = w.sy * w.sx;
  int64_t chunk = std::max<int64_t>(32, kWinoBufferFloats / (n2 * w.cin));
  chunk = std::min(chunk, tiles);
  const int64_t chunks = (tiles + chunk - 1) / chunk, tasks = phases * chunks;
  int64_t threads = std::max<int64_t>(1, pool.num_threads());
  int parts = static_cast<int>(std::min(threads, tasks));
  std::atomic<int64_t> next{0};
  RunParts(pool, parts, [&](int) {
    thread_local std::vector<float> u, mm, tmp, patch;
    patch.resize(n2 * w.cin);
    u.resize(std::max<size_t>(u.size(), n2 * chunk * w.cin));
    mm.resize(std::max<size_t>(mm.size(), n2 * chunk * w.cout));
    tmp.resize(std::max<size_t>(tmp.size(), n2 * std::max(w.cin, w.cout)));
    const int64_t dst_col = w.sx * w.cout, dst_row = w.sy * w.wo * dst_col;
    for (int64_t task; (task = next.fetch_add(1)) < tasks;) {
      const int64_t p = task / chunks, t0 = (task % chunks) * chunk;
      const int64_t t1 = std::min(tiles, t0 + chunk), count = t1 - t0;
      const int64_t ry = p / w.sx, rx = p % w.sx;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t f = t / (th * tw), ti = (t / tw) % th, tj = t % tw;
        WinoIn(w, f, ti * w.m + w.oy[ry], tj * w.m + w.ox[rx], patch.data(), tmp.data(),
               u.data() + (t - t0) * w.cin, chunk * w.cin);
      }
      for (int64_t q = 0; q < n2; ++q) {
        cblas_sgemm(kRowMajor, kNoTrans, kNoTrans, count, w.cout, w.cin, 1.f,
                    u.data() + q * chunk * w.cin, w.cin, w.v + (p * n2 + q) * w.cin * w.cout,
                    w.cout, 0.f, mm.data() + q * chunk * w.cout, w.cout);
      }
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t f = t / (th * tw), ti = (t / tw) % th, tj = t % tw;
        float* dst = w.out + (((f * w.ho + ti * w.m) * w.sy + ry) * w.wo + tj * w.m) * dst_col +
                     rx * w.cout;
        WinoOut(w, mm.data() + (t - t0) * w.cout, chunk * w.cout, tmp.data(), dst, dst_row,
                dst_col);
      }
    }
  });
}

ffi::Error WinogradImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> v,
                        ffi::Buffer<ffi::F32> bt, ffi::Buffer<ffi::F32> at,
                        ffi::ResultBuffer<ffi::F32> out, ffi::Span<const int64_t> oy,
                        ffi::Span<const int64_t> ox) {
  auto dx = x.dimensions(), dv = v.dimensions(), dout = out->dimensions();
  auto dbt = bt.dimensions(), dat = at.dimensions();  // [..., n, n], [..., m, n] (vmap: 1s)
  if (dx.size() < 4 || dv.size() < 5 || dout.size() != dx.size() + 2 || dbt.size() < 2 ||
      dat.size() < 2 || bt.element_count() != dbt.back() * dbt.back() ||
      at.element_count() != dat[dat.size() - 2] * dat.back()) {
    return ffi::Error::InvalidArgument("winograd: operand ranks do not match");
  }
  size_t bx = dx.size() - 4, bv = dv.size() - 5;
  int64_t batch_x = 1, batch_v = 1;
  for (size_t i = 0; i < bx; ++i) batch_x *= dx[i];
  for (size_t i = 0; i < bv; ++i) batch_v *= dv[i];
  Wino w{};
  w.n = dbt.back();
  w.m = dat[dat.size() - 2];
  w.frames = dx[bx];
  w.height = dx[bx + 1];
  w.width = dx[bx + 2];
  w.cin = dx[bx + 3];
  w.cout = dv[bv + 4];
  w.sy = static_cast<int64_t>(oy.size());
  w.sx = static_cast<int64_t>(ox.size());
  w.ho = dout[bx + 1];
  w.wo = dout[bx + 3];
  bool ok = dat.back() == w.n && w.m >= 1 &&
            dv[bv] == w.sy * w.sx && dv[bv + 1] == w.n && dv[bv + 2] == w.n &&
            dv[bv + 3] == w.cin && dout[bx + 2] == w.sy && dout[bx + 4] == w.sx &&
            dout[bx + 5] == w.cout && dout[bx] == w.frames && w.ho % w.m == 0 &&
            w.wo % w.m == 0 && (batch_v == 1 || batch_v == batch_x);
  if (!ok) return ffi::Error::InvalidArgument("winograd: operand shapes do not match");
  w.oy = oy.begin();
  w.ox = ox.begin();
  w.bt = bt.typed_data();
  w.at = at.typed_data();
  const int64_t x_size = w.frames * w.height * w.width * w.cin;
  const int64_t out_size = w.frames * w.ho * w.sy * w.wo * w.sx * w.cout;
  const int64_t v_size = w.sy * w.sx * w.n * w.n * w.cin * w.cout;
  if (batch_v == 1) {  // an unbatched kernel: the batch is more frames
    w.frames *= batch_x;
    w.x = x.typed_data();
    w.v = v.typed_data();
    w.out = out->typed_data();
    Winograd(pool, w);
    return ffi::Error::Success();
  }
  for (int64_t b = 0; b < batch_x; ++b) {
    w.x = x.typed_data() + b * x_size;
    w.v = v.typed_data() + b * v_size;
    w.out = out->typed_data() + b * out_size;
    Winograd(pool, w);
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(BlasShiftedProducts, ShiftedImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("nd")
                                  .Attr<ffi::Span<const int64_t>>("starts"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(BlasSgemm, GemmImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("trans_a")
                                  .Attr<int64_t>("trans_b"));


XLA_FFI_DEFINE_HANDLER_SYMBOL(BlasWinograd, WinogradImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<ffi::Span<const int64_t>>("oy")
                                  .Attr<ffi::Span<const int64_t>>("ox"));
