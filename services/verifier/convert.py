"""Between the wire (`r1.verifier.v1`) and the library (`r1.rewards`): items and results, both ways.

The server reads `VerifyItem` -> `Item` and writes `Verified` -> `VerifyResult`; the client does the reverse
with the same tables, so an item checked through the service is the very `Item` that would be checked
in-process, and `r1 verify` prints the same lines either way.

Choices:
- Whole-request problems (no items, too many, a deadline that is not positive) raise InvalidArgument naming
  the field: the call fails with INVALID_ARGUMENT. Problems of one item (no kind set, an enum value this
  server does not know, a limit that is not positive) become an `Invalid` item, answered INVALID_INPUT in
  its place, as the proto's conventions say: one bad item never fails a batch.
- Unset optional fields take the library's defaults (`request_limits()`, pass threshold 0.5), which are the
  defaults the proto documents; LANGUAGE_UNSPECIFIED is resolved from the response (`infer_language`).
- The wire states code limits in four terms (time, memory, output, processes) and one float tolerance;
  `item_to_proto` refuses an `Item` that needs more than that rather than send something else.
"""

from __future__ import annotations

from r1.errors import InvalidArgument
from r1.rewards.code import (ALL_OR_NOTHING, CPP, FRACTION, PYTHON, CodeRequest, IOTest, infer_language,
                             request_limits, stated_limits)
from r1.rewards.items import ChoiceCheck, FormatCheck, Invalid, Item, LanguageCheck, MathCheck
from r1.rewards.math import Profile
from r1.rewards.verdict import RewardResult, Verdict
from r1.rewards.verifier import Verified
from services.common.validate import require_range
from services.protogen.verifier.v1 import verifier_pb2 as pb

PROFILES = {pb.PROFILE_UNSPECIFIED: Profile.STRICT, pb.PROFILE_STRICT: Profile.STRICT,
            pb.PROFILE_LENIENT: Profile.LENIENT}
LANGUAGES = {pb.LANGUAGE_PYTHON3: PYTHON, pb.LANGUAGE_CPP17: CPP}
SCORE_MODES = {pb.SCORE_MODE_UNSPECIFIED: FRACTION, pb.SCORE_MODE_FRACTION: FRACTION,
               pb.SCORE_MODE_ALL_OR_NOTHING: ALL_OR_NOTHING}
TEMPLATES = (pb.TEMPLATE_UNSPECIFIED, pb.TEMPLATE_R1_ZERO)
LIMIT_FIELDS = ("time_limit_seconds", "memory_limit_mb", "output_limit_bytes", "max_processes")
DEFAULT_PASS_THRESHOLD = 0.5


# ---------------------------------------------------------------------------------------------- server side


def batch_items(request: pb.VerifyBatchRequest, max_items: int) -> list[Item]:
    """The items of a VerifyBatch call; InvalidArgument for a request that cannot be served at all."""
    if not request.items:
        raise InvalidArgument("items", "must hold at least one item")
    if max_items and len(request.items) > max_items:
        raise InvalidArgument("items", f"{len(request.items)} items, at most {max_items} per call; "
                                       "split the batch")
    if request.HasField("max_concurrency"):
        require_range(request.max_concurrency, "max_concurrency", low=1)
    default = _deadline(request, "deadline_seconds")
    return [item_from_proto(item, default, f"items[{i}]") for i, item in enumerate(request.items)]


def single_item(request: pb.VerifyRequest) -> Item:
    """The item of a Verify call."""
    return item_from_proto(request.item, _deadline(request, "deadline_seconds"), "item")


def item_from_proto(message: pb.VerifyItem, default_deadline: float | None, path: str) -> Item:
    """The library `Item` for one wire item (an `Invalid` one if the item is malformed)."""
    deadline = _deadline(message, f"{path}.deadline_seconds")
    deadline = default_deadline if deadline is None else deadline
    kind = message.WhichOneof("kind")
    try:
        if kind is None:
            raise InvalidArgument("kind", f"must be set to one of: {', '.join(_KIND_READERS)}")
        check = _KIND_READERS[kind](getattr(message, kind), message.response)
    except InvalidArgument as e:
        check = Invalid(kind or "", f"{path}.{kind + '.' if kind else ''}{e}")
    return Item(message.response, check, id=message.id, deadline=deadline)


def result_to_proto(verified: Verified) -> pb.VerifyResult:
    result = verified.result
    return pb.VerifyResult(
        index=verified.index, id=verified.id, reward=result.reward,
        verdict=pb.Verdict.Value(f"VERDICT_{result.verdict.value}"), detail=result.detail,
        extracted=result.extracted, elapsed_seconds=verified.elapsed, tests_passed=result.tests_passed,
        tests_total=result.tests_total)


def _deadline(message, path: str) -> float | None:
    if not message.HasField("deadline_seconds"):
        return None
    require_range(message.deadline_seconds, path, low=0, low_open=True)
    return message.deadline_seconds


