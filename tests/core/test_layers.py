"""generative.layers: the fast Conv / ConvTranspose / BatchNorm equal flax's, values and
gradients (float64, every stride/padding form), and BatchNorm's statistics bookkeeping."""

import functools
import itertools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.experimental import enable_x64

from generative import blas
from generative.layers import (
    KERNEL_GRADS,
    BatchNorm,
    Conv,
    ConvTranspose,
    GroupNorm,
    batch_norm,
    bias_add,
    valid_conv_kernel_grad,
)

PADDINGS = ["SAME", "VALID", 1, ((1, 2), (0, 3)), ((2, 1), (1, 1))]


def _compare(ref, ours, x):
    key = jax.random.PRNGKey(0)
    v = ref.init(key, x)
    assert jax.tree.map(jnp.shape, v) == jax.tree.map(jnp.shape, ours.init(key, x))
    # random (not initial) parameters so that every tap matters
    v = jax.tree.map(lambda a: jax.random.normal(jax.random.PRNGKey(a.size), a.shape, a.dtype), v)
    a, b = ref.apply(v, x), ours.apply(v, x)
    assert a.shape == b.shape
    if a.size == 0:
        return 0.0
    w = jax.random.normal(jax.random.PRNGKey(1), a.shape, a.dtype)
    loss = lambda m: lambda v, x: (jnp.sin(m.apply(v, x)) * w).sum()
    ga = jax.grad(loss(ref), argnums=(0, 1))(v, x)
    gb = jax.grad(loss(ours), argnums=(0, 1))(v, x)
    errs = [jnp.abs(a - b).max()] + [
        jnp.abs(p - q).max() / (1 + jnp.abs(p).max())
        for p, q in zip(jax.tree.leaves(ga), jax.tree.leaves(gb))
    ]
    return float(max(errs))


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_conv_transpose_equals_flax(stride):
    with enable_x64():
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


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_conv_equals_flax(stride):
    with enable_x64():
        worst = 0.0
        for k, pad, h in [(1, "SAME", 4)] + [
            (k, p, 8) for k, p in itertools.product([3, 4], PADDINGS)
        ]:
            x = jax.random.normal(jax.random.PRNGKey(h), (2, h, h + 1, 3), jnp.float64)
            kw = dict(strides=stride, padding=pad, param_dtype=jnp.float64)
            for grad in KERNEL_GRADS:  # XLA's kernel gradient and the per-tap products
                ours = Conv(4, (k, k), kernel_grad=grad, **kw)
                worst = max(worst, _compare(nn.Conv(4, (k, k), **kw), ours, x))
        assert worst < 1e-10


def test_unknown_kernel_grad_is_a_clear_error():
    x = jnp.ones((1, 5, 5, 2))
    with pytest.raises(ValueError, match=r"unknown kernel_grad 'fast'.*\['auto', 'xla', 'taps'\]"):
        Conv(3, (3, 3), kernel_grad="fast").init(jax.random.PRNGKey(0), x)


def _count_convs(fn, *args):
    jaxpr = jax.make_jaxpr(fn)(*args)
    text = str(jaxpr)
    return text.count("conv_general_dilated[")


def test_layers_inside_loops_take_no_convolution_kernel_gradient():
    """Inside loops XLA:CPU's convolution kernel gradient is ~70× slower than at top level:
    with kernel_grad="taps" the gradient of a convolution holds no kernel-gradient
    convolution (those are matrix products), in a scan too, and the physics layers evaluated
    inside loops (ODE vector fields, APHYNITY's F_a) use it. Per convolution the custom VJP's
    jaxpr holds the forward, the backward's own forward (unused, removed by XLA) and the input
    gradient, plus XLA's kernel gradient with "xla"."""
    from physics.aphynity import ConvAugmentation
    from physics.model import ConvVectorField

    x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 6, 3))
    counts = {}
    for grad in KERNEL_GRADS:
        m = Conv(3, (3, 3), kernel_grad=grad)
        p = m.init(jax.random.PRNGKey(1), x)

        def rolled(p, m=m):
            body = lambda h, _: (h + jnp.tanh(m.apply(p, h)), None)  # noqa: E731
            return jnp.sum(jax.lax.scan(body, x, None, length=3)[0] ** 2)

        counts[grad] = _count_convs(jax.grad(rolled), p)
    assert counts == {"auto": 4, "xla": 4, "taps": 3}  # "auto" at stride 1 is XLA's
    for module, inp in (
        (ConvVectorField(8), jnp.ones((2, 6, 6, 3))),
        (ConvAugmentation(4), jnp.ones((2, 2, 6, 6))),
    ):
        p = module.init(jax.random.PRNGKey(0), inp)
        loss = lambda p, module=module, inp=inp: jnp.sum(module.apply(p, inp) ** 2)  # noqa: E731
        forward = _count_convs(module.apply, p, inp)
        assert forward == 3 and _count_convs(jax.grad(loss), p) == 3 * forward, module


