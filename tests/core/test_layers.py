"""generative.layers: Conv / ConvTranspose equal flax's layers (values, gradients, JVPs and
forward-over-reverse second derivatives in float64, every stride and padding form); on GPU and
TPU their lowered programs are flax's own; on CPU the compiled gradients hold neither an
input-dilated convolution nor a kernel-gradient convolution."""

import itertools
import math
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export

from generative import layers as _Ours
from generative.layers import Conv, ConvTranspose

PADDINGS = ["SAME", "VALID", 1, ((1, 2), (0, 3)), ((2, 1), (1, 1))]


def _compare(ref, ours, x, second=False):
    """Largest difference between flax's layer and ours: outputs, gradients w.r.t. parameters
    and input, a JVP and, with `second`, a JVP of the gradient (forward over reverse), in
    relative terms. Random (not initial) parameters, so that every tap matters; one compiled
    call per layer."""
    key = jax.random.PRNGKey(0)
    shapes = jax.eval_shape(ref.init, key, x)
    assert shapes == jax.eval_shape(ours.init, key, x)
    rng = np.random.default_rng(x.size)
    v = jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s.shape), s.dtype), shapes)
    out = jax.eval_shape(ref.apply, v, x)
    if math.prod(out.shape) == 0:
        return 0.0
    w = jnp.asarray(rng.normal(size=out.shape), out.dtype)
    tangent = jax.tree.map(lambda a: jnp.cos(3.0 * a), (v, x))

    def derivatives(m):
        loss = lambda v, x: (jnp.sin(m.apply(v, x)) * w).sum()  # noqa: E731
        grad = jax.grad(loss, argnums=(0, 1))
        return jax.jit(
            lambda v, x, t: (
                m.apply(v, x),
                grad(v, x),
                jax.jvp(loss, (v, x), t)[1],
                jax.jvp(grad, (v, x), t)[1] if second else (),
            )
        )(v, x, tangent)

    a, b = derivatives(ref), derivatives(ours)
    errs = [jnp.abs(a[0] - b[0]).max()] + [
        jnp.abs(p - q).max() / (1 + jnp.abs(p).max())
        for p, q in zip(jax.tree.leaves(a[1:]), jax.tree.leaves(b[1:]))
    ]
    return float(max(errs))


@pytest.mark.parametrize(
    "stride,phases", [(1, False), (2, False), (3, False), (2, True), (3, True)]
)
def test_conv_transpose_equals_flax(stride, phases, monkeypatch):
    """Every padding form; strided layers of few input channels in their mirrored form (the
    default for them) and, with `phases`, in the phases form of wider layers."""
    if phases:
        monkeypatch.setattr(_Ours, "MIRRORED_MAX_IN_CHANNELS", 0)
    with jax.enable_x64(True):
        worst = 0.0
        for k, pad, h in [(1, "SAME", 4), (3, "VALID", 1)] + [
            (k, p, 5) for k, p in itertools.product([2, 4], PADDINGS)
        ]:
            x = jax.random.normal(jax.random.PRNGKey(h), (2, h, h + 1, 3), jnp.float64)
            kw = dict(strides=(stride, stride), padding=pad, param_dtype=jnp.float64)
            worst = max(
                worst,
                _compare(nn.ConvTranspose(4, (k, k), **kw), ConvTranspose(4, (k, k), **kw), x),
            )
        assert worst < 1e-10


@pytest.mark.parametrize("stride,products", [(1, False), (1, True), (2, False), (3, False)])
def test_conv_equals_flax(stride, products, monkeypatch):
    """Every padding form; with `products`, stride-1 kernel gradients as per-tap products (the
    form of layers of more output channels)."""
    if products:
        monkeypatch.setattr(_Ours, "PRODUCTS_MIN_OUT_CHANNELS", 0)
    with jax.enable_x64(True):
        worst = 0.0
        for k, pad, h in [(1, "SAME", 4)] + [
            (k, p, 8) for k, p in itertools.product([3, 4], PADDINGS)
        ]:
            x = jax.random.normal(jax.random.PRNGKey(h), (2, h, h + 1, 3), jnp.float64)
            kw = dict(strides=stride, padding=pad, param_dtype=jnp.float64)
            worst = max(worst, _compare(nn.Conv(4, (k, k), **kw), Conv(4, (k, k), **kw), x))
        assert worst < 1e-10


