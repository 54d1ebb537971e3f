"""Networks shared by the packages: MLPs (plain, batch-normalised, maxout) and the DCGAN / VGG
image encoders and decoders.

`UNet` is the noise-conditional image network of the diffusion models (`generative.diffusion`).

The DCGAN and VGG families are those of the SRVP reference (`video`), which the
spatiotemporal-disentanglement model (`physics`) reuses at any power-of-two frame size with
group normalisation. Every option below exists because one of the two models needs it; the
parameter trees (module names and shapes) are those the models have always had, so saved
checkpoints keep restoring. Options added for the GAN families (`MLP.norm`, `MaxoutMLP`,
`DCGANEncoder.code_activation`) leave those trees and outputs unchanged at their defaults.

All convolutions are `generative.layers.Conv` / `ConvTranspose`: flax's modules off CPU, the
CPU forms of `generative.layers` on CPU. Encoders return `(code, skips)` when `skips=True`
(skip features finest first, for decoders with skip connections), else the code alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from generative.layers import BatchNorm, Conv, ConvTranspose, Dense, GroupNorm

__all__ = [
    "ACTIVATIONS",
    "NORMS",
    "OUTPUT_ACTIVATIONS",
    "MLP",
    "MaxoutMLP",
    "DCGANEncoder",
    "DCGANDecoder",
    "VGGEncoder",
    "VGGDecoder",
    "sinusoidal_embedding",
    "UNet",
    "normalize",
    "final_activation",
]

Initializer = Callable[..., jax.Array]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "tanh": jnp.tanh,
    "softplus": nn.softplus,
    "elu": nn.elu,
    "swish": nn.swish,
}
NORMS = ("batch", "group")
OUTPUT_ACTIVATIONS = ("sigmoid", "tanh", "none")


def _choice(what: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; valid choices: {sorted(choices)}")


class MLP(nn.Module):
    """Dense layers with `activation` between them (none after the last).

    x: [..., D] -> [..., features[-1]]. `layer_names`, a format such as "dense{}", names the
    layers "dense0", "dense1", ...; by default they are flax's "Dense_0", "Dense_1", ...
    `norm="batch"`: batch normalisation (`normalize`: momentum 0.9, ε 1e-5) between each
    hidden Dense layer (without bias: the normalisation removes it) and its activation, batch statistics when `train` (the caller makes
    "batch_stats" mutable) and running averages otherwise; x is then [N, D]. With the default
    `norm=None` the module has its original parameters and no state.
    """

    features: Sequence[int]
    activation: str = "relu"
    kernel_init: Initializer = nn.initializers.lecun_normal()
    bias_init: Initializer = nn.initializers.zeros
    layer_names: str | None = None
    norm: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = False):
        _choice("activation", self.activation, ACTIVATIONS)
        if self.norm is not None:
            _choice("MLP norm", self.norm, ("batch",))
        if not self.features:
            raise ValueError("MLP needs at least one layer (features is empty)")
        act = ACTIVATIONS[self.activation]
        last = len(self.features) - 1
        for i, width in enumerate(self.features):
            name = None if self.layer_names is None else self.layer_names.format(i)
            normed = self.norm is not None and i < last
            x = Dense(
                width,
                use_bias=not normed,
                kernel_init=self.kernel_init,
                bias_init=self.bias_init,
                name=name,
            )(x)
            if i < last:
                if normed:
                    x = normalize(x, self.norm, train)
                x = act(x)
        return x


class MaxoutMLP(nn.Module):
    """Maxout layers (Goodfellow et al. 2013) then a linear output layer.

    Hidden layer i: h = max_k (W_k h_prev + b_k) over `pieces` affine maps, i.e. one Dense layer
    of width features[i]·pieces whose outputs are grouped in consecutive runs of `pieces` and
    maximised. The last entry of `features` is the linear output width, or, with
    `linear_output=False`, one more maxout layer. x: [..., D] -> [..., features[-1]].
    """

    features: Sequence[int]
    pieces: int = 5
    linear_output: bool = True
    kernel_init: Initializer = nn.initializers.lecun_normal()
    bias_init: Initializer = nn.initializers.zeros

    @nn.compact
    def __call__(self, x):
        if not self.features:
            raise ValueError("MaxoutMLP needs at least one layer (features is empty)")
        if self.pieces < 1:
            raise ValueError(f"MaxoutMLP needs pieces >= 1, got {self.pieces}")
        last = len(self.features) - 1 if self.linear_output else len(self.features)
        for i, width in enumerate(self.features):
            if i < last:
                h = Dense(
                    width * self.pieces, kernel_init=self.kernel_init, bias_init=self.bias_init
                )(x)
                x = jnp.max(h.reshape(h.shape[:-1] + (width, self.pieces)), axis=-1)
            else:
                x = Dense(width, kernel_init=self.kernel_init, bias_init=self.bias_init)(x)
        return x


def normalize(x, norm: str, train: bool, scale_init: Initializer = nn.initializers.ones):
    """Batch norm (momentum 0.9, ε 1e-5, batch statistics when `train`) or group norm
    (min(16, C) groups, stateless); called inside a compact method, it adds the module there."""
    if norm == "batch":
        return BatchNorm(
            use_running_average=not train, momentum=0.9, epsilon=1e-5, scale_init=scale_init
        )(x)
    if norm == "group":
        return GroupNorm(num_groups=min(16, x.shape[-1]))(x)
    raise ValueError(f"unknown norm {norm!r}; valid choices: {list(NORMS)}")


def _lrelu(x):
    return nn.leaky_relu(x, 0.2)


def final_activation(x, activation: str):
    """`activation` in OUTPUT_ACTIVATIONS applied to a network's output."""
    if activation == "sigmoid":
        return nn.sigmoid(x)
    if activation == "tanh":
        return jnp.tanh(x)
    if activation == "none":
        return x
    raise ValueError(
        f"unknown output activation {activation!r}; valid choices: {list(OUTPUT_ACTIVATIONS)}"
    )


