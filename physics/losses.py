"""Training objective of the separation-of-variables model (Donà et al., ICLR 2021).

For a window ``v_0 … v_{L-1}`` of ``L = τ + P`` frames (τ conditioning frames):

- ``L_pred = mean_{b,i,pixels} (D(S, T_i) − v_i)²`` over all L frames, ``T_i`` integrated
  by the ODE from ``T_0 = E_T(v_0 … v_{τ-1})``;
- ``L_AE = mean_{b,pixels} (D(S, E_T(v_i … v_{i+τ-1})) − v_i)²``, ``i ~ U{0 … L−τ}`` per
  sequence;
- ``L_reg^S = mean_{b,dims} (E_S(v_0 … v_{τ-1}) − E_S(v_{L−τ} … v_{L−1}))²``;
- ``L_reg^T = mean_b ½ Σ_dims T_0²``;

``L = λ_pred L_pred + λ_AE L_AE + λ_S L_reg^S + λ_T L_reg^T`` (reference defaults 45, 10, 45,
1e-3). In the "without S" ablation L_reg^S is dropped (the content encoder is unused).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from physics.separation import SeparationModel

__all__ = ["LossWeights", "separation_loss", "windows_at"]


@dataclasses.dataclass(frozen=True)
class LossWeights:
    pred: float = 45.0
    ae: float = 10.0
    s: float = 45.0
    t: float = 1e-3


def windows_at(seq, starts, length: int):
    """seq [B, L, ...], starts [B] int -> [B, length, ...] (``seq[b, starts[b]:starts[b]+length]``)."""

    def one(x, i):
        return jax.lax.dynamic_slice_in_dim(x, i, length, axis=0)

    return jax.vmap(one)(seq, starts)


def separation_loss(
    model: SeparationModel, params, seq, key, cond_frames: int, weights: LossWeights = LossWeights()
):
    """seq: [B, L, ...] -> (total loss, {"pred", "ae", "reg_s", "reg_t"})."""
    b, length = seq.shape[:2]
    tau = cond_frames
    if not 0 < tau < length:
        raise ValueError(f"cond_frames must be in (0, {length}), got {tau}")
    # The networks act on each sample alone (GroupNorm, no batch statistics), so the calls
    # that share a network are batched: E_T on both windows, E_S on the first and last
    # windows, D on the rollout and the auto-encoded frame together (one call each, larger
    # products; the same values as separate calls).
    window = seq[:, :tau]
    starts = jax.random.randint(key, (b,), 0, length - tau + 1)
    t0, t_i = jnp.split(
        model.encode_dynamic(params, jnp.concatenate([window, windows_at(seq, starts, tau)])), 2
    )
    if model.use_content:
        both, skips = model.encode_content(
            params, jnp.concatenate([window, seq[:, length - tau :]])
        )
        s, s_last = both[:b], both[b:]
        skips = None if skips is None else [k[:b] for k in skips]
    else:
        s, skips = model.encode_content(params, window)
    traj = model.rollout(params, t0, length)  # [B, L, ...]
    frames = model.decode(params, s, skips, jnp.concatenate([traj, t_i[:, None]], 1))
    pred, rec = frames[:, :length], frames[:, length]  # [B, L, *frame], [B, *frame]
    l_pred = jnp.mean((pred - seq) ** 2)
    target = windows_at(seq, starts, 1)[:, 0]
    l_ae = jnp.mean((rec - target) ** 2)

    if model.use_content:
        l_s = jnp.mean((s - s_last) ** 2)
        w_s = weights.s
    else:
        l_s, w_s = jnp.zeros(()), 0.0
    l_t = jnp.mean(0.5 * jnp.sum(t0.reshape(b, -1) ** 2, -1))
    total = weights.pred * l_pred + weights.ae * l_ae + w_s * l_s + weights.t * l_t
    return total, {"pred": l_pred, "ae": l_ae, "reg_s": l_s, "reg_t": l_t}
