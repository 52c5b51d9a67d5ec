"""The inbox's second write path on SQLite: an fsync'ed append-only file for a verified callback
that cannot be committed before the platform's answer deadline.

Why (issue 18 #8): SQLite has one writer. While another connection holds the write lock (a
`leadbot import`, a backup, a long transaction of our own), the inbox INSERT waits for it, and a
callback answered after WeCom's 5 s or DingTalk's 1.5 s is a failure to the platform. Answering
503 instead would be safe only where the platform redelivers; DingTalk robot messages and card
taps are never redelivered (conformance D12), so a refusal there loses the message. So when
the row cannot be committed within the ack budget, the event is appended here and fsync'ed
before the answer goes out: durable-before-ack still holds, on a path no database lock can
stall. `replay` moves the lines into the inbox table (the UNIQUE dedupe key makes a line whose
row did get committed meanwhile, or a platform retry, a no-op) and then deletes the file.

One file per process (named by its lease identity, store.leases): a process replays its own
file and those of processes that are gone, never a live neighbour's, which may still append.
A file is renamed before it is read, and every append opens the file by its name (nothing keeps
it open), so an append after the rename starts a new file instead of writing into one a replay
has already read; appends and renames both run on the event loop's thread.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

from store.leases import holder_gone

ACTIVE = ".jsonl"
DRAINING = ".draining"


def spill_dir_for(database_path: str) -> Path:
    return Path(database_path + ".spill")


class SpillJournal:
    def __init__(self, directory: Path, owner: str) -> None:
        self.directory = directory
        self.owner = owner

    @property
    def active(self) -> Path:
        return self.directory / (self.owner + ACTIVE)

    def append(self, row: Mapping[str, Any]) -> None:
        """Writes one inbox row (the values Inbox would insert, plus an optional `once` guard)
        and fsyncs it; returns only when it is on disk."""
        line = json.dumps(dict(row), ensure_ascii=False, default=_iso, separators=(",", ":")) + "\n"
        self.directory.mkdir(parents=True, exist_ok=True)
        created = not self.active.exists()
        fd = os.open(self.active, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8", "surrogatepass"))
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.directory)  # the new file's name is durable too

    def pending(self) -> bool:
        """Whether anything may wait here (cheap: one directory listing)."""
        try:
            return any(n.endswith((ACTIVE, DRAINING)) for n in os.listdir(self.directory))
        except FileNotFoundError:
            return False

    def take(self) -> list[Path]:
        """The files to replay now: this process's own (renamed, so later appends start a new
        file) and those of processes that are gone."""
        if not self.pending():
            return []
        taken = []
        for path in sorted(self.directory.iterdir()):
            name = path.name
            if name.endswith(DRAINING):
                owner = name[:-len(DRAINING)].rsplit(".", 1)[0]
            elif name.endswith(ACTIVE):
                owner = name[:-len(ACTIVE)]
            else:
                continue
            if owner != self.owner and not holder_gone(owner, self.owner):
                continue
            if name.endswith(ACTIVE):
                draining = self.directory / f"{owner}.{os.getpid()}-{_stamp()}{DRAINING}"
                path.rename(draining)
                _fsync_dir(self.directory)
                path = draining
            taken.append(path)
        return taken

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        """The rows in a file. A torn last line (a crash while writing it) was never fsync'ed
        and so never acknowledged: it is skipped."""
        rows = []
        for line in path.read_bytes().decode("utf-8", "surrogatepass").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                row["received_at"] = datetime.fromisoformat(row["received_at"])
                rows.append(row)
        return rows

    def done(self, path: Path) -> None:
        path.unlink(missing_ok=True)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%d%H%M%S%f")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
