"""Text frontend: normalisation, phonemes (espeak-ng) or characters, and the token vocabulary.

Public API::

    from shared.text import Frontend, Vocab
    fe = Frontend.from_config({"frontend": "phoneme", "language": "en-us"})
    toks = fe.tokens("Hello, world!")            # ['h', 'ə', 'l', 'ˈ', 'oʊ', ',', '▁', 'w', ...]
    vocab = Vocab.load("exp/tokens.txt")
    ids = vocab.encode(toks, utt="utt1")         # UnknownTokenError names utt1 and the symbols
    vocab.decode(ids)

CLI: ``python -m shared.text.tokenize`` (see its docstring). Reserved ids are documented in
:mod:`shared.text.vocab`.
"""

from shared.text.frontend import SPACE, CharFrontend, Frontend, FrontendConfig, PhonemeFrontend
from shared.text.normalize import PUNCTUATION, normalize_text
from shared.text.vocab import SPECIAL_TOKENS, UnknownTokenError, Vocab

__all__ = [
    "SPACE", "PUNCTUATION", "SPECIAL_TOKENS", "Frontend", "FrontendConfig", "PhonemeFrontend", "CharFrontend",
    "normalize_text", "UnknownTokenError", "Vocab",
]
