"""LPIPS (AlexNet-lin v0.1) and FVD (I3D Kinetics-400 logits) in flax, on user-supplied weights.

Pretrained weights cannot be downloaded here: both metrics load a converted `.npz` whose path is
in the eval config, and refuse to run without it.

LPIPS weights: the state dict of `lpips.LPIPS(net='alex', version='0.1')` saved with its PyTorch
names, e.g.
    python -c "import lpips, numpy as np; m = lpips.LPIPS(net='alex', version='0.1');
    np.savez('lpips_alex_v0.1.npz', **{k: v.numpy() for k, v in m.state_dict().items()})"
(keys `net.slice1.0.weight` … `net.slice5.10.bias`, `lin0.model.1.weight` … `lin4.model.1.weight`).

I3D weights: the variables of DeepMind's `kinetics-i3d` RGB checkpoint (the network behind the
FVD TF-Hub module), saved with their TensorFlow names, e.g.
`RGB/inception_i3d/Conv3d_1a_7x7/conv_3d/w`, `.../batch_norm/beta|moving_mean|moving_variance`,
`.../Logits/Conv3d_0c_1x1/conv_3d/b` (the `RGB/inception_i3d/` prefix is optional).
"""

from __future__ import annotations

import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from video import metrics

__all__ = [
    "LPIPSAlex",
    "load_lpips_params",
    "lpips_distance",
    "lpips_params_to_torch",
    "InceptionI3D",
    "load_i3d_variables",
    "i3d_variables_to_tf",
    "i3d_embeddings",
    "fvd",
    "MissingWeightsError",
]


class MissingWeightsError(FileNotFoundError):
    """Pretrained weights for a perceptual metric were not supplied."""


def _require(path, metric: str, key: str) -> pathlib.Path:
    if not path:
        raise MissingWeightsError(
            f"{metric} needs converted pretrained weights: set {key}=PATH.npz "
            "(see video/perceptual.py for the conversion)"
        )
    p = pathlib.Path(path).expanduser()
    if not p.is_file():
        raise MissingWeightsError(
            f"{metric} weights not found at {p}; set {key}=PATH.npz "
            "(see video/perceptual.py for the conversion)"
        )
    return p


# ----------------------------------------------------------------------------- LPIPS
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)
# (torch index in alexnet.features, out channels, kernel, stride, padding)
_ALEX = (
    (0, 64, 11, 4, 2),
    (3, 192, 5, 1, 2),
    (6, 384, 3, 1, 1),
    (8, 256, 3, 1, 1),
    (10, 256, 3, 1, 1),
)


class LPIPSAlex(nn.Module):
    """LPIPS distance with AlexNet features and learned linear layers (v0.1)."""

    @nn.compact
    def __call__(self, x, y):
        # x, y: [N, H, W, 3] in [-1, 1] -> [N] distances
        shift = jnp.array(_LPIPS_SHIFT).reshape(1, 1, 1, 3)
        scale = jnp.array(_LPIPS_SCALE).reshape(1, 1, 1, 3)
        n = x.shape[0]
        h = (jnp.concatenate([x, y]) - shift) / scale  # both images through one AlexNet pass
        outs = []
        for i, (_, c, k, s, p) in enumerate(_ALEX):
            if i in (1, 2):  # max-pool 3×3 stride 2 before conv2 and conv3
                h = nn.max_pool(h, (3, 3), strides=(2, 2))
            conv = nn.Conv(c, (k, k), strides=(s, s), padding=((p, p), (p, p)), name=f"conv{i + 1}")
            h = nn.relu(conv(h))
            outs.append(h)
        feats = [[o[:n] for o in outs], [o[n:] for o in outs]]
        total = 0.0
        for i, (fx, fy) in enumerate(zip(*feats)):
            nx = fx / (jnp.sqrt(jnp.sum(fx**2, -1, keepdims=True)) + 1e-10)
            ny = fy / (jnp.sqrt(jnp.sum(fy**2, -1, keepdims=True)) + 1e-10)
            lin = nn.Conv(1, (1, 1), use_bias=False, name=f"lin{i}")
            total = total + lin((nx - ny) ** 2).mean(axis=(1, 2, 3))
        return total


