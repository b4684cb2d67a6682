"""The training line of a multi-visitor app: per-visitor model slots, one run at a time, in order.

A :class:`TrainingQueue` is the only thing an app needs to make training fair:

- **Slots, taken atomically.** :meth:`TrainingQueue.reserve` counts the visitor's kept models and
  their runs in flight under one lock, so simultaneous *Train* clicks in one session never get
  more than the limit. A run that fails, is cancelled or whose visitor left gives its slot back
  (:meth:`TrainingQueue.finish` with ``kept=None``); a saved model keeps it until the visitor leaves.
- **One run at a time, first come first served.** A reserved :class:`Ticket` waits in line
  (:meth:`TrainingQueue.wait_turn`) until every ticket before it has finished; its
  :meth:`~TrainingQueue.position` (``2nd in the queue, 1 run ahead``) can be shown while it waits.
  A cancelled ticket leaves the line at once, without ever taking its turn.
- **Tied to its visitor.** :meth:`TrainingQueue.leave` (the visitor closed the page) cancels all of
  that visitor's tickets, waiting or running, marks them ``gone`` (the caller deletes what a gone
  run still writes) and forgets their kept models.

It holds no model and imports no torch: the app keeps one instance per process.

Example:
    >>> q = TrainingQueue()
    >>> a = q.reserve("visitor-a", limit=2)
    >>> b = q.reserve("visitor-b", limit=2)
    >>> q.position(b).text()
    '2nd in the queue, 1 run ahead'
    >>> q.wait_turn(a, timeout=0)
    True
    >>> q.finish(a, kept="my model", folder="/models/a")
    True
    >>> q.position(b).text()
    'next in line'
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field


class SlotLimitReached(RuntimeError):
    """The visitor already holds (or is training) as many models as the limit allows."""

    def __init__(self, held: int, running: int, limit: int) -> None:
        super().__init__(f"{held} kept + {running} in flight >= {limit}")
        self.held, self.running, self.limit = held, running, limit


@dataclass(frozen=True)
class Position:
    """Where a ticket stands: ``place`` 1 is the run that trains now."""

    place: int
    ahead: int

    def text(self) -> str:
        """E.g. ``2nd in the queue, 1 run ahead``; ``next in line`` when nothing is ahead."""
        if self.ahead == 0:
            return "next in line"
        return f"{_ordinal(self.place)} in the queue, {self.ahead} run{'s' if self.ahead != 1 else ''} ahead"


@dataclass(eq=False)
class Ticket:
    """One reserved run.

    Attributes:
        visitor: the visitor (session) it belongs to.
        number: its place in the order of reservations (unique per queue).
        cancel: set to stop it (while waiting it leaves the line; while running the trainer polls it).
        state: ``waiting``, ``running`` or ``done``.
        gone: True once its visitor left; whatever the run still writes must be deleted.
        started: ``time.monotonic()`` when its turn came (None before).
    """

    visitor: str
    number: int
    cancel: threading.Event = field(default_factory=threading.Event)
    state: str = "waiting"
    gone: bool = False
    started: float | None = None


class TrainingQueue:
    """Per-visitor model slots and a first-come-first-served line of runs (thread-safe)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._line: list[Ticket] = []  # the first ticket runs (or is about to); the rest wait
        self._kept: dict[str, dict[str, str]] = {}  # visitor -> {model name: folder}
        self._numbers = itertools.count(1)

    # ------------------------------------------------------------------ slots
    def reserve(
        self, visitor: str, limit: int, held: Iterable[str] = (), cancel: threading.Event | None = None
    ) -> Ticket:
        """Take one of ``visitor``'s ``limit`` slots and a place at the end of the line.

        Args:
            visitor: the visitor's session id.
            limit: how many models one visitor may keep (runs in flight count).
            held: names of models the visitor already has (its session state); counted together with
                the models this queue saw it keep, each name once.
            cancel: the event that cancels this run (a new one when None).

        Raises:
            SlotLimitReached: kept models plus runs in flight already reach ``limit``.
        """
        with self._cond:
            kept = set(held) | set(self._kept.get(visitor, {}))
            running = sum(1 for t in self._line if t.visitor == visitor)
            if len(kept) + running >= limit:
                raise SlotLimitReached(len(kept), running, limit)
            ticket = Ticket(visitor, next(self._numbers), cancel if cancel is not None else threading.Event())
            self._line.append(ticket)
            self._cond.notify_all()
            return ticket

    def kept(self, visitor: str) -> dict[str, str]:
        """The models this queue saw ``visitor`` keep: ``{name: folder}``."""
        with self._cond:
            return dict(self._kept.get(visitor, {}))

    # ------------------------------------------------------------------ the line
    def position(self, ticket: Ticket) -> Position | None:
        """The ticket's place in line (None once it has left it)."""
        with self._cond:
            if ticket not in self._line:
                return None
            i = self._line.index(ticket)
            return Position(place=i + 1, ahead=i)

    def waiting(self) -> int:
        """Tickets in line, the running one included."""
        with self._cond:
            return len(self._line)

    def wait_turn(self, ticket: Ticket, timeout: float | None = None) -> bool:
        """Block until ``ticket`` is first in line (True, it now runs) or is cancelled (False, it left).

        ``timeout`` (seconds) bounds the wait; when it runs out the ticket keeps its place and False is
        returned with ``ticket.state`` still ``waiting``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if ticket.cancel.is_set() or ticket not in self._line:
                    self._drop(ticket)
                    return False
                if self._line[0] is ticket:
                    ticket.state, ticket.started = "running", time.monotonic()
                    return True
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                # a cancel set without notify() is seen within half a second
                self._cond.wait(0.5 if left is None else min(0.5, left))

    def finish(self, ticket: Ticket, kept: str | None = None, folder: str | None = None) -> bool:
        """The run ended: leave the line; with ``kept`` (its model's name) the slot stays taken.

        Returns:
            False when the visitor has left (the ticket is ``gone``): nothing is kept and the caller
            must delete the run's files; True otherwise.
        """
        with self._cond:
            self._drop(ticket)
            if ticket.gone:
                return False
            if kept is not None:
                self._kept.setdefault(ticket.visitor, {})[kept] = folder or ""
            return True

    def cancel(self, visitor: str) -> int:
        """Cancel every run of ``visitor`` (its *Cancel* button); returns how many."""
        with self._cond:
            mine = [t for t in self._line if t.visitor == visitor]
            for t in mine:
                t.cancel.set()
            self._cond.notify_all()
            return len(mine)

    def active(self, visitor: str) -> list[Ticket]:
        """``visitor``'s tickets still in line (waiting or running)."""
        with self._cond:
            return [t for t in self._line if t.visitor == visitor]

    def leave(self, visitor: str) -> list[Ticket]:
        """The visitor left: cancel and mark ``gone`` all its tickets, forget its kept models.

        Waiting tickets leave the line at once; a running one leaves when its trainer stops and calls
        :meth:`finish` (which then returns False). Returns the tickets that were still in line.
        """
        with self._cond:
            mine = [t for t in self._line if t.visitor == visitor]
            for t in mine:
                t.gone = True
                t.cancel.set()
            self._line = [t for t in self._line if t.visitor != visitor or t.state == "running"]
            for t in mine:
                if t.state != "running":
                    t.state = "done"
            self._kept.pop(visitor, None)
            self._cond.notify_all()
            return mine

    def _drop(self, ticket: Ticket) -> None:
        if ticket in self._line:
            self._line.remove(ticket)
        ticket.state = "done"
        self._cond.notify_all()


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


__all__ = ["Position", "SlotLimitReached", "Ticket", "TrainingQueue"]