SECOND_ORDER_CASES = [
    (lambda m: m.Conv(4, (3, 3), 1, "SAME"), (2, 7, 6, 3)),
    (lambda m: m.Conv(4, (4, 4), 2, ((1, 2), (0, 1))), (2, 9, 8, 3)),
    # >= STRIDED_PRODUCTS_MIN_POSITIONS output positions: the kernel gradient as products
    (lambda m: m.Conv(4, (4, 4), 2, ((1, 1), (1, 1))), (2, 32, 34, 3)),
    (lambda m: m.Conv(16, (3, 3), 2, "SAME"), (2, 7, 6, 1)),  # im2col
    (lambda m: m.Conv(4, (4, 4), 1, "VALID"), (2, 4, 4, 5)),  # patches
    (lambda m: m.ConvTranspose(4, (4, 4), (2, 2)), (2, 5, 4, 3)),  # mirrored
    (lambda m: m.ConvTranspose(4, (3, 3), (3, 3), ((1, 2), (2, 0))), (2, 4, 5, 3)),  # mirrored
    (lambda m: m.ConvTranspose(1, (4, 4), (2, 2)), (2, 5, 5, 17)),  # tap scatter
    (lambda m: m.ConvTranspose(4, (4, 4), (1, 1), "VALID"), (2, 1, 1, 5)),  # blocks
]


@pytest.mark.parametrize(
    "case,phases",
    [(i, False) for i in range(len(SECOND_ORDER_CASES))] + [(0, True), (5, True), (6, True)],
)
def test_second_derivatives_equal_flax(case, phases, monkeypatch):
    """Forward over reverse (a JVP of the gradient, as in jax.hessian) through every form
    (`phases`: the strided transposed convolutions in the form of wider layers, the stride-1
    convolution's kernel gradient as per-tap products)."""
    if phases:
        monkeypatch.setattr(_Ours, "MIRRORED_MAX_IN_CHANNELS", 0)
        monkeypatch.setattr(_Ours, "PRODUCTS_MIN_OUT_CHANNELS", 0)
    make, shape = SECOND_ORDER_CASES[case]
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.PRNGKey(case), shape, jnp.float64)
        ref, ours = make(nn), make(_Ours)
        ref, ours = ref.copy(param_dtype=jnp.float64), ours.copy(param_dtype=jnp.float64)
        assert _compare(ref, ours, x, second=True) < 1e-10


def test_3d_layers_equal_flax():
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 5, 7, 3), jnp.float64)
        kw = dict(strides=(2, 1, 2), padding="SAME", param_dtype=jnp.float64)
        assert _compare(nn.Conv(4, (3, 2, 3), **kw), Conv(4, (3, 2, 3), **kw), x) < 1e-10
        assert (
            _compare(nn.ConvTranspose(4, (3, 2, 4), **kw), ConvTranspose(4, (3, 2, 4), **kw), x)
            < 1e-10
        )


def _stablehlo(module, x, platform):
    """The value-and-gradient program of `module` on x lowered for `platform`, without source
    locations, constants written out where they are used (their order depends on tracing)."""
    v = module.init(jax.random.PRNGKey(0), x)
    loss = lambda v, x: jnp.sum(module.apply(v, x) ** 2)
    fn = jax.jit(jax.value_and_grad(loss, (0, 1)))
    text = export.export(fn, platforms=[platform])(v, x).mlir_module()
    lines = [ln for ln in text.splitlines() if not ln.startswith("#loc")]
    text = re.sub(r"\s*loc\([^()]*(\([^()]*\)[^()]*)*\)", "", "\n".join(lines))
    consts, body = {}, []
    for line in text.splitlines():
        m = re.match(r"\s*(%cst(?:_\d+)?) = stablehlo.constant (.*)$", line)
        if m:
            consts[m.group(1)] = f"constant<{m.group(2)}>"
        else:
            body.append(line)
    return re.sub(r"%cst(?:_\d+)?\b", lambda m: consts[m.group(0)], "\n".join(body))


