"""PyTorch baselines timed in the same run as our JAX benchmarks (optional: needs `torch`).

    .venv/bin/pip install torch==2.13.0        # CPU build; not a dependency of the library
    .venv/bin/python benchmarks/torch_reference.py [--threads 2]

The PyTorch code bases of the papers are the speed references of the issues. Fixed figures
measured once on some host stop meaning anything on another (the 2-core machines this project
runs on differ by 2.5x in float32 matmul throughput from one day to the next), so the JAX
benchmarks time these PyTorch models in the same process, on the same inputs' shapes, and
print the ratio. They are written here from the papers' descriptions in
``../shared/specs`` (same layer shapes, parameter counts printed next to ours), in the
reference code bases' style: NCHW tensors, Python loops over time, ``torch.optim.Adam``.

- :func:`srvp_train_step` / :func:`srvp_eval_call`: SRVP's DCGAN64 model at the Stochastic
  Moving MNIST setting (10.68M parameters), one ELBO step, and the reference test protocol:
  for each of the ``n_samples`` samples the model re-runs inference on the conditioning
  frames (encoding them and decoding their reconstructions), rolls out the prior, decodes
  the predicted frames and scores PSNR and SSIM (Gaussian 11x11 convolution), keeping the
  best per video. The reference test loop also evaluates LPIPS per sample; that is left out,
  which only makes the baseline faster.
- :func:`separation_train_step`: the separation-of-variables model (Dona et al.) at the
  Moving MNIST (DCGAN encoders/decoder, BatchNorm) and WaveEq (MLPs, ``mul`` mixing)
  configurations: L_AE + L_reg^S + L_pred + L_reg^T and one Adam step.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "SRVPTorch",
    "SeparationTorch",
    "srvp_train_step",
    "srvp_eval_call",
    "separation_train_step",
    "num_params",
    "timed",
]


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def timed(fn, repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _mlp(n_in: int, hidden: int, n_out: int, layers: int) -> nn.Sequential:
    mods, d = [], n_in
    for i in range(layers):
        last = i == layers - 1
        mods.append(nn.Linear(d, n_out if last else hidden))
        if not last:
            mods.append(nn.ReLU())
        d = hidden
    return nn.Sequential(*mods)


def _down(c_in, c_out, bn=True):
    mods = [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False)]
    if bn:
        mods.append(nn.BatchNorm2d(c_out))
    return nn.Sequential(*mods, nn.LeakyReLU(0.2))


def _up(c_in, c_out):
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(0.2),
    )


class DCGANEncoder(nn.Module):
    """64x64 -> code: 4x4 stride-2 convolutions nc->nf->...->8nf, then a 4x4 valid conv."""

    def __init__(self, nc, nf, n_out, out_bn=True):
        super().__init__()
        self.body = nn.Sequential(
            _down(nc, nf, bn=False), _down(nf, 2 * nf), _down(2 * nf, 4 * nf), _down(4 * nf, 8 * nf)
        )
        last = [nn.Conv2d(8 * nf, n_out, 4, 1, 0, bias=not out_bn)]
        if out_bn:
            last.append(nn.BatchNorm2d(n_out))
        self.last = nn.Sequential(*last, nn.Tanh())

    def forward(self, x):
        return self.last(self.body(x)).flatten(1)


class DCGANDecoder(nn.Module):
    """code -> 64x64: a 4x4 transposed conv to 4x4, then 4x4 stride-2 upsamplings, sigmoid."""

    def __init__(self, n_in, nf, nc):
        super().__init__()
        self.body = nn.Sequential(
            nn.ConvTranspose2d(n_in, 8 * nf, 4, 1, 0, bias=False),
            nn.BatchNorm2d(8 * nf),
            nn.LeakyReLU(0.2),
            _up(8 * nf, 4 * nf),
            _up(4 * nf, 2 * nf),
            _up(2 * nf, nf),
            nn.ConvTranspose2d(nf, nc, 4, 2, 1),
            nn.Sigmoid(),
        )

    def forward(self, v):
        return self.body(v[:, :, None, None])


# ----------------------------------------------------------------------------------- SRVP
class SRVPTorch(nn.Module):
    """SRVP at the Stochastic Moving MNIST setting (DCGAN64, nf 64, ny = nz = 20)."""

    def __init__(self, nc=1, nf=64, nhx=128, ny=20, nz=20, nw=256, nt_inf=5, nh_inf=256,
                 nlayers_inf=3, nh_res=512, nlayers_res=4):  # fmt: skip
        super().__init__()
        self.ny, self.nz, self.nt_inf = ny, nz, nt_inf
        self.encoder = DCGANEncoder(nc, nf, nhx)
        self.decoder = DCGANDecoder(nw + ny, nf, nc)
        self.w_in, self.w_out = nn.Linear(nhx, nw), nn.Linear(nw, nw)
        self.q_y = _mlp(nt_inf * nhx, nh_inf, 2 * ny, nlayers_inf)
        self.lstm = nn.LSTM(nhx, nh_inf, 1)
        self.q_z = nn.Linear(nh_inf, 2 * nz)
        self.p_z = _mlp(ny, nh_res, 2 * nz, nlayers_res)
        self.f = _mlp(ny + nz, nh_res, ny, nlayers_res)

    @staticmethod
    def _gauss(raw):
        mu, s = raw.chunk(2, -1)
        return mu, F.softplus(s) + 1e-8

    def encode(self, x):  # [T, B, C, H, W] -> [T, B, nhx]
        t, b = x.shape[:2]
        return self.encoder(x.reshape(t * b, *x.shape[2:])).view(t, b, -1)

    def decode(self, w, y):  # w [B, nw], y [T, B, ny] -> [T, B, C, 64, 64]
        t, b = y.shape[:2]
        v = torch.cat([w.expand(t, b, w.shape[-1]), y], -1).reshape(t * b, -1)
        out = self.decoder(v)
        return out.view(t, b, *out.shape[1:])

    def infer(self, h, content_idx):
        """Posterior over the frames of h [T, B, nhx]: y [T, B, ny], w, KL terms' inputs."""
        t, b = h.shape[:2]
        mu_y, std_y = self._gauss(self.q_y(h[: self.nt_inf].permute(1, 0, 2).reshape(b, -1)))
        y = mu_y + std_y * torch.randn_like(mu_y)
        w = torch.tanh(self.w_out(F.relu(self.w_in(h[content_idx])).sum(0)))
        mu_z, std_z = self._gauss(self.q_z(self.lstm(h)[0][1:]))
        z = mu_z + std_z * torch.randn_like(mu_z)
        ys, priors, res = [y], [], 0.0
        for i in range(t - 1):
            priors.append(self._gauss(self.p_z(y)))
            dy = self.f(torch.cat([y, z[i]], -1))
            y = y + dy
            res = res + dy.norm(p=2, dim=1).sum()
            ys.append(y)
        return torch.stack(ys), w, (mu_y, std_y), (mu_z, std_z), priors, res

    def generate(self, y, steps):
        ys = []
        for _ in range(steps):
            mu, std = self._gauss(self.p_z(y))
            y = y + self.f(torch.cat([y, mu + std * torch.randn_like(mu)], -1))
            ys.append(y)
        return torch.stack(ys)


