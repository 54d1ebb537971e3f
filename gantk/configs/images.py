"""Image flows `DATASET-LOSS-KERNEL` at 32×32 (1024 targets and particles, η = 100, T = 1000).

gantk flow --config images:mnist-inf_lsgan-relu
gantk flow --config images:celeb_a-inf_ipm-relu data.data_dir=/path/to/tensorflow_datasets

MNIST comes from tensorflow-datasets when prepared, otherwise from the offline font digits
(printed at start-up); CelebA must be prepared (`tfds build celeb_a`).
"""

import itertools

from gantk.configs._base import flow_config

DATASETS = ("mnist", "celeb_a")
LOSSES = {"inf_ipm": "ipm", "inf_lsgan": "lsgan"}
KERNELS = ("relu", "relu_nobias")
VARIANTS = [f"{d}-{l}-{k}" for d, l, k in itertools.product(DATASETS, LOSSES, KERNELS)]


def get_config(cell: str):
    dataset, loss, kernel = cell.split("-")
    c = flow_config()
    c.data.name = dataset
    c.data.n_particles = 1024
    c.data.n_targets = 1024
    c.loss.name = LOSSES[loss]
    c.loss.t = 1000.0
    c.loss.lanczos_iters = 200  # 2tλ is large at T = 1000: more Krylov steps
    c.eta = 100.0
    c.kernel.architecture = kernel
    c.kernel.block_size = 2048
    c.num_steps = 50_000
    c.log_every = 1000
    c.checkpoint_every = 10_000
    c.eval.sinkhorn_epsilon = 10.0  # squared distances between 32×32 images are O(10³)
    return c