def _math(m: pb.MathItem, _: str) -> MathCheck:
    return MathCheck(m.reference, _enum(PROFILES, m.profile, "profile"))


def _choice(m: pb.ChoiceItem, _: str) -> ChoiceCheck:
    return ChoiceCheck(m.reference, tuple(m.choices))


def _code(m: pb.CodeItem, response: str) -> CodeRequest:
    language = infer_language(response) if m.language == pb.LANGUAGE_UNSPECIFIED else _enum(
        LANGUAGES, m.language, "language")
    stated = {name: getattr(m.limits, name) for name in LIMIT_FIELDS if m.limits.HasField(name)}
    tolerance = m.float_tolerance if m.HasField("float_tolerance") else 0.0
    return CodeRequest(
        language=language, source=m.source, io_tests=tuple(IOTest(t.input, t.expected_output) for t in m.io_tests),
        assert_tests=(m.assert_tests,) if m.assert_tests else (), entry_point=m.entry_point,
        limits=request_limits(**stated), abs_tol=tolerance, rel_tol=tolerance,
        score_mode=_enum(SCORE_MODES, m.score_mode, "score_mode"), stop_at_first_failure=m.stop_at_first_failure)


def _format(m: pb.FormatItem, _: str) -> FormatCheck:
    if m.template not in TEMPLATES:
        raise InvalidArgument("template", f"unknown value {m.template}; this server knows TEMPLATE_R1_ZERO")
    return FormatCheck(m.think_prefilled)


def _language(m: pb.LanguageItem, _: str) -> LanguageCheck:
    threshold = m.pass_threshold if m.HasField("pass_threshold") else DEFAULT_PASS_THRESHOLD
    return LanguageCheck(m.target_language, threshold)


_KIND_READERS = {"math": _math, "choice": _choice, "code": _code, "format": _format, "language": _language}


def _enum(table: dict, value: int, name: str):
    if value not in table:
        raise InvalidArgument(name, f"unknown value {value}; this server knows {sorted(table)}")
    return table[value]


# ---------------------------------------------------------------------------------------------- client side


def item_to_proto(item: Item) -> pb.VerifyItem:
    """The wire item for a library `Item`; InvalidArgument if it cannot be said on the wire (an `Invalid`
    item, limits beyond the four the wire states, different absolute and relative tolerances)."""
    message = pb.VerifyItem(id=item.id, response=item.response)
    if item.deadline is not None:
        message.deadline_seconds = item.deadline
    check = item.check
    if isinstance(check, MathCheck):
        profile = _key(PROFILES, check.profile, "profile", skip=pb.PROFILE_UNSPECIFIED)
        message.math.CopyFrom(pb.MathItem(reference=check.reference, profile=profile))
    elif isinstance(check, ChoiceCheck):
        message.choice.CopyFrom(pb.ChoiceItem(reference=check.reference, choices=check.choices))
    elif isinstance(check, CodeRequest):
        message.code.CopyFrom(_code_to_proto(check))
    elif isinstance(check, FormatCheck):
        message.format.CopyFrom(pb.FormatItem(template=pb.TEMPLATE_R1_ZERO, think_prefilled=check.think_prefilled))
    elif isinstance(check, LanguageCheck):
        message.language.CopyFrom(pb.LanguageItem(target_language=check.target_language,
                                                  pass_threshold=check.pass_threshold))
    else:
        raise InvalidArgument("check", f"{type(check).__name__} items are answered locally, not sent")
    return message


def result_from_proto(message: pb.VerifyResult, kind: str) -> Verified:
    result = RewardResult(message.reward, Verdict(pb.Verdict.Name(message.verdict).removeprefix("VERDICT_")),
                          message.detail, message.extracted, message.tests_passed, message.tests_total)
    return Verified(message.index, message.id, kind, result, message.elapsed_seconds)


def _code_to_proto(check: CodeRequest) -> pb.CodeItem:
    if check.abs_tol != check.rel_tol:
        raise InvalidArgument("abs_tol", "the wire has one float_tolerance for both; set abs_tol == rel_tol")
    if len(check.assert_tests) > 1:
        raise InvalidArgument("assert_tests", "the wire carries one assert block; join them into one")
    message = pb.CodeItem(
        language=_key(LANGUAGES, check.language, "language"), source=check.source,
        io_tests=[pb.IoTest(input=t.stdin, expected_output=t.expected) for t in check.io_tests],
        assert_tests="".join(check.assert_tests), entry_point=check.entry_point,
        limits=pb.CodeLimits(**stated_limits(check.limits)),
        score_mode=_key(SCORE_MODES, check.score_mode, "score_mode", skip=pb.SCORE_MODE_UNSPECIFIED),
        stop_at_first_failure=check.stop_at_first_failure)
    if check.abs_tol:
        message.float_tolerance = check.abs_tol
    return message


def _key(table: dict, value, name: str, skip: int | None = None) -> int:
    for key, known in table.items():
        if known == value and key != skip:
            return key
    raise InvalidArgument(name, f"{value!r} has no wire value; valid: {sorted(set(map(str, table.values())))}")
