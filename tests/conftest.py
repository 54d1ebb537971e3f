"""Suite-wide settings: 4 simulated CPU devices (sharding tests), strict rank promotion, and
one compilation cache per test run (tests that rebuild the same program, e.g. a resumed run
or the same model in two tests, compile it once; both xdist workers share it)."""

import atexit
import os
import shutil
import tempfile

# Must happen before JAX initialises its backends.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from generative.core.host_memory import configure_host_memory  # noqa: E402

configure_host_memory()  # glibc keeps freed memory (before JAX starts its backend)

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

# The controller process makes the folder before it starts the workers, which inherit it.
if "GENERATIVE_TEST_COMPILATION_CACHE" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="generative-test-jax-cache-")
    os.environ["GENERATIVE_TEST_COMPILATION_CACHE"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", os.environ["GENERATIVE_TEST_COMPILATION_CACHE"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
