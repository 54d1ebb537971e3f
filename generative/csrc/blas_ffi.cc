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