def test_auto_kernel_grad_is_chosen_per_platform():
    """kernel_grad="auto" (the default): a strided convolution's kernel gradient is the
    block-shift products on CPU and XLA's convolution elsewhere, one branch per platform
    (`lax.platform_dependent`) of which lowering for CPU compiles only the products; at
    stride 1 it is XLA's on every platform (no branch)."""
    assert Conv.kernel_grad == "auto"
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))

    def grad_fn(stride, kernel_grad):
        m = Conv(4, (4, 4), stride, padding=1, kernel_grad=kernel_grad)
        p = m.init(jax.random.PRNGKey(1), x)
        return jax.grad(lambda p: jnp.sum(m.apply(p, x) ** 2)), p

    def branches(jaxpr):
        return [
            [e.primitive.name for e in b.jaxpr.eqns]
            for eqn in jaxpr.eqns
            if eqn.primitive.name == "cond"
            for b in eqn.params["branches"]
        ]

    fn, p = grad_fn(2, "auto")
    with blas.backend("xla"):  # the products in XLA (GPU/TPU hosts, or no MKL)
        jaxpr = jax.make_jaxpr(fn)(p)
    index = [e for e in jaxpr.eqns if e.primitive.name == "platform_index"]
    assert len(index) == 1 and index[0].params["platforms"] == (("cpu",),)
    cpu, default = branches(jaxpr)  # platform index 0: cpu; 1: the default
    assert "conv_general_dilated" not in cpu and cpu.count("dot_general") == 4  # 2×2 shifts
    # XLA's kernel gradient, and the VJP's own forward (unused, removed by XLA)
    assert default.count("conv_general_dilated") == 2 and "dot_general" not in default
    if blas.ready():  # float32 on CPU: one MKL call (`generative.blas`), no product in XLA
        fn, p = grad_fn(2, "auto")  # a new function: traces are cached per function
        cpu, _ = branches(jax.make_jaxpr(fn)(p))
        assert "dot_general" not in cpu and "conv_general_dilated" not in cpu
        assert "generative_blas_shifted_products" in jax.jit(fn).lower(p).as_text()
        with enable_x64():  # other dtypes: XLA's products
            p64 = jax.tree.map(lambda a: a.astype(jnp.float64), p)
            x64 = x.astype(jnp.float64)
            m = Conv(4, (4, 4), 2, padding=1, param_dtype=jnp.float64)
            fn64 = jax.grad(lambda p: jnp.sum(m.apply(p, x64) ** 2))
            assert "generative_blas" not in jax.jit(fn64).lower(p64).as_text()

    def compiled_convs(fn, p):
        return jax.jit(fn).lower(p).compile().as_text().count(" convolution(")

    counts = {kg: compiled_convs(*grad_fn(2, kg)) for kg in KERNEL_GRADS}
    assert counts["auto"] == counts["taps"] == counts["xla"] - 1  # forward only, on CPU
    fn, p = grad_fn(2, "auto")
    for kg in ("xla", "taps"):
        other, _ = grad_fn(2, kg)
        np.testing.assert_allclose(
            jax.jit(fn)(p)["params"]["kernel"],
            jax.jit(other)(p)["params"]["kernel"],
            rtol=1e-5,
            atol=1e-5,
        )
    fn, p = grad_fn(1, "auto")
    assert not branches(jax.make_jaxpr(fn)(p))
    assert compiled_convs(fn, p) == compiled_convs(*grad_fn(1, "xla"))


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_few_channel_paths_equal_flax(stride):
    """taps · C_in <= C_out (Conv) and taps · C_out <= C_in (ConvTranspose) take the
    space-to-depth matrix-product paths: no convolution in the program, same answers."""
    with enable_x64():
        worst = 0.0
        for k, pad in [(1, "SAME"), (3, "VALID")] + list(itertools.product([2, 4], PADDINGS)):
            kw = dict(strides=(stride, stride), padding=pad, param_dtype=jnp.float64)
            x = jax.random.normal(jax.random.PRNGKey(k), (2, 7, 8, 1), jnp.float64)
            ours = Conv(16, (k, k), **kw)
            worst = max(worst, _compare(nn.Conv(16, (k, k), **kw), ours, x))
            x = jax.random.normal(jax.random.PRNGKey(k), (2, 5, 6, 17), jnp.float64)
            ours_t = ConvTranspose(1, (k, k), **kw)
            worst = max(worst, _compare(nn.ConvTranspose(1, (k, k), **kw), ours_t, x))
            for m, xx in ((ours, x[..., :1]), (ours_t, x)):
                v = m.init(jax.random.PRNGKey(0), xx)
                jaxpr = str(jax.make_jaxpr(jax.grad(lambda v, m=m, xx=xx: m.apply(v, xx).sum()))(v))
                assert "conv_general_dilated" not in jaxpr
        assert worst < 1e-10


