"""Code both stages share: audio I/O, features, Kaldi data directories, text frontend, batching,
configuration, metrics and evaluation."""
