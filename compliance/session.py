"""Per-stream state across messages (sans-I/O): split terms, partial/final dedupe, bounded memory.

A speech recogniser cuts ``全网 | 最低价`` into two segments; a viewer types ``加`` / ``微`` / ``信``
in three chat lines. Checked one by one, neither is caught. A :class:`StreamSession` keeps, per
speaker, a short **tail** of what that speaker said last (at most ``tail_chars`` characters of
*final* text, younger than the source's window) and checks ``tail + new text``. Only findings that
**end inside the new text** are reported: anything wholly inside the tail was reported when the
tail was new.

Offsets of a reported finding are offsets into the *new* message's text. A finding that began
in an earlier message (it crosses the join) is reported with ``start = 0``, ``end`` in the new
text, ``text`` = the whole matched text across messages, ``carry`` = how many of its characters
came from earlier messages and ``from_seq`` = the ``seq`` of the message where it began. So
``new_text[start:end] == finding.text[carry:]`` always holds.

Partial speech-recognition results of one segment (same ``segment`` key, ``final=False``) are
checked too (a warning is most useful while the host is still talking), and every finding reported
for a segment is remembered as ``(rule_id, matched, occurrence)``: a later partial or the final
revision of the same segment reports only what is new. Only final text enters the tail.

Nothing here reads a clock: every call takes ``now`` (seconds, any monotonic origin). Memory is
bounded: ``max_streams`` streams (least recently used evicted), ``max_speakers`` speakers per
stream, ``max_open_segments`` remembered segments per speaker, ``tail_chars`` of text per speaker;
:meth:`SessionStore.evict_idle` drops streams idle for longer than ``idle_timeout``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from .findings import Finding, Source

_HOST = Source.HOST

__all__ = ["Reported", "SessionConfig", "SessionStore", "StreamSession"]

#: characters of the new text, beyond ``tail_chars``, checked together with the tail for matches
#: that cross the join (longer than any term; a pattern match that crosses the join and runs on
#: further than this is cut short)
_JOIN_LOOKAHEAD = 48


def _extend(c: Finding, own: tuple[Finding, ...], n: int, tail: str, text: str) -> Finding:
    """Crossing finding ``c`` (offsets in ``tail + text``) over the same rule's findings of the new
    text (offsets in ``text``) that it overlaps."""
    end = c.end
    for f in own:
        if f.rule_id == c.rule_id and f.start + n < end < f.end + n:
            end = f.end + n
    if end == c.end:
        return c
    return replace(c, end=end, text=(tail + text)[c.start:end])


class _Checks(Protocol):  # what the session needs of a Checker
    def check(self, text: str, source: Source | str = ..., product: str | None = ...) -> tuple[Finding, ...]: ...


@dataclass(frozen=True, slots=True)
class SessionConfig:
    #: characters of a speaker's previous final text joined to the next message; must be at
    #: least the longest rule term minus one to catch every split term
    tail_chars: int = 16
    #: a tail older than this (seconds) is not joined: host speech / chat lines
    host_window: float = 8.0
    chat_window: float = 10.0
    max_streams: int = 10_000
    max_speakers: int = 512
    max_open_segments: int = 8
    #: a stream unused for this long (seconds) is dropped by ``evict_idle``
    idle_timeout: float = 600.0

    def window(self, source: Source) -> float:
        return self.host_window if source is Source.HOST else self.chat_window


@dataclass(frozen=True, slots=True)
class Reported:
    """A finding to report for one message, with offsets into that message's text."""

    finding: Finding
    #: characters of the match that came from earlier messages (0: wholly in this message)
    carry: int = 0
    #: ``seq`` of the message where a carried match began
    from_seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = self.finding.to_dict()
        d["carry"] = self.carry
        d["from_seq"] = self.from_seq
        return d


_NOTHING: frozenset[tuple[str, str, int]] = frozenset()


class _Segment:
    """What was reported for one segment (a plain slotted class: one is made per message, so it is kept cheap)."""

    __slots__ = ("reported", "final")

    def __init__(self) -> None:
        #: (rule_id, matched, occurrence) already reported; the shared empty frozenset until there is one
        self.reported: frozenset[tuple[str, str, int]] | set[tuple[str, str, int]] = _NOTHING
        self.final = False


#: the segment of a final message with nothing found (most chat lines): one shared, never changed instance;
#: replaced by a segment of its own when something is to be remembered for it
_FINAL_CLEAN = _Segment()
_FINAL_CLEAN.final = True


