"""Reward specs: how one response's checks add up to the scalar reward RL sees.

DeepSeek-R1-Zero rewards *accuracy* (the answer checked against the gold, by the item's own kind: math,
code or choice) plus *format* (the `<think>`/`<answer>` template). R1's reasoning RL "combines the accuracy
of reasoning tasks and the reward for language consistency by directly summing them" (§2.3.3); we keep the
format term there too, as the template does not change between the stages. A spec is the weight of each
term; the total is the weighted sum, and the verdict reported is the accuracy verdict (it is what pass@1
counts). Presets name the paper's combinations; any other mix is a `RewardSpec(...)` in a recipe.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from r1.errors import InvalidArgument
from r1.rewards.format import check_format
from r1.rewards.language import language_consistency
from r1.rewards.verdict import RewardResult, Verdict


@dataclass(frozen=True)
class RewardSpec:
    """Weights of the reward terms.

    accuracy: weight of the accuracy check (the item's kind decides how it is checked).
    format: weight of the R1-Zero format reward (0 or 1 per response).
    language: weight of the language-consistency reward (share of CoT words in `target_language`).
    target_language: BCP-47 code for the language term ("en", "zh", ...).
    think_prefilled: the prompt already opened `<think>`, so the response starts inside it.
    """

    accuracy: float = 1.0
    format: float = 0.0
    language: float = 0.0
    target_language: str = "en"
    think_prefilled: bool = False

    def __post_init__(self) -> None:
        for name in ("accuracy", "format", "language"):
            if getattr(self, name) < 0:
                raise InvalidArgument(f"reward.{name}", f"weights must be >= 0, got {getattr(self, name)}")


PRESETS: dict[str, RewardSpec] = {
    "accuracy": RewardSpec(accuracy=1.0),
    "r1-zero": RewardSpec(accuracy=1.0, format=1.0),
    "r1-reasoning": RewardSpec(accuracy=1.0, format=1.0, language=1.0),
}


def preset(name: str) -> RewardSpec:
    if name not in PRESETS:
        raise InvalidArgument("reward", f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclass(frozen=True)
class ScoredResponse:
    """The total reward, each term's value before weighting, and the accuracy check it rests on."""

    total: float
    terms: dict[str, float] = field(default_factory=dict)
    accuracy: RewardResult = RewardResult(0.0, Verdict.NO_ANSWER)

    @property
    def verdict(self) -> Verdict:
        return self.accuracy.verdict


def score(spec: RewardSpec, response: str, accuracy: RewardResult) -> ScoredResponse:
    """Weighted sum of the accuracy result (already checked) and the format and language terms."""
    terms = {"accuracy": accuracy.reward}
    if spec.format:
        terms["format"] = check_format(response, spec.think_prefilled).reward
    if spec.language:
        terms["language"] = language_consistency(response, spec.target_language)
    weights = {"accuracy": spec.accuracy, "format": spec.format, "language": spec.language}
    total = sum(weights[name] * value for name, value in terms.items())
    return ScoredResponse(total=total, terms=terms, accuracy=accuracy)