LOWERING_CASES = [
    (lambda m: m.Conv(5, (3, 3)), (2, 8, 8, 3)),
    (lambda m: m.Conv(6, (4, 4), 2, padding=((1, 0), (2, 1))), (2, 9, 8, 3)),
    (lambda m: m.Conv(16, (3, 3), 2), (2, 8, 8, 1)),  # im2col form on CPU
    (lambda m: m.Conv(4, (4, 4), padding="VALID"), (2, 4, 4, 8)),  # patches form on CPU
    (lambda m: m.ConvTranspose(5, (4, 4), (2, 2)), (2, 6, 6, 3)),
    (lambda m: m.ConvTranspose(5, (4, 4), (2, 2), padding=((1, 2), (2, 1))), (2, 6, 5, 3)),
    (lambda m: m.ConvTranspose(1, (4, 4), (2, 2)), (2, 6, 6, 32)),  # tap form on CPU
    (lambda m: m.ConvTranspose(7, (4, 4), padding="VALID"), (2, 1, 1, 9)),  # blocks on CPU
    (lambda m: m.Conv(5, (3,), 2), (3, 2, 9, 4)),  # 1-D, two batch axes
]


@pytest.mark.parametrize("platform", ["cuda", "tpu"])
@pytest.mark.parametrize("case", range(len(LOWERING_CASES)))
def test_off_cpu_the_program_is_flax_s_own(case, platform):
    """Lowered for GPU or TPU, a layer's value-and-gradient program is the one of flax's own
    module of the same shape: the CPU forms are not in it."""
    make, shape = LOWERING_CASES[case]
    x = jnp.ones(shape, jnp.float32)
    assert _stablehlo(make(_Ours), x, platform) == _stablehlo(make(nn), x, platform)


def test_im2col_form_equals_flax_and_is_flax_off_cpu():
    """`Conv(im2col=True)`: the same function as flax's layer to second order (strided,
    float64), and stride 1 vmapped over per-member kernels (the use it is for); off CPU the program is
    flax's own."""
    with jax.enable_x64(True):
        kw = dict(strides=2, padding="SAME", param_dtype=jnp.float64)
        x = jax.random.normal(jax.random.PRNGKey(1), (2, 7, 6, 3), jnp.float64)
        ours = Conv(4, (3, 3), im2col=True, **kw)
        assert _compare(nn.Conv(4, (3, 3), **kw), ours, x, second=True) < 1e-10
        key = jax.random.PRNGKey(0)
        x = jax.random.normal(key, (3, 2, 6, 6, 3), jnp.float64)  # [members, N, H, W, C]
        ref, ours = nn.Conv(4, (3, 3), param_dtype=jnp.float64), Conv(4, (3, 3), im2col=True)
        v = jax.vmap(lambda k: ref.init(k, x[0]))(jax.random.split(key, 3))

        def loss(m, v):
            return jnp.sum(jnp.sin(jax.vmap(m.apply)(v, x)))

        a, b = jax.grad(lambda v: loss(ref, v))(v), jax.grad(lambda v: loss(ours, v))(v)
        for p, q in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            np.testing.assert_allclose(q, p, rtol=1e-10, atol=1e-12)
    x = jnp.ones((2, 8, 8, 3), jnp.float32)
    assert _stablehlo(Conv(5, (3, 3), im2col=True), x, "cuda") == _stablehlo(
        nn.Conv(5, (3, 3)), x, "cuda"
    )


def _cpu_convolutions(module, x):
    """The convolutions of the value-and-gradient program lowered for CPU."""
    return [ln for ln in _stablehlo(module, x, "cpu").splitlines() if "stablehlo.convolution" in ln]


