"""GAN(TK)²: GAN training dynamics through the infinite-width discriminator's NTK.

Plain functions of kernels and arrays (no configuration objects needed):

- kernels: `stax_kernel(architecture, kind=..., depth=..., W_std=..., b_std=...)` returns
  k(x1, x2) -> [n1, n2]; `relu_mlp_kernel` is the ReLU MLP's closed form; `stax_network`
  gives the finite network (init_fn, apply_fn, kernel_fn);
- the exact discriminator: `dual_coefficients` (u(t) from a kernel matrix) and
  `discriminator(kernel, x_fake, x_real, loss, t)` (f_t(z) = k(z, X) u(t));
- `ntk_mmd(kernel, x, y)`: the squared MMD, L(f_t) = t · MMD² for the IPM loss;
- `particle_flow(kernel, x0, target, loss, eta, t, steps)`: the generated particles under
  x ← x − η ∇ mean c(f_t(x)), one compiled scan.

`make_kernel` and `build_network` read the command line's `kernel` config group.
"""

from gantk.dynamics import (
    LOSSES,
    METHODS,
    Discriminator,
    GanLoss,
    discriminator,
    discriminator_objective,
    dual_coefficients,
    gan_loss,
    ipm_coefficients,
    ntk_mmd,
)
from gantk.kernels import (
    ARCHITECTURES,
    IMPLEMENTATIONS,
    KERNEL_KINDS,
    NETWORKS,
    build_network,
    default_kernel_config,
    kernel_matvec,
    make_kernel,
    relu_mlp_kernel,
    stax_kernel,
    stax_network,
)
from gantk.particles import FlowTrajectory, generator_loss_and_grad, particle_flow

__all__ = [
    "ARCHITECTURES",
    "IMPLEMENTATIONS",
    "KERNEL_KINDS",
    "LOSSES",
    "METHODS",
    "NETWORKS",
    "Discriminator",
    "FlowTrajectory",
    "GanLoss",
    "build_network",
    "default_kernel_config",
    "discriminator",
    "discriminator_objective",
    "dual_coefficients",
    "gan_loss",
    "generator_loss_and_grad",
    "ipm_coefficients",
    "kernel_matvec",
    "make_kernel",
    "ntk_mmd",
    "particle_flow",
    "relu_mlp_kernel",
    "stax_kernel",
    "stax_network",
]
