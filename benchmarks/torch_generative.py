"""PyTorch versions of the generative families' benchmark models (optional: needs `torch`).

Written from the same descriptions as ours (generative/gan.py, ali.py, vae.py), in the usual
PyTorch style (a Python training loop, `torch.optim.Adam`, NCHW tensors), so that
`benchmarks/generative_step.py` can time both in the same run:

- PacGAN's 2-D GAN: generator 2 → 4 × (Linear 400 without bias, BatchNorm, ReLU) → 2; discriminator maxout
  (3 layers of 200 units × 5 pieces) → 1 logit; non-saturating loss; one discriminator and one
  generator Adam update per step on a fresh batch of the 25-Gaussian grid.
- ALI on the same data: encoder as the generator with a (μ, softplus) output, decoder = the
  generator, discriminator with a maxout x-branch and z-branch (200 × 5 each) and a joint maxout
  MLP (2 × 200 × 5, linear logit); one discriminator and one encoder+decoder update per step.
- The conv VAE of `vae_digits`: 28×28 digits padded to 32×32, DCGAN encoder (4×4 stride-2
  convolutions 32, 64, 128 channels, GroupNorm(16), LeakyReLU 0.2; 4×4 valid conv to 256, tanh;
  linear μ and log σ² heads, latent 16) and decoder (mirror, 32×32 output cropped to 28×28),
  Bernoulli likelihood on dynamically binarised pixels, one Adam step per call.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["GANTorch", "ALITorch", "VAETorch", "grid_batch", "num_params"]


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def grid_batch(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n samples of the 25-Gaussian grid (means {−4, −2, 0, 2, 4}², σ 0.05)."""
    idx = torch.randint(0, 25, (n,), generator=generator)
    centres = torch.stack([(idx // 5).float() * 2 - 4, (idx % 5).float() * 2 - 4], 1)
    return centres + 0.05 * torch.randn(n, 2, generator=generator)


def _bn_mlp(n_in: int, hidden: int, layers: int, n_out: int) -> nn.Sequential:
    mods, d = [], n_in
    for _ in range(layers):
        mods += [
            nn.Linear(d, hidden, bias=False),  # batch norm's shift replaces the bias
            nn.BatchNorm1d(hidden, momentum=0.1, eps=1e-5),
            nn.ReLU(),
        ]
        d = hidden
    return nn.Sequential(*mods, nn.Linear(d, n_out))


class Maxout(nn.Module):
    def __init__(self, n_in: int, width: int, pieces: int):
        super().__init__()
        self.width, self.pieces = width, pieces
        self.linear = nn.Linear(n_in, width * pieces)

    def forward(self, x):
        return self.linear(x).view(x.shape[0], self.width, self.pieces).max(-1).values


def _maxout_mlp(n_in: int, widths, pieces: int, n_out: int | None) -> nn.Sequential:
    mods, d = [], n_in
    for w in widths:
        mods.append(Maxout(d, w, pieces))
        d = w
    if n_out is not None:
        mods.append(nn.Linear(d, n_out))
    return nn.Sequential(*mods)


class GANTorch:
    """PacGAN's 2-D GAN and its training step."""

    def __init__(self, batch: int = 100, lr: float = 1e-4, b1: float = 0.8):
        self.g = _bn_mlp(2, 400, 4, 2)
        self.d = _maxout_mlp(2, (200, 200, 200), 5, 1)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr, betas=(b1, 0.999))
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr, betas=(b1, 0.999))
        self.batch = batch

    def params(self) -> int:
        return num_params(self.g) + num_params(self.d)

    def step(self) -> float:
        b = self.batch
        x = grid_batch(b)
        with torch.no_grad():
            fake = self.g(torch.randn(b, 2))
        d_loss = F.softplus(-self.d(x)).mean() + F.softplus(self.d(fake)).mean()
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        g_loss = F.softplus(-self.d(self.g(torch.randn(b, 2)))).mean()
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        return float(g_loss.detach())


class _JointD(nn.Module):
    def __init__(self):
        super().__init__()
        self.x_branch = _maxout_mlp(2, (200,), 5, None)
        self.z_branch = _maxout_mlp(2, (200,), 5, None)
        self.joint = _maxout_mlp(400, (200, 200), 5, 1)

    def forward(self, x, z):
        return self.joint(torch.cat([self.x_branch(x), self.z_branch(z)], 1))


class ALITorch:
    """ALI on the 2-D grid and its training step."""

    def __init__(self, batch: int = 100, lr: float = 1e-4, b1: float = 0.8):
        self.enc = _bn_mlp(2, 400, 4, 4)
        self.dec = _bn_mlp(2, 400, 4, 2)
        self.d = _JointD()
        gen_params = list(self.enc.parameters()) + list(self.dec.parameters())
        self.opt_g = torch.optim.Adam(gen_params, lr, betas=(b1, 0.999))
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr, betas=(b1, 0.999))
        self.batch = batch

    def params(self) -> int:
        return num_params(self.enc) + num_params(self.dec) + num_params(self.d)

    def _pairs(self, x, z):
        h = self.enc(x)
        z_hat = h[:, :2] + F.softplus(h[:, 2:]) * torch.randn_like(h[:, :2])
        return z_hat, self.dec(z)

    def step(self) -> float:
        b = self.batch
        x, z = grid_batch(b), torch.randn(b, 2)
        with torch.no_grad():
            z_hat, x_tilde = self._pairs(x, z)
        d_loss = F.softplus(-self.d(x, z_hat)).mean() + F.softplus(self.d(x_tilde, z)).mean()
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        x, z = grid_batch(b), torch.randn(b, 2)
        z_hat, x_tilde = self._pairs(x, z)
        g_loss = F.softplus(self.d(x, z_hat)).mean() + F.softplus(-self.d(x_tilde, z)).mean()
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        return float(g_loss.detach())


