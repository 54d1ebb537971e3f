"""PyTorch LEADS training step, one environment after the other (as the LEADS reference code
runs it), for `environments_bench.py`.

The same model as `physics.environments` (``leads``): f_e = f + g_e, MLP 2 → h → h → h → 2
(LV) or four 3×3 circular convolutions (GS), swish, output × scale; RK4 (classical tableau)
with one step per observation interval; loss = trajectory MSE over every environment +
λ Σ_e [mean ‖g_e(x)‖² / (‖x‖ + 1e-5)² + c_lip Σ_layers σ(W)], σ by power iteration with
persistent vectors; one Adam step. Teacher forcing off (whole trajectories: the regime of
most of a run). `load_jax_params` copies a `physics.environments` LEADS parameter tree in, so
that both sides can be checked to compute the same trajectory loss.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Swish(nn.Module):
    def forward(self, x):
        return F.silu(x)


def mlp(hidden: int, dim: int = 2) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(dim, hidden),
        Swish(),
        nn.Linear(hidden, hidden),
        Swish(),
        nn.Linear(hidden, hidden),
        Swish(),
        nn.Linear(hidden, dim),
    )


class ConvNet(nn.Module):
    def __init__(self, hidden: int, channels: int = 2, scale: float = 1e-3):
        super().__init__()
        conv = lambda i, o: nn.Conv2d(i, o, 3, padding=1, padding_mode="circular")  # noqa: E731
        self.net = nn.Sequential(
            conv(channels, hidden),
            Swish(),
            conv(hidden, hidden),
            Swish(),
            conv(hidden, hidden),
            Swish(),
            conv(hidden, channels),
        )
        self.scale = scale

    def forward(self, x):
        return self.net(x) * self.scale


def _unit(x):
    return x / (x.norm() + 1e-12)


class TorchLeads:
    """LEADS on ``num_envs`` environments, trained by `step` (a Python loop over them)."""

    def __init__(
        self,
        system: str,
        num_envs: int,
        hidden: int,
        *,
        lr: float = 1e-3,
        lambda_inv: float = 2e-4,
        factor_lip: float = 1e-2,
        power_iterations: int = 5,
        seed: int = 0,
    ):
        torch.manual_seed(seed)
        make = (lambda: mlp(hidden)) if system == "lv" else (lambda: ConvNet(hidden))
        self.system = system
        self.f = make()
        self.g = nn.ModuleList([make() for _ in range(num_envs)])
        self.lambda_inv, self.factor_lip = lambda_inv, factor_lip
        self.power_iterations = power_iterations
        self.weights = [
            [p for n, p in g.named_parameters() if n.endswith("weight")] for g in self.g
        ]
        self.vectors = [
            [(_unit(torch.randn(w.shape[0])), _unit(torch.randn(w[0].numel()))) for w in ws]
            for ws in self.weights
        ]
        self.opt = torch.optim.Adam(list(self.f.parameters()) + list(self.g.parameters()), lr)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.f.parameters()) + sum(
            p.numel() for p in self.g.parameters()
        )

    def load_jax_params(self, params) -> None:
        """Copies `physics.environments` LEADS params ({"common", "env"}) in."""

        def load(module, tree, e=None):
            leaves = tree["params"]
            names = sorted(leaves, key=lambda k: int(k.split("_")[-1].replace("conv", "")))
            layers = [m for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
            for layer, name in zip(layers, names):
                k = np.asarray(leaves[name]["kernel"])
                b = np.asarray(leaves[name]["bias"])
                if e is not None:
                    k, b = k[e], b[e]
                k = k.T if k.ndim == 2 else k.transpose(3, 2, 0, 1)
                with torch.no_grad():
                    layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(k)))
                    layer.bias.copy_(torch.from_numpy(np.array(b)))

        load(self.f, params["common"])
        for e, g in enumerate(self.g):
            load(g, params["env"], e)

    def _sigma(self, e):
        total = 0.0
        for i, w in enumerate(self.weights[e]):
            m = w.reshape(w.shape[0], -1)
            u, v = self.vectors[e][i]
            with torch.no_grad():
                for _ in range(self.power_iterations):
                    v = _unit(m.t() @ u)
                    u = _unit(m @ v)
            self.vectors[e][i] = (u, v)
            total = total + u @ (m @ v)
        return total

    def rollout(self, e, x0, ts):
        """x0 [B, *state] -> [B, T, *state] (RK4, one step per interval)."""

        def field(x):
            return self.f(x) + self.g[e](x)

        y, out = x0, [x0]
        for k in range(len(ts) - 1):
            dt = float(ts[k + 1] - ts[k])
            k1 = field(y)
            k2 = field(y + dt / 2 * k1)
            k3 = field(y + dt / 2 * k2)
            k4 = field(y + dt * k3)
            y = y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            out.append(y)
        return torch.stack(out, 1)

    def loss(self, obs, ts):
        """obs [E, B, T, *state] (torch) -> (loss, trajectory MSE)."""
        l_traj, penalty = 0.0, 0.0
        for e in range(obs.shape[0]):
            pred = self.rollout(e, obs[e, :, 0], ts)
            l_traj = l_traj + ((pred - obs[e]) ** 2).mean() / obs.shape[0]
            if self.lambda_inv > 0:
                x = obs[e].reshape((-1,) + tuple(obs.shape[3:]))
                g = self.g[e](x)
                ratio = (g**2).sum(1) / (x.norm(dim=1) + 1e-5) ** 2
                penalty = penalty + ratio.mean() + self.factor_lip * self._sigma(e)
        return l_traj + self.lambda_inv * penalty, l_traj

    def step(self, obs, ts) -> float:
        self.opt.zero_grad()
        loss, _ = self.loss(obs, ts)
        loss.backward()
        self.opt.step()
        return float(loss.detach())