def _kl(mu_q, std_q, mu_p, std_p):
    return torch.log(std_p / std_q) + (std_q**2 + (mu_q - mu_p) ** 2) / (2 * std_p**2) - 0.5


def srvp_loss(model: SRVPTorch, x, beta_z=2.0):
    """Negative ELBO per video (ν = 1, β_y = 1, λ_res = 1) of videos x [T, B, C, H, W]."""
    t, b = x.shape[:2]
    h = model.encode(x)
    idx = torch.randperm(t)[: model.nt_inf]
    ys, w, (mu_y, std_y), (mu_z, std_z), priors, res = model.infer(h, idx)
    x_hat = model.decode(w, ys)
    nll = 0.5 * ((x - x_hat) ** 2).sum() + 0.5 * math.log(2 * math.pi) * x.numel()
    kl_y = _kl(mu_y, std_y, torch.zeros_like(mu_y), torch.ones_like(std_y)).sum()
    mu_p = torch.stack([p[0] for p in priors])
    std_p = torch.stack([p[1] for p in priors])
    kl_z = _kl(mu_z, std_z, mu_p, std_p).sum()
    return (nll + kl_y + beta_z * kl_z + res) / b


def srvp_train_step(batch: int, seq_len: int = 15, seed: int = 0):
    """(model, step function) for one Adam step of SRVP on random [seq_len, batch] videos."""
    torch.manual_seed(seed)
    model = SRVPTorch().train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    x = torch.rand(seq_len, batch, 1, 64, 64)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = srvp_loss(model, x)
        loss.backward()
        opt.step()
        return loss.item()

    return model, step