def test_dense_like_layers_take_matrix_product_paths():
    """A decoder's first layer (1×1 -> 4×4 VALID transposed convolution), an encoder's last
    (4×4 -> 1×1 VALID convolution) and a non-overlapping patch convolution (kernel = stride)
    are single matrix products: no convolution over padding, in values or gradients."""
    with enable_x64():
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
            v = ours.init(jax.random.PRNGKey(0), x)
            jaxpr = str(
                jax.make_jaxpr(jax.grad(lambda v, x, m=ours: (m.apply(v, x) ** 2).sum(), (0, 1)))(
                    v, x
                )
            )
            assert "conv_general_dilated" not in jaxpr, (cls.__name__, shape, kw)


def test_conv_layers_accept_extra_batch_axes_and_1d():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 8, 8, 2))
    for ours in (Conv(5, (3, 3), 2), ConvTranspose(5, (4, 4), (2, 2))):
        v = ours.init(jax.random.PRNGKey(1), x)
        flat = ours.apply(v, x.reshape(6, 8, 8, 2))
        np.testing.assert_allclose(ours.apply(v, x).reshape(flat.shape), flat, rtol=1e-6)
    x1 = jax.random.normal(jax.random.PRNGKey(0), (2, 9, 3))
    with enable_x64():
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
    with enable_x64():
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


KGRAD_CASES = [  # (inp spatial shape, window, strides)
    ((34, 34), (4, 4), (2, 2)),  # a DCGAN decoder layer's padded cotangent
    ((35, 33), (4, 4), (2, 2)),  # positions past the last window (cropped)
    ((17,), (3,), (3,)),  # window = stride
    ((16, 12), (2, 3), (3, 2)),  # window < stride on one axis
    ((9, 8, 7), (3, 2, 3), (2, 2, 2)),  # 3-D
    ((10, 9), (3, 3), (1, 1)),  # stride 1: one product per tap
]