def _down(c_in, c_out, norm=True):
    mods = [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False)]
    if norm:
        mods.append(nn.GroupNorm(min(16, c_out), c_out))
    return nn.Sequential(*mods, nn.LeakyReLU(0.2))


def _up(c_in, c_out):
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
        nn.GroupNorm(min(16, c_out), c_out),
        nn.LeakyReLU(0.2),
    )


class VAETorch(nn.Module):
    """The conv VAE of `vae_digits` (nf 32, hidden 256, latent 16) and its training step."""

    def __init__(self, nf: int = 32, hidden: int = 256, latent: int = 16, lr: float = 1e-3):
        super().__init__()
        self.enc = nn.Sequential(
            _down(1, nf, norm=False),
            _down(nf, 2 * nf),
            _down(2 * nf, 4 * nf),
            nn.Conv2d(4 * nf, hidden, 4, 1, 0),
            nn.Tanh(),
        )
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)
        self.dec = nn.Sequential(
            nn.ConvTranspose2d(latent, 4 * nf, 4, 1, 0, bias=False),
            nn.GroupNorm(min(16, 4 * nf), 4 * nf),
            nn.LeakyReLU(0.2),
            _up(4 * nf, 2 * nf),
            _up(2 * nf, nf),
            nn.ConvTranspose2d(nf, 1, 4, 2, 1),
        )
        self.opt = torch.optim.Adam(self.parameters(), lr)

    def loss(self, x):
        """Negative ELBO per image (nats); x [N, 1, 28, 28] in {0, 1}."""
        h = self.enc(F.pad(x, (2, 2, 2, 2))).flatten(1)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.dec(z[:, :, None, None])[:, :, 2:30, 2:30]
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1)
        return (rec + kl).mean()

    def step(self, grey: torch.Tensor) -> float:
        x = torch.bernoulli(grey)  # dynamic binarisation
        loss = self.loss(x)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.detach())


if __name__ == "__main__":
    torch.set_num_threads(2)
    for name, m in [("GAN", GANTorch()), ("ALI", ALITorch())]:
        print(f"{name}: {m.params()} parameters, one step: generator loss {m.step():.4f}")
    v = VAETorch()
    print(
        f"VAE: {num_params(v)} parameters, one step: loss {v.step(torch.rand(64, 1, 28, 28)):.2f}"
    )