@dataclass(slots=True)
class _Speaker:
    tail: str = ""
    tail_at: float = 0.0
    #: position of tail[0] in everything this speaker said (positions below are absolute, so
    #: trimming the tail does not rewrite them)
    origin: int = 0
    #: seq, start, seq, start, ... of each message whose text is (partly) in the tail, in order: flat
    #: ints, not (seq, start) tuples, so that a message leaves no new object for the garbage collector
    #: (server/app.py, YoungCollections: objects that survive while old ones die are never collected
    #: young; they pile up until one long collection)
    pieces: list[int] = field(default_factory=list)
    #: (rule_id, start, end) of findings already reported that overlap the tail
    spans: list[tuple[str, int, int]] = field(default_factory=list)
    segments: OrderedDict[Hashable, _Segment] = field(default_factory=OrderedDict)

    def clear_tail(self) -> None:
        self.origin += len(self.tail)
        self.tail = ""
        self.pieces.clear()
        self.spans.clear()


class StreamSession:
    """The cross-message state of one stream. Use through :class:`SessionStore` or on its own."""

    __slots__ = ("stream_id", "config", "last_seen", "_speakers")

    def __init__(self, stream_id: str, config: SessionConfig | None = None, *, now: float = 0.0) -> None:
        self.stream_id = stream_id
        self.config = config or SessionConfig()
        self.last_seen = now
        self._speakers: OrderedDict[tuple[Source, str], _Speaker] = OrderedDict()

    def __len__(self) -> int:
        return len(self._speakers)

    def feed(
        self,
        checker: _Checks,
        text: str,
        *,
        source: Source,
        seq: int,
        now: float,
        speaker: str | None = None,
        segment: Hashable | None = None,
        final: bool = True,
        product: str | None = None,
    ) -> tuple[Reported, ...]:
        """Check one message in the context of this stream; returns only what is new.

        ``speaker`` keys the tail (a chat user id, or the host's name; ``None`` disables joining
        and dedupe for this message). ``segment`` keys partial/final revisions of one recognised
        utterance (default: ``seq``). Raises whatever ``checker.check`` raises; then nothing of
        this message is remembered.
        """
        self.last_seen = now
        if speaker is None:
            return tuple(Reported(f) for f in checker.check(text, source, product))
        # the speaker's state, most recently used last (inlined _speaker: this runs for every message)
        key = (source, speaker)
        speakers = self._speakers
        sp = speakers.get(key)
        config = self.config
        if sp is None:
            sp = speakers[key] = _Speaker()
            if len(speakers) > config.max_speakers:
                speakers.popitem(last=False)
        else:
            speakers.move_to_end(key)
        tail = sp.tail
        if tail and now - sp.tail_at > (config.host_window if source is _HOST else config.chat_window):
            sp.clear_tail()
            tail = ""
        n = len(tail)
        # What lies wholly in the new text is decided by the new text alone: an earlier message's
        # words must not cancel it (a negation or warning look-back stops at the join). The join
        # itself (tail + the head of the new text) is checked only for matches that cross it.
        own = checker.check(text, source, product)
        crossing: list[Finding] = []
        if n:
            head = text[: config.tail_chars + _JOIN_LOOKAHEAD]
            if getattr(type(checker), "supports_crossing", False):
                # only matches crossing the join are wanted: the rest is not verified again
                joined = checker.check(tail + head, source, product, crossing=n)  # type: ignore[call-arg]
            else:
                joined = checker.check(tail + head, source, product)
            if joined:
                # a classifier rule's finding is the model's opinion of one whole message, never of a join
                model_rules = getattr(checker, "classifier_rule_ids", frozenset())
                crossing = [f for f in joined if f.start < n < f.end and f.rule_id not in model_rules]
                if crossing and own:
                    # the engine merges one rule's overlapping hits into one finding; the join check
                    # did not verify the part wholly inside the new text, so merge it here
                    crossing = [_extend(c, own, n, tail, text) for c in crossing]
                    # a crossing match supersedes the same category's shorter match inside the new text
                    own = tuple(
                        f for f in own
                        if not any(c.category == f.category and f.start + n < c.end for c in crossing)
                    )
        seg_key = seq if segment is None else segment
        segments = sp.segments
        seg = segments.get(seg_key)
        if not own and not crossing:
            # nothing found (almost every message): nothing to report, remember or add to the spans
            if seg is None:
                seg = segments[seg_key] = _FINAL_CLEAN if final else _Segment()
                if len(segments) > config.max_open_segments:
                    segments.popitem(last=False)
                if final:
                    self._extend_tail(sp, text, seq, now, None)
            else:
                segments.move_to_end(seg_key)
                if final and not seg.final:
                    seg.final = True
                    self._extend_tail(sp, text, seq, now, None)
            return ()
        if seg is not None:
            segments.move_to_end(seg_key)
        base = sp.origin  # absolute position of (tail + text)[0]
        out: list[Reported] = []
        keys: list[tuple[str, str, int]] = []
        new_spans: list[tuple[str, int, int]] = []
        occurrences: dict[tuple[str, str], int] = {}
        # offsets: crossing findings index tail + head, the others the new text
        for f, shift in [*((c, 0) for c in crossing), *((f, n) for f in own)]:
            fs, fe = base + shift + f.start, base + shift + f.end
            if not shift and any(rid == f.rule_id and s < fe and fs < e for rid, s, e in sp.spans):
                continue  # the same rule was already reported over the earlier part of this span
            occ_key = (f.rule_id, f.matched)
            k = occurrences.get(occ_key, 0)
            occurrences[occ_key] = k + 1
            key = (f.rule_id, f.matched, k)
            keys.append(key)
            new_spans.append((f.rule_id, fs, fe))
            if seg is not None and key in seg.reported:
                continue  # reported for an earlier partial result of this segment
            if shift or not n:
                out.append(Reported(f))
            else:
                pieces = sp.pieces
                from_seq = pieces[0] if pieces else None
                for k in range(1, len(pieces), 2):
                    if pieces[k] <= fs:
                        from_seq = pieces[k - 1]
                    else:
                        break
                out.append(Reported(replace(f, start=0, end=f.end - n), carry=n - f.start, from_seq=from_seq))
        if seg is None:
            seg = segments[seg_key] = _Segment()
            if len(segments) > config.max_open_segments:
                segments.popitem(last=False)
        elif seg is _FINAL_CLEAN and keys:
            seg = segments[seg_key] = _Segment()  # the shared instance is never changed
            seg.final = True
        if keys:
            reported = seg.reported
            if reported is _NOTHING:
                seg.reported = set(keys)
            else:
                reported.update(keys)  # type: ignore[union-attr]
        if final and not seg.final:
            seg.final = True
            self._extend_tail(sp, text, seq, now, new_spans)
        return tuple(out)

    def _extend_tail(
        self, sp: _Speaker, text: str, seq: int, now: float, spans: list[tuple[str, int, int]] | None
    ) -> None:
        if not text:
            return
        tail = sp.tail
        pieces = sp.pieces
        pieces += (seq, sp.origin + len(tail))
        if spans:
            sp.spans.extend(spans)
        joined = tail + text
        cut = len(joined) - self.config.tail_chars
        if cut > 0:
            sp.tail = joined[cut:]
            origin = sp.origin = sp.origin + cut
            # keep the piece that holds tail[0] and every later one
            while len(pieces) > 2 and pieces[3] <= origin:
                del pieces[:2]
            if sp.spans:
                sp.spans = [x for x in sp.spans if x[2] > origin]
        else:
            sp.tail = joined
        sp.tail_at = now


