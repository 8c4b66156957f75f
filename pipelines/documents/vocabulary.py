"""The index's own words, learned from its chunks, to read a query's words that no chunk holds. No Dagster.

A writer's shorthand outruns any synonym table: "brkt", "rsvr", "ctlr" or "EDP" are read by a mechanic from the
words around them, and the index holds those words. A query word of three letters or more whose stem no chunk
holds is read as
- an acronym of a run of words of the index ("gcu" -> "generator control unit": the most frequent run whose
  initials spell it), when it has three letters, or up to five written in capitals or with no vowel after the
  first (a plain word such as "flat" is not read as "found left aileron trim");
- else a shortening of a word of the index: the word's beginning ("elev" -> "elevator"), or, when it has no vowel
  after its first letter (as "brkt", "rsvr", "assy": a plain word such as "flow" or "tank" is never read as
  one), its letters in order in the word from the word's first letter ("brkt" -> "bracket"); words that end with
  its last letter and frequent words first.
What it finds weighs 1 in all (shared among ties), as the word itself would have. These are the textbook rules of
abbreviation detection; only the vowel rule was added, after the development queries showed plain words read as
abbreviations ("flow" as "following"). A misspelling rule (one edit away) was tried and dropped: it read "pilot"
as "pitot".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

ACRONYM_LENGTHS = range(3, 6)
VOWELS = frozenset("aeiou")
MAX_READINGS = 2
"""At most this many readings of an abbreviation are kept (the best, and one as good or nearly)."""


def _is_subsequence(short: str, long: str) -> bool:
    letters = iter(long)
    return all(c in letters for c in short)


class Vocabulary:
    """Words (after the synonym table, before stemming) and runs of words of the indexed chunks."""

    def __init__(self, chunks: Iterable[list[str]], stem: Callable[[str], str]) -> None:
        self.stem = stem
        self.counts: Counter[str] = Counter()
        self.runs: dict[str, Counter[tuple[str, ...]]] = {}
        for words in chunks:
            self.counts.update(set(words))
            for n in ACRONYM_LENGTHS:
                for i in range(len(words) - n + 1):
                    run = tuple(words[i:i + n])
                    if all(w.isalpha() for w in run):
                        self.runs.setdefault("".join(w[0] for w in run), Counter())[run] += 1
        self.stems = {stem(w) for w in self.counts}
        self._by_initial: dict[str, list[str]] = {}
        for word in self.counts:
            self._by_initial.setdefault(word[0], []).append(word)

    def known(self, word: str) -> bool:
        return self.stem(word) in self.stems

    def readings(self, word: str, *, capitals: bool = False) -> dict[str, float]:
        """The index's words a word no chunk holds stands for, weighed; {} when none (or when it is known).
        `capitals`: the word was written in capitals (an acronym, whatever its letters)."""
        if len(word) < 3 or not word.isalpha() or self.known(word):
            return {}
        squeezed = not VOWELS.intersection(word[1:])
        acronym = len(word) == 3 or capitals or squeezed
        if acronym and len(word) in ACRONYM_LENGTHS and (runs := self.runs.get(word)):
            top = max(runs.values())
            best = [run for run, count in runs.items() if count == top]
            return _shared([w for run in best for w in run], len(best))
        candidates = [w for w in self._by_initial.get(word[0], ()) if len(w) > len(word)
                      and (w.startswith(word) or (squeezed and _is_subsequence(word, w)))]
        if not candidates:
            return {}

        def score(w: str) -> float:
            return self.counts[w] * (4 if w.startswith(word) else 1) * (2 if w[-1] == word[-1] else 1)

        ranked = sorted(candidates, key=lambda w: (-score(w), w))[:MAX_READINGS]
        kept = [w for w in ranked if score(w) >= 0.5 * score(ranked[0])]
        return _shared(kept, len(kept))


def _shared(words: list[str], readings: int) -> dict[str, float]:
    """Each reading's words weigh 1 / readings (a word in several readings adds up)."""
    out: dict[str, float] = {}
    for w in words:
        out[w] = out.get(w, 0.0) + 1.0 / readings
    return out
