"""Symbols a vocabulary should hold even when the training text happens to miss some.

A vocabulary built only from training transcripts fails on a test sentence with a rare phone (a small
corpus may never say "fire", ``aɪə``). For a frontend whose symbol set is known, ``--build-vocab``
therefore adds the whole set: the espeak-ng phone inventory of the language (with stress marks when they
are separate tokens), or the letters of the alphabet for the character frontend, plus the word boundary
and the punctuation tokens.
"""

from __future__ import annotations

from shared.text.normalize import PUNCTUATION

# Phones espeak-ng 1.52 (en-us) produces on ordinary English words: measured by phonemising ~25k distinct
# words (stress off) and keeping phones seen more than a handful of times, plus 'x' (loch).
EN_US_INVENTORY = tuple(
    "p b t d k ɡ f v θ ð s z ʃ ʒ h tʃ dʒ m n ŋ l ɹ w j ɾ ʔ n̩ x "
    "iː ɪ i eɪ ɛ æ ɑː ɔː ɔ oʊ ʊ uː ʌ ə ɚ ɜː ᵻ ɐ aɪ aʊ ɔɪ əl iə aɪə aɪɚ ɑːɹ ɔːɹ ɛɹ ɪɹ ʊɹ".split()
)
PHONE_INVENTORIES: dict[str, tuple[str, ...]] = {"en-us": EN_US_INVENTORY}
STRESS_MARKS = ("ˈ", "ˌ")


def base_symbols(frontend: str, language: str, stress: str = "separate", punctuation: bool = True,
                 lowercase: bool = True) -> list[str]:
    """The known symbol set of a frontend configuration (empty where none is known)."""
    from shared.text.frontend import SPACE

    if frontend == "phoneme":
        phones = PHONE_INVENTORIES.get(language)
        if phones is None:
            return []
        symbols = list(phones) + (list(STRESS_MARKS) if stress == "separate" else [])
    elif frontend == "char" and language.startswith("en"):
        letters = "abcdefghijklmnopqrstuvwxyz"
        symbols = list(letters) + ([] if lowercase else list(letters.upper())) + ["'"]
    else:
        return []
    return symbols + [SPACE] + (list(PUNCTUATION) if punctuation else [])
