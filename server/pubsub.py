"""Stream subscriptions: overlay (and moderator) clients receive the warning frames of a stream.

Publishing never waits: each subscribing connection has an :class:`Outbox`, a bounded queue of
encoded frames drained by its own writer task. When a subscriber reads too slowly, the oldest
queued frame is dropped (and counted), so ingestion and the other subscribers never stall.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed


class Outbox:
    """Frames queued for one connection's subscriptions; oldest dropped beyond ``maxlen``."""

    __slots__ = ("ws", "maxlen", "on_drop", "_frames", "_wake", "_task", "_closing", "streams")

    def __init__(self, ws: ServerConnection, maxlen: int, on_drop: Callable[[], None]) -> None:
        self.ws = ws
        self.maxlen = maxlen
        self.on_drop = on_drop
        self._frames: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._closing = False
        self.streams: set[str] = set()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="outbox")

    def __len__(self) -> int:
        return len(self._frames)

    def offer(self, frame: bytes) -> None:
        if self._closing:
            return
        if len(self._frames) >= self.maxlen:
            self._frames.popleft()
            self.on_drop()
        self._frames.append(frame)
        self._wake.set()

    async def _run(self) -> None:
        frames = self._frames
        while True:
            if not frames:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self.ws.send(frames.popleft(), text=True)
            except ConnectionClosed:
                frames.clear()
                return

    async def close(self, timeout: float | None = 0.0) -> None:
        """Stop taking frames; send what is queued within ``timeout`` seconds, then give up."""
        self._closing = True
        self._wake.set()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._task)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class Hub:
    """stream id -> the outboxes subscribed to it."""

    def __init__(self) -> None:
        self._subs: dict[str, set[Outbox]] = {}
        self.count = 0

    def __contains__(self, stream_id: str) -> bool:
        return stream_id in self._subs

    def subscribe(self, stream_id: str, outbox: Outbox) -> bool:
        """Add a subscription; False when it already existed."""
        subs = self._subs.setdefault(stream_id, set())
        if outbox in subs:
            return False
        subs.add(outbox)
        outbox.streams.add(stream_id)
        self.count += 1
        return True

    def unsubscribe(self, stream_id: str, outbox: Outbox) -> bool:
        subs = self._subs.get(stream_id)
        if subs is None or outbox not in subs:
            return False
        subs.discard(outbox)
        outbox.streams.discard(stream_id)
        self.count -= 1
        if not subs:
            del self._subs[stream_id]
        return True

    def remove(self, outbox: Outbox) -> None:
        for sid in list(outbox.streams):
            self.unsubscribe(sid, outbox)

    def publish(self, stream_id: str, frame: bytes) -> int:
        subs = self._subs.get(stream_id)
        if not subs:
            return 0
        for ob in subs:
            ob.offer(frame)
        return len(subs)
