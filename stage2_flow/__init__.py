"""Stage two of flowtts: rectified flow matching from a text-conditioned prior to frozen stage-one latents.

Entry points (each ``python -m stage2_flow.<verb> --help``): ``train``, ``reflow``, ``synthesize``,
``likelihood``; ``codec`` (stand-in mel codec + latent dump) and ``fake`` (tiny synthetic corpus) for
development. Python API: :class:`stage2_flow.synthesize.Synthesizer`.
"""
