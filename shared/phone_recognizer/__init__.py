"""A small CTC phone recogniser that scores the intelligibility of synthesised speech.

Off-the-shelf offline ASR cannot read espeak-ng speech, so the recipe trains this model on the training
split's real audio and reports the phone error rate (PER) of synthesised and of real test audio.

- :mod:`.model`: ``PhoneRecognizer`` (log-mel 80 -> conv, stride 4 -> 2-layer BiGRU -> CTC) and greedy decoding.
- :mod:`.train`: ``python -m shared.phone_recognizer.train --data-dir data/train --token-file data/train/token
  --dev-dir data/dev --exp-dir exp/asr [--config conf/asr.yaml] [key=value ...]``.
- :mod:`.score`: ``python -m shared.phone_recognizer.score --exp-dir exp/asr --data-dir DIR
  --ref-token-file data/test/token --out per.json``.
- :mod:`.data`: which tokens are phones (word boundary, punctuation and stress marks are dropped).
- :mod:`.toy`: formant-synthesised toy utterances for tests.
"""
