"""How a batch gets its messages built: when the loop asks, or signed ahead in a thread."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from mailers.message import BuiltMessage


class BuildInline:
    """Build each message when the loop asks for it."""

    def __init__(self, build: Callable[[int], BuiltMessage]):
        self._build = build

    def built(self, delivery_id: int, remaining: list[int]) -> BuiltMessage:
        return self._build(delivery_id)

    def close(self) -> None:
        pass


class BuildAhead:
    """Build (and DKIM-sign) the next messages in a thread while this one is being sent.

    An RSA signature is most of a signed message's cost, and cryptography signs without the
    GIL, as the socket waits for the SMTP server's replies without it: signing the next
    message during those waits hides part of it. Messages are built in the loop's order, at
    most AHEAD in advance; one the loop never sends (it stopped) is dropped unsent.
    """

    AHEAD = 4

    def __init__(self, build: Callable[[int], BuiltMessage]):
        self._build = build
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="build-ahead")
        self._futures: dict[int, Future] = {}

    def built(self, delivery_id: int, remaining: list[int]) -> BuiltMessage:
        for upcoming in remaining[: self.AHEAD + 1]:
            if upcoming not in self._futures:
                self._futures[upcoming] = self._pool.submit(self._build, upcoming)
        return self._futures.pop(delivery_id).result()  # raises what build raised

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