def _levels(size: int, what: str) -> int:
    """Number of ×2 steps between a square `size` and 4×4."""
    n = int(round(math.log2(size / 4))) if size >= 8 else 0
    if size < 8 or 4 * 2**n != size:
        raise ValueError(f"{what} must be square with a power-of-two side >= 8, got {size}")
    return n


def _check_frames(x, what: str) -> int:
    if x.ndim != 4 or x.shape[1] != x.shape[2]:
        raise ValueError(f"{what} expects square frames [N, H, H, C], got shape {x.shape}")
    return _levels(x.shape[1], f"{what} frames")


def _code_head(module, h, skips, train):
    """The encoders' last layer, inside `module`'s compact method: a 4×4 valid convolution of
    the 4×4 map to the code (normalised before the tanh when `norm_code`, then without bias).
    The code's activation is the module's `code_activation` where it has one, else tanh."""
    h = Conv(
        module.out_dim,
        (4, 4),
        padding="VALID",
        use_bias=not module.norm_code,
        kernel_init=module.kernel_init,
    )(h)
    if module.norm_code:
        h = normalize(h, module.norm, train, module.scale_init)
    activation = getattr(module, "code_activation", "tanh")
    code = final_activation(h.reshape(h.shape[0], module.out_dim), activation)
    return (code, skips) if module.skips else code


class DCGANEncoder(nn.Module):
    """4×4 stride-2 convolutions (no bias, LeakyReLU 0.2, normalised after all but the first)
    halve [H, H] down to 4×4; a 4×4 valid convolution then gives the code, tanh.

    x [N, H, H, C] -> code [N, out_dim] (+ skips: the feature maps after each halving).
    `norm_code`: normalise the code before the tanh (and no bias), as SRVP does.
    `code_activation` ("tanh" | "sigmoid" | "none"): the code's activation; "none" gives an
    unbounded output (a discriminator's logit, an encoder's Gaussian parameters).
    """

    out_dim: int
    nf: int = 64
    norm: str = "batch"
    norm_code: bool = False
    skips: bool = False
    code_activation: str = "tanh"
    kernel_init: Initializer = nn.initializers.lecun_normal()
    scale_init: Initializer = nn.initializers.ones

    @nn.compact
    def __call__(self, x, train: bool = False):
        n = _check_frames(x, "DCGANEncoder")
        h, skips = x, []
        for i in range(n):
            h = Conv(
                self.nf * 2**i,
                (4, 4),
                (2, 2),
                padding=((1, 1), (1, 1)),
                use_bias=False,
                kernel_init=self.kernel_init,
            )(h)
            h = _lrelu(h if i == 0 else normalize(h, self.norm, train, self.scale_init))
            skips.append(h)
        return _code_head(self, h, skips, train)


