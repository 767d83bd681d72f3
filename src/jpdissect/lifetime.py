"""How long per-capture state lives: capture-time expiry and the single-pass promise.

Why this exists: the stateful dissectors keep a little per conversation (a DTLS session's record
numbers and handshake messages, a CoAP exchange, a UDP stream's number). A capture of a Join Proxy
holds a new conversation for every pledge, so anything kept "for the rest of the capture" grows
with the file, and ``jpdissect read`` on a 1 GiB capture must stay under 150 MiB. Wireshark's
reassembly and conversation tables face the same problem; the rules here are the ones its
single-pass users (tshark without ``-2``) would want:

* **Expiry by capture time.** A table forgets a conversation once no later packet can be affected
  by it: when the protocol's own timers say it is over (RFC 7252 ``EXCHANGE_LIFETIME`` for CoAP,
  the DTLS retransmission limit of RFC 6347 §4.2.4.1 and UDP mapping lifetimes of RFC 4787 for a
  DTLS session). The clock is the capture's timestamps, never the wall clock, so the same file
  always dissects the same way, however fast or slow it is read, in every mode of the engine.
* **The single-pass promise** (``Engine(single_pass=True)``, ``jpdissect read``): the caller
  dissects each frame once, in capture order, and reads nothing but the packets it is handed.
  Tables then keep no per-frame memo for re-dissecting a frame, and no per-session report rows
  (:func:`jpdissect.dtls_sessions.list_sessions`) -- nobody will ask. Output is the same either way;
  only what is *retained after* a conversation ends differs.

Tables sweep themselves when :meth:`Clock.tick` says a sweep is due (every few seconds of capture
time), so the per-packet cost is one comparison.
"""

from __future__ import annotations

from typing import Any

#: Key in ``Engine.state`` holding the single-pass promise (set by the engine, read by the tables).
SINGLE_PASS = "engine.single_pass"
#: How often (capture time) a table looks for expired entries: small next to every lifetime used.
SWEEP_EVERY_NS = 5 * 1_000_000_000


def single_pass(state: dict[str, Any]) -> bool:
    """Whether the engine owning ``state`` promised one in-order pass with nothing read afterwards."""
    return bool(state.get(SINGLE_PASS, False))


class Clock:
    """Capture time as a state table sees it: the newest timestamp so far, and when to sweep.

    Timestamps in a capture can step backwards (several interfaces, clock adjustments); the clock
    never does, so an entry's age is never negative and nothing expires twice as fast.
    """

    __slots__ = ("now", "every", "_next")

    def __init__(self, every_ns: int = SWEEP_EVERY_NS) -> None:
        self.now: int | None = None
        self.every = every_ns
        self._next = 0

    def tick(self, ts_ns: int) -> bool:
        """Advance to ``ts_ns``; True when a sweep is due (then not again for ``every`` ns)."""
        now = self.now
        if now is None:
            self.now = now = ts_ns
            self._next = ts_ns + self.every
            return False
        if ts_ns > now:
            self.now = now = ts_ns
        if now >= self._next:
            self._next = now + self.every
            return True
        return False
