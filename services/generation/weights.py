"""Assembling a streamed UpdateWeights into named torch tensors, checking every rule of `WeightChunk`.

The proto's rules, each refused with the field named (INVALID_ARGUMENT unless said otherwise):
- one `version` on every chunk; it must exceed the served version (FAILED_PRECONDITION, checked on the first
  chunk so a stale trainer learns it before sending gigabytes; the backend checks again when applying);
- a tensor's slices are consecutive (tensors do not interleave), in offset order, without gaps or overlaps;
- name, dtype, shape and total_bytes are required on a tensor's first slice (offset 0) and, when repeated
  on later slices, must match; total_bytes = prod(shape) x element size;
- sha256 (hex of the whole tensor) is required on the slice that completes the tensor and optional, but
  then equal, on earlier ones; a checksum that does not match the bytes is DATA_LOSS;
- a tensor may be sent once per update; `last = true` ends the update, on a final slice or on a trailer
  (empty name and data); any chunk after it is refused.

Choices: bytes are kept as they arrive (a growing `bytearray` per tensor, hashed incrementally), never
preallocated from the client's total_bytes, so memory follows what was actually sent; `max_bytes` (the
service's `max_update_bytes`, 0: no limit) bounds a whole update. Tensors are built with `torch.frombuffer`
(little-endian, C order, as the proto says) only once the update is complete. Whether names, shapes and
dtypes fit the served model is the backend's check (`Backend.update_weights`), not this module's.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from r1.errors import DataLoss, FailedPrecondition, InvalidArgument
from services.generation.convert import dtype_from_proto
from services.protogen.generation.v1 import generation_pb2 as pb


@dataclass(frozen=True)
class AssembledUpdate:
    """A complete, checksummed update: what `Backend.update_weights` takes, plus what the reply reports."""

    version: int
    tensors: dict[str, torch.Tensor]
    bytes_received: int
    started: float  # perf_counter() when the first chunk arrived


@dataclass
class _Tensor:
    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    total_bytes: int
    sha256: str = ""
    data: bytearray = field(default_factory=bytearray)
    digest: Any = field(default_factory=hashlib.sha256)

    @property
    def complete(self) -> bool:
        return len(self.data) == self.total_bytes

    def tensor(self) -> torch.Tensor:
        if not self.total_bytes:
            return torch.empty(self.shape, dtype=self.dtype)
        return torch.frombuffer(self.data, dtype=self.dtype).reshape(self.shape)


class WeightAssembler:
    """``add(chunk)`` for every chunk of the stream, then ``finish()``; see the module docstring."""

    def __init__(self, served_version: int, max_bytes: int = 0):
        self.served_version = served_version
        self.max_bytes = max_bytes
        self.version: int | None = None
        self.started = 0.0
        self.bytes_received = 0
        self.done: dict[str, torch.Tensor] = {}
        self.current: _Tensor | None = None
        self.last = False
        self.chunks = 0

    def add(self, chunk: pb.WeightChunk) -> None:
        self.chunks += 1
        where = f"chunk {self.chunks}"
        if self.last:
            raise InvalidArgument("last", f"{where} arrived after the chunk with last = true; end the stream there")
        self._check_version(chunk, where)
        if not chunk.name and not chunk.data:
            if not chunk.last:
                raise InvalidArgument("name", f"{where} has no name and no data; only the trailer (last = true) "
                                              "may be empty")
        elif self.current is not None and chunk.name in ("", self.current.name):
            self._continue(chunk, where)
        elif chunk.name:
            self._begin(chunk, where)
        else:
            raise InvalidArgument("name", f"{where}: is required on the first slice of each tensor")
        self.last = chunk.last
        if self.current is not None and self.current.complete:
            self._complete(chunk, where)

    def finish(self) -> AssembledUpdate:
        """The update, once the stream has ended; InvalidArgument if it ended before it was complete."""
        if self.version is None:
            raise InvalidArgument("chunks", "the stream carried no chunk; nothing was applied")
        if self.current is not None:
            t = self.current
            raise InvalidArgument("data", f"tensor {t.name!r} is incomplete: {len(t.data)} of {t.total_bytes} bytes "
                                          "arrived; nothing was applied")
        if not self.last:
            raise InvalidArgument("last", "the stream ended without a chunk with last = true; nothing was applied")
        if not self.done:
            raise InvalidArgument("name", "the update carries no tensor; send at least one")
        return AssembledUpdate(self.version, self.done, self.bytes_received, self.started)

    # ----------------------------------------------------------------------------------------------------

    def _check_version(self, chunk: pb.WeightChunk, where: str) -> None:
        if self.version is None:
            if chunk.version <= self.served_version:
                raise FailedPrecondition(f"version {chunk.version} must be greater than the served weight "
                                         f"version {self.served_version}")
            self.version, self.started = chunk.version, time.perf_counter()
        elif chunk.version != self.version:
            raise InvalidArgument("version", f"{where} has version {chunk.version}, the stream began with "
                                             f"{self.version}; every chunk of an update carries the same one")

    def _begin(self, chunk: pb.WeightChunk, where: str) -> None:
        name = chunk.name
        if self.current is not None:
            t = self.current
            raise InvalidArgument("name", f"{where} starts tensor {name!r} while {t.name!r} has {len(t.data)} of "
                                          f"{t.total_bytes} bytes: send each tensor's slices consecutively")
        if name in self.done:
            raise InvalidArgument("name", f"{where}: tensor {name!r} was already sent in this update; send each "
                                          "tensor once")
        if chunk.offset:
            raise InvalidArgument("offset", f"{where}: the first slice of tensor {name!r} must have offset 0, "
                                            f"got {chunk.offset}")
        dtype = dtype_from_proto(chunk.dtype, "dtype")
        shape = tuple(int(s) for s in chunk.shape)
        expected = math.prod(shape) * dtype.itemsize
        if chunk.total_bytes != expected:
            raise InvalidArgument("total_bytes", f"tensor {name!r}: is {chunk.total_bytes}, but shape {list(shape)} "
                                                 f"of {str(dtype).removeprefix('torch.')} is {expected} bytes")
        self.current = _Tensor(name, dtype, shape, expected)
        self._append(chunk, where)

    def _continue(self, chunk: pb.WeightChunk, where: str) -> None:
        t = self.current
        if chunk.offset != len(t.data):
            what = "a gap" if chunk.offset > len(t.data) else "an overlap"
            raise InvalidArgument("offset", f"{where}: tensor {t.name!r} continues at offset {chunk.offset}, "
                                            f"{what}: {len(t.data)} bytes arrived so far, so the next slice starts "
                                            f"there")
        if chunk.dtype and dtype_from_proto(chunk.dtype, "dtype") != t.dtype:
            raise InvalidArgument("dtype", f"{where}: differs from the first slice of tensor {t.name!r}")
        if chunk.shape and tuple(chunk.shape) != t.shape:
            raise InvalidArgument("shape", f"{where}: differs from the first slice of tensor {t.name!r}")
        if chunk.total_bytes and chunk.total_bytes != t.total_bytes:
            raise InvalidArgument("total_bytes", f"{where}: differs from the first slice of tensor {t.name!r}")
        self._append(chunk, where)

    def _append(self, chunk: pb.WeightChunk, where: str) -> None:
        t = self.current
        if chunk.sha256:
            if t.sha256 and chunk.sha256.lower() != t.sha256:
                raise InvalidArgument("sha256", f"{where}: differs from the one sent earlier for tensor {t.name!r}")
            t.sha256 = chunk.sha256.lower()
        if len(t.data) + len(chunk.data) > t.total_bytes:
            raise InvalidArgument("data", f"{where}: tensor {t.name!r} would hold {len(t.data) + len(chunk.data)} "
                                          f"bytes, more than its total_bytes = {t.total_bytes}")
        self.bytes_received += len(chunk.data)
        if self.max_bytes and self.bytes_received > self.max_bytes:
            raise InvalidArgument("data", f"the update exceeds this server's max_update_bytes = {self.max_bytes}; "
                                          "send fewer tensors per update")
        t.data += chunk.data
        t.digest.update(chunk.data)

    def _complete(self, chunk: pb.WeightChunk, where: str) -> None:
        t = self.current
        if not chunk.sha256:
            raise InvalidArgument("sha256", f"{where}: is required on the slice that completes tensor {t.name!r}")
        actual = t.digest.hexdigest()
        if actual != t.sha256:
            raise DataLoss(f"tensor {t.name!r}: the bytes received hash to sha256 {actual}, the sender said "
                           f"{t.sha256}; nothing was applied: resend the update")
        self.done[t.name] = t.tensor()
        self.current = None
