"""Shared defaults of the SRVP presets (reference hyper-parameters, spec `video.md`)."""

import ml_collections

from generative.core.config import base_config


def srvp_config(dataset: str) -> ml_collections.ConfigDict:
    c = base_config()
    c.dataset = dataset  # smmnist | dmmnist | kth | human | bair
    c.data_dir = ""  # tfds data_dir (MNIST, BAIR) or dataset root (KTH, Human3.6M)
    c.digits = "auto"  # Moving MNIST digits: auto (MNIST if prepared, else font) | mnist | font
    c.num_font_digits = 0  # offline digits per split (0: 20000 train / 5000 test)
    c.seq_len = 15
    c.nt_cond = 5
    c.frame_stride = 1  # temporal subsampling of on-disk videos (Human3.6M: 8)
    c.batch_size = 128
    c.num_steps = 1_100_000
    c.log_every = 1000
    c.checkpoint_every = 10000
    c.optimizer.lr = 3e-4
    c.optimizer.schedule = "constant_then_linear_decay"
    c.optimizer.decay_steps = 100_000

    c.model = ml_collections.ConfigDict()
    c.model.nc = 1
    c.model.nf = 64
    c.model.nhx = 128
    c.model.ny = 20
    c.model.nz = 20
    c.model.nw = 256
    c.model.nt_inf = 5
    c.model.nh_inf = 256
    c.model.nlayers_inf = 3
    c.model.nh_res = 512
    c.model.nlayers_res = 4
    c.model.archi = "dcgan"  # dcgan | vgg
    c.model.skipco = False
    c.model.res_gain = 1.41
    c.model.dynamics = "residual"  # residual | mlp | gru (ablations)
    c.model.stochastic = True  # False: the "without z" ablation
    c.model.n_euler_steps = 1
    c.model.obs_scale = 1.0  # ν
    c.model.beta_y = 1.0
    c.model.beta_z = 2.0
    c.model.l2_res = 1.0

    c.eval = ml_collections.ConfigDict()
    c.eval.num_videos = 5000  # test videos (Moving MNIST: generated with eval.seed)
    c.eval.seed = 42
    c.eval.horizon = 20  # predicted frames after nt_cond conditioning frames
    c.eval.n_samples = 100  # best-of-N
    c.eval.batch_size = 16  # videos per evaluation batch (× n_samples generations)
    # samples generated together (0: evaluation.auto_sample_chunk: <= 160 frames on CPU,
    # all at once elsewhere)
    c.eval.sample_chunk = 0
    c.eval.lpips_weights = ""  # converted LPIPS AlexNet v0.1 .npz (see video/perceptual.py)
    c.eval.i3d_weights = ""  # converted I3D .npz for FVD
    c.eval.num_gifs = 4  # sample GIFs written by `video eval`
    c.eval.at_end = False  # run the full evaluation after training
    c.eval.log_videos = 0  # quick best-of-log_samples PSNR/SSIM at every log step (0: off)
    c.eval.log_samples = 4
    return c