@pytest.mark.parametrize(
    "make,shape,count,xla_kernel_grads",
    [
        (lambda: Conv(33, (3, 3)), (2, 8, 8, 4), 2, 0),  # forward, input gradient
        # few output channels (< PRODUCTS_MIN_OUT_CHANNELS): XLA's kernel gradient
        (lambda: Conv(32, (3, 3)), (2, 8, 8, 4), 3, 1),
        (lambda: Conv(8, (4, 4), 2, padding=1), (2, 32, 32, 4), 2, 0),
        # few output positions (< STRIDED_PRODUCTS_MIN_POSITIONS): XLA's kernel gradient
        (lambda: Conv(8, (4, 4), 2, padding=1), (2, 8, 8, 4), 3, 1),
        # mirrored (<= MIRRORED_MAX_IN_CHANNELS inputs): 4 phases, the strided convolution
        # as input gradient, XLA's kernel gradient of it
        (lambda: ConvTranspose(8, (4, 4), (2, 2)), (2, 6, 6, 4), 6, 1),
        (lambda: ConvTranspose(16, (4, 4), (2, 2)), (1, 3, 3, 130), 8, 0),  # 4 phases each way
        (lambda: ConvTranspose(8, (3, 3), (1, 1)), (2, 6, 6, 4), 2, 0),
    ],
)
def test_cpu_gradients_hold_no_dilated_convolution(make, shape, count, xla_kernel_grads):
    """On CPU a layer's gradient program holds no input-dilated convolution; its other
    convolutions are NHWC ones (forward and input gradient), kernel gradients are matrix
    products except where XLA's own is the faster."""
    convs = _cpu_convolutions(make(), jnp.ones(shape, jnp.float32))
    assert len(convs) == count
    assert not any("lhs_dilate" in line for line in convs)
    nhwc = [line for line in convs if "dim_numbers = [b, 0, 1, f]x" in line]
    assert len(convs) - len(nhwc) == xla_kernel_grads


@pytest.mark.parametrize(
    "make,shape,count",
    [
        (lambda: Conv(40, (3, 3)), (2, 8, 8, 8), 3),
        (lambda: Conv(8, (4, 4), 2, padding=1), (2, 32, 32, 4), 3),
        # mirrored under the context, however many channels: 4 phases, the strided
        # convolution as input gradient, XLA's kernel gradient of it
        (lambda: ConvTranspose(16, (4, 4), (2, 2)), (1, 3, 3, 130), 6),
    ],
)
def test_xla_kernel_gradients_context_takes_xla_s_kernel_gradient_everywhere(make, shape, count):
    """Under `xla_kernel_gradients`, every kernel gradient is XLA's convolution with batch and
    features swapped (one per layer, per phase for the phases form), none a product."""
    with _Ours.xla_kernel_gradients():
        convs = _cpu_convolutions(make(), jnp.ones(shape, jnp.float32))
    nhwc = [line for line in convs if "dim_numbers = [b, 0, 1, f]x" in line]
    assert len(convs) == count
    assert len(convs) - len(nhwc) == 1
    assert not any("lhs_dilate" in line for line in convs)


@pytest.mark.parametrize("case", [0, 2, 5])
def test_xla_kernel_gradients_equal_flax_to_second_order(case):
    """The same functions as flax's layers under `xla_kernel_gradients`."""
    make, shape = SECOND_ORDER_CASES[case]
    with jax.enable_x64(True), _Ours.xla_kernel_gradients():
        x = jax.random.normal(jax.random.PRNGKey(case), shape, jnp.float64)
        ref, ours = make(nn), make(_Ours)
        ref, ours = ref.copy(param_dtype=jnp.float64), ours.copy(param_dtype=jnp.float64)
        assert _compare(ref, ours, x, second=True) < 1e-10


def test_transposed_convolution_input_gradient_covers_the_input_only():
    """A strided transposed convolution's phases pad through the convolution itself, so
    their input gradients are convolutions with x's spatial shape, not with that of x padded
    (7×7 for this 6×6 input: 36 % more work)."""
    x = jnp.ones((2, 6, 6, 130), jnp.float32)  # > MIRRORED_MAX_IN_CHANNELS: phases
    convs = _cpu_convolutions(ConvTranspose(16, (4, 4), (2, 2)), x)
    outputs = [line.rsplit("-> tensor<", 1)[1].split("xf32>")[0] for line in convs]
    assert outputs.count("2x6x6x16") == 4  # the four phases
    assert outputs.count("2x6x6x130") == 4, outputs  # their input gradients


