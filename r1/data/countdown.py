"""Checking a countdown answer: does an expression reach the target using only the given numbers?

The strict check of TinyZero's countdown task (the math reward only compares values, so it cannot tell
whether an answer used the numbers it was given). Pure and safe on hostile input: see `countdown_valid`.
"""

from __future__ import annotations

import ast
import operator
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction

MAX_EXPRESSION_CHARS = 200
_EXPRESSION_CHARS = frozenset("0123456789+-*/() ")
_OPERATIONS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_EXPRESSION_NODES = (ast.Expression, ast.BinOp, ast.Constant, *_OPERATIONS)


def _exact_value(node: ast.AST) -> Fraction:
    """The value of a screened tree (BinOp and int Constant only); ZeroDivisionError on x / 0."""
    if isinstance(node, ast.Constant):
        return Fraction(node.value)
    return _OPERATIONS[type(node.op)](_exact_value(node.left), _exact_value(node.right))


def countdown_valid(expression: str, numbers: Sequence[int], target: int) -> bool:
    """Whether `expression` uses only `numbers` (each at most as often as given), + - * / and
    parentheses, and equals `target` exactly.

    Never raises and never evaluates code: the text is screened by length (200 characters) and alphabet
    (digits, + - * /, parentheses, spaces; surrounding whitespace is stripped) before `ast.parse`, the
    tree may hold only integer literals and the four operations, and it is evaluated in `Fraction`s.
    Non-integer intermediates are allowed (8 / (3 - 8 / 3) = 24); unary minus is not (the numbers
    are positive). Numbers need not all be used."""
    if not isinstance(expression, str) or len(expression) > MAX_EXPRESSION_CHARS:
        return False
    expression = expression.strip()
    if not expression or not set(expression) <= _EXPRESSION_CHARS:
        return False
    try:
        tree = ast.parse(expression, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    nodes = list(ast.walk(tree))
    if not all(isinstance(node, _EXPRESSION_NODES) for node in nodes):
        return False
    literals = [node.value for node in nodes if isinstance(node, ast.Constant)]
    if not all(type(value) is int for value in literals) or Counter(literals) - Counter(numbers):
        return False
    try:
        return _exact_value(tree.body) == target
    except ZeroDivisionError:
        return False
