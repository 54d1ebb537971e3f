"""Shared defaults of the separation-of-variables presets (reference hyper-parameters)."""

import ml_collections

from generative.core.config import base_config


def separation_config() -> ml_collections.ConfigDict:
    c = base_config()
    c.dataset = "waveeq"
    c.data_dir = ""  # "" -> $PHYSICS_CACHE_DIR or ~/.cache/generative/physics
    c.num_sequences = 300  # WaveEq generation (seed 42), first num_train are training
    c.num_train = 240
    c.grid_size = 64
    c.sim_frames = 300  # RK4 frames at dt = 1e-3, subsampled by 2 -> 150
    c.cond_frames = 5
    c.pred_frames = 20
    c.eval_pred_frames = 40
    c.eval_stride = 25  # start offsets of the test windows
    c.eval_windows = 100000  # cap on test windows
    c.eval_batch = 64
    c.log_eval_windows = 64  # windows scored at every log step (0: none)
    c.batch_size = 128
    c.num_steps = 250 * 240 * 126 // 128  # 250 epochs over every (sequence, start) window
    c.log_every = 500
    c.checkpoint_every = 5000
    c.optimizer.lr = 4e-4
    c.optimizer.b1 = 0.9
    c.optimizer.b2 = 0.99

    c.model = ml_collections.ConfigDict()
    c.model.encoder = "mlp"  # mlp | dcgan | vgg | resnet | conv_skip
    c.model.decoder = "mlp"  # mlp | dcgan | vgg | conv_skip
    c.model.content_dim = 32
    c.model.dynamic_dim = 32
    c.model.mixing = "mul"  # concat | mul
    c.model.use_content = True  # False: the "without S" ablation
    c.model.enc_hidden = 1200
    c.model.enc_layers = 3
    c.model.dec_hidden = 1200
    c.model.dec_layers = 4
    c.model.gain = 0.71
    c.model.nf = 64
    c.model.output_activation = ""  # "" -> decoder default (none for mlp, sigmoid for conv)

    c.dynamics = ml_collections.ConfigDict()
    c.dynamics.kind = "residual"  # residual (reference) | ode (diffrax)
    c.dynamics.n_blocks = 3
    c.dynamics.hidden = 512
    c.dynamics.activation = "relu"
    c.dynamics.solver = "rk4"  # euler | heun | midpoint | rk4 | bosh3 | dopri5 | tsit5
    c.dynamics.dt = 0.5  # step in frames (first step for adaptive solvers)
    c.dynamics.adjoint = "recursive"  # recursive (DTO) | backsolve (OTD)
    c.dynamics.rtol = 1e-4
    c.dynamics.atol = 1e-6

    c.loss = ml_collections.ConfigDict()
    c.loss.pred = 45.0
    c.loss.ae = 10.0
    c.loss.s = 45.0
    c.loss.t = 1e-3
    return c
