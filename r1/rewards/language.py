"""Language consistency, the reward DeepSeek-R1 adds in its reasoning RL stage.

R1: "calculated as the proportion of target language words in the CoT". We read the chain of thought
(the text inside `<think>...</think>`, or the whole response when there is no think block), split it into
words, decide each word's script from its letters, and return the share of words written in the target
language's script, in [0, 1].

Choices:
- A "word" is a run of letters of one script; each CJK ideograph, kana and Hangul syllable counts as a
  word of its own (those languages have no spaces), so "我们 compute 3+4" is 2 Chinese words, 1 Latin.
- Numbers, math and punctuation are not words: `x^2 + 3 = 7` is neutral, not a language switch.
- Languages map to scripts (en, fr, de, ... -> Latin; zh -> Han; ja -> Han + kana; ko -> Hangul; ru, uk ->
  Cyrillic; ar; hi; ...). Telling English from French needs a language model: deliberately not done.
- A CoT with no words at all scores 1.0 (nothing inconsistent), and says so in `detail`.
"""

from __future__ import annotations

import re
import unicodedata

from r1.errors import InvalidArgument
from r1.rewards.verdict import RewardResult, Verdict

_LATIN = ("en", "fr", "de", "es", "it", "pt", "nl", "sv", "da", "no", "fi", "pl", "cs", "tr", "id", "vi", "ro")
SCRIPTS_BY_LANGUAGE: dict[str, frozenset[str]] = {
    **{code: frozenset({"LATIN"}) for code in _LATIN},
    "zh": frozenset({"CJK"}),
    "ja": frozenset({"CJK", "HIRAGANA", "KATAKANA"}),
    "ko": frozenset({"HANGUL"}),
    "ru": frozenset({"CYRILLIC"}), "uk": frozenset({"CYRILLIC"}),
    "ar": frozenset({"ARABIC"}), "he": frozenset({"HEBREW"}), "el": frozenset({"GREEK"}),
    "hi": frozenset({"DEVANAGARI"}), "th": frozenset({"THAI"}),
}
_SYLLABIC = frozenset({"CJK", "HIRAGANA", "KATAKANA", "HANGUL"})
_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL)


def script_of(char: str) -> str:
    """The script of a letter, from its Unicode name ("LATIN", "CJK", "CYRILLIC", ...); "" for non-letters."""
    if not char.isalpha():
        return ""
    name = unicodedata.name(char, "")
    if name.startswith(("CJK", "IDEOGRAPHIC")):
        return "CJK"
    return name.split(" ", 1)[0]


def words_by_script(text: str) -> list[str]:
    """One script name per word of `text` (see the module docstring for what a word is)."""
    words: list[str] = []
    current = ""
    for char in text:
        script = script_of(char)
        if script in _SYLLABIC:
            words.append(script)
            current = ""
        elif script and script != current:
            words.append(script)
            current = script
        elif not script:
            current = ""
    return words


def chain_of_thought(response: str) -> str:
    match = _THINK.search(response)
    return match.group(1) if match else response


def language_consistency(response: str, target_language: str) -> float:
    """Share of chain-of-thought words in the target language's script, in [0, 1]."""
    return _share(response, target_scripts(target_language))[0]


def _share(response: str, scripts: frozenset[str]) -> tuple[float, int]:
    """(share of words in `scripts`, number of words); (1.0, 0) when there are no words."""
    words = words_by_script(chain_of_thought(response))
    if not words:
        return 1.0, 0
    return sum(word in scripts for word in words) / len(words), len(words)


def target_scripts(language: str) -> frozenset[str]:
    code = language.strip().lower().replace("_", "-").split("-")[0]
    if code not in SCRIPTS_BY_LANGUAGE:
        raise InvalidArgument("target_language",
                              f"unsupported language {language!r}; supported: {', '.join(sorted(SCRIPTS_BY_LANGUAGE))}")
    return SCRIPTS_BY_LANGUAGE[code]


def check_language(response: str, target_language: str, pass_threshold: float = 0.5) -> RewardResult:
    """Reward = consistency; verdict CORRECT when it reaches `pass_threshold`, else WRONG."""
    try:
        scripts = target_scripts(target_language)
    except InvalidArgument as e:
        return RewardResult(0.0, Verdict.INVALID_INPUT, e.message)
    share, n_words = _share(response, scripts)
    if not n_words:
        return RewardResult(1.0, Verdict.CORRECT, "no words in the chain of thought")
    verdict = Verdict.CORRECT if share >= pass_threshold else Verdict.WRONG
    return RewardResult(share, verdict, f"{share:.0%} of {n_words} words in {target_language}")
