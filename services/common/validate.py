"""Request checks shared by every servicer's convert step. Each failure names the field.

Field paths are written the way a client reads its request: ``item.kind``, ``items[3].code.language``.
"""

from __future__ import annotations

from google.protobuf.message import Message

from r1.errors import InvalidArgument


def require_oneof(message: Message, group: str, path: str) -> str:
    """The name of the field set in oneof `group`; InvalidArgument listing the choices if none is."""
    chosen = message.WhichOneof(group)
    if chosen is None:
        choices = [f.name for f in message.DESCRIPTOR.oneofs_by_name[group].fields]
        raise InvalidArgument(path, f"must be set to one of: {', '.join(choices)}")
    return chosen


def require_nonempty(value: str | bytes, path: str) -> None:
    if not value:
        raise InvalidArgument(path, "must not be empty")


def require_range(value: float, path: str, *, low: float | None = None, high: float | None = None,
                  low_open: bool = False) -> None:
    """`value` within [low, high] (or (low, high] with `low_open`)."""
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and value > high
    if below or above:
        left = "(" if low_open else "["
        span = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise InvalidArgument(path, f"must be in {span}, got {value}")
