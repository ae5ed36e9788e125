"""Corpus preparation into Kaldi data directories.

* :mod:`shared.corpora.espeak_mini` - the default synthetic corpus (our sentences, espeak-ng voices);
  :func:`shared.corpora.espeak_synth.synthesize` gives the espeak-ng reference audio of any sentence.
* :mod:`shared.corpora.ljspeech`, :mod:`shared.corpora.libritts`, :mod:`shared.corpora.vctk` - read a
  corpus already on disk in its published layout (``python -m shared.corpora.<name> --help``).
"""
