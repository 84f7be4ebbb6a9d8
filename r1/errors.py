"""Domain errors the library raises and the services map to status codes.

Each class names one way a request can go wrong, in the caller's terms. The gRPC layer keeps a single table
from these classes to status codes (`services/common/errors.py`); the library itself never knows about
status codes. Messages are written for the person who sent the request: what was wrong and how to fix it.
"""

from __future__ import annotations


class R1Error(Exception):
    """Base class of every error the library raises on purpose."""


class InvalidArgument(R1Error):
    """The request is malformed. `field` names the offending field in the request, dotted/indexed
    (for example ``items[3].code.language``) so a client can point at it."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class NotFound(R1Error):
    """The request names something (a job, an export, a request id) that does not exist."""


class AlreadyExists(R1Error):
    """The request would create something whose id is taken by a different thing."""


class FailedPrecondition(R1Error):
    """The request is well-formed but the system is not in a state to serve it (e.g. no model loaded)."""


class ResourceExhausted(R1Error):
    """A bounded queue or pool is full; the caller should back off and retry."""


class DeadlineExceeded(R1Error):
    """The work did not finish within the deadline the caller (or the configuration) set."""


class Unavailable(R1Error):
    """A backend the request needs (an engine server, another service) cannot be reached right now."""


class DataLoss(R1Error):
    """Data arrived corrupted (e.g. a streamed tensor whose bytes do not match the checksum sent with it)."""