class DCGANDecoder(nn.Module):
    """Mirror of `DCGANEncoder`: a 4×4 transposed convolution of the code to a 4×4 map, then
    4×4 stride-2 transposed convolutions up to `out_shape` (bias on the last one only).

    z [N, D] -> frames [N, H, H, C]. `skips` (finest first, as the encoder returns them) feed
    each upsampling layer at its input's resolution; they may hold one row per group of
    consecutive rows of z (a video's frames): the skip channels' share of the layer is then
    computed once per group (`generative.layers.Conv`'s `shared`).
    """

    out_shape: tuple[int, int, int]
    nf: int = 64
    norm: str = "batch"
    output_activation: str = "sigmoid"
    kernel_init: Initializer = nn.initializers.lecun_normal()
    scale_init: Initializer = nn.initializers.ones

    @nn.compact
    def __call__(self, z, skips: Sequence[Any] | None = None, train: bool = False):
        n = _levels(self.out_shape[0], "DCGANDecoder out_shape")
        skips = [None] * n if skips is None else list(skips)[::-1]
        ch = self.nf * 2 ** (n - 1)
        h = ConvTranspose(
            ch, (4, 4), padding="VALID", use_bias=False, kernel_init=self.kernel_init
        )(z[:, None, None, :])
        h = _lrelu(normalize(h, self.norm, train, self.scale_init))  # 4×4
        for i in range(n):
            last = i == n - 1
            h = ConvTranspose(
                self.out_shape[-1] if last else ch // 2 ** (i + 1),
                (4, 4),
                (2, 2),
                padding="SAME",
                use_bias=last,
                kernel_init=self.kernel_init,
            )(h, skips[i])
            if not last:
                h = _lrelu(normalize(h, self.norm, train, self.scale_init))
        return final_activation(h, self.output_activation)


def _vgg_block(h, features, module, train, shared=None):
    """3×3 convolution -> normalisation -> LeakyReLU(0.2), inside `module`'s compact method."""
    h = Conv(
        features,
        (3, 3),
        padding=((1, 1), (1, 1)),
        use_bias=module.use_bias,
        kernel_init=module.kernel_init,
    )(h, shared)
    return _lrelu(normalize(h, module.norm, train, module.scale_init))


class VGGEncoder(nn.Module):
    """VGG stages of 3×3 convolution blocks (`_vgg_block`) with 2×2 max-pools between them and
    after the last, down to 4×4; a 4×4 valid convolution then gives the code, tanh.

    Stage s has `blocks[s]` blocks of width nf·min(2^s, 8) (default: two per stage).
    x [N, H, H, C] -> code [N, out_dim] (+ skips: each stage's output).
    """

    out_dim: int
    nf: int = 64
    norm: str = "batch"
    blocks: Sequence[int] | None = None
    use_bias: bool = True
    norm_code: bool = False
    skips: bool = False
    kernel_init: Initializer = nn.initializers.lecun_normal()
    scale_init: Initializer = nn.initializers.ones

    @nn.compact
    def __call__(self, x, train: bool = False):
        n = _check_frames(x, "VGGEncoder")
        blocks = (2,) * n if self.blocks is None else tuple(self.blocks)
        if len(blocks) != n:
            raise ValueError(
                f"VGGEncoder with {len(blocks)} stages needs {4 * 2 ** len(blocks)}×"
                f"{4 * 2 ** len(blocks)} frames, got {x.shape[1]}×{x.shape[2]}"
            )
        h, skips = x, []
        for s, count in enumerate(blocks):
            if s > 0:
                h = nn.max_pool(h, (2, 2), strides=(2, 2))
            for _ in range(count):
                h = _vgg_block(h, self.nf * min(2**s, 8), self, train)
            skips.append(h)
        h = nn.max_pool(h, (2, 2), strides=(2, 2))
        return _code_head(self, h, skips, train)


