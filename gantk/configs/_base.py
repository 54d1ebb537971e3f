"""Shared defaults of the gantk presets (not a preset itself)."""

import ml_collections

from gantk.kernels import default_kernel_config
from generative.core.config import base_config


def flow_config() -> ml_collections.ConfigDict:
    c = base_config()
    c.dtype = "float32"  # float32 | float64
    c.num_steps = 50_000
    c.log_every = 500
    c.checkpoint_every = 5_000
    c.data = ml_collections.ConfigDict()
    # eight_gaussians | twenty_five_gaussians | two_moons | ab | density | mnist | celeb_a
    c.data.name = "eight_gaussians"
    # initial particles: auto = N(0, I) for point sets, the first image for ab / density
    c.data.source = "auto"
    c.data.image_size = 32  # mnist | celeb_a: images resized to image_size², points in [-1, 1]^D
    c.data.data_dir = ""  # tensorflow-datasets folder ("" = tfds default)
    c.data.digit_source = "auto"  # mnist: auto (MNIST if prepared, else font digits) | mnist | font
    c.data.n_particles = 500
    c.data.n_targets = 500
    c.kernel = default_kernel_config()
    c.loss = ml_collections.ConfigDict()
    c.loss.name = "ipm"  # ipm | lsgan | vanilla | hinge
    c.loss.t = 1.0  # discriminator training time
    c.loss.generator_target = "zero"  # LSGAN generator loss: zero -> f², one -> (f − 1)²
    # dual solver: auto | closed_form | eigen | lanczos | ode | fixed_step (gantk.dynamics)
    c.loss.method = "auto"
    c.loss.lanczos_iters = 32  # 8 already reach float32 accuracy at t = 1 (benchmark)
    c.loss.rtol = 1e-5  # adaptive ODE tolerances (vanilla, hinge)
    c.loss.atol = 1e-7
    c.loss.fixed_steps = 0
    # finite-width discriminator (stax network of `kernel`, width kernel.width) trained by SGD
    # with optimizer.lr for round(loss.t / lr) steps per generator step (gantk.finite)
    c.discriminator = ml_collections.ConfigDict()
    c.discriminator.finite = False
    c.discriminator.antisymmetric = True  # f_0 = 0 without changing the kernel
    c.discriminator.reset = False  # re-initialise the network at every generator step
    c.optimizer.name = "sgd"
    c.optimizer.lr = 0.1
    # generated distribution: particles (x ← x − η∇c) or a neural generator g_θ(z) trained
    # with its own optax optimizer on E_z c(f_t(g_θ(z))) (N fresh latents per step)
    c.generator = ml_collections.ConfigDict()
    c.generator.kind = "particles"  # particles | mlp
    c.generator.latent_dim = 2
    c.generator.width = 128
    c.generator.depth = 3
    c.generator.optimizer = base_config().optimizer
    c.generator.optimizer.lr = 1e-3
    c.eta = 1000.0  # particle step size (on the gradient of the mean generator loss)
    c.eval = ml_collections.ConfigDict()
    c.eval.sinkhorn_epsilon = 0.1  # on the cost ½‖x − y‖²
    c.eval.figures = True
    c.eval.grid_size = 48
    c.eval.extent = 8.0
    c.eval.max_frames = 60
    return c
