"""The core's in-memory view of its log: terms, matching and conflict search.

Rules of this module:
* Indexes start at 1; index 0 is the empty prefix with term 0.
* After compaction the log starts after a snapshot: `snapshot_index` and
  `snapshot_term` stand for the dropped prefix, whose terms are no longer
  known individually (`term_at` returns None below `snapshot_index`).
* Nothing here does I/O. A change to the log is mirrored to storage by the
  caller through a `PersistEntries` effect.
* The log never drops an entry at or below `floor` (the commit index), which
  the caller passes in; doing so would be a safety bug, so it raises.
"""

from __future__ import annotations

from collections.abc import Iterable

from .messages import Entry


class RaftLog:
    """Entries 1..last_index, kept in a list."""

    __slots__ = ("_entries", "snapshot_index", "snapshot_term")

    def __init__(
        self, entries: Iterable[Entry] = (), snapshot_index: int = 0, snapshot_term: int = 0
    ) -> None:
        self._entries: list[Entry] = list(entries)
        self.snapshot_index = snapshot_index
        self.snapshot_term = snapshot_term
        for pos, e in enumerate(self._entries):
            if e.index != snapshot_index + pos + 1:
                raise ValueError(f"log entries must be contiguous, got {e.index}")

    @property
    def first_index(self) -> int:
        return self.snapshot_index + 1

    @property
    def last_index(self) -> int:
        return self.snapshot_index + len(self._entries)

    @property
    def last_term(self) -> int:
        return self._entries[-1].term if self._entries else self.snapshot_term

    def term_at(self, index: int) -> int | None:
        """Term at `index`; the snapshot's term at its index; None when unknown."""
        if index == self.snapshot_index:
            return self.snapshot_term
        pos = index - self.snapshot_index - 1
        if 0 <= pos < len(self._entries):
            return self._entries[pos].term
        return None

    def entry(self, index: int) -> Entry:
        return self._entries[index - self.snapshot_index - 1]

    def slice(self, lo: int, hi: int) -> tuple[Entry, ...]:
        """Entries with lo <= index <= hi (clamped to what the log holds)."""
        lo = max(lo, self.first_index) - self.snapshot_index
        hi = min(hi, self.last_index) - self.snapshot_index
        return tuple(self._entries[lo - 1 : hi]) if hi >= lo else ()

    def compact(self, index: int) -> None:
        """Drop entries up to `index` (which must be held); a snapshot now stands for them."""
        term = self.term_at(index)
        if term is None:
            raise ValueError(f"cannot compact at {index}: not in the log")
        del self._entries[: index - self.snapshot_index]
        self.snapshot_index, self.snapshot_term = index, term

    def restore(self, index: int, term: int) -> None:
        """Start over from a received snapshot (§7): keep the entries after it only
        if we hold the snapshot's last entry with the same term."""
        if self.term_at(index) == term and index >= self.snapshot_index:
            del self._entries[: index - self.snapshot_index]
        else:
            self._entries = []
        self.snapshot_index, self.snapshot_term = index, term

    def matches(self, index: int, term: int) -> bool:
        return self.term_at(index) == term

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """§5.4.1: is a log ending at (last_index, last_term) at least as new as ours?"""
        if last_term != self.last_term:
            return last_term > self.last_term
        return last_index >= self.last_index

    def append(self, entry: Entry) -> None:
        if entry.index != self.last_index + 1:
            raise ValueError(f"append at {entry.index}, log ends at {self.last_index}")
        self._entries.append(entry)

    def merge(self, entries: tuple[Entry, ...], floor: int) -> tuple[int, tuple[Entry, ...]]:
        """Take a leader's `entries` (already known to follow a matching prefix).

        Entries we already hold are skipped; at the first conflict the tail is
        cut and the rest appended. Returns (from_index, new_entries), with
        new_entries empty when nothing changed.
        """
        for pos, e in enumerate(entries):
            mine = self.term_at(e.index)
            if mine == e.term:
                continue
            if mine is not None:
                if e.index <= floor:
                    raise AssertionError(f"refusing to truncate committed index {e.index}")
                del self._entries[e.index - self.snapshot_index - 1 :]
            new = entries[pos:]
            self._entries.extend(new)
            return e.index, new
        return 0, ()

    def conflict_hint(self, prev_index: int) -> tuple[int, int]:
        """Hint for a rejected AppendEntries at `prev_index`: (hint_index, hint_term).

        If we are too short, (last_index + 1, 0). Otherwise the term we hold at
        prev_index and the first index of that term in our log, so the leader
        can skip the whole term in one round trip.
        """
        term = self.term_at(prev_index)
        if term is None:
            return self.last_index + 1, 0
        index = prev_index
        for _ in range(prev_index):
            if index <= self.first_index or self.term_at(index - 1) != term:
                break
            index -= 1
        return index, term

    def last_index_of_term(self, term: int, at_most: int) -> int:
        """Highest index <= at_most holding `term`, or 0 (terms are sorted in a log)."""
        index = min(at_most, self.last_index)
        for _ in range(index):
            t = self.term_at(index)
            if t is None or t <= term:
                return index if t == term else 0
            index -= 1
        return 0

    def entries(self) -> tuple[Entry, ...]:
        return tuple(self._entries)
