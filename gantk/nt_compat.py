"""Import neural-tangents 0.6.5 (its last release) on a current JAX.

neural-tangents 0.6.5 imports names that JAX has since moved: `jax.core.{Jaxpr, JaxprEqn,
Literal, Var, Primitive, ShapedArray, Value}`, the module `jax.util`, and
`jax.interpreters.ad.zeros_like_p`. Its `experimental.empirical_tf` subpackage imports
TensorFlow and tf2jax at import time, for `empirical_ntk_fn_tf` and
`get_apply_fn_and_params` only. `neural_tangents()`
puts the moved names back where neural-tangents looks for them (only the missing ones, so a
JAX that still has them is left as it is), replaces `empirical_tf` by a module that raises a
clear error when used, and returns the imported package. Nothing else in JAX is changed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

__all__ = ["neural_tangents", "stax"]

_EMPIRICAL_TF = "neural_tangents.experimental.empirical_tf"


def _restore_moved_jax_names() -> None:
    import jax
    import jax.core
    import jax.extend.core as ext
    import jax.interpreters.ad as ad
    from jax._src import ad_util
    from jax._src import core as src_core
    from jax._src import util as src_util

    for name in ("Jaxpr", "JaxprEqn", "Literal", "Var", "Primitive"):
        if not hasattr(jax.core, name):
            setattr(jax.core, name, getattr(ext, name))
    for name in ("ShapedArray", "Value"):
        if not hasattr(jax.core, name):
            setattr(jax.core, name, getattr(src_core, name))
    if "jax.util" not in sys.modules:
        try:
            importlib.import_module("jax.util")
        except ImportError:
            sys.modules["jax.util"] = src_util
            jax.util = src_util
    if not hasattr(ad, "zeros_like_p"):
        ad.zeros_like_p = ad_util.zeros_like_p


def _stub_empirical_tf() -> None:
    if _EMPIRICAL_TF in sys.modules:
        return
    package = types.ModuleType(_EMPIRICAL_TF)
    package.__path__ = []  # a package, so that `.empirical_tf.empirical` resolves
    stub = types.ModuleType(_EMPIRICAL_TF + ".empirical")

    def _unavailable(name):
        def fn(*args, **kwargs):
            raise ImportError(
                f"neural_tangents.experimental.{name} (TensorFlow models) is not available "
                "here; use neural_tangents.empirical_ntk_fn on JAX functions"
            )

        fn.__name__ = name
        return fn

    stub.__all__ = ["empirical_ntk_fn_tf", "get_apply_fn_and_params"]
    for name in stub.__all__:
        setattr(stub, name, _unavailable(name))
    package.empirical = stub
    sys.modules[_EMPIRICAL_TF] = package
    sys.modules[stub.__name__] = stub


def neural_tangents() -> types.ModuleType:
    """The `neural_tangents` package, importable on the installed JAX."""
    if "neural_tangents" in sys.modules:
        return sys.modules["neural_tangents"]
    if importlib.util.find_spec("neural_tangents") is None:
        raise ImportError(
            "neural-tangents is not installed; it builds the kernels of every architecture but "
            "the ReLU MLP: pip install --no-deps neural-tangents==0.6.5"
        )
    _restore_moved_jax_names()
    _stub_empirical_tf()
    return importlib.import_module("neural_tangents")


def stax() -> types.ModuleType:
    """`neural_tangents.stax`."""
    return neural_tangents().stax
