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
# XLA's default vector width, also for the command lines the tests run (their `main` calls
# configure_cpu_codegen): the tests pass at both widths (tests/core/test_cpu_codegen.py
# compiles with each), and the suite is compile-bound, where 512-bit loops gain nothing
os.environ.setdefault("GENERATIVE_CPU_VECTOR_WIDTH", "256")

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

# The controller process makes the folder before it starts the workers, which inherit it.
if "GENERATIVE_TEST_COMPILATION_CACHE" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="generative-test-jax-cache-")
    os.environ["GENERATIVE_TEST_COMPILATION_CACHE"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", os.environ["GENERATIVE_TEST_COMPILATION_CACHE"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)

# The longest tests (each 30–100 s on 2 cores) run first: at the end of the run they would
# leave one xdist worker busy alone while the other has nothing left to take.
_LONGEST_FIRST = (
    "test_real_data_presets_train_and_eval",
    "test_forward_mode_through_the_elbo",
    "test_mmnist_train_resume_eval_explore",
    "test_mmnist_tiny_one_step_with_content_swap",
    "test_forward_mode_through_the_separation_model",
    "test_sst_one_step_on_synthetic_files",
    "test_kill_minus_nine_then_resume_is_bit_identical",
    "test_dense_like_layers_take_matrix_product_paths",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(getattr(item, "originalname", item.name), len(rank)))