class VGGDecoder(nn.Module):
    """Mirror of `VGGEncoder`: a 4×4 transposed convolution of the code to a 4×4 map, then
    stages of (nearest ×2 upsampling, 3×3 blocks), then a 3×3 output layer.

    `stages[s]` lists the widths of stage s's blocks in multiples of nf (default: two blocks
    per stage, halving from nf·2^(n-2) with a floor of nf). `skips` (finest first) feed each
    stage's first block at its resolution, shared per group of rows as in `DCGANDecoder`.
    `out_transpose`: the output layer is a transposed convolution (SRVP's reference).
    """

    out_shape: tuple[int, int, int]
    nf: int = 64
    norm: str = "batch"
    stages: Sequence[Sequence[int]] | None = None
    use_bias: bool = True
    out_transpose: bool = False
    output_activation: str = "sigmoid"
    kernel_init: Initializer = nn.initializers.lecun_normal()
    scale_init: Initializer = nn.initializers.ones

    @nn.compact
    def __call__(self, z, skips: Sequence[Any] | None = None, train: bool = False):
        n = _levels(self.out_shape[0], "VGGDecoder out_shape")
        top = min(2 ** (n - 1), 8)
        if self.stages is None:
            widths, stages = top, []
            for _ in range(n):
                widths = max(widths // 2, 1)
                stages.append((widths, widths))
        else:
            stages = [tuple(s) for s in self.stages]
        if len(stages) != n:
            raise ValueError(
                f"VGGDecoder with {len(stages)} stages makes {4 * 2 ** len(stages)}×"
                f"{4 * 2 ** len(stages)} frames, not {self.out_shape[0]}×{self.out_shape[1]}"
            )
        skips = [None] * n if skips is None else list(skips)[::-1]
        h = ConvTranspose(
            self.nf * top,
            (4, 4),
            padding="VALID",
            use_bias=self.use_bias,
            kernel_init=self.kernel_init,
        )(z[:, None, None, :])
        h = _lrelu(normalize(h, self.norm, train, self.scale_init))  # 4×4
        for widths, skip in zip(stages, skips):
            h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)  # nearest ×2
            for i, w in enumerate(widths):
                h = _vgg_block(h, self.nf * w, self, train, skip if i == 0 else None)
        layer = ConvTranspose if self.out_transpose else Conv
        h = layer(self.out_shape[-1], (3, 3), padding="SAME", kernel_init=self.kernel_init)(h)
        return final_activation(h, self.output_activation)


def sinusoidal_embedding(t: jax.Array, dim: int, max_period: float = 10000.0) -> jax.Array:
    """Transformer-style embedding of scalars: t [n] -> [n, dim],
    [cos(t ω_0), …, cos(t ω_{h−1}), sin(t ω_0), …, sin(t ω_{h−1})] with h = dim/2 and
    ω_k = max_period^{−k/h} (periods from 2π to 2π·max_period; dim must be even)."""
    if dim % 2:
        raise ValueError(f"sinusoidal_embedding needs an even dim, got {dim}")
    half = dim // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    args = jnp.asarray(t, jnp.float32)[:, None] * freqs[None, :]
    return jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)


class _ResBlock(nn.Module):
    """GroupNorm -> SiLU -> 3×3 conv, plus a Dense projection of the time embedding added per
    channel, GroupNorm -> SiLU -> 3×3 conv; the input (1×1-projected when the width
    changes) is added back."""

    features: int
    groups: int

    @nn.compact
    def __call__(self, x, emb):
        h = nn.silu(GroupNorm(num_groups=min(self.groups, x.shape[-1]))(x))
        h = Conv(self.features, (3, 3))(h)
        h = h + Dense(self.features)(nn.silu(emb))[:, None, None, :]
        h = nn.silu(GroupNorm(num_groups=min(self.groups, self.features))(h))
        h = Conv(self.features, (3, 3))(h)
        if x.shape[-1] != self.features:
            x = Conv(self.features, (1, 1))(x)
        return x + h


