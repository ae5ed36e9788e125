"""Edit distance and token/phone/word error rates (own Levenshtein with operation counts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass
class EditCounts:
    """Operation counts of one (or a sum of) alignments; ``ref_len`` is the reference length."""

    sub: int = 0
    ins: int = 0
    dele: int = 0
    ref_len: int = 0

    @property
    def errors(self) -> int:
        return self.sub + self.ins + self.dele

    @property
    def rate(self) -> float:
        """Errors / reference length (can exceed 1); 0 for two empty sequences, inf if only the reference is empty."""
        if self.ref_len == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return self.errors / self.ref_len

    def __add__(self, other: "EditCounts") -> "EditCounts":
        return EditCounts(self.sub + other.sub, self.ins + other.ins, self.dele + other.dele,
                          self.ref_len + other.ref_len)

    def as_dict(self) -> dict[str, float]:
        return {"sub": self.sub, "ins": self.ins, "del": self.dele, "ref_len": self.ref_len,
                "errors": self.errors, "rate": self.rate}


def edit_distance(ref: Sequence, hyp: Sequence) -> EditCounts:
    """Levenshtein alignment of ``hyp`` against ``ref`` with unit costs; ties prefer substitution.

    Dynamic programming over ``(len(ref)+1, len(hyp)+1)`` cells holding (cost, sub, ins, del).
    """
    n, m = len(ref), len(hyp)
    # prev[j] = (cost, sub, ins, del) for ref[:i-1] vs hyp[:j]
    prev = [(j, 0, j, 0) for j in range(m + 1)]
    for i in range(1, n + 1):
        cur = [(i, 0, 0, i)]
        for j in range(1, m + 1):
            c, s, a, d = prev[j - 1]
            if ref[i - 1] == hyp[j - 1]:
                best = (c, s, a, d)
            else:
                best = (c + 1, s + 1, a, d)
            c, s, a, d = cur[j - 1]  # insertion of hyp[j-1]
            if c + 1 < best[0]:
                best = (c + 1, s, a + 1, d)
            c, s, a, d = prev[j]  # deletion of ref[i-1]
            if c + 1 < best[0]:
                best = (c + 1, s, a, d + 1)
            cur.append(best)
        prev = cur
    _, s, a, d = prev[m]
    return EditCounts(s, a, d, n)


def error_rate(refs: Sequence[Sequence], hyps: Sequence[Sequence]) -> EditCounts:
    """Corpus-level counts: total edits over total reference length (not a mean of per-utterance rates)."""
    if len(refs) != len(hyps):
        raise ValueError(f"error_rate: {len(refs)} references but {len(hyps)} hypotheses")
    total = EditCounts()
    for r, h in zip(refs, hyps):
        total = total + edit_distance(r, h)
    return total
