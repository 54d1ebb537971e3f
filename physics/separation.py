"""Separation of variables as spatiotemporal disentanglement (Donà et al., ICLR 2021).

From a conditioning window ``V_τ(t0)`` (τ frames stacked on channels) two encoders give the
content ``S = E_S(V)`` (time-invariant) and the temporal state ``T_{t0} = E_T(V)``; the state
follows ``dT/dt = f(T)`` (a neural ODE solved with diffrax, or the reference's residual
blocks ``T ← T + MLP_k(T)``) and a decoder ``D(S, T_t)`` renders each frame.

The networks are flax.linen modules; :class:`SeparationModel` composes them as pure
functions of an explicit parameter dict
``{"content_encoder", "dynamic_encoder", "dynamics", "decoder"}``. The ODE parameters go to
diffrax through ``args`` so that both adjoints (``RecursiveCheckpointAdjoint``:
discretise-then-optimise; ``BacksolveAdjoint``: optimise-then-discretise) differentiate them.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import diffrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from generative.layers import Conv, ConvTranspose
from generative.nets import MLP, final_activation, normalize
from physics.simulators import ADAPTIVE, fixed_step_rollout, get_solver

__all__ = [
    "MLPEncoder",
    "MLPDecoder",
    "ResNetEncoder",
    "ConvSkipEncoder",
    "ConvSkipDecoder",
    "MLPVectorField",
    "ConvVectorField",
    "TemporalDynamics",
    "SeparationModel",
    "stack_frames",
    "ENCODERS",
    "DECODERS",
    "ADJOINTS",
]


def _init(gain: float):
    """Xavier-normal initialisation with a gain (the reference's ``init_weight(gain)``)."""
    return nn.initializers.variance_scaling(gain**2, "fan_avg", "normal")


def _norm(x):
    """Group norm (stateless stand-in for the reference's BatchNorm, keeps apply pure)."""
    return normalize(x, "group", train=False)


def stack_frames(x):
    """Stacks a window's frames on channels.

    [B, τ, H, W, C] -> [B, H, W, τ·C];  [B, τ, P] -> [B, τ·P].
    """
    if x.ndim == 5:
        b, t, h, w, c = x.shape
        return jnp.moveaxis(x, 1, 3).reshape(b, h, w, t * c)
    if x.ndim == 3:
        return x.reshape(x.shape[0], -1)
    raise ValueError(f"window must be [B, T, H, W, C] or [B, T, P], got shape {x.shape}")


# ----------------------------------------------------------------------------- MLP


class MLPEncoder(nn.Module):
    """Flattened stacked frames -> code; ``num_layers`` linear layers of width ``hidden``."""

    out_dim: int
    hidden: int = 1200
    num_layers: int = 3
    gain: float = 0.71

    @nn.compact
    def __call__(self, x):  # [B, ...] -> [B, out_dim]
        x = x.reshape(x.shape[0], -1)
        return MLP(
            [self.hidden] * (self.num_layers - 1) + [self.out_dim], kernel_init=_init(self.gain)
        )(x)


class MLPDecoder(nn.Module):
    """Code -> frame of shape ``out_shape`` with ``num_layers`` linear layers."""

    out_shape: tuple[int, ...]
    hidden: int = 1200
    num_layers: int = 4
    gain: float = 0.71
    output_activation: str = "none"

    @nn.compact
    def __call__(self, z, skips=None):  # [B, D] -> [B, *out_shape]
        del skips
        n = math.prod(self.out_shape)
        x = MLP([self.hidden] * (self.num_layers - 1) + [n], kernel_init=_init(self.gain))(z)
        return final_activation(x, self.output_activation).reshape(
            (z.shape[0],) + tuple(self.out_shape)
        )


# ----------------------------------------------------------------------------- ResNet


class _BasicBlock(nn.Module):
    features: int
    stride: int = 1

    @nn.compact
    def __call__(self, x):
        y = nn.relu(_norm(Conv(self.features, (3, 3), strides=self.stride)(x)))
        y = _norm(Conv(self.features, (3, 3))(y))
        if x.shape[-1] != self.features or self.stride != 1:
            x = _norm(Conv(self.features, (1, 1), strides=self.stride)(x))
        return nn.relu(x + y)


class ResNetEncoder(nn.Module):
    """ResNet-18-style encoder (``blocks`` basic blocks per stage), global average pool, code."""

    out_dim: int
    nf: int = 64
    blocks: Sequence[int] = (2, 2, 2, 2)

    @nn.compact
    def __call__(self, x):  # [B, H, W, C] -> [B, out_dim]
        x = nn.relu(_norm(Conv(self.nf, (3, 3))(x)))
        for i, n in enumerate(self.blocks):
            for j in range(n):
                x = _BasicBlock(self.nf * 2**i, stride=2 if (j == 0 and i > 0) else 1)(x)
        return jnp.tanh(nn.Dense(self.out_dim)(x.mean(axis=(1, 2))))


# ----------------------------------------------------------------------------- conv with skips


class ConvSkipEncoder(nn.Module):
    """Convolutional encoder to a spatial code map; returns the code and its skip features.

    Used for SST: S and T are maps of ``out_channels`` at ``H / 2**num_down``.
    """

    out_channels: int
    nf: int = 64
    num_down: int = 2

    @nn.compact
    def __call__(self, x):  # [B, H, W, C] -> ([B, h, w, out], [skips])
        skips = []
        ch = self.nf
        for _ in range(self.num_down):
            x = nn.leaky_relu(_norm(Conv(ch, (3, 3))(x)), 0.2)
            skips.append(x)
            x = nn.leaky_relu(_norm(Conv(ch * 2, (3, 3), strides=2)(x)), 0.2)
            ch *= 2
        return Conv(self.out_channels, (3, 3))(x), skips


class ConvSkipDecoder(nn.Module):
    """Code map (+ skip features of the content encoder) -> frame. The skips hold one row
    per group of consecutive rows of z (a sequence's frames); the convolution reading
    [x, skip] computes the skip channels' part once per group (`Conv`'s `shared`)."""

    out_shape: tuple[int, int, int]
    nf: int = 64
    num_down: int = 2
    output_activation: str = "none"

    @nn.compact
    def __call__(self, z, skips=None):  # [B, h, w, D] -> [B, H, W, C]
        x, ch = z, self.nf * 2**self.num_down
        for i in reversed(range(self.num_down)):
            ch //= 2
            x = nn.leaky_relu(_norm(ConvTranspose(ch, (4, 4), strides=(2, 2))(x)), 0.2)
            shared = None if skips is None else skips[i]
            x = nn.leaky_relu(_norm(Conv(ch, (3, 3))(x, shared)), 0.2)
        return final_activation(Conv(self.out_shape[-1], (3, 3))(x), self.output_activation)


# ----------------------------------------------------------------------------- dynamics


class MLPVectorField(nn.Module):
    """``f(T)``: T -> hidden -> hidden -> T (3 linear layers, ReLU), as the reference's blocks.

    A smooth ``activation`` (tanh, softplus) suits adaptive solvers: ReLU kinks make the
    adaptive step control and DTO gradients non-smooth.
    """

    hidden: int = 512
    gain: float = 0.71
    activation: str = "relu"

    @nn.compact
    def __call__(self, t):  # [B, p] -> [B, p]
        return MLP(
            [self.hidden, self.hidden, t.shape[-1]], self.activation, kernel_init=_init(self.gain)
        )(t)


class ConvVectorField(nn.Module):
    """``f(T)`` on code maps: 3×3 conv -> ReLU -> 3×3 conv -> ReLU -> 3×3 conv (SST)."""

    hidden: int = 128

    @nn.compact
    def __call__(self, t):  # [B, h, w, p] -> [B, h, w, p]
        # Evaluated inside the rollout's scan or the ODE solver's loop: on CPU the layers'
        # kernel gradients are matrix products (XLA's own is ~4.6× slower there,
        # `benchmarks/layers.py --tables loops`).
        conv = functools.partial(Conv, kernel_size=(3, 3))
        x = nn.relu(conv(self.hidden)(t))
        x = nn.relu(conv(self.hidden)(x))
        return conv(t.shape[-1])(x)


ADJOINTS = ("recursive", "backsolve")


@dataclasses.dataclass(frozen=True)
class TemporalDynamics:
    """``dT/dt = f(T)`` with time measured in frames (Δt between frames = 1).

    kind="ode":      one vector field, solved by diffrax with ``solver`` (fixed step ``dt``
                     for euler/heun/midpoint/rk4, PID-adaptive for bosh3/dopri5/tsit5) and
                     ``adjoint`` ("recursive" = discretise-then-optimise; "backsolve" =
                     BacksolveAdjoint, optimise-then-discretise). A fixed step that divides
                     the frame spacing with "recursive" runs `simulators.fixed_step_rollout`
                     (the same steps, frames scanned and recomputed in the backward pass;
                     forward mode works through it); otherwise `diffrax.diffeqsolve`
                     (RecursiveCheckpointAdjoint or BacksolveAdjoint).
    kind="residual": the reference's form: per frame ``T ← T + f_k(T)`` for k = 1..n_blocks
                     with separate weights per block (explicit Euler with dt = 1).
    """

    vector_field: nn.Module
    kind: str = "ode"
    n_blocks: int = 3
    solver: str = "rk4"
    dt: float = 0.5
    adjoint: str = "recursive"
    rtol: float = 1e-4
    atol: float = 1e-6
    max_steps: int = 4096

    def __post_init__(self):
        if self.kind not in ("ode", "residual"):
            raise ValueError(
                f"unknown dynamics kind {self.kind!r}; valid choices: ['ode', 'residual']"
            )
        if self.adjoint not in ADJOINTS:
            raise ValueError(f"unknown adjoint {self.adjoint!r}; valid choices: {list(ADJOINTS)}")
        get_solver(self.solver)  # validates the name

    def init(self, key, t0):
        if self.kind == "residual":
            keys = jax.random.split(key, self.n_blocks)
            return tuple(self.vector_field.init(k, t0) for k in keys)
        return self.vector_field.init(key, t0)

    def _adjoint(self):
        if self.adjoint == "backsolve":
            kwargs = {"solver": get_solver(self.solver)}
            if self.solver in ADAPTIVE:
                kwargs["stepsize_controller"] = diffrax.PIDController(
                    rtol=self.rtol, atol=self.atol
                )
            return diffrax.BacksolveAdjoint(**kwargs)
        return diffrax.RecursiveCheckpointAdjoint()

    def rollout(self, params, t0, num_frames: int):
        """States at frames 0..num_frames-1 (frame 0 is ``t0``). t0: [B, ...] -> [B, N, ...]."""
        if self.kind == "residual":

            def frame(t, _):
                for p in params:
                    t = t + self.vector_field.apply(p, t)
                return t, t

            _, ts = jax.lax.scan(frame, t0, None, length=num_frames - 1)
            traj = jnp.concatenate([t0[None], ts], 0)  # [N, B, ...]
            return jnp.moveaxis(traj, 0, 1)
        adaptive = self.solver in ADAPTIVE
        per_frame = round(1.0 / self.dt)
        if not adaptive and self.adjoint == "recursive" and abs(per_frame * self.dt - 1) < 1e-9:
            # dt divides the frame spacing: the same steps as diffeqsolve's, scanned over
            # frames and recomputed in the backward pass (forward mode works too)
            ys = fixed_step_rollout(
                lambda t, y, p: self.vector_field.apply(p, y),
                t0,
                jnp.arange(num_frames, dtype=t0.dtype),
                per_frame,
                params,
                self.solver,
            )
            return jnp.moveaxis(ys, 0, 1)  # [B, N, ...]
        controller = (
            diffrax.PIDController(rtol=self.rtol, atol=self.atol)
            if adaptive
            else diffrax.ConstantStepSize()
        )
        ts = jnp.arange(num_frames, dtype=t0.dtype)
        max_steps = self.max_steps if adaptive else int(math.ceil((num_frames - 1) / self.dt)) + 1
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(lambda t, y, p: self.vector_field.apply(p, y)),
            get_solver(self.solver),
            t0=0.0,
            t1=float(num_frames - 1),
            dt0=self.dt,
            y0=t0,
            args=params,
            saveat=diffrax.SaveAt(ts=ts),
            stepsize_controller=controller,
            adjoint=self._adjoint(),
            max_steps=max(max_steps, 1),
        )
        return jnp.moveaxis(sol.ys, 0, 1)  # [B, N, ...]


