"""Stage one: a speech VAE / neural codec (Gaussian VAE, RVQ or FSQ codec, mel vocoder) whose latents
stage two learns to generate. ``load_codec(exp_dir)`` is the only thing stage two needs from here."""

from stage1_vae.codec import load_codec

__all__ = ["load_codec"]
