"""XLA:CPU vector width: the measured rule, the environment switch, the one-line errors, and
the same results at both widths (float32 rounding apart, against float64)."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from generative.core import cpu_codegen


def _cpuinfo(tmp_path, vendor, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(
        f"processor\t: 0\nvendor_id\t: {vendor}\nflags\t\t: {' '.join(flags)}\n\n"
        f"processor\t: 1\nvendor_id\t: {vendor}\nflags\t\t: {' '.join(flags)}\n"
    )
    return str(path)


def test_cpuinfo_and_measured_rule(tmp_path):
    path = _cpuinfo(tmp_path, "AuthenticAMD", ["fpu", "avx2", "avx512f", "avx512bw"])
    vendor, flags = cpu_codegen._cpu_info(path)
    assert vendor == "AuthenticAMD" and {"avx2", "avx512f"} <= flags
    assert cpu_codegen.measured_rule(vendor, flags)[0] == 512
    assert cpu_codegen.measured_rule("GenuineIntel", flags)[0] == 256  # not measured there
    assert cpu_codegen.measured_rule("AuthenticAMD", {"avx2"})[0] == 256
    assert cpu_codegen._cpu_info(str(tmp_path / "missing")) == ("", set())


def _configure_in_fresh_process(tmp_path, env_extra, cpuinfo):
    """configure_cpu_codegen() before any JAX computation, in a new interpreter."""
    code = textwrap.dedent(f"""
        import os, json
        from generative.core import cpu_codegen
        width = cpu_codegen.configure_cpu_codegen({cpuinfo!r})
        print(json.dumps([width, os.environ.get("XLA_FLAGS", ""),
                          cpu_codegen.cpu_codegen_state()["reason"]]))
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS",)}
    env.pop("GENERATIVE_CPU_VECTOR_WIDTH", None)
    env.update(env_extra)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    return out


@pytest.mark.parametrize(
    "vendor, env_extra, width, flagged",
    [
        ("AuthenticAMD", {}, 512, True),
        ("GenuineIntel", {}, 256, False),
        ("GenuineIntel", {"GENERATIVE_CPU_VECTOR_WIDTH": "512"}, 512, True),
        ("AuthenticAMD", {"GENERATIVE_CPU_VECTOR_WIDTH": "256"}, 256, False),
        ("AuthenticAMD", {"XLA_FLAGS": "--xla_cpu_prefer_vector_width=256"}, None, False),
    ],
)
def test_configure_sets_the_flag_only_where_chosen(tmp_path, vendor, env_extra, width, flagged):
    import json

    cpuinfo = _cpuinfo(tmp_path, vendor, ["avx2", "avx512f"])
    out = _configure_in_fresh_process(tmp_path, env_extra, cpuinfo)
    assert out.returncode == 0, out.stderr
    got, flags, _ = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == width
    assert ("--xla_cpu_prefer_vector_width=512" in flags) == flagged
    if "XLA_FLAGS" in env_extra:
        assert flags == env_extra["XLA_FLAGS"]  # the user's setting is left alone


def test_bad_choice_is_one_line(monkeypatch):
    monkeypatch.setenv("GENERATIVE_CPU_VECTOR_WIDTH", "1024")
    with pytest.raises(ValueError, match="1024.*valid choices: auto, 256, 512"):
        cpu_codegen.configure_cpu_codegen()


def test_after_backend_start_nothing_changes(monkeypatch):
    jnp.ones(2).block_until_ready()  # the backend is up
    monkeypatch.setenv("GENERATIVE_CPU_VECTOR_WIDTH", "512")
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
    monkeypatch.setitem(cpu_codegen._state, "vector_width", None)
    with pytest.warns(RuntimeWarning, match="before the first computation"):
        assert cpu_codegen.configure_cpu_codegen() == 256
    assert os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=4"
    assert "after the JAX backends started" in cpu_codegen.cpu_codegen_state()["reason"]