class UNet(nn.Module):
    """A small noise-conditional U-Net (DDPM style, without attention) for images whose side
    halves evenly len(mults) − 1 times (28×28: 28, 14, 7; 32×32: 32, 16, 8).

    (x [n, H, W, C], t [n]) -> [n, H, W, out_channels or C]. t (a noise level or time, e.g. in
    [0, 1]) is embedded by `sinusoidal_embedding(time_scale · t, nf)` and a two-layer SiLU MLP
    of width 4·nf. Level i has `blocks` residual blocks of width nf·mults[i] (`_ResBlock`:
    GroupNorm with min(groups, C) groups, SiLU, 3×3 convolutions, the embedding added per
    channel), then a stride-2 3×3 convolution down to the next level; the decoder mirrors it
    with skip connections (concatenated) and nearest ×2 upsampling followed by a 3×3
    convolution. The output convolution starts at zero (the network starts as ε̂ = 0).
    `patch` > 1: the image is first cut into patch × patch blocks stacked as channels
    (space to depth, [n, H/p, W/p, p²C]) and the output is reassembled (depth to space), so
    that every convolution runs at 1/p² of the positions (a CPU-sized network).
    """

    nf: int = 32
    mults: Sequence[int] = (1, 2, 2)
    blocks: int = 1
    groups: int = 8
    out_channels: int | None = None
    time_scale: float = 1000.0
    patch: int = 1

    @nn.compact
    def __call__(self, x, t):
        if x.ndim != 4:
            raise ValueError(f"UNet expects images [n, H, W, C], got shape {x.shape}")
        levels = len(self.mults)
        div = self.patch * 2 ** (levels - 1)
        for side in x.shape[1:3]:
            if side % div:
                raise ValueError(
                    f"UNet with {levels} levels and patch {self.patch} needs sides divisible "
                    f"by {div}, got {x.shape[1]}×{x.shape[2]}"
                )
        n, height, width, channels = x.shape
        out = self.out_channels or channels
        p = self.patch
        if p > 1:  # space to depth: [n, H/p, W/p, p·p·C]
            x = x.reshape(n, height // p, p, width // p, p, channels)
            x = x.transpose(0, 1, 3, 2, 4, 5).reshape(n, height // p, width // p, -1)
        emb = sinusoidal_embedding(self.time_scale * jnp.asarray(t).reshape(-1), self.nf)
        emb = Dense(4 * self.nf)(emb)
        emb = Dense(4 * self.nf)(nn.silu(emb))
        h = Conv(self.nf, (3, 3))(x)
        skips = [h]
        for i, m in enumerate(self.mults):
            for _ in range(self.blocks):
                h = _ResBlock(self.nf * m, self.groups)(h, emb)
                skips.append(h)
            if i < levels - 1:
                h = Conv(h.shape[-1], (3, 3), (2, 2))(h)
                skips.append(h)
        h = _ResBlock(h.shape[-1], self.groups)(h, emb)
        for i, m in reversed(list(enumerate(self.mults))):
            for _ in range(self.blocks + 1):
                h = _ResBlock(self.nf * m, self.groups)(
                    jnp.concatenate([h, skips.pop()], axis=-1), emb
                )
            if i > 0:
                h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)
                h = Conv(h.shape[-1], (3, 3))(h)
        h = nn.silu(GroupNorm(num_groups=min(self.groups, h.shape[-1]))(h))
        h = Conv(out * p * p, (3, 3), kernel_init=nn.initializers.zeros)(h)
        if p > 1:  # depth to space
            h = h.reshape(n, height // p, width // p, p, p, out).transpose(0, 1, 3, 2, 4, 5)
            h = h.reshape(n, height, width, out)
        return h
