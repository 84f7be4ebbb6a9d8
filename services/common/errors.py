"""The one table from library errors to gRPC status codes.

Servicers raise the library's errors (`r1.errors`) or let them propagate; the error interceptor turns them
into a status with the error's own message, which says what was wrong. Anything not in the table is a bug
on our side: the client gets INTERNAL with the exception type (never a traceback), the log gets the rest.
"""

from __future__ import annotations

import grpc

from r1 import errors

STATUS_BY_ERROR: dict[type[BaseException], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.DataLoss: grpc.StatusCode.DATA_LOSS,
    TimeoutError: grpc.StatusCode.DEADLINE_EXCEEDED,
    NotImplementedError: grpc.StatusCode.UNIMPLEMENTED,
}


def status_for(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and client-facing message for an exception a servicer raised."""
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls], str(error) or cls.__name__
    return grpc.StatusCode.INTERNAL, f"internal error ({type(error).__name__}); the server log has the details"


def error_from_status(code: grpc.StatusCode, details: str) -> errors.R1Error:
    """The library error a client raises for a failed call: the table read backwards, so a client of a
    service sees the error the service's library raised, with its message. InvalidArgument gets back the
    field its message starts with; codes outside the table become Unavailable (UNAVAILABLE, INTERNAL, ...),
    with the code named."""
    for cls, status in STATUS_BY_ERROR.items():
        if status == code and issubclass(cls, errors.R1Error):
            if cls is errors.InvalidArgument:
                field, _, message = details.partition(": ")
                return errors.InvalidArgument(*((field, message) if message else ("request", details)))
            return cls(details)
    return errors.Unavailable(f"{code.name}: {details}")