# ----------------------------------------------------------------------------- model

ENCODERS = ("mlp", "dcgan", "vgg", "resnet", "conv_skip")
DECODERS = ("mlp", "dcgan", "vgg", "conv_skip")


@dataclasses.dataclass(frozen=True)
class SeparationModel:
    """``v_t = D(S, T_t)``, ``S = E_S(V)``, ``T_{t0} = E_T(V)``, ``dT/dt = f(T)``.

    mixing: "concat" (decoder sees [S, T]) or "mul" (decoder sees S ⊙ T; needs equal sizes).
    use_content=False is the paper's "without S" ablation: the decoder sees T only.
    """

    content_encoder: nn.Module
    dynamic_encoder: nn.Module
    decoder: nn.Module
    dynamics: TemporalDynamics
    mixing: str = "concat"
    use_content: bool = True

    def __post_init__(self):
        if self.mixing not in ("concat", "mul"):
            raise ValueError(f"unknown mixing {self.mixing!r}; valid choices: ['concat', 'mul']")

    # -- pieces
    def _encode(self, module, params, window):
        out = module.apply(params, stack_frames(window))
        return out if isinstance(out, tuple) else (out, None)

    def encode_content(self, params, window):
        """window [B, τ, ...] -> (S [B, d] or [B, h, w, d], skips or None)."""
        return self._encode(self.content_encoder, params["content_encoder"], window)

    def encode_dynamic(self, params, window):
        """window [B, τ, ...] -> T [B, p] (or [B, h, w, p])."""
        return self._encode(self.dynamic_encoder, params["dynamic_encoder"], window)[0]

    def mix(self, s, t):
        if not self.use_content:
            return t
        if self.mixing == "mul":
            if s.shape[-1] != t.shape[-1]:
                raise ValueError(
                    f"mul mixing needs equal S and T sizes, got {s.shape[-1]} and {t.shape[-1]}"
                )
            return s * t
        return jnp.concatenate([s, t], -1)

    def decode(self, params, s, skips, t):
        """s: [B, ...]; t: [B, N, ...] -> frames [B, N, *frame]. Skips stay one per sequence
        (the decoder shares their part over its N frames)."""
        b, n = t.shape[:2]
        rep = lambda x: jnp.repeat(x[:, None], n, 1).reshape((b * n,) + x.shape[1:])  # noqa: E731
        z = self.mix(rep(s), t.reshape((b * n,) + t.shape[2:]))
        frames = self.decoder.apply(params["decoder"], z, skips)
        return frames.reshape((b, n) + frames.shape[1:])

    def rollout(self, params, t0, num_frames: int):
        return self.dynamics.rollout(params["dynamics"], t0, num_frames)

    # -- whole model
    def init(self, key, window):
        """window: [B, τ, ...] example -> params."""
        k1, k2, k3, k4 = jax.random.split(key, 4)
        x = stack_frames(window)
        params = {
            "content_encoder": self.content_encoder.init(k1, x),
            "dynamic_encoder": self.dynamic_encoder.init(k2, x),
        }
        s, skips = self.encode_content(params, window)
        t = self.encode_dynamic(params, window)
        params["dynamics"] = self.dynamics.init(k3, t)
        params["decoder"] = self.decoder.init(k4, self.mix(s, t), skips)
        return params

    def predict(self, params, window, num_frames: int):
        """Frames at offsets 0..num_frames-1 from the window's first frame. -> [B, N, *frame]."""
        s, skips = self.encode_content(params, window)
        t = self.rollout(params, self.encode_dynamic(params, window), num_frames)
        return self.decode(params, s, skips, t)

    def swap(self, params, content_window, dynamic_window, num_frames: int):
        """Content swap: S (and skips) from one window, the temporal trajectory from another."""
        s, skips = self.encode_content(params, content_window)
        t = self.rollout(params, self.encode_dynamic(params, dynamic_window), num_frames)
        return self.decode(params, s, skips, t)


def num_params(params: Any) -> int:
    return sum(x.size for x in jax.tree_util.tree_leaves(params))
