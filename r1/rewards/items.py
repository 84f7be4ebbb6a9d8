"""What the verifier checks: a response and one kind of check, as library types.

An `Item` pairs a model response with exactly one check: `MathCheck`, `ChoiceCheck`, `CodeRequest` (from
`code.py`; an empty `source` means "take the program from the response"), `FormatCheck` or
`LanguageCheck`; or `Invalid`, a request that could not be read, which the verifier answers INVALID_INPUT
in its place so that a bad line or message loses nothing and keeps its position. The wire types
(`r1.verifier.v1.VerifyItem`) and the JSONL lines of `r1 verify` both convert to these, so in-process and
remote verification run the same code on the same values.
"""

from __future__ import annotations

from dataclasses import dataclass

from r1.rewards.code import CodeRequest
from r1.rewards.math import Profile


@dataclass(frozen=True)
class MathCheck:
    """reference: the gold answer (plain or LaTeX, boxed or not); profile: STRICT for RL, LENIENT for eval."""

    reference: str
    profile: Profile = Profile.STRICT


@dataclass(frozen=True)
class ChoiceCheck:
    """reference: the correct letter; choices: option texts in letter order (their count bounds the letters)."""

    reference: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class FormatCheck:
    """The R1-Zero template; think_prefilled: the prompt already opened `<think>`."""

    think_prefilled: bool = False


@dataclass(frozen=True)
class LanguageCheck:
    """target_language: BCP-47 code; pass_threshold: share of target-language words for CORRECT."""

    target_language: str
    pass_threshold: float = 0.5


@dataclass(frozen=True)
class Invalid:
    """A check that could not be built: `kind` as the request named it ("" if it named none) and why."""

    kind: str
    reason: str


Check = MathCheck | ChoiceCheck | CodeRequest | FormatCheck | LanguageCheck | Invalid

KIND_BY_CHECK: dict[type, str] = {
    MathCheck: "math", ChoiceCheck: "choice", CodeRequest: "code", FormatCheck: "format",
    LanguageCheck: "language",
}


@dataclass(frozen=True)
class Item:
    """response: the model's full response; check: what to check it against; id: the caller's, echoed;
    deadline: seconds for this item (None: the verifier's default)."""

    response: str
    check: Check
    id: str = ""
    deadline: float | None = None

    @property
    def kind(self) -> str:
        if isinstance(self.check, Invalid):
            return self.check.kind or "unknown"
        return KIND_BY_CHECK[type(self.check)]
