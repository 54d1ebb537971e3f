"""Generated-distribution dynamics under the infinite-width discriminator: particle flows.

Each generator step trains the discriminator from f_0 = 0 on the current particles for time
t (exactly, through its dual coefficients), then moves every particle along the negative
input gradient of the generator loss, the discriminator held fixed:

    x ← x − η ∇_x mean_i c(f_t(x_i))

(the gradient of the *mean* generator loss, as in the reference toolkit, so each particle
moves by η/N · ∇c). The whole flow is compiled: `lax.scan` between logging points inside the
shared training loop, particles sharded over devices.
"""

from __future__ import annotations

import logging
import pathlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from gantk import dynamics
from gantk import particles as particles_lib
from gantk.kernels import make_kernel
from generative import metrics as metrics_lib
from generative.core import sharding as sharding_lib
from generative.core.train import Experiment, make_optimizer
from generative.data import densities, toy
from generative.data import images as images_lib
from generative.nets import MLP

logger = logging.getLogger(__name__)

__all__ = ["FlowState", "ParticleFlow", "make_flow"]


class FlowState(NamedTuple):
    step: jax.Array  # [] int32, generator steps taken
    particles: jax.Array  # [N, d] generated points (neural generator: the last batch)
    discriminator: Any = ()  # finite width: DiscriminatorState of the last step; () at ∞
    generator: Any = ()  # neural generator: (params, optax state); () for particles


GENERATORS = ("particles", "mlp")


def mlp_generator(hidden: tuple[int, ...], out_dim: int) -> MLP:
    """g_θ(z): an MLP (ReLU) from the latent space [N, latent] to data space [N, out_dim]."""
    return MLP(tuple(hidden) + (out_dim,))


DATASETS = (
    "eight_gaussians",
    "twenty_five_gaussians",
    "two_moons",
    *densities.IMAGE_PAIRS,
    *images_lib.IMAGE_DATASETS,
)


