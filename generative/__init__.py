"""generative: the shared core of gantk, video and physics.

- `generative.core`: configs, the run loop (resume, checkpoints, NaN stop, metrics), sharding,
  the command-line front end, host memory settings;
- `generative.layers`: Conv / ConvTranspose / Dense / BatchNorm / GroupNorm (flax's modules off
  CPU, faster CPU forms on CPU);
- `generative.nets`: networks shared by the packages (MLP, DCGAN and VGG encoders/decoders);
- `generative.data`: toy densities, digits (MNIST or fonts), Moving MNIST, image data sets;
- `generative.metrics`: PSNR, SSIM, Fréchet distance, Sinkhorn divergence, energy distance,
  MMD, 1-D Wasserstein-1, mode coverage;
- the model families: `generative.gan` (six GAN losses, conditional GANs), `generative.ali`
  (ALI / BiGAN), `generative.vae` (ELBO, IWAE), `generative.vqvae`; `generative.classifier`
  (digit features for a Fréchet distance); `generative.families` (train / evaluate a preset);
  `generative.modes` (the mode-coverage study); `generative.plots` (figures, animations).

Submodules are imported on use (`from generative import nets`).
"""

__all__ = [
    "ali",
    "classifier",
    "core",
    "data",
    "families",
    "gan",
    "layers",
    "metrics",
    "modes",
    "nets",
    "plots",
    "vae",
    "vqvae",
]
