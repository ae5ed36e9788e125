"""Text frontends: text -> list of token strings.

``Frontend.from_config({"frontend": "phoneme", "language": "en-us"})`` gives a :class:`PhonemeFrontend`
(espeak-ng through ``phonemizer``); ``{"frontend": "char"}`` a :class:`CharFrontend`. Both normalise first
(:func:`shared.text.normalize.normalize_text`), mark word boundaries with :data:`SPACE` and keep the
prosodic punctuation marks as tokens. Batch calls (:meth:`Frontend.tokens_batch`) are the fast path.

Example (en-us, stress "separate")::

    "Hello, world!" -> ['h', 'ə', 'l', 'ˈ', 'oʊ', ',', '▁', 'w', 'ˈ', 'ɜː', 'l', 'd', '!']
"""

from __future__ import annotations

import re
import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

from shared.text.espeak import setup_espeak
from shared.text.normalize import PUNCTUATION, normalize_text

SPACE = "\u2581"
"""Word-boundary token ('▁'), written as-is in ``data/<set>/token`` files."""

STRESS_MARKS = "\u02c8\u02cc"  # primary ˈ, secondary ˌ
_PUNCT_ALL = set(PUNCTUATION) | set(";:,.!?¡¿—…\"«»“”(){}[]")
_PUNCT_SPLIT = re.compile(f"([{re.escape(''.join(sorted(_PUNCT_ALL)))}])")
_WORD_SEP = " | "


@dataclass
class FrontendConfig:
    """Everything that decides the token sequence; saved beside tokens.txt so synthesis reproduces it."""

    frontend: str = "phoneme"  # "phoneme" | "char"
    language: str = "en-us"  # espeak-ng voice name (phoneme) / normalisation language (both)
    stress: str = "separate"  # phoneme only: "separate" (ˈ ˌ as tokens) | "attached" (ˈoʊ) | "none"
    punctuation: bool = True  # keep , . ! ? ; : as tokens
    lowercase: bool = True  # char only
    normalize: bool = True
    # speaker -> language of its training transcripts, where they came from a data dir's utt2lang (written by
    # tokenize --build-vocab): synthesis from raw text phonemises a speaker's text as its training text was
    speaker_languages: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.frontend not in ("phoneme", "char"):
            raise ValueError(f"frontend must be 'phoneme' or 'char', got {self.frontend!r}")
        if self.stress not in ("separate", "attached", "none"):
            raise ValueError(f"stress must be 'separate', 'attached' or 'none', got {self.stress!r}")


class Frontend:
    """Base class: ``tokens(text) -> list[str]``; subclasses implement :meth:`tokens_batch`."""

    def __init__(self, config: FrontendConfig):
        self.config = config

    @staticmethod
    def from_config(config: dict[str, Any] | FrontendConfig | str | Path | None = None, **overrides: Any) -> "Frontend":
        """Build a frontend from a dict, a :class:`FrontendConfig`, or a JSON/YAML file path (named by its errors)."""
        source = ""
        if isinstance(config, (str, Path)):
            from shared.config import read_yaml  # JSON is YAML

            source = f"{config}: "
            with open(config, encoding="utf-8") as f:
                config = read_yaml(f) or {}
        if isinstance(config, FrontendConfig):
            config = asdict(config)
        cfg = dict(config or {})
        cfg.update(overrides)
        known = {f.name for f in fields(FrontendConfig)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(f"{source}unknown frontend config key(s) {unknown}; known: {sorted(known)}")
        fc = FrontendConfig(**cfg)
        return PhonemeFrontend(fc) if fc.frontend == "phoneme" else CharFrontend(fc)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self.config)

    def normalize(self, text: str) -> str:
        return normalize_text(text, self.config.language) if self.config.normalize else " ".join(text.split())

    def tokens(self, text: str) -> list[str]:
        """Tokens of one sentence (use :meth:`tokens_batch` for many)."""
        return self.tokens_batch([text])[0]

    def tokens_batch(self, texts: Sequence[str]) -> list[list[str]]:
        raise NotImplementedError


class CharFrontend(Frontend):
    """Characters of the normalised text; spaces become :data:`SPACE`."""

    def tokens_batch(self, texts: Sequence[str]) -> list[list[str]]:
        out = []
        for text in texts:
            text = self.normalize(text)
            if self.config.lowercase:
                text = text.lower()
            if not self.config.punctuation:
                text = " ".join("".join(c for c in text if c not in PUNCTUATION).split())
            out.append([SPACE if c == " " else c for c in text])
        return out