def _gaussian_window(size=11, sigma=1.5):
    g = torch.exp(-((torch.arange(size) - (size - 1) / 2) ** 2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim_torch(a, b, window):
    """SSIM maps' mean per image (valid 11x11 Gaussian window, data range 1) of [N, 1, H, W]."""
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = F.conv2d(a, window), F.conv2d(b, window)
    s_aa = F.conv2d(a * a, window) - mu_a**2
    s_bb = F.conv2d(b * b, window) - mu_b**2
    s_ab = F.conv2d(a * b, window) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * s_ab + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (s_aa + s_bb + c2)
    return (num / den).mean(dim=(1, 2, 3))


def srvp_eval_call(videos: int, nt_cond=5, horizon=20, n_samples=100, seed=0):
    """(model, call) for best-of-``n_samples`` PSNR/SSIM on ``videos`` random videos."""
    torch.manual_seed(seed)
    model = SRVPTorch().eval()
    x = torch.rand(nt_cond + horizon, videos, 1, 64, 64)
    window = _gaussian_window()

    @torch.no_grad()
    def call():
        x_cond, x_true = x[:nt_cond], x[nt_cond:]
        best_psnr = torch.full((videos,), -math.inf)
        best_ssim = torch.full((videos,), -math.inf)
        idx = torch.arange(nt_cond - model.nt_inf, nt_cond)
        for _ in range(n_samples):
            h = model.encode(x_cond)
            ys, w, *_ = model.infer(h, idx)
            model.decode(w, ys)  # the reconstructions of the conditioning frames
            pred = model.decode(w, model.generate(ys[-1], horizon)).clamp(0, 1)
            mse = ((pred - x_true) ** 2).mean(dim=(2, 3, 4))  # [horizon, videos]
            psnr = (10 * torch.log10(1 / mse)).mean(0)
            ssim = ssim_torch(pred.flatten(0, 1), x_true.flatten(0, 1), window)
            ssim = ssim.view(horizon, videos).mean(0)
            best_psnr = torch.maximum(best_psnr, psnr)
            best_ssim = torch.maximum(best_ssim, ssim)
        return best_psnr, best_ssim

    return model, call


# ---------------------------------------------------------------------- separation model
class SeparationTorch(nn.Module):
    """Separation of variables: E_S, E_T on stacked frames, residual blocks on T, decoder."""

    def __init__(self, kind: str, cond=5, s_dim=128, t_dim=20, n_blocks=1, nf=64, hidden=1200,
                 frame=(1, 64, 64)):  # fmt: skip
        super().__init__()
        self.kind, self.frame = kind, frame
        c, hh, ww = frame
        if kind == "dcgan":
            self.e_s = DCGANEncoder(cond * c, nf, s_dim, out_bn=False)
            self.e_t = DCGANEncoder(cond * c, nf, t_dim, out_bn=False)
            self.dec = DCGANDecoder(s_dim + t_dim, nf, c)
        else:  # mlp, "mul" mixing
            n = cond * c * hh * ww
            self.e_s = _mlp(n, hidden, s_dim, 3)
            self.e_t = _mlp(n, hidden, t_dim, 3)
            self.dec = _mlp(t_dim, hidden, c * hh * ww, 4)
        self.blocks = nn.ModuleList(_mlp(t_dim, 512, t_dim, 3) for _ in range(n_blocks))

    def _enc(self, net, window):  # [B, τ, C, H, W]
        b = window.shape[0]
        return net(
            window.reshape(b, -1, *self.frame[1:])
            if self.kind == "dcgan"
            else window.reshape(b, -1)
        )

    def decode(self, s, t):
        if self.kind == "dcgan":
            return self.dec(torch.cat([s, t], -1))
        return self.dec(s * t).view(-1, *self.frame)

    def step(self, t):
        for blk in self.blocks:
            t = t + blk(t)
        return t


def separation_loss(model: SeparationTorch, seq, cond: int, w=(45.0, 10.0, 45.0, 1e-3)):
    b, length = seq.shape[:2]
    s_old = model._enc(model.e_s, seq[:, :cond])
    s_new = model._enc(model.e_s, seq[:, length - cond :])
    i = int(torch.randint(0, length - cond + 1, ()))
    rec = model.decode(s_old, model._enc(model.e_t, seq[:, i : i + cond]))
    l_ae = F.mse_loss(rec, seq[:, i])
    l_s = (s_old - s_new).pow(2).mean()
    t = model._enc(model.e_t, seq[:, :cond])
    t0, frames = t, [model.decode(s_old, t)]
    for _ in range(1, length):
        t = model.step(t)
        frames.append(model.decode(s_old, t))
    l_pred = F.mse_loss(torch.stack(frames, 1), seq)
    l_t = 0.5 * t0.pow(2).sum(1).mean()
    return w[0] * l_pred + w[1] * l_ae + w[2] * l_s + w[3] * l_t


def separation_train_step(config: str, batch: int, seed: int = 0):
    """(model, step function) at the 'mmnist' (5 -> 10, DCGAN) or 'waveeq' (5 -> 20, MLP) setting."""
    torch.manual_seed(seed)
    if config == "mmnist":
        model, length, betas = SeparationTorch("dcgan"), 15, (0.5, 0.99)
    elif config == "waveeq":
        model = SeparationTorch("mlp", s_dim=32, t_dim=32, n_blocks=3)
        length, betas = 25, (0.9, 0.99)
    else:
        raise ValueError(f"unknown configuration {config!r}; valid choices: ['mmnist', 'waveeq']")
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=4e-4, betas=betas)
    seq = torch.rand(batch, length, *model.frame)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = separation_loss(model, seq, 5)
        loss.backward()
        opt.step()
        return loss.item()

    return model, step


CASES = {
    "srvp_train": srvp_train_step,
    "srvp_eval": srvp_eval_call,
    "separation_train": separation_train_step,
}


def run_case(case: str, kwargs: dict, repeats: int, warmup: int) -> dict:
    """Times one of `CASES` built with `kwargs`: {'times': [s, ...], 'params': n}."""
    if case not in CASES:
        raise ValueError(f"unknown case {case!r}; valid choices: {sorted(CASES)}")
    model, fn = CASES[case](**kwargs)
    return {"times": timed(fn, repeats, warmup=warmup), "params": num_params(model)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--case", choices=sorted(CASES), help="time one case, print one JSON line")
    p.add_argument("--kwargs", default="{}", help="the case's keyword arguments, as JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.case:
        row = run_case(args.case, json.loads(args.kwargs), args.repeats, args.warmup)
        print("RESULT " + json.dumps(row), flush=True)
        return
    rows = {}
    for name, make in [
        ("srvp_b16", lambda: srvp_train_step(16)),
        ("separation_mmnist_b16", lambda: separation_train_step("mmnist", 16)),
        ("separation_waveeq_b128", lambda: separation_train_step("waveeq", 128)),
    ]:
        model, fn = make()
        times = timed(fn, args.repeats, warmup=1)
        rows[name] = {"params": num_params(model), "s_median": statistics.median(times)}
        print(name, json.dumps(rows[name]), flush=True)


if __name__ == "__main__":
    main()