def load_lpips_params(path) -> dict:
    """Flax params of LPIPSAlex from the converted PyTorch state dict (.npz)."""
    p = _require(path, "LPIPS", "eval.lpips_weights")
    sd = dict(np.load(p))
    params = {}
    try:
        for i, (idx, *_rest) in enumerate(_ALEX):
            w = sd[f"net.slice{i + 1}.{idx}.weight"]  # [O, I, kh, kw]
            params[f"conv{i + 1}"] = {
                "kernel": jnp.asarray(w.transpose(2, 3, 1, 0)),
                "bias": jnp.asarray(sd[f"net.slice{i + 1}.{idx}.bias"]),
            }
            lw = sd[f"lin{i}.model.1.weight"]  # [1, C, 1, 1]
            params[f"lin{i}"] = {"kernel": jnp.asarray(lw.transpose(2, 3, 1, 0))}
    except KeyError as e:
        raise ValueError(f"{p} is not an LPIPS AlexNet v0.1 state dict: missing key {e}") from None
    return params


def lpips_params_to_torch(params) -> dict:
    """Inverse of `load_lpips_params` (used to write test fixtures in the PyTorch layout)."""
    sd = {}
    for i, (idx, *_rest) in enumerate(_ALEX):
        sd[f"net.slice{i + 1}.{idx}.weight"] = np.asarray(
            params[f"conv{i + 1}"]["kernel"]
        ).transpose(3, 2, 0, 1)
        sd[f"net.slice{i + 1}.{idx}.bias"] = np.asarray(params[f"conv{i + 1}"]["bias"])
        sd[f"lin{i}.model.1.weight"] = np.asarray(params[f"lin{i}"]["kernel"]).transpose(3, 2, 0, 1)
    return sd