class SessionStore:
    """Every stream's session, bounded: LRU beyond ``max_streams``, idle ones dropped by ``evict_idle``."""

    def __init__(self, config: SessionConfig | None = None) -> None:
        self.config = config or SessionConfig()
        self._streams: OrderedDict[str, StreamSession] = OrderedDict()
        #: streams dropped so far (idle or over the limit)
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._streams)

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self._streams

    def session(self, stream_id: str, now: float) -> StreamSession:
        s = self._streams.get(stream_id)
        if s is None:
            s = self._streams[stream_id] = StreamSession(stream_id, self.config, now=now)
            if len(self._streams) > self.config.max_streams:
                self._streams.popitem(last=False)
                self.evicted += 1
        else:
            self._streams.move_to_end(stream_id)
            s.last_seen = now
        return s

    def feed(self, stream_id: str, checker: _Checks, text: str, **kwargs: Any) -> tuple[Reported, ...]:
        """``session(stream_id, now).feed(checker, text, ...)``."""
        return self.session(stream_id, kwargs["now"]).feed(checker, text, **kwargs)

    def evict_idle(self, now: float) -> list[str]:
        """Drop every stream not used for ``idle_timeout`` seconds; returns their ids."""
        limit = now - self.config.idle_timeout
        gone: list[str] = []
        # the dict is in order of last use, so the idle ones are at the front
        while self._streams:
            sid, s = next(iter(self._streams.items()))
            if s.last_seen > limit:
                break
            del self._streams[sid]
            gone.append(sid)
        self.evicted += len(gone)
        return gone