def test_bad_inputs_are_clear_errors():
    x = jnp.ones((2, 8, 8, 3))
    with pytest.raises(ValueError, match="unknown padding 'FULL'; valid choices"):
        Conv(4, (3, 3), padding="FULL").init(jax.random.PRNGKey(0), x)
    with pytest.raises(ValueError, match="needs inputs .* got shape \\(8, 8\\)"):
        ConvTranspose(4, (3, 3)).init(jax.random.PRNGKey(0), x[0, :, :, 0])


@pytest.mark.parametrize("stride", [1, 2])
def test_few_channel_paths_equal_flax(stride):
    """taps · C_in <= C_out (Conv) and taps · C_out <= C_in (ConvTranspose) take the
    space-to-depth matrix-product paths on CPU: no convolution in the program, same answers."""
    with jax.enable_x64(True):
        worst = 0.0
        for k, pad in [(1, "SAME"), (3, "VALID"), (2, 1), (4, ((1, 2), (0, 3))), (4, "SAME")]:
            kw = dict(strides=(stride, stride), padding=pad, param_dtype=jnp.float64)
            x = jax.random.normal(jax.random.PRNGKey(k), (2, 7, 8, 1), jnp.float64)
            ours = Conv(16, (k, k), **kw)
            worst = max(worst, _compare(nn.Conv(16, (k, k), **kw), ours, x))
            x = jax.random.normal(jax.random.PRNGKey(k), (2, 5, 6, 17), jnp.float64)
            ours_t = ConvTranspose(1, (k, k), **kw)
            worst = max(worst, _compare(nn.ConvTranspose(1, (k, k), **kw), ours_t, x))
            for m, xx in ((ours, x[..., :1]), (ours_t, x)):
                assert _cpu_convolutions(m, xx) == []
        assert worst < 1e-10


def test_dense_like_layers_take_matrix_product_paths():
    """A decoder's first layer (1×1 -> 4×4 VALID transposed convolution), an encoder's last
    (4×4 -> 1×1 VALID convolution) and a non-overlapping patch convolution (kernel = stride)
    are single matrix products: no convolution over padding, in values or gradients."""
    with jax.enable_x64(True):
        f64 = dict(param_dtype=jnp.float64)
        t, c = (nn.ConvTranspose, ConvTranspose), (nn.Conv, Conv)
        cases = [
            (*t, (3, 1, 1, 9), dict(kernel_size=(4, 4), padding="VALID")),
            (*t, (3, 1, 1, 9), dict(kernel_size=(4, 4), padding=((1, 2), (3, 0)))),
            (*t, (3, 3, 4, 9), dict(kernel_size=(2, 3), strides=(2, 3), padding="SAME")),
            (*t, (3, 3, 1, 9), dict(kernel_size=(2, 4), strides=(3, 1), padding=((1, 2), (0, 1)))),
            (*c, (3, 4, 4, 9), dict(kernel_size=(4, 4), padding="VALID")),
            (*c, (3, 8, 6, 5), dict(kernel_size=(2, 2), strides=2, padding="VALID")),
            (*c, (3, 7, 6, 5), dict(kernel_size=(2, 3), strides=(3, 3), padding="SAME")),
            (*c, (3, 5, 3, 5), dict(kernel_size=(2, 4), strides=(3, 1), padding=((1, 0), (0, 1)))),
        ]
        for ref, cls, shape, kw in cases:
            x = jax.random.normal(jax.random.PRNGKey(len(shape)), shape, jnp.float64)
            ours = cls(7, **kw, **f64)
            assert _compare(ref(7, **kw, **f64), ours, x) < 1e-10
            assert _cpu_convolutions(ours, x) == [], (cls.__name__, shape, kw)


