"""PyTorch side of `benchmarks/flows_step.py`: zuko's MAF and RealNVP, and a small FFJORD.

The FFJORD here is the method of Grathwohl et al. 2019 written directly on torchdiffeq: an
MLP field f(t, x) = MLP([x, t]) (tanh), the state (x, δ) with dδ/dt = εᵀ(∂f/∂x)ε (Hutchinson,
one Rademacher ε per step held fixed along the solve), `torchdiffeq.odeint_adjoint` (dopri5)
on [0, 1]; log p(x) = log N(x(1)) + δ(1). The field counts its evaluations (`nfe`), each one
evaluation of f with its divergence, forward and adjoint passes alike.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def checkerboard(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform on the 8 dark squares of the 4×4 checkerboard over [−4, 4]² (as
    `generative.data.toy.checkerboard`)."""
    cell = torch.randint(0, 8, (n,), generator=generator)
    row = cell // 2
    col = 2 * (cell % 2) + row % 2
    corner = torch.stack([col, row], 1).float() * 2.0 - 4.0
    return corner + 2.0 * torch.rand(n, 2, generator=generator)


def zuko_flow(kind: str, layers: int, hidden: tuple[int, ...]):
    """zuko's MAF or RealNVP on 2-D data with `layers` transforms of `hidden` ReLU MLPs."""
    import zuko

    if kind == "maf":
        return zuko.flows.MAF(2, transforms=layers, hidden_features=hidden)
    if kind == "realnvp":
        return zuko.flows.RealNVP(2, transforms=layers, hidden_features=hidden)
    raise ValueError(f"unknown zuko flow '{kind}'; valid: maf, realnvp")


def zuko_step(flow, lr: float = 1e-3):
    """A training step `step(x)` of a zuko flow (Adam, loss −mean log p(x))."""
    opt = torch.optim.Adam(flow.parameters(), lr=lr)

    def step(x):
        loss = -flow().log_prob(x).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


class Field(nn.Module):
    """f(t, x) = MLP([x, t]) with tanh; its augmented dynamics return (f, εᵀ(∂f/∂x)ε)."""

    def __init__(self, hidden: tuple[int, ...] = (64, 64, 64)):
        super().__init__()
        widths = [3, *hidden, 2]
        layers = []
        for i in range(len(widths) - 1):
            layers.append(nn.Linear(widths[i], widths[i + 1]))
            if i < len(widths) - 2:
                layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        self.nfe = 0
        self.eps = None

    def forward(self, t, state):
        z, _ = state
        self.nfe += 1
        with torch.enable_grad():
            if not z.requires_grad:
                z = z.requires_grad_(True)
            tt = t.expand(z.shape[0], 1).to(z)
            dz = self.net(torch.cat([z, tt], 1))
            (e_j,) = torch.autograd.grad(dz, z, self.eps, create_graph=True)
            div = (e_j * self.eps).sum(1)
        return dz, div


def load_flax_mlp(field: Field, params: dict) -> None:
    """Copy the weights of a `generative.nets.MLP` (flax, kernel [in, out]) into `field`."""
    linears = [m for m in field.net if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for i, lin in enumerate(linears):
            p = params[f"Dense_{i}"]
            lin.weight.copy_(torch.as_tensor(p["kernel"].T.copy()))
            lin.bias.copy_(torch.as_tensor(p["bias"].copy()))


def ffjord_step(field: Field, rtol: float = 1e-5, atol: float = 1e-5, lr: float = 1e-3):
    """A training step `step(x) -> (loss, forward nfe, backward nfe)` of the FFJORD."""
    from torchdiffeq import odeint_adjoint

    opt = torch.optim.Adam(field.parameters(), lr=lr)
    times = torch.tensor([0.0, 1.0])

    def step(x):
        field.eps = torch.randint(0, 2, x.shape).to(x) * 2 - 1
        field.nfe = 0
        zs, deltas = odeint_adjoint(
            field,
            (x, torch.zeros(x.shape[0])),
            times,
            rtol=rtol,
            atol=atol,
            method="dopri5",
            adjoint_params=tuple(field.parameters()),
        )
        z, delta = zs[-1], deltas[-1]
        logp = -0.5 * (math.log(2 * math.pi) * 2 + (z**2).sum(1)) + delta
        loss = -logp.mean()
        forward_nfe = field.nfe
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss, forward_nfe, field.nfe - forward_nfe

    return step
