"""Text normalisation shared by the phoneme and character frontends.

Decisions (see ``shared/text/README.md``):

* Unicode NFKC, typographic quotes/dashes/ellipses mapped to ASCII-ish forms, whitespace collapsed.
* Case is preserved (espeak-ng uses it, e.g. for acronyms); the character frontend lowercases itself.
* For English (``en*``) digits, currency, percent, ordinals, years and common abbreviations are spelled
  out; other languages keep digits, which espeak-ng reads in the right language.
* Prosodic punctuation ``, . ! ? ; :`` is kept (one mark per run, no space before it); brackets and
  dashes become commas, quotes are dropped.
"""

from __future__ import annotations

import re
import unicodedata

from shared.text.numbers import expand_numbers_en

PUNCTUATION = ",.!?;:"
"""Marks kept as tokens by every frontend (they carry pauses and intonation)."""

_ABBREVIATIONS_EN = {
    "mr": "mister", "mrs": "misses", "ms": "miz", "dr": "doctor", "prof": "professor", "st": "saint",
    "jr": "junior", "sr": "senior", "capt": "captain", "col": "colonel", "gen": "general", "lt": "lieutenant",
    "sgt": "sergeant", "rev": "reverend", "hon": "honorable", "gov": "governor", "co": "company",
    "ltd": "limited", "inc": "incorporated", "mt": "mount", "ft": "fort", "vs": "versus",
    "etc": "et cetera", "approx": "approximately", "dept": "department", "est": "established",
}
_RE_ABBREV_EN = re.compile(r"\b(" + "|".join(_ABBREVIATIONS_EN) + r")\.(?=\s|$)", re.IGNORECASE)
_RE_EG = re.compile(r"\be\.g\.", re.IGNORECASE)
_RE_IE = re.compile(r"\bi\.e\.", re.IGNORECASE)
# "No." only before a digit means "number" (otherwise it ends a sentence: "I said no.")
_RE_NO = re.compile(r"\bno\.(?=\s*\d)", re.IGNORECASE)

_CHAR_MAP = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "`": "'", "\u00b4": "'",
    "\u201c": "", "\u201d": "", "\u201e": "", "\u00ab": "", "\u00bb": "", '"': "",
    "\u2013": " , ", "\u2014": " , ", "\u2015": " , ", "(": " , ", ")": " , ", "[": " , ", "]": " , ", "{": " , ",
    "}": " , ",
    "\u2026": ".", "\u00a1": "", "\u00bf": "", "\t": " ", "\n": " ", "\r": " ", "\u00a0": " ",
    "_": " ", "*": " ", "~": " ", "|": " ",
}
_SYMBOLS_EN = {"&": " and ", "+": " plus ", "@": " at ", "=": " equals ", "#": " number ", "/": " slash "}
_RE_SPACES = re.compile(r"\s+")
_RE_SPACE_BEFORE_PUNCT = re.compile(r"\s+([" + re.escape(PUNCTUATION) + r"])")
_RE_PUNCT_RUN = re.compile(r"([" + re.escape(PUNCTUATION) + r"])[" + re.escape(PUNCTUATION) + r"\s]*(?=[" +
                           re.escape(PUNCTUATION) + r"])")
_RE_SPACED_HYPHEN = re.compile(r"\s-+\s|\s-+$|^-+\s|--+")


def is_english(language: str) -> bool:
    return language.lower().startswith("en")


def normalize_text(text: str, language: str = "en-us") -> str:
    """Normalise one sentence; see the module docstring. Returns '' for text with nothing to say."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(_CHAR_MAP.get(c, c) for c in text)
    text = _RE_SPACED_HYPHEN.sub(" , ", text)
    if is_english(language):
        text = _RE_EG.sub("for example", text)
        text = _RE_IE.sub("that is", text)
        text = _RE_NO.sub("number", text)
        text = _RE_ABBREV_EN.sub(lambda m: _ABBREVIATIONS_EN[m.group(1).lower()], text)
        text = expand_numbers_en(text)
        for sym, word in _SYMBOLS_EN.items():
            text = text.replace(sym, word)
    text = _RE_SPACES.sub(" ", text).strip()
    text = _RE_SPACE_BEFORE_PUNCT.sub(r"\1", text)
    # keep the strongest-looking mark of a run: the last one ("?!" -> "!", ",." -> ".")
    text = _RE_PUNCT_RUN.sub("", text)
    text = text.lstrip(PUNCTUATION + " ")
    return _RE_SPACES.sub(" ", text).strip()
