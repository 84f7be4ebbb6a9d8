"""What the torch engine reports as it runs: a Protocol the service implements with Prometheus metrics.

The library does not know about Prometheus: the generation service passes an observer that turns these
calls into `r1_generation_*` and `r1_spec_decode_*` metrics. Calls come from the engine thread and must be
cheap and thread-safe (prometheus_client's are).
"""

from __future__ import annotations

from typing import Protocol


class EngineObserver(Protocol):
    def prompt_tokens(self, count: int) -> None: ...

    def completion_tokens(self, count: int) -> None: ...

    def time_to_first_token(self, seconds: float) -> None: ...

    def inter_token_latency(self, seconds: float) -> None: ...

    def speculation(self, drafted: int, accepted_per_position: list[int]) -> None:
        """drafted: draft tokens proposed this step (samples x k); accepted_per_position[j]: samples whose
        draft j + 1 was accepted (acceptance is a prefix, so the list is non-increasing)."""

    def weights_updated(self, version: int, seconds: float) -> None: ...


class NullObserver:
    def prompt_tokens(self, count: int) -> None:
        pass

    def completion_tokens(self, count: int) -> None:
        pass

    def time_to_first_token(self, seconds: float) -> None:
        pass

    def inter_token_latency(self, seconds: float) -> None:
        pass

    def speculation(self, drafted: int, accepted_per_position: list[int]) -> None:
        pass

    def weights_updated(self, version: int, seconds: float) -> None:
        pass