def _cut_at_marks_found(backend: Any) -> None:
    """Make ``backend`` cut a line at the punctuation marks its pattern found, not elsewhere.

    phonemizer (3.4 and before) finds the marks to keep with a pattern that skips a point or comma between digits,
    then cuts the line at the first occurrence of each mark's *text*: in "Das Auto kostet 20.000 Euro." the final
    mark "." cuts at "20.000", the text comes back as two lines, and no line is whose any more. Its own pattern's
    matches are the places to cut. Where a phonemizer has no such internals, it is left as it is (the line count is
    still checked in :meth:`PhonemeFrontend.tokens_batch`)."""
    from phonemizer.punctuation import Punctuation

    punctuator = getattr(backend, "_punctuator", None)
    if type(punctuator) is not Punctuation or not hasattr(punctuator, "_preserve_line"):
        return

    class AtMatches(Punctuation):
        def _preserve_line(self, line: str, num: int):  # noqa: ANN202 - phonemizer's private types
            from phonemizer.punctuation import _MarkIndex

            matches = list(re.finditer(self._marks_re, line))
            if not matches:
                return [line], []
            if len(matches) == 1 and matches[0].group() == line:  # the line is only marks
                return [], [_MarkIndex(num, line, "A")]
            marks, pieces, start = [], [], 0
            for k, m in enumerate(matches):  # B: at the start, E: at the end, I: inside (phonemizer's)
                at_end = k == len(matches) - 1 and m.end() == len(line)
                position = "B" if k == 0 and m.start() == 0 else "E" if at_end else "I"
                marks.append(_MarkIndex(num, m.group(), position))
                pieces.append(line[start:m.start()])
                start = m.end()
            return pieces + [line[start:]], marks

    backend._punctuator = AtMatches(punctuator.marks)


class PhonemeFrontend(Frontend):
    """IPA phones from espeak-ng (``phonemizer``), word boundaries and punctuation kept."""

    def __init__(self, config: FrontendConfig):
        super().__init__(config)
        setup_espeak()
        from phonemizer.backend import EspeakBackend
        from phonemizer.separator import Separator

        logger = logging.getLogger("flowtts.phonemizer")
        logger.setLevel(logging.ERROR)
        try:
            self._backend = EspeakBackend(
                config.language, preserve_punctuation=config.punctuation, with_stress=config.stress != "none",
                language_switch="remove-flags", words_mismatch="ignore", logger=logger,
            )
        except RuntimeError as e:
            raise ValueError(f"espeak-ng has no voice for language {config.language!r}: {e}") from e
        if config.punctuation:
            _cut_at_marks_found(self._backend)
        self._separator = Separator(phone=" ", word=_WORD_SEP, syllable=None)

    def tokens_batch(self, texts: Sequence[str]) -> list[list[str]]:
        norm = [self.normalize(t) for t in texts]
        todo = [i for i, t in enumerate(norm) if t]
        out: list[list[str]] = [[] for _ in norm]
        if todo:
            phones = self._backend.phonemize([norm[i] for i in todo], separator=self._separator, strip=True, njobs=1)
            if len(phones) != len(todo):  # one text gave more or fewer lines, so which line is whose is lost: name it
                bad = [norm[i] for i in todo
                       if len(self._backend.phonemize([norm[i]], separator=self._separator, strip=True, njobs=1)) != 1]
                more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
                raise ValueError(f"phonemizer ({self.config.language}) did not give one line for the text "
                                 f"{bad[0] if bad else norm[todo[0]]!r}{more}")
            for i, line in zip(todo, phones):
                out[i] = self._parse(line)
        return out

    def _parse(self, line: str) -> list[str]:
        """``'h ə l ˈoʊ, | w ˈɜː l d!'`` -> ``['h', 'ə', 'l', 'ˈ', 'oʊ', ',', '▁', 'w', ...]``."""
        tokens: list[str] = []
        for word in line.split(_WORD_SEP.strip()):
            word_tokens: list[str] = []
            for piece in word.split():
                word_tokens.extend(self._split_piece(piece))
            if not word_tokens:
                continue
            if tokens and not all(t in PUNCTUATION for t in word_tokens):
                tokens.append(SPACE)
            tokens.extend(word_tokens)
        while tokens and tokens[0] in PUNCTUATION + SPACE:  # no leading boundary/punctuation
            tokens.pop(0)
        while tokens and tokens[-1] == SPACE:
            tokens.pop()
        return tokens

    def _split_piece(self, piece: str) -> list[str]:
        """One phone as espeak-ng wrote it, with any punctuation around or inside it (``oʊ,w`` of "Hello,world",
        ``uː.ˈɛ`` of "U.S.A."): each phone its own token, its stress marks split off or kept as configured, kept
        punctuation its own token, and a word boundary after a mark that phones follow."""
        out: list[str] = []
        mark_after_phone = False
        for part in _PUNCT_SPLIT.split(piece):
            if not part:
                continue
            if part in _PUNCT_ALL:
                if self.config.punctuation and part in PUNCTUATION:
                    out.append(part)
                mark_after_phone = any(t not in PUNCTUATION for t in out)
                continue
            if mark_after_phone:  # phones after a mark inside the piece: another word
                out.append(SPACE)
                mark_after_phone = False
            stress = ""
            while part and part[0] in STRESS_MARKS:
                stress, part = stress + part[0], part[1:]
            if self.config.stress == "separate":
                out.extend(stress)
                if part:
                    out.append(part)
            elif part:
                out.append(stress + part if self.config.stress == "attached" else part)
        return out
