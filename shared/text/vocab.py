"""Token vocabulary (``tokens.txt``: one ``<token> <id>`` per line, ids 0..N-1 in order).

Reserved ids (always present, always first):

====  ============  ==========================================================================
id    token         use
====  ============  ==========================================================================
0     ``<pad>``     padding in batches
1     ``<unk>``     unknown symbol; only ever produced when explicitly asked (``map_unknown``)
2     ``<blank>``   CTC blank (phone recogniser)
3     ``<sos/eos>`` sentence start/end for models that want one
4     ``<filler>``  filler that pads the text to the latent length in alignment-free stage two
====  ============  ==========================================================================

Real tokens follow from id 5, sorted by code point, so the same training set always gives the same file.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Mapping, Sequence

from shared.io import PathLike, atomic_write

PAD, UNK, BLANK, SOS_EOS, FILLER = "<pad>", "<unk>", "<blank>", "<sos/eos>", "<filler>"
SPECIAL_TOKENS = (PAD, UNK, BLANK, SOS_EOS, FILLER)


class UnknownTokenError(ValueError):
    """Tokens not in the vocabulary; ``problems`` maps utterance id -> sorted unknown symbols."""

    def __init__(self, problems: Mapping[str, Sequence[str]], vocab_path: str | None = None):
        self.problems = {utt: sorted(set(syms)) for utt, syms in problems.items()}
        counts = Counter(s for syms in problems.values() for s in syms)
        where = f" of {vocab_path}" if vocab_path else ""
        lines = [f"{utt}: {' '.join(repr(s) for s in syms)}" for utt, syms in sorted(self.problems.items())]
        super().__init__(
            f"{len(self.problems)} utterance(s) contain {len(counts)} symbol(s) not in the vocabulary{where} "
            f"({', '.join(f'{s!r} in {n}' for s, n in counts.most_common())}); rebuild the vocabulary on data "
            f"that covers them or pass --map-unknown to map them to {UNK}:\n  " + "\n  ".join(lines)
        )


class Vocab:
    """Bidirectional token <-> id map. ``vocab.encode(tokens, utt=...)``, ``vocab.decode(ids)``."""

    def __init__(self, tokens: Sequence[str], path: str | None = None):
        for i, tok in enumerate(SPECIAL_TOKENS):
            if i >= len(tokens) or tokens[i] != tok:
                raise ValueError(f"{path or 'vocabulary'}: id {i} must be {tok!r}")
        bad = [t for t in tokens if not t or any(c.isspace() for c in t)]
        if bad:
            raise ValueError(f"{path or 'vocabulary'}: tokens must be non-empty without whitespace: {bad!r}")
        self.itos = list(tokens)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            dup = [t for t, n in Counter(self.itos).items() if n > 1]
            raise ValueError(f"{path or 'vocabulary'}: duplicate tokens {dup!r}")
        self.path = path

    pad_id, unk_id, blank_id, sos_eos_id, filler_id = range(5)
    num_special = len(SPECIAL_TOKENS)

    # ---- building, loading, saving ------------------------------------------------------------
    @classmethod
    def build(cls, sequences: Iterable[Sequence[str]]) -> "Vocab":
        """Vocabulary of every token in ``sequences`` (special tokens first, the rest sorted)."""
        seen: set[str] = set()
        for seq in sequences:
            seen.update(seq)
        seen -= set(SPECIAL_TOKENS)
        return cls(list(SPECIAL_TOKENS) + sorted(seen))

    @classmethod
    def load(cls, path: PathLike) -> "Vocab":
        """Read ``tokens.txt``; errors name the file and line."""
        tokens: list[str] = []
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                parts = line.rstrip("\n").split(" ")
                if len(parts) != 2 or not parts[1].isdigit():
                    raise ValueError(f"{path}:{lineno}: expected '<token> <id>', got {line.rstrip()!r}")
                if int(parts[1]) != len(tokens):
                    raise ValueError(f"{path}:{lineno}: id {parts[1]} out of order (expected {len(tokens)})")
                tokens.append(parts[0])
        return cls(tokens, path=str(path))

    def save(self, path: PathLike) -> None:
        with atomic_write(path) as f:
            for i, tok in enumerate(self.itos):
                f.write(f"{tok} {i}\n")

    # ---- mapping ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def unknown(self, tokens: Iterable[str]) -> list[str]:
        """Tokens of ``tokens`` not in the vocabulary, in order of first appearance."""
        return list(dict.fromkeys(t for t in tokens if t not in self.stoi))

    def encode(self, tokens: Sequence[str], utt: str | None = None, map_unknown: bool = False) -> list[int]:
        """Token ids; raises :class:`UnknownTokenError` naming ``utt`` unless ``map_unknown``."""
        if not map_unknown:
            missing = self.unknown(tokens)
            if missing:
                raise UnknownTokenError({utt or "<input>": missing}, self.path)
        return [self.stoi.get(t, self.unk_id) for t in tokens]

    def encode_all(self, utt2tokens: Mapping[str, Sequence[str]], map_unknown: bool = False) -> dict[str, list[int]]:
        """Encode many utterances; the error lists every offending utterance at once."""
        if not map_unknown:
            problems = {u: self.unknown(toks) for u, toks in utt2tokens.items()}
            problems = {u: p for u, p in problems.items() if p}
            if problems:
                raise UnknownTokenError(problems, self.path)
        return {u: self.encode(toks, utt=u, map_unknown=True) for u, toks in utt2tokens.items()}

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> list[str]:
        """Tokens of ``ids``; ``skip_special`` drops pad/blank/sos-eos/filler (but keeps <unk>)."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise IndexError(f"token id {i} outside the vocabulary (size {len(self.itos)})")
            if skip_special and i < self.num_special and i != self.unk_id:
                continue
            out.append(self.itos[i])
        return out
