"""Stage one: a speech VAE / neural codec (Gaussian VAE, RVQ or FSQ codec, mel vocoder) whose latents
stage two learns to generate. ``load_codec(exp_dir)`` is the only thing stage two needs from here."""

__all__ = ["load_codec"]


def __getattr__(name: str):
    # imported on first use, not with the package: `python -m stage1_vae.codec` would otherwise find its own module
    # already imported (runpy's RuntimeWarning) and every `python -m stage1_vae.<verb>` would load the codec's code
    if name == "load_codec":
        from stage1_vae.codec import load_codec

        return load_codec
    raise AttributeError(f"module 'stage1_vae' has no attribute {name!r}")