def test_conv_layers_accept_extra_batch_axes_and_1d():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 8, 8, 2))
    for ours in (Conv(5, (3, 3), 2), ConvTranspose(5, (4, 4), (2, 2))):
        v = ours.init(jax.random.PRNGKey(1), x)
        flat = ours.apply(v, x.reshape(6, 8, 8, 2))
        np.testing.assert_allclose(ours.apply(v, x).reshape(flat.shape), flat, rtol=1e-6)
    x1 = jax.random.normal(jax.random.PRNGKey(0), (2, 9, 3))
    with jax.enable_x64(True):
        x1 = x1.astype(jnp.float64)
        kw = dict(strides=2, padding="SAME", param_dtype=jnp.float64)
        assert _compare(nn.ConvTranspose(4, (3,), **kw), ConvTranspose(4, (3,), **kw), x1) < 1e-10
        assert _compare(nn.Conv(4, (3,), **kw), Conv(4, (3,), **kw), x1) < 1e-10
        # the few-channel paths in 1-D
        assert _compare(nn.Conv(4, (3,), **kw), Conv(4, (3,), **kw), x1[..., :1]) < 1e-10
        x17 = jnp.tile(x1, (1, 1, 6))
        assert _compare(nn.ConvTranspose(1, (3,), **kw), ConvTranspose(1, (3,), **kw), x17) < 1e-10


@pytest.mark.parametrize(
    "layer",
    [
        lambda: Conv(5, (3, 3), 1, ((1, 1), (1, 1))),
        lambda: Conv(5, (4, 4), 2, ((1, 1), (1, 1))),
        lambda: ConvTranspose(5, (4, 4), (2, 2)),
        lambda: ConvTranspose(1, (4, 4), (2, 2)),  # the few-output-channel (tap) path
    ],
)
def test_shared_input_channels_equal_the_concatenation(layer):
    """layer(x, shared) == layer(concat([x, shared repeated over each group's rows])): same
    kernel, values and gradients to 1e-10 (float64); the shared part is computed per group."""
    with jax.enable_x64(True):
        ks = jax.random.split(jax.random.PRNGKey(0), 3)
        x = jax.random.normal(ks[0], (3, 4, 8, 8, 6), jnp.float64)  # 3 groups of 4 rows
        shared = jax.random.normal(ks[1], (3, 8, 8, 20), jnp.float64)
        full = jnp.concatenate([x, jnp.broadcast_to(shared[:, None], (3, 4, 8, 8, 20))], -1)
        m = layer().copy(param_dtype=jnp.float64)
        v = m.init(jax.random.PRNGKey(1), x, shared)
        assert jax.tree.map(jnp.shape, v) == jax.tree.map(jnp.shape, m.init(ks[2], full))
        v = jax.tree.map(lambda a: jax.random.normal(ks[2], a.shape, a.dtype), v)
        w = jax.random.normal(ks[2], m.apply(v, full).shape, jnp.float64)
        loss_split = lambda v, x, s: (jnp.sin(m.apply(v, x, s)) * w).sum()
        loss_full = lambda v, x, s: (
            jnp.sin(
                m.apply(
                    v,
                    jnp.concatenate([x, jnp.broadcast_to(s[:, None], full.shape[:-1] + (20,))], -1),
                )
            )
            * w
        ).sum()
        np.testing.assert_allclose(m.apply(v, x, shared), m.apply(v, full), atol=1e-10)
        g_split = jax.grad(loss_split, argnums=(0, 1, 2))(v, x, shared)
        g_full = jax.grad(loss_full, argnums=(0, 1, 2))(v, x, shared)
        for a, b in zip(jax.tree.leaves(g_split), jax.tree.leaves(g_full)):
            np.testing.assert_allclose(a, b, atol=1e-9)
        with pytest.raises(ValueError, match="shared input"):
            m.apply(v, x, jnp.concatenate([shared, shared[:2]]))  # 12 rows, 5 groups
        with pytest.raises(ValueError, match="shared input"):
            m.apply(v, x, shared[:, :4])


GROUP_NORM_CASES = [
    (dict(num_groups=4), (3, 5, 4, 8)),
    (dict(num_groups=None, group_size=2), (2, 6, 16)),
    (dict(num_groups=3), (2, 3, 4, 5, 6)),
    (dict(num_groups=2, use_fast_variance=False), (3, 5, 4, 8)),
    (dict(num_groups=2, use_scale=False, epsilon=1e-3), (3, 5, 4, 8)),
    (dict(num_groups=8, use_bias=False), (3, 5, 4, 8)),  # one channel per group
    (dict(num_groups=2), (4, 6)),  # no spatial axes
]


