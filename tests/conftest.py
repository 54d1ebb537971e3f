"""Suite-wide settings: 4 simulated CPU devices (sharding tests), strict rank promotion."""

import os

# Must happen before JAX initialises its backends.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from generative.core.host_memory import configure_host_memory  # noqa: E402

configure_host_memory()  # glibc keeps freed memory (before JAX starts its backend)

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
