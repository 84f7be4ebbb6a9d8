"""GPQA-Diamond rows -> multiple-choice `EvalRecord`s, with the options shuffled the way simple-evals does.

Sources read (the GPQA authors ask that the questions never appear in plain text online, so the offline copy
is a ZipCrypto zip with their published password, read in memory and never written out unzipped):
- the offline `gpqa_diamond/gpqa_diamond.zip` (AReaL's JSONL: id, ori_question, question with the options
  inlined, options, correct_answer, ...): the stem is `ori_question`, the correct text `correct_answer`, the
  three incorrect texts the other `options` in file order;
- the original release (Idavidrein/gpqa, `gpqa_diamond.csv`, or its hub dataset): "Question",
  "Correct Answer", "Incorrect Answer 1..3", "Record ID", "High-level domain", "Subdomain".

Shuffle: simple-evals builds [correct, incorrect 1, incorrect 2, incorrect 3] and reorders it by
`rng.sample(range(4), 4)`. It draws every permutation from one `random.Random(0)` in row order; we seed one
`random.Random(f"gpqa_diamond/{id}")` per example instead (string seeds are hashed with SHA-512, so stable
across processes), so an example's letters do not depend on which rows were loaded before it (`limit`, a
filtered source). `answer` is the letter the correct text landed on.
"""

from __future__ import annotations

import random
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from r1.data.records import EvalRecord
from r1.errors import InvalidArgument

GPQA_PASSWORD = b"deserted-untie-orchid"
LETTERS = "ABCD"


def read_zip_member(path: Path, password: bytes = GPQA_PASSWORD) -> tuple[str, str]:
    """(name, text) of the zip's data member (the first .jsonl/.json/.csv), decrypted in memory."""
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith((".jsonl", ".json", ".csv"))]
        if not names:
            raise InvalidArgument("source", f"{path} holds no .jsonl/.json/.csv member: {archive.namelist()}")
        return names[0], archive.read(names[0], pwd=password).decode("utf-8")


def shuffle_choices(correct: str, incorrect: tuple[str, ...], seed: str) -> tuple[tuple[str, ...], str]:
    """simple-evals' shuffle with a per-example seed: (choices in letter order, the correct letter)."""
    if len(incorrect) != 3:
        raise InvalidArgument("incorrect", f"GPQA needs 3 incorrect options, got {len(incorrect)}")
    options = [correct, *incorrect]
    permutation = random.Random(seed).sample(range(4), 4)
    choices = tuple(options[i] for i in permutation)
    return choices, LETTERS[permutation.index(0)]


def gpqa_record(row: Mapping[str, Any], index: int, benchmark: str = "gpqa_diamond") -> EvalRecord:
    """One row of either source format (see the module docstring) as a record."""
    if "Correct Answer" in row:  # the original release
        record_id = str(row.get("Record ID") or index)
        stem, correct = row["Question"], row["Correct Answer"]
        incorrect = tuple(row[f"Incorrect Answer {i}"] for i in (1, 2, 3))
        metadata = {key: row[column] for key, column in (("domain", "High-level domain"),
                                                         ("subdomain", "Subdomain")) if row.get(column)}
    elif "correct_answer" in row and "options" in row:  # AReaL's JSONL
        record_id = str(row.get("id", index))
        stem, correct = row.get("ori_question") or row["question"], row["correct_answer"]
        incorrect = tuple(o for o in row["options"] if o != correct)
        metadata = {}
        if len(incorrect) != len(row["options"]) - 1:
            raise InvalidArgument(f"rows[{index}].correct_answer",
                                  f"must equal exactly one of the options, got {correct!r}")
    else:
        raise InvalidArgument(f"rows[{index}]", "not a GPQA row: expected 'Question'/'Correct Answer'/'Incorrect "
                                                "Answer 1..3' or 'correct_answer'/'options', got " + str(sorted(row)))
    choices, letter = shuffle_choices(correct.strip(), tuple(o.strip() for o in incorrect),
                                      f"{benchmark}/{record_id}")
    return EvalRecord(id=record_id, benchmark=benchmark, kind="choice", problem=stem.strip(), answer=letter,
                      choices=choices, metadata=metadata)
