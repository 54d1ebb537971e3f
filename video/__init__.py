"""Stochastic Latent Residual Video Prediction (SRVP, Franceschi et al., ICML 2020) in JAX."""