@pytest.mark.parametrize("spatial,window,strides", KGRAD_CASES)
def test_valid_conv_kernel_grad_equals_xla(spatial, window, strides):
    """dW of the VALID strided convolution, against JAX's own VJP, in float64; strided cases
    take one product per block shift (space-to-depth), not one per tap."""
    with enable_x64():
        nd = len(window)
        inp = jax.random.normal(jax.random.PRNGKey(0), (3, *spatial, 5), jnp.float64)
        w = jnp.zeros((*window, 5, 4), jnp.float64)
        spec = "HWD"[:nd]
        dn = ("N" + spec + "C", spec + "IO", "N" + spec + "C")
        conv = lambda w: lax.conv_general_dilated(inp, w, strides, "VALID", dimension_numbers=dn)  # noqa: E731
        out, vjp = jax.vjp(conv, w)
        g = jax.random.normal(jax.random.PRNGKey(1), out.shape, jnp.float64)
        ours = valid_conv_kernel_grad(inp, g, window, strides)
        np.testing.assert_allclose(ours, vjp(g)[0], rtol=1e-12, atol=1e-12)
        jaxpr = jax.make_jaxpr(lambda i, g: valid_conv_kernel_grad(i, g, window, strides))(inp, g)
        dots = sum(e.primitive.name == "dot_general" for e in jaxpr.eqns)
        shifts = math.prod(-(-k // s) for k, s in zip(window, strides))
        assert dots == shifts


@pytest.mark.parametrize("strides", [(2, 2), (1, 1)])
def test_kernel_grad_windows_are_cut_in_turn(strides):
    """The windows of `valid_conv_kernel_grad` (each a copy as large as the input) are cut
    one at a time, after the previous product: XLA's memory analysis of the compiled
    gradient holds about one window (it held all 4 block-shift windows, or all 16 tap
    windows at stride 1, before). Under vmap over cotangents (a Jacobian) the window offsets
    stay unbatched (no gather) and the values equal the per-cotangent results; second
    derivatives through a "taps" convolution equal XLA's."""
    n, c_in, c_out = 64, 32, 48
    inp = jax.random.normal(jax.random.PRNGKey(0), (n, 34, 34, c_in))
    q = 16 if strides == (2, 2) else 31
    g = jax.random.normal(jax.random.PRNGKey(1), (n, q, q, c_out))
    window = n * q * q * math.prod(strides) * c_in * 4
    gs = jax.random.normal(jax.random.PRNGKey(2), (3, 2, q, q, c_out))

    def traced():  # new functions: traces are cached per function, not per backend
        fn = lambda i, g: valid_conv_kernel_grad(i, g, (4, 4), strides)  # noqa: E731
        temp = jax.jit(fn).lower(inp, g).compile().memory_analysis().temp_size_in_bytes
        return fn, jax.vmap(lambda g: fn(inp[:2], g)), temp

    with blas.backend("xla"):  # the products in XLA: windows cut in turn
        fn, batched, temp = traced()
        assert window < temp < 1.5 * window
        assert "gather" not in str(jax.make_jaxpr(batched)(gs))
        ref = jnp.stack([fn(inp[:2], gi) for gi in gs])
        np.testing.assert_allclose(jax.jit(batched)(gs), ref, rtol=1e-5, atol=1e-4)
        full = jax.jit(fn)(inp, g)
    if blas.ready():  # MKL: no window copied whole (stride 2: the space-to-depth input)
        fn, batched, temp = traced()
        assert temp < (1.5 * window if strides == (2, 2) else 0.1 * window), temp
        assert "generative_blas" in jax.jit(fn).lower(inp, g).as_text()
        np.testing.assert_allclose(jax.jit(batched)(gs), ref, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(jax.jit(fn)(inp, g), full, rtol=1e-5, atol=1e-3)

    with enable_x64():
        x = jax.random.normal(jax.random.PRNGKey(3), (2, 8, 8, 3), jnp.float64)
        k = jax.random.normal(jax.random.PRNGKey(4), (4, 4, 3, 5), jnp.float64)

        def second(kernel_grad):
            layer = Conv(5, (4, 4), strides, padding=1, kernel_grad=kernel_grad)
            h = lambda k: jnp.sum(
                jnp.sin(layer.apply({"params": {"kernel": k, "bias": jnp.zeros(5)}}, x))
            )  # noqa: E731
            return jax.grad(lambda k: jnp.sum(jax.grad(h)(k) ** 2))(k)

        np.testing.assert_allclose(second("taps"), second("xla"), rtol=1e-10, atol=1e-10)


def test_bias_add_gradient_is_a_product_on_large_outputs():
    """Beyond 4096 rows with 8 channels or more the bias gradient is a vector-matrix product
    (not the many-axis reduction JAX's transpose gives); fewer rows or channels keep the
    plain sum. Values and gradients equal the plain broadcast add either way, and a conv
    layer with such an output equals flax's."""
    with enable_x64():
        for shape, product in [
            ((3, 40, 40, 8), True),
            ((3, 40, 40, 7), False),
            ((2, 5, 5, 8), False),
        ]:
            y = jax.random.normal(jax.random.PRNGKey(0), shape, jnp.float64)
            b = jax.random.normal(jax.random.PRNGKey(1), shape[-1:], jnp.float64)
            w = jax.random.normal(jax.random.PRNGKey(2), shape, jnp.float64)
            ours = lambda y, b, w=w: (jnp.sin(bias_add(y, b)) * w).sum()  # noqa: E731
            plain = lambda y, b, w=w: (jnp.sin(y + b.reshape(1, 1, 1, -1)) * w).sum()  # noqa: E731
            np.testing.assert_allclose(ours(y, b), plain(y, b), rtol=1e-12)
            for p, q in zip(jax.grad(plain, (0, 1))(y, b), jax.grad(ours, (0, 1))(y, b)):
                np.testing.assert_allclose(q, p, rtol=1e-10, atol=1e-10)
            jaxpr = str(jax.make_jaxpr(jax.grad(ours, 1))(y, b))
            assert ("dot_general" in jaxpr) == product, shape
        kw = dict(param_dtype=jnp.float64)
        x = jax.random.normal(jax.random.PRNGKey(3), (3, 40, 40, 3), jnp.float64)
        assert _compare(nn.Conv(8, (3, 3), **kw), Conv(8, (3, 3), **kw), x) < 1e-10


@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_equals_flax(train):
    with enable_x64():
        x = 3 * jax.random.normal(jax.random.PRNGKey(0), (6, 5, 4, 3), jnp.float64) + 1
        kw = dict(use_running_average=not train, momentum=0.9, param_dtype=jnp.float64)
        ref, ours = nn.BatchNorm(**kw), BatchNorm(**kw)
        v = ref.init(jax.random.PRNGKey(1), x)
        v2 = ours.init(jax.random.PRNGKey(1), x)
        # same variables; initialising does not move the running statistics
        assert jax.tree.map(jnp.shape, v) == jax.tree.map(jnp.shape, v2)
        np.testing.assert_array_equal(v2["batch_stats"]["mean"], 0.0)
        np.testing.assert_array_equal(v2["batch_stats"]["var"], 1.0)
        v = jax.tree.map(
            lambda a: a + 0.5 * jax.random.normal(jax.random.PRNGKey(a.size), a.shape) ** 2, v
        )
        w = jnp.arange(x.size, dtype=jnp.float64).reshape(x.shape) / x.size

        def loss(m, v, x):
            y, new = m.apply(v, x, mutable=["batch_stats"])
            return (jnp.sin(y) * w).sum(), new

        (a, new_a), ga = jax.value_and_grad(loss, argnums=(1, 2), has_aux=True)(ref, v, x)
        (b, new_b), gb = jax.value_and_grad(loss, argnums=(1, 2), has_aux=True)(ours, v, x)
        # flax keeps the running statistics in float32
        tol = 1e-9 if train else 1e-6
        np.testing.assert_allclose(b, a, rtol=tol)
        for p, q in zip(jax.tree.leaves((ga, new_a)), jax.tree.leaves((gb, new_b))):
            np.testing.assert_allclose(q, p, rtol=tol, atol=tol)


def test_batch_norm_vjp_includes_statistics_cotangents():
    with enable_x64():
        x = jax.random.normal(jax.random.PRNGKey(0), (40, 3), jnp.float64) * 2 + 0.5
        s, b = jnp.array([1.0, 2.0, -3.0]), jnp.array([0.1, 0.2, 0.3])

        def ours(x, s, b):
            y, m, v = batch_norm(x, s, b, 1e-5)
            return (y**3).sum() + 3 * (m**2).sum() + jnp.sin(v).sum()

        def plain(x, s, b):
            m = x.mean(0)
            v = ((x - m[None]) ** 2).mean(0)
            y = (x - m[None]) / jnp.sqrt(v + 1e-5)[None] * s[None] + b[None]
            return (y**3).sum() + 3 * (m**2).sum() + jnp.sin(v).sum()

        np.testing.assert_allclose(ours(x, s, b), plain(x, s, b), rtol=1e-12)
        for p, q in zip(jax.grad(plain, (0, 1, 2))(x, s, b), jax.grad(ours, (0, 1, 2))(x, s, b)):
            np.testing.assert_allclose(q, p, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "shape,kw",
    [
        ((3, 5, 6, 8), dict(num_groups=4)),
        ((2, 7, 6), dict(num_groups=None, group_size=1)),
        ((4, 3, 2, 2, 16), dict(num_groups=16)),
        ((3, 10), dict(num_groups=1)),
    ],
)
def test_group_norm_equals_flax(shape, kw):
    """Values and gradients (input, scale, bias) equal flax's GroupNorm in float64."""
    with enable_x64():
        x = 2.0 + 3.0 * jax.random.normal(jax.random.PRNGKey(0), shape, jnp.float64)
        kw = dict(kw, param_dtype=jnp.float64)
        assert _compare(nn.GroupNorm(**kw), GroupNorm(**kw), x) < 1e-10


def test_group_norm_bad_groups():
    x = jnp.ones((2, 4, 6))
    with pytest.raises(ValueError, match="6 channels do not split into 4 groups"):
        GroupNorm(num_groups=4).init(jax.random.PRNGKey(0), x)


@pytest.mark.parametrize(
    "layer, kernel, stride, padding, hw",
    [
        ("transpose", 4, 2, "SAME", (4, 6)),  # SRVP / DCGAN decoders: 4 phases of 2×2 taps
        ("transpose", 4, 2, ((2, 2), (2, 2)), (6, 4)),  # PyTorch padding=1
        ("transpose", 6, 3, "SAME", (4, 4)),  # 9 phases of 2×2
        ("transpose", 3, 1, "SAME", (6, 8)),  # one phase of 3×3: F(2×2, 3×3)
        ("conv", 4, 2, 1, (8, 12)),  # a strided convolution's input gradient
    ],
)
def test_winograd_transposed_convolutions_equal_flax_float64(layer, kernel, stride, padding, hw):
    """On CPU in float32 the transposed convolutions whose phases are r×r windows of equal
    length (and so a strided convolution's input gradient) run as one Winograd call
    (`blas.phase_correlations`); values and both gradients stay within float32 rounding of
    flax's float64 layer, and `backend("xla")` traces XLA's phase convolutions instead."""
    if not blas.ready():
        pytest.skip(blas.status())
    kw = dict(strides=(stride, stride), padding=padding)
    ours, ref = (
        (ConvTranspose(16, (kernel, kernel), **kw), nn.ConvTranspose(16, (kernel, kernel), **kw))
        if layer == "transpose"
        else (Conv(16, (kernel, kernel), **kw), nn.Conv(16, (kernel, kernel), **kw))
    )
    x = jax.random.normal(jax.random.PRNGKey(0), (3, *hw, 16))
    v = ours.init(jax.random.PRNGKey(1), x)
    out_shape = jax.eval_shape(ours.apply, v, x).shape
    w = jax.random.normal(jax.random.PRNGKey(2), out_shape)

    def fn(module, v, x):
        out = module.apply(v, x)
        return out, jax.grad(lambda v, x: (jnp.sin(module.apply(v, x)) * w).sum(), (0, 1))(v, x)

    ours_fn = jax.jit(functools.partial(fn, ours))
    text = ours_fn.lower(v, x).as_text()
    assert "generative_blas_winograd" in text
    with blas.backend("xla"):
        assert (
            "generative_blas_winograd"
            not in jax.jit(functools.partial(fn, ours)).lower(v, x).as_text()
        )
    got = ours_fn(v, x)
    with enable_x64():
        to64 = lambda t: jax.tree.map(lambda a: np.asarray(a, np.float64), t)  # noqa: E731
        want = jax.jit(functools.partial(fn, ref))(to64(v), to64(x))
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * (1 + np.abs(b).max()))