@jax.jit
def lpips_distance(params, x, y):
    """LPIPS per frame. x, y: [..., H, W, C] in [0, 1] (gray repeated to RGB) -> [...]."""
    lead, (h, w, c) = x.shape[:-3], x.shape[-3:]
    prep = lambda a: jnp.broadcast_to(
        a.reshape((-1, h, w, c)) * 2.0 - 1.0, (a.size // (h * w * c), h, w, 3)
    )
    d = LPIPSAlex().apply({"params": params}, prep(x), prep(y))
    return d.reshape(lead)


# ----------------------------------------------------------------------------- I3D / FVD
def _tf_same_pool(x, kernel, strides, kind="max"):
    """TF 'SAME' pooling over [N, T, H, W, C] (max pads with -inf)."""
    if kind == "max":
        return nn.max_pool(x, kernel, strides=strides, padding="SAME")
    return nn.avg_pool(x, kernel, strides=strides, padding="VALID")


class Unit3D(nn.Module):
    features: int
    kernel: tuple = (1, 1, 1)
    stride: tuple = (1, 1, 1)
    use_bn: bool = True
    relu: bool = True

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(
            self.features,
            self.kernel,
            strides=self.stride,
            padding="SAME",
            use_bias=not self.use_bn,
            name="conv_3d",
        )(x)
        if self.use_bn:
            x = nn.BatchNorm(
                use_running_average=True, use_scale=False, epsilon=1e-3, name="batch_norm"
            )(x)
        return nn.relu(x) if self.relu else x


class _Mixed(nn.Module):
    widths: tuple  # (b0, (b1a, b1b), (b2a, b2b), b3)

    @nn.compact
    def __call__(self, x):
        b0, (b1a, b1b), (b2a, b2b), b3 = self.widths
        y0 = Unit3D(b0, name="Branch_0_Conv3d_0a_1x1")(x)
        y1 = Unit3D(b1a, name="Branch_1_Conv3d_0a_1x1")(x)
        y1 = Unit3D(b1b, (3, 3, 3), name="Branch_1_Conv3d_0b_3x3")(y1)
        y2 = Unit3D(b2a, name="Branch_2_Conv3d_0a_1x1")(x)
        y2 = Unit3D(b2b, (3, 3, 3), name="Branch_2_Conv3d_0b_3x3")(y2)
        y3 = _tf_same_pool(x, (3, 3, 3), (1, 1, 1))
        y3 = Unit3D(b3, name="Branch_3_Conv3d_0b_1x1")(y3)
        return jnp.concatenate([y0, y1, y2, y3], -1)


_MIXED = {
    "Mixed_3b": (64, (96, 128), (16, 32), 32),
    "Mixed_3c": (128, (128, 192), (32, 96), 64),
    "Mixed_4b": (192, (96, 208), (16, 48), 64),
    "Mixed_4c": (160, (112, 224), (24, 64), 64),
    "Mixed_4d": (128, (128, 256), (24, 64), 64),
    "Mixed_4e": (112, (144, 288), (32, 64), 64),
    "Mixed_4f": (256, (160, 320), (32, 128), 128),
    "Mixed_5b": (256, (160, 320), (32, 128), 128),
    "Mixed_5c": (384, (192, 384), (48, 128), 128),
}


class InceptionI3D(nn.Module):
    """Inflated Inception-v1 (Carreira & Zisserman 2017) up to the 400 Kinetics logits."""

    num_classes: int = 400

    @nn.compact
    def __call__(self, x):
        # x: [N, T, H, W, 3] in [-1, 1] -> logits [N, 400]
        x = Unit3D(64, (7, 7, 7), (2, 2, 2), name="Conv3d_1a_7x7")(x)
        x = _tf_same_pool(x, (1, 3, 3), (1, 2, 2))
        x = Unit3D(64, name="Conv3d_2b_1x1")(x)
        x = Unit3D(192, (3, 3, 3), name="Conv3d_2c_3x3")(x)
        x = _tf_same_pool(x, (1, 3, 3), (1, 2, 2))
        x = _Mixed(_MIXED["Mixed_3b"], name="Mixed_3b")(x)
        x = _Mixed(_MIXED["Mixed_3c"], name="Mixed_3c")(x)
        x = _tf_same_pool(x, (3, 3, 3), (2, 2, 2))
        for n in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            x = _Mixed(_MIXED[n], name=n)(x)
        x = _tf_same_pool(x, (2, 2, 2), (2, 2, 2))
        x = _Mixed(_MIXED["Mixed_5b"], name="Mixed_5b")(x)
        x = _Mixed(_MIXED["Mixed_5c"], name="Mixed_5c")(x)
        # Logits: AvgPool [2, 7, 7] VALID (whole map when smaller), 1×1×1 conv, mean over space-time
        window = tuple(min(w, s) for w, s in zip((2, 7, 7), x.shape[1:4]))
        x = _tf_same_pool(x, window, (1, 1, 1), kind="avg")
        x = Unit3D(self.num_classes, use_bn=False, relu=False, name="Logits_Conv3d_0c_1x1")(x)
        return x.mean(axis=(1, 2, 3))


_TF_LEAF = {
    "w": ("params", "kernel"),
    "b": ("params", "bias"),
    "beta": ("params", "bias"),
    "moving_mean": ("batch_stats", "mean"),
    "moving_variance": ("batch_stats", "var"),
}


def _flax_path(tf_key: str) -> tuple[str, list[str], str]:
    """'Mixed_3b/Branch_1/Conv3d_0b_3x3/conv_3d/w' -> ('params', [Mixed_3b,
    Branch_1_Conv3d_0b_3x3, conv_3d], 'kernel')."""
    parts = tf_key.removeprefix("RGB/inception_i3d/").split("/")
    coll, leaf = _TF_LEAF[parts[-1]]
    units = parts[:-2]
    if len(units) == 3 or units[0] == "Logits":  # Mixed_x/Branch_k/Conv..., Logits/Conv...
        units = units[:-2] + ["_".join(units[-2:])]
    return coll, units + [parts[-2]], leaf


def load_i3d_variables(path) -> dict:
    """Flax variables {'params', 'batch_stats'} of InceptionI3D from TF-named arrays (.npz)."""
    p = _require(path, "FVD", "eval.i3d_weights")
    ref = jax.eval_shape(InceptionI3D().init, jax.random.PRNGKey(0), jnp.zeros((1, 8, 32, 32, 3)))
    out = {"params": {}, "batch_stats": {}}
    for key, arr in np.load(p).items():
        if key.split("/")[-1] not in _TF_LEAF:
            continue
        coll, mods, leaf = _flax_path(key)
        d = out[coll]
        for m in mods:
            d = d.setdefault(m, {})
        d[leaf] = jnp.asarray(arr.reshape(arr.shape[-5:]) if leaf == "kernel" else arr.reshape(-1))
    shapes = lambda t: {
        jax.tree_util.keystr(k): tuple(v.shape)
        for k, v in jax.tree_util.tree_flatten_with_path(t)[0]
    }
    want, got = shapes(ref), shapes(out)
    missing = sorted(set(want) - set(got))
    if missing:
        raise ValueError(
            f"{p} is not an I3D RGB checkpoint: {len(missing)} variables missing, e.g. {missing[0]}"
        )
    bad = [k for k in want if want[k] != got[k]]
    if bad:
        raise ValueError(f"{p}: wrong shape for {bad[0]}: {got[bad[0]]} != {want[bad[0]]}")
    return out


def i3d_variables_to_tf(variables) -> dict:
    """Inverse of `load_i3d_variables` (TF names), used to write test fixtures."""
    out = {}
    for path, arr in jax.tree_util.tree_flatten_with_path(variables)[0]:
        keys = [k.key for k in path]
        coll, mods, leaf = keys[0], keys[1:-1], keys[-1]
        name = {
            ("params", "kernel"): "w",
            ("params", "bias"): "beta" if mods[-1] == "batch_norm" else "b",
            ("batch_stats", "mean"): "moving_mean",
            ("batch_stats", "var"): "moving_variance",
        }[(coll, leaf)]
        units = []
        for m in mods:
            if m.startswith("Branch_") or m.startswith("Logits_"):
                head, _, tail = m.partition("_Conv")
                units += [head, "Conv" + tail]
            else:
                units.append(m)
        out["RGB/inception_i3d/" + "/".join(units + [name])] = np.asarray(arr)
    return out


def _i3d_embeddings(variables, videos, resize_to):
    # videos: [N, T, H, W, C] in [0, 1] -> logits [N, 400]
    n, t, h, w, c = videos.shape
    v = jnp.broadcast_to(videos, (n, t, h, w, 3)) if c == 1 else videos
    v = jax.image.resize(v, (n, t, resize_to, resize_to, 3), method="bilinear")
    return InceptionI3D().apply(variables, v * 2.0 - 1.0)


i3d_embeddings = jax.jit(_i3d_embeddings, static_argnums=2)
i3d_embeddings.__doc__ = "I3D logits [N, 400] of videos [N, T, H, W, C] in [0, 1]."


def fvd(variables, real, fake, resize_to: int = 224, batch_size: int = 16) -> float:
    """Fréchet Video Distance between real and generated videos [N, T, H, W, C] in [0, 1]
    (conditioning + predicted frames)."""
    emb = lambda vids: np.concatenate(
        [
            np.asarray(i3d_embeddings(variables, jnp.asarray(vids[i : i + batch_size]), resize_to))
            for i in range(0, len(vids), batch_size)
        ]
    )
    return metrics.frechet_distance(emb(real), emb(fake))
