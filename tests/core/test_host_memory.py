"""generative.core.host_memory: glibc keeps XLA's freed buffers (no page faults per step)."""

import json
import os
import subprocess
import sys

import pytest

from generative.core import host_memory

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Minor page faults per call of a jitted function whose temporaries and output are 32 MiB.
_PROBE = r"""
import json, resource, sys
sys.path.insert(0, {root!r})
from generative.core.host_memory import configure_host_memory, host_memory_state
configure_host_memory()
import jax, jax.numpy as jnp
x = jnp.ones((128, 32, 32, 64))
f = jax.jit(lambda x: ((x * 2 + 1)[:, ::-1] * 3).reshape(-1, 64).sum(0))
for _ in range(200):  # glibc's heap settles (it grows for a few dozen calls, then reuses)
    f(x).block_until_ready()
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    f(x).block_until_ready()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0) / 10
print("RESULT " + json.dumps({{"faults": faults, **host_memory_state()}}))
"""


def _probe(**env):
    full = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "XLA_FLAGS")}
    full.update(env)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(root=ROOT)],
        env=full,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = [s for s in out.splitlines() if s.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_retained_memory_removes_per_call_page_faults():
    system = _probe(GENERATIVE_HOST_MALLOC="system")
    kept = _probe(GENERATIVE_HOST_MALLOC="retain")
    assert not system["configured"] and system["reason"] == "GENERATIVE_HOST_MALLOC=system"
    assert kept["configured"] and kept["reason"] == "mallopt"
    # 32 MiB of fresh temporaries are ~8 000 faults per call with glibc's defaults.
    assert system["faults"] > 4000, system
    assert kept["faults"] < 0.25 * system["faults"], (kept, system)


def test_unknown_choice_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(host_memory._state, "configured", False)
    monkeypatch.setenv("GENERATIVE_HOST_MALLOC", "jemalloc")
    with pytest.raises(ValueError, match="valid choices: retain, system"):
        host_memory.configure_host_memory()


def test_after_backend_start_it_warns_and_reports(monkeypatch):
    import jax.numpy as jnp

    jnp.ones(1).block_until_ready()  # the backend is running in this process
    monkeypatch.setitem(host_memory._state, "configured", False)
    monkeypatch.setenv("GENERATIVE_HOST_MALLOC", "retain")
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.setattr(host_memory, "_ACCELERATOR_PLUGINS", ())
    if host_memory._libc()[0] is None:
        pytest.skip("not glibc")
    with pytest.warns(RuntimeWarning, match="before the first computation"):
        assert host_memory.configure_host_memory() is False
    assert host_memory.host_memory_state()["reason"] == "called after the JAX backends started"


def test_environment_form_is_recognised(monkeypatch):
    monkeypatch.setitem(host_memory._state, "configured", False)
    monkeypatch.setenv("GENERATIVE_HOST_MALLOC", "retain")
    monkeypatch.setenv("GLIBC_TUNABLES", host_memory.GLIBC_TUNABLES)
    assert host_memory.configure_host_memory() is True
    assert host_memory.host_memory_state()["reason"] == "GLIBC_TUNABLES set in the environment"


def test_cli_reports_a_bad_choice_in_one_line():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["GENERATIVE_HOST_MALLOC"] = "jemalloc"
    proc = subprocess.run(
        [sys.executable, "-m", "physics.main", "--list-presets"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "valid choices: retain, system" in lines[0], proc.stderr