class ParticleFlow:
    """Targets, kernel and the pure functions of one particle-flow run."""

    def __init__(self, config: ml_collections.ConfigDict):
        self.config = config
        dc = config.data
        if dc.name not in DATASETS:
            raise ValueError(f"unknown dataset '{dc.name}'; valid: {', '.join(DATASETS)}")
        if config.loss.name not in dynamics.LOSSES:
            raise ValueError(
                f"unknown loss '{config.loss.name}'; valid: {', '.join(dynamics.LOSSES)}"
            )
        if config.loss.method not in dynamics.METHODS:
            raise ValueError(
                f"unknown loss.method '{config.loss.method}'; valid: {', '.join(dynamics.METHODS)}"
            )
        self.dtype = jnp.float64 if config.dtype == "float64" else jnp.float32
        key = jax.random.PRNGKey(config.seed)
        self.image_shape = None  # (H, W, C) when the points are flattened images
        if dc.name in images_lib.IMAGE_DATASETS:  # particles start from N(0, I) in pixel space
            imgs = images_lib.load_images(
                dc.name, int(dc.n_targets), seed=int(config.seed), size=int(dc.image_size),
                data_dir=dc.data_dir or None, source=dc.digit_source,
            )  # fmt: skip
            logger.info("%s targets: %s", dc.name, imgs.source)
            self.image_shape = imgs.images.shape[1:]
            targets = jnp.asarray(imgs.images.reshape(len(imgs.images), -1))
            dim = targets.shape[1]
            self._source = lambda k, n: jax.random.normal(k, (n, dim))
        elif dc.name in densities.IMAGE_PAIRS:  # particles start on the first image
            source_image, target_image = densities.image_pair(dc.name)
            self._source = lambda k, n: densities.sample_image_density(k, source_image, n)
            targets = densities.sample_image_density(
                jax.random.fold_in(key, 1), target_image, dc.n_targets
            )
        else:
            source = "standard_normal" if dc.source == "auto" else dc.source
            self._source = lambda k, n: toy.sample_toy(source, k, n)
            targets = toy.sample_toy(dc.name, jax.random.fold_in(key, 1), dc.n_targets)
        self.targets = targets.astype(self.dtype)  # [M, d]
        self.n_fake, self.n_real = int(dc.n_particles), int(dc.n_targets)
        self.kernel = make_kernel(config.kernel)
        self.loss = dynamics.gan_loss(config.loss.name, config.loss.generator_target)
        self.t = float(config.loss.t)
        self.eta = float(config.eta)
        self.block = int(config.kernel.block_size)
        if dc.name == "eight_gaussians":
            self.centers, self.std = toy.eight_gaussians_centers(), 0.5
        elif dc.name == "twenty_five_gaussians":
            self.centers, self.std = toy.grid_gaussians_centers(), 0.05
        else:
            self.centers = None
        self._k_real = (
            None if config.loss.name == "ipm" else self.kernel(self.targets, self.targets)
        )
        self.finite = bool(config.discriminator.finite)
        if self.finite:
            from gantk.finite import finite_discriminator_from_config

            self.disc = finite_discriminator_from_config(config)
        self.generator = None
        if config.generator.kind not in GENERATORS:
            raise ValueError(
                f"unknown generator.kind '{config.generator.kind}'; valid: {', '.join(GENERATORS)}"
            )
        if config.generator.kind == "mlp":
            gc = config.generator
            d = self.targets.shape[1]
            self.generator = mlp_generator((gc.width,) * gc.depth, d)
            self.generator_tx = make_optimizer(gc.optimizer, int(config.num_steps))
        self._eval = jax.jit(self._evaluate)
        self._field = jax.jit(self.field)

    # ---------------------------------------------------------------- discriminator
    def _solver(self) -> dict:
        """The dual-solver keyword arguments of `dynamics.discriminator` from the config."""
        lc = self.config.loss
        return dict(
            method=lc.method,
            generator_target=lc.generator_target,
            lanczos_iters=lc.lanczos_iters,
            rtol=lc.rtol,
            atol=lc.atol,
            fixed_steps=lc.fixed_steps,
        )

    def coefficients(self, particles: jax.Array) -> jax.Array:
        """u(t) [n] of the discriminator trained from f_0 = 0 on (particles, targets)."""
        disc = dynamics.discriminator(
            self.kernel, particles, self.targets, self.config.loss.name, self.t,
            k_real=self._k_real, **self._solver(),
        )  # fmt: skip
        return disc.coefficients

    def discriminator(
        self, z: jax.Array, particles: jax.Array, u: jax.Array, self_rows: bool = False
    ) -> jax.Array:
        """f_t(z) [len(z)] = k(z, X) u, X = [particles; targets].

        `self_rows`: z are the particles themselves (see `kernels.kernel_matvec`)."""
        X = jnp.concatenate([particles, self.targets])
        disc = dynamics.Discriminator(self.kernel, X, u, self.n_fake, self.block)
        return disc(z, self_rows=self_rows)

    def generator_loss(
        self, z: jax.Array, particles: jax.Array, u: jax.Array, self_rows: bool = False
    ) -> jax.Array:
        """mean c(f_t(z)), the discriminator (particles, u) held fixed."""
        return jnp.mean(self.loss.c(self.discriminator(z, particles, u, self_rows)))

    # ---------------------------------------------------------------- experiment pieces
    def init(self, key: jax.Array) -> FlowState:
        del key  # the initial state depends on the seed only, like the targets
        key = jax.random.PRNGKey(self.config.seed)
        x0 = self._source(jax.random.fold_in(key, 2), self.n_fake).astype(self.dtype)
        disc = gen = ()
        if self.finite:
            disc = self.disc.init(jax.random.fold_in(key, 3), (-1, *x0.shape[1:]), self.dtype)
        if self.generator is not None:
            params = self.generator.init(jax.random.fold_in(key, 4), self._latent(key))
            params = jax.tree_util.tree_map(lambda a: a.astype(self.dtype), params)
            gen = (params, self.generator_tx.init(params))
            x0 = self.generator.apply(params, self._latent(jax.random.fold_in(key, 5)))
        return FlowState(jnp.zeros((), jnp.int32), x0, disc, gen)

    def _latent(self, key: jax.Array) -> jax.Array:
        """[N, latent_dim] generator inputs z ~ N(0, I)."""
        shape = (self.n_fake, int(self.config.generator.latent_dim))
        return jax.random.normal(key, shape, self.dtype)

    def particle_loss_and_grad(self, x: jax.Array, disc_state: Any, key: jax.Array):
        """(mean c(f_t(x)), its gradient in x [N, d], discriminator state) with f_t trained
        on (x, targets) and then held fixed (`particles.generator_loss_and_grad` at ∞)."""
        if self.finite:  # SGD on the current points (fresh init from the key if `reset`)
            disc = self.disc.fit(disc_state, jax.lax.stop_gradient(x), self.targets, key)
            gen = lambda z: jnp.mean(self.loss.c(self.disc.apply(disc.params, z)))
            return (*jax.value_and_grad(gen)(x), disc)
        # IPM: kernel blocks, O(N · block) memory, no K (the fused dense pass is 3x faster at
        # n <= block but its 1- and 4-device trajectories drift apart 1e6x faster in float64;
        # see README); other losses: one fused k(x, X) pass with its VJP
        gen_loss, grad = particles_lib.generator_loss_and_grad(
            self.kernel, x, self.targets, self.config.loss.name, self.t,
            block_size=self.block, k_real=self._k_real, **self._solver(),
        )  # fmt: skip
        return gen_loss, grad, disc_state

    def step(self, state: FlowState, batch, key):
        del batch  # the key only feeds finite-width resets and generator latents
        if self.generator is None:  # particles: x ← x − η ∇_x mean c(f_t(x))
            x = state.particles
            gen_loss, grad, disc = self.particle_loss_and_grad(x, state.discriminator, key)
            new = FlowState(state.step + 1, x - self.eta * grad, disc, ())
            return new, {"gen_loss": gen_loss}
        # neural generator: chain rule through x = g_θ(z), optax update of θ
        disc_key, z_key = jax.random.split(key)
        params, opt_state = state.generator
        x, pullback = jax.vjp(lambda p: self.generator.apply(p, self._latent(z_key)), params)
        gen_loss, grad_x, disc = self.particle_loss_and_grad(x, state.discriminator, disc_key)
        (grads,) = pullback(grad_x)
        updates, opt_state = self.generator_tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        new = FlowState(state.step + 1, x, disc, (params, opt_state))
        return new, {"gen_loss": gen_loss, "generator_grad_norm": optax.global_norm(grads)}

    def _dense_loss_and_grad(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Generator loss and its particle gradient with one kernel pass per step
        (`particles.dense_loss_and_grad`, the cached k(targets, targets))."""
        return particles_lib.dense_loss_and_grad(
            self.kernel, x, self.targets, self.config.loss.name, self.t,
            k_real=self._k_real, **self._solver(),
        )  # fmt: skip

    def state_sharding(self, mesh):
        n_dev = mesh.devices.size
        part = (
            sharding_lib.batch_sharded(mesh)
            if self.n_fake % n_dev == 0
            else sharding_lib.replicated(mesh)
        )
        rep = sharding_lib.replicated(mesh)
        abstract = jax.eval_shape(self.init, jax.random.PRNGKey(0))
        disc = jax.tree_util.tree_map(lambda _: rep, abstract.discriminator)
        gen = jax.tree_util.tree_map(lambda _: rep, abstract.generator)
        return FlowState(rep, part, disc, gen)

    def _disc_fn(self, particles: jax.Array, disc_params: Any):
        """z [G, d] -> f_t(z) [G] for pictures and metrics (finite: the last step's network)."""
        if self.finite:
            return lambda z: self.disc.apply(disc_params, z)
        u = self.coefficients(particles)
        return lambda z: self.discriminator(z, particles, u)

    def _evaluate(self, particles: jax.Array, disc_params: Any) -> dict[str, jax.Array]:
        f = self._disc_fn(particles, disc_params)
        f_fake, f_real = f(particles), f(self.targets)
        out = {
            "sinkhorn": metrics_lib.sinkhorn_divergence(
                particles, self.targets, self.config.eval.sinkhorn_epsilon
            ),
            "energy": metrics_lib.energy_distance(particles, self.targets),
            "ntk_mmd2": metrics_lib.mmd2(self.kernel, particles, self.targets),
            "disc_objective": dynamics.discriminator_objective(self.loss, f_fake, f_real),
            "gen_loss": jnp.mean(self.loss.c(f_fake)),
        }
        if self.centers is not None:
            out.update(metrics_lib.mode_coverage(particles, self.centers, self.std))
        return out

    def evaluate(self, step: int, state: FlowState) -> dict[str, float]:
        params = state.discriminator.params if self.finite else ()
        out = jax.device_get(self._eval(state.particles, params))
        return {k: float(v) for k, v in out.items()}

    def field(self, grid: jax.Array, particles: jax.Array, disc_params: Any = ()):
        """c(f_t) [G] and −∇c(f_t) [G, d] on grid points, for pictures."""
        f = self._disc_fn(particles, disc_params)

        def c(z):
            return self.loss.c(f(z[None]))[0]

        values, grads = jax.vmap(jax.value_and_grad(c))(grid)
        return values, -grads

    def experiment(self, workdir: pathlib.Path | None = None) -> Experiment:
        snapshots = None if workdir is None else pathlib.Path(workdir) / "trajectory"

        def evaluate(step, state):
            if snapshots is not None:
                snapshots.mkdir(parents=True, exist_ok=True)
                np.save(snapshots / f"{step:08d}.npy", np.asarray(jax.device_get(state.particles)))
            return self.evaluate(step, state)

        def finalize(state, workdir):
            from gantk import plots

            return plots.flow_outputs(self, state, pathlib.Path(workdir))

        return Experiment(
            init=self.init,
            step=self.step,
            state_sharding=self.state_sharding,
            evaluate=evaluate,
            finalize=finalize if self.config.eval.figures else None,
        )


def make_flow(config: ml_collections.ConfigDict) -> ParticleFlow:
    return ParticleFlow(config)
