"""The wire and the library agree: every item survives Item -> proto -> Item unchanged, malformed wire
items become INVALID_INPUT items, and whole-request problems name their field."""

from __future__ import annotations

import pytest

from r1.errors import InvalidArgument
from r1.rewards.code import CodeRequest, IOTest, Limits, request_limits
from r1.rewards.items import ChoiceCheck, FormatCheck, Invalid, Item, LanguageCheck, MathCheck
from r1.rewards.math import Profile
from r1.rewards.verdict import RewardResult, Verdict
from r1.rewards.verifier import Verified
from services.protogen.verifier.v1 import verifier_pb2 as pb
from services.verifier import convert

ITEMS = [
    Item("\\boxed{1}", MathCheck("1"), id="m"),
    Item("x", MathCheck("2", Profile.LENIENT), deadline=2.5),
    Item("Answer: B", ChoiceCheck("B", ("one", "two"))),
    Item("<think>a</think>b", FormatCheck(True)),
    Item("<think>hello</think>", LanguageCheck("en", 0.75)),
    Item("r", CodeRequest("python", "print(2)", io_tests=(IOTest("1", "2"),))),
    Item("```cpp\nint main(){}\n```", CodeRequest("cpp", "", io_tests=(IOTest("", ""),),
                                                    limits=request_limits(1.5, 256, 1000, 3), abs_tol=1e-3,
                                                    rel_tol=1e-3, score_mode="all_or_nothing",
                                                    stop_at_first_failure=True)),
    Item("r", CodeRequest("python", "def f(): return 1", assert_tests=("assert f() == 1",), entry_point="f")),
]


@pytest.mark.parametrize("item", ITEMS, ids=lambda item: item.kind)
def test_items_cross_the_wire_unchanged(item):
    wire = pb.VerifyItem.FromString(convert.item_to_proto(item).SerializeToString())
    assert convert.item_from_proto(wire, None, "item") == item


def test_unset_wire_fields_take_the_documented_defaults():
    code = convert.item_from_proto(pb.VerifyItem(response="```cpp\nx\n```", code=pb.CodeItem(
        io_tests=[pb.IoTest(input="1", expected_output="2")])), 7.0, "item")
    assert code.check.language == "cpp" and code.check.limits == request_limits() and code.deadline == 7.0
    assert code.check.score_mode == "fraction" and code.check.abs_tol == 0
    language = convert.item_from_proto(pb.VerifyItem(language=pb.LanguageItem(target_language="en")), None, "i")
    assert language.check.pass_threshold == 0.5


@pytest.mark.parametrize("wire, reason", [
    (pb.VerifyItem(response="r"), "items[3].kind: must be set to one of: math, choice, code, format, language"),
    (pb.VerifyItem(math=pb.MathItem(reference="1", profile=9)), "items[3].math.profile: unknown value 9"),
    (pb.VerifyItem(code=pb.CodeItem(language=7)), "items[3].code.language: unknown value 7"),
    (pb.VerifyItem(code=pb.CodeItem(limits=pb.CodeLimits(memory_limit_mb=0))),
     "items[3].code.limits.memory_limit_mb: must be a positive integer"),
    (pb.VerifyItem(format=pb.FormatItem(template=5)), "items[3].format.template: unknown value 5"),
])
def test_a_malformed_wire_item_becomes_an_invalid_item(wire, reason):
    item = convert.item_from_proto(wire, None, "items[3]")
    assert isinstance(item.check, Invalid) and item.check.reason.startswith(reason)


@pytest.mark.parametrize("request_, field", [
    (pb.VerifyBatchRequest(), "items"),
    (pb.VerifyBatchRequest(items=[pb.VerifyItem()] * 3), "items"),
    (pb.VerifyBatchRequest(items=[pb.VerifyItem()], deadline_seconds=0), "deadline_seconds"),
    (pb.VerifyBatchRequest(items=[pb.VerifyItem(deadline_seconds=-1)]), "items[0].deadline_seconds"),
    (pb.VerifyBatchRequest(items=[pb.VerifyItem()], max_concurrency=0), "max_concurrency"),
])
def test_whole_request_problems_name_their_field(request_, field):
    with pytest.raises(InvalidArgument) as raised:
        convert.batch_items(request_, max_items=2)
    assert raised.value.field == field


def test_items_the_wire_cannot_carry_are_refused_not_altered():
    for item, field in [
        (Item("r", CodeRequest("python", "x", io_tests=(IOTest("", ""),), limits=Limits())), "limits"),
        (Item("r", CodeRequest("python", "x", io_tests=(IOTest("", ""),), abs_tol=1.0)), "abs_tol"),
        (Item("r", Invalid("math", "bad")), "check"),
    ]:
        with pytest.raises(InvalidArgument) as raised:
            convert.item_to_proto(item)
        assert raised.value.field == field


def test_results_cross_the_wire_unchanged():
    verified = Verified(4, "id", "code", RewardResult(0.5, Verdict.TIMEOUT, "test 2/2: slow", "src", 1, 2), 1.25)
    wire = pb.VerifyResult.FromString(convert.result_to_proto(verified).SerializeToString())
    assert convert.result_from_proto(wire, "code") == verified