def test_both_widths_agree_with_float64():
    """The closed-form NTK recursion of gantk (sqrt, division, polynomial arccos) compiled at
    each width: both within float32 rounding of the float64 value, whatever the CPU."""
    from gantk.kernels import relu_mlp_kernel

    x = jax.random.normal(jax.random.PRNGKey(0), (64, 2))
    y = jax.random.normal(jax.random.PRNGKey(1), (96, 2))
    f = lambda a, b: relu_mlp_kernel(a, b, depth=3, W_std=1.0, b_std=0.1)  # noqa: E731
    with jax.enable_x64(True):
        exact = np.asarray(f(jnp.asarray(x, jnp.float64), jnp.asarray(y, jnp.float64)))
    for width in (256, 512):
        compiled = (
            jax.jit(f).lower(x, y).compile(compiler_options={"xla_cpu_prefer_vector_width": width})
        )
        got = np.asarray(compiled(x, y), np.float64)
        np.testing.assert_allclose(got, exact, rtol=2e-5, atol=2e-5 * np.abs(exact).max())


# ----------------------------------------------------------------------------- products alone


def test_products_only_options_rule(tmp_path, monkeypatch):
    monkeypatch.delenv("GENERATIVE_CPU_LIBRARY_FUSION", raising=False)
    (tmp_path / "intel").mkdir()
    intel = _cpuinfo(tmp_path / "intel", "GenuineIntel", ["avx512f"])
    amd = _cpuinfo(tmp_path, "AuthenticAMD", ["avx512f"])
    option = cpu_codegen.PRODUCTS_ONLY_OPTION
    assert cpu_codegen.products_only_rule("GenuineIntel") and not cpu_codegen.products_only_rule("")
    assert cpu_codegen.products_only_options("cpu", intel) == option
    assert cpu_codegen.products_only_options("cpu", amd) == {}  # not measured there
    for backend in ("gpu", "cuda", "tpu"):  # their programs stay XLA's own
        assert cpu_codegen.products_only_options(backend, intel) == {}
    monkeypatch.setenv("GENERATIVE_CPU_LIBRARY_FUSION", "dots")
    assert cpu_codegen.products_only_options("cpu", amd) == option
    assert cpu_codegen.products_only_options("gpu", amd) == {}
    monkeypatch.setenv("GENERATIVE_CPU_LIBRARY_FUSION", "default")
    assert cpu_codegen.products_only_options("cpu", intel) == {}
    monkeypatch.setenv("GENERATIVE_CPU_LIBRARY_FUSION", "all")
    with pytest.raises(ValueError, match="'all'.*valid choices: auto, dots, default"):
        cpu_codegen.products_only_options("cpu", intel)


def _ynn_fusions(hlo: str) -> list[str]:
    """The fused computations that XLA:CPU hands to YNNPACK, as HLO text."""
    import re

    called = re.findall(r'calls=(%[\w.\-]+), .*"kind":"__ynn_fusion"', hlo)
    bodies = []
    for name in called:
        start = hlo.index("\n" + name + " ") + 1
        bodies.append(hlo[start : hlo.index("\n}", start)])
    return bodies


def test_products_only_option_gives_ynnpack_the_products_alone_with_the_same_results():
    """A batch-norm MLP's loss gradient (a matrix product between batch statistics, as in the
    2-D GAN generator): with the option, each YNNPACK fusion is one product and nothing else;
    both programs agree with the float64 gradient to float32 rounding."""
    kx, kw1, kw2 = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(kx, (100, 64))
    w = (jax.random.normal(kw1, (64, 128)) / 8, jax.random.normal(kw2, (128, 32)) / 11)

    def loss(w, x):
        h = x @ w[0]
        h = (h - h.mean(0, keepdims=True)) * jax.lax.rsqrt(h.var(0, keepdims=True) + 1e-5)
        return jnp.mean(jnp.tanh(jax.nn.relu(h) @ w[1]) ** 2)

    grad = jax.grad(loss)
    with jax.enable_x64(True):
        exact = grad(jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), w), x.astype(jnp.float64))
    lowered = jax.jit(grad).lower(w, x)
    dense = lowered.compile(compiler_options=cpu_codegen.PRODUCTS_ONLY_OPTION)
    fusions = _ynn_fusions(dense.as_text())
    assert len(fusions) >= 3  # the forward and gradient products
    for body in fusions:
        ops = [line.split("=", 1)[1].split("(")[0].split()[-1] for line in body.splitlines()[1:]]
        ops = [op for op in ops if op not in ("parameter", "bitcast", "transpose", "copy")]
        assert ops == ["dot"], body
    for compiled in (lowered.compile(), dense):
        for got, ref in zip(compiled(w, x), exact):
            ref = np.asarray(ref)
            np.testing.assert_allclose(
                np.asarray(got, np.float64), ref, atol=1e-5 * np.abs(ref).max()
            )


