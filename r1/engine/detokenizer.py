"""Incremental detokenization with stop strings, one `TextStream` per sample.

Choices:
- The text is always the decode of all the sample's tokens (`tokenizer.decode(ids)`), never a concatenation
  of per-token decodes, so byte-level BPE pieces that only form a character together, and tokenizers that
  merge spaces across tokens, give exactly `decode(token_ids)`. Deltas are the growth of that text.
- A trailing U+FFFD (an incomplete UTF-8 sequence) is held back until the next token completes it.
- Stop strings are searched in the whole new text, overlapping the previous delta, so a stop string split
  across tokens is found. The text is cut before the match, the stop string is not returned. While the
  text's tail could be the start of a stop string, that tail is held back (sent later, or never if it
  turns out to be the stop string), so the concatenated deltas always equal the final text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Decode = Callable[[list[int]], str]


class TextStream:
    """feed(tokens) -> the new text to emit; `stopped` is the matched stop string once one matches."""

    def __init__(self, decode: Decode, stop: Sequence[str] = ()):
        self._decode = decode
        self._stop = tuple(stop)
        self._longest = max((len(s) for s in self._stop), default=0)
        self.tokens: list[int] = []
        self.text = ""  # decoded so far, cut at a matched stop string
        self.emitted = 0  # characters of `text` already returned
        self.stopped: str | None = None

    def feed(self, tokens: Sequence[int]) -> str:
        if self.stopped is not None:
            return ""
        self.tokens.extend(tokens)
        text = self._decode(self.tokens)
        if self._stop:
            match = first_stop(text, self._stop, max(0, len(self.text) - self._longest))
            if match is not None:
                at, self.stopped = match
                self.text = text[:at]
                return self._emit(len(self.text))
        self.text = text
        ready = len(text.rstrip("\ufffd")) if text.endswith("\ufffd") else len(text)
        ready -= held_back(text[:ready], self._stop)
        return self._emit(ready)

    def flush(self) -> str:
        """Everything not yet returned (at the end of the sample)."""
        return self._emit(len(self.text))

    def _emit(self, upto: int) -> str:
        if upto <= self.emitted:
            return ""
        delta, self.emitted = self.text[self.emitted:upto], upto
        return delta


def first_stop(text: str, stops: Sequence[str], start: int) -> tuple[int, str] | None:
    """(index, stop string) of the earliest stop string in text[start:], or None."""
    best: tuple[int, str] | None = None
    for stop in stops:
        at = text.find(stop, start)
        if at >= 0 and (best is None or at < best[0]):
            best = (at, stop)
    return best


def held_back(text: str, stops: Sequence[str]) -> int:
    """Length of the longest tail of `text` that is a proper prefix of some stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest
