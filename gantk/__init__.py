"""GAN(TK)²: GAN training dynamics through the infinite-width discriminator's NTK."""

from gantk.dynamics import LOSSES, gan_loss, ipm_coefficients
from gantk.kernels import ARCHITECTURES, build_network, kernel_matvec, make_kernel

__all__ = [
    "ARCHITECTURES",
    "LOSSES",
    "build_network",
    "gan_loss",
    "ipm_coefficients",
    "kernel_matvec",
    "make_kernel",
]
