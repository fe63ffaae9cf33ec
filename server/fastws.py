"""A websockets ``ServerConnection`` that reads plain text frames itself and leaves the rest to websockets.

Almost every frame a client sends is one unfragmented, masked text frame of a few hundred bytes.
websockets parses each with a generator per frame (``Protocol.parse`` → ``Frame.parse`` →
``StreamReader.read_exact``); that was about a tenth of the server's CPU per message. Here
``data_received`` cuts the incoming bytes into frames by their headers and:

* a complete frame with FIN set, no RSV bits, opcode text, masked, within the size limit, while no
  fragmented message is in progress and the connection is open: unmasked (websockets' C
  ``apply_mask``) and handed to the connection's ``process_event`` as the ``Frame`` websockets would
  have produced, so ``recv()`` returns it exactly as before;
* any other complete frame (ping, pong, close, binary, fragments, unmasked or otherwise invalid):
  its exact bytes go to websockets' own ``data_received``, which answers, closes or fails the
  connection as it always did;
* an incomplete frame waits in a buffer until it is complete, so websockets' parser only ever sees
  whole frames and stays at a frame boundary.

Anything unexpected turns the fast path off for the connection for good and hands websockets all
the bytes not yet processed: before the handshake, when websockets' own buffer is not empty at the
first frame, a frame header over the size limit (websockets fails the connection with 1009 as
before), and any state but OPEN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import State

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets without its C extension
    from websockets.utils import apply_mask

__all__ = ["FastServerConnection", "fast_reads_possible"]

_OPEN = State.OPEN
_TEXT = Opcode.TEXT
_from_bytes = int.from_bytes


def fast_reads_possible() -> bool:
    """The websockets internals this class relies on are there (checked on a throwaway protocol object)."""
    try:
        from websockets.server import ServerProtocol

        p = ServerProtocol()
        return (
            hasattr(p, "reader")
            and isinstance(getattr(p.reader, "buffer", None), bytearray)
            and hasattr(p, "current_size")
            and hasattr(p, "max_message_size")
            and hasattr(ServerConnection, "process_event")
        )
    except Exception:  # pragma: no cover
        return False


class FastServerConnection(ServerConnection):
    """See the module docstring. Behaves as ``ServerConnection`` for everything but plain text frames."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rx = bytearray()
        #: None: not decided yet (decided at the first data after the handshake); then True or False
        self._rx_fast: bool | None = None
        #: called with a plain text frame's payload while no other frame waits to be read; returns True
        #: when it answered the frame itself (then ``recv()`` never sees it), False to queue it as usual
        self.on_text: Callable[[bytes], bool] | None = None
        #: called after each chunk of data had its complete frames handled (e.g. to write the answers out)
        self.on_chunk_end: Callable[[], None] | None = None

    def _give_up(self, data: bytes | bytearray) -> None:
        self._rx_fast = False
        self._rx = bytearray()
        if data:
            super().data_received(bytes(data))

    def data_received(self, data: bytes) -> None:
        fast = self._rx_fast
        protocol = self.protocol
        if fast is None:
            if protocol.state is not _OPEN:  # the handshake (or anything before it): websockets' business
                super().data_received(data)
                return
            # the first data after the handshake: websockets' parser must be at a frame boundary, empty
            fast = self._rx_fast = not protocol.reader.buffer
        if not fast:
            if self._rx:
                data = bytes(self._rx) + data
                self._rx = bytearray()
            super().data_received(data)
            return
        buf = self._rx
        if buf:
            buf += data
            data = buf  # type: ignore[assignment]
        n = len(data)
        pos = 0
        limit = protocol.max_message_size
        on_text = self.on_text
        # frames already queued for recv(): while there are any, a text frame queues behind them
        waiting = self.recv_messages.frames
        waiting = getattr(waiting, "queue", waiting)  # SimpleQueue's deque: len() without a Python-level __len__
        while n - pos >= 2:
            b0 = data[pos]
            b1 = data[pos + 1]
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if n - pos < 4:
                    break
                length = _from_bytes(data[pos + 2 : pos + 4], "big")
                head = 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = _from_bytes(data[pos + 2 : pos + 10], "big")
                head = 10
            if b1 & 0x80:
                head += 4
            if limit is not None and length > limit:
                self._give_up(data[pos:])  # websockets fails the connection (1009), as before
                return
            end = pos + head + length
            if end > n:
                break  # incomplete: wait for the rest
            if b0 == 0x81 and b1 & 0x80 and protocol.state is _OPEN and protocol.current_size is None:
                payload = apply_mask(data[pos + head : end], data[pos + head - 4 : pos + head])
                if on_text is None or len(waiting) or not on_text(payload):
                    self.process_event(Frame(_TEXT, payload))
            else:
                super().data_received(bytes(data[pos:end]))
                if protocol.state is not _OPEN:
                    self._give_up(data[end:])
                    return
            pos = end
        on_chunk_end = self.on_chunk_end
        if on_chunk_end is not None:
            on_chunk_end()
        # keep what is left (an incomplete frame) for the next call
        if data is buf:
            del buf[:pos]
        elif pos < n:
            buf += data[pos:]