@pytest.mark.parametrize("case", range(len(GROUP_NORM_CASES)))
def test_group_norm_equals_flax(case):
    """Values, gradients, a JVP and forward-over-reverse second derivatives (float64), inputs
    shifted off zero so that the mean matters."""
    kw, shape = GROUP_NORM_CASES[case]
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.PRNGKey(case), shape, jnp.float64) * 2.0 + 0.7
        ref = nn.GroupNorm(param_dtype=jnp.float64, **kw)
        ours = _Ours.GroupNorm(param_dtype=jnp.float64, **kw)
        assert _compare(ref, ours, x, second=True) < 1e-10


def test_group_norm_cpu_statistics_sum_spatial_axes_first():
    """On CPU the statistics are reductions over the spatial axes of [N, H, W, C] (channels
    kept, minor), then over each group's channels; flax's reduce over (H, W, channels of a
    group) of [N, H, W, G, C/G] is not in the program. Off CPU the program is flax's own."""
    x = jnp.ones((2, 6, 6, 8), jnp.float32)
    cpu = _stablehlo(_Ours.GroupNorm(num_groups=4), x, "cpu")
    reduces = re.findall(
        r"stablehlo.reduce\(.*?applies stablehlo.add across dimensions = \[([\d, ]+)\]", cpu
    )
    assert "1, 2" in reduces and "2" in reduces, reduces
    assert "1, 2, 4" not in reduces
    flax_cpu = _stablehlo(nn.GroupNorm(num_groups=4), x, "cpu")
    assert "1, 2, 4" in re.findall(r"across dimensions = \[([\d, ]+)\]", flax_cpu)
    for platform in ("cuda", "tpu"):
        ours = _stablehlo(_Ours.GroupNorm(num_groups=4), x, platform)
        assert ours == _stablehlo(nn.GroupNorm(num_groups=4), x, platform)


def test_group_norm_options_flax_computes_and_bad_groups():
    """A mask or explicit reduction axes: flax's computation with our parameters (same names
    and values); groups that do not divide the channels stop with one line."""
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 4, 6)) + 0.3
    mask = jnp.arange(16).reshape(1, 4, 4, 1) % 3 > 0
    for kw, call in [
        (dict(num_groups=3), dict(mask=jnp.broadcast_to(mask, x.shape))),
        (dict(num_groups=2, reduction_axes=(2, 3)), {}),
    ]:
        v = nn.GroupNorm(**kw).init(jax.random.PRNGKey(1), x)
        v = jax.tree.map(lambda a: a + jnp.arange(a.size, dtype=a.dtype).reshape(a.shape), v)
        ours = _Ours.GroupNorm(**kw).apply(v, x, **call)
        np.testing.assert_allclose(ours, nn.GroupNorm(**kw).apply(v, x, **call), rtol=1e-6)
    with pytest.raises(ValueError, match="num_groups 4 does not divide the 6 channels"):
        _Ours.GroupNorm(num_groups=4).init(jax.random.PRNGKey(0), x)
    with pytest.raises(ValueError, match="exactly one of num_groups and group_size"):
        _Ours.GroupNorm(num_groups=2, group_size=3).init(jax.random.PRNGKey(0), x)


def test_mirrored_form_rule():
    """Strided transposed convolutions of <= 64 input channels, or <= 128 on fewer than
    STRIDED_PRODUCTS_MIN_POSITIONS input positions, take the mirrored derivatives."""
    rule = _Ours._mirrored
    assert rule((64, 8, 8, 64), (4, 4, 64, 32), (2, 2))
    assert rule((64, 16, 16, 64), (4, 4, 64, 32), (2, 2))
    assert rule((64, 4, 4, 128), (4, 4, 128, 64), (2, 2))
    assert not rule((256, 16, 16, 128), (4, 4, 128, 64), (2, 2))  # 256 positions
    assert not rule((64, 4, 4, 256), (4, 4, 256, 128), (2, 2))
    assert not rule((64, 8, 8, 64), (3, 3, 64, 32), (1, 1))  # stride 1: one phase anyway