# ----------------------------------------------------------------------------- XLA's convolutions


def test_xla_convolutions_options_rule(tmp_path, monkeypatch):
    monkeypatch.delenv("GENERATIVE_CPU_CONVOLUTIONS", raising=False)
    (tmp_path / "intel").mkdir()
    intel = _cpuinfo(tmp_path / "intel", "GenuineIntel", ["avx512f"])
    amd = _cpuinfo(tmp_path, "AuthenticAMD", ["avx512f"])
    option = cpu_codegen.XLA_CONVOLUTIONS_OPTION
    assert cpu_codegen.xla_convolutions_options("cpu", intel) == option
    assert cpu_codegen.xla_convolutions_options("cpu", amd) == {}  # not measured there
    for backend in ("gpu", "cuda", "tpu"):  # their programs stay XLA's own
        assert cpu_codegen.xla_convolutions_options(backend, intel) == {}
    monkeypatch.setenv("GENERATIVE_CPU_CONVOLUTIONS", "xla")
    assert cpu_codegen.xla_convolutions_options("cpu", amd) == option
    assert cpu_codegen.xla_convolutions_options("tpu", amd) == {}
    monkeypatch.setenv("GENERATIVE_CPU_CONVOLUTIONS", "ynn")
    assert cpu_codegen.xla_convolutions_options("cpu", intel) == {}
    monkeypatch.setenv("GENERATIVE_CPU_CONVOLUTIONS", "eigen")
    with pytest.raises(ValueError, match="'eigen'.*valid choices: auto, xla, ynn"):
        cpu_codegen.xla_convolutions_options("cpu", intel)
    # which option sets mean XLA's own convolutions
    assert cpu_codegen.uses_xla_convolutions(option)
    assert not cpu_codegen.uses_xla_convolutions(None)
    assert not cpu_codegen.uses_xla_convolutions({})  # XLA's default: YNNPACK's convolutions
    assert cpu_codegen.uses_xla_convolutions(cpu_codegen.PRODUCTS_ONLY_OPTION)
    both = "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION"
    assert not cpu_codegen.uses_xla_convolutions({"xla_cpu_experimental_ynn_fusion_type": both})


def test_xla_convolutions_option_leaves_ynnpack_no_convolution_with_the_same_results():
    """A convolution's value and gradient: by default YNNPACK computes the convolutions; with
    the option no YNNPACK fusion holds one, and both programs agree with float64."""
    kx, kk = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(kx, (2, 8, 8, 32))  # YNNPACK takes convolutions of this size
    k = jax.random.normal(kk, (3, 3, 32, 32)) / 17

    def loss(k, x):
        y = jax.lax.conv_general_dilated(
            x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        return jnp.mean(jnp.tanh(y) ** 2)

    grad = jax.grad(loss, argnums=(0, 1))
    with jax.enable_x64(True):
        exact = grad(k.astype(jnp.float64), x.astype(jnp.float64))
    lowered = jax.jit(grad).lower(k, x)
    default, xla = (
        lowered.compile(),
        lowered.compile(compiler_options=cpu_codegen.XLA_CONVOLUTIONS_OPTION),
    )
    assert any("convolution(" in body for body in _ynn_fusions(default.as_text()))
    assert not any("convolution(" in body for body in _ynn_fusions(xla.as_text()))
    assert "convolution(" in xla.as_text()
    for compiled in (default, xla):
        for got, ref in zip(compiled(k, x), exact):
            np.testing.assert_allclose(got, np.asarray(ref), rtol=2e-5, atol=1e-6)
