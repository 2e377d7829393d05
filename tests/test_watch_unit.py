"""Folder sync's decisions (``rag.index.watch.FolderWatcher``) on a real folder with a fake
clock: what is ready, what waits, what is gone. Fast; the syncs themselves are in
``tests/test_watch.py``."""

from __future__ import annotations

import os
from pathlib import Path

from rag.index.watch import FolderWatcher


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def write(path: Path, text: str, mtime_ns: int) -> None:
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_a_file_is_ready_once_stable_for_the_debounce_and_two_polls(tmp_path: Path) -> None:
    clock = Clock()
    watcher = FolderWatcher(tmp_path, debounce_s=2.0, clock=clock)
    write(tmp_path / "a.md", "# A\n\nFirst half", 1_000)
    first = watcher.poll()
    assert not first and first.waiting == 1
    clock.now += 1.0
    write(tmp_path / "a.md", "# A\n\nFirst half, second half.", 2_000)  # still being written
    assert not watcher.poll()
    clock.now += 1.5
    assert not watcher.poll()  # unchanged, but only for 1.5 s
    clock.now += 1.0
    ready = watcher.poll()
    assert list(ready.changed) == [(tmp_path / "a.md").resolve()]
    watcher.mark_synced(ready)
    clock.now += 5
    assert not watcher.poll()  # synced: nothing to do until it changes


def test_unsupported_and_hidden_files_are_not_watched(tmp_path: Path) -> None:
    clock = Clock()
    watcher = FolderWatcher(tmp_path, debounce_s=0.0, clock=clock)
    write(tmp_path / "notes.bin", "x", 1)
    (tmp_path / ".tmp").mkdir()
    write(tmp_path / ".tmp" / "b.md", "x", 1)
    write(tmp_path / ".c.md", "x", 1)
    first = watcher.poll()
    assert first.initial and not first.changed  # an empty folder still syncs once (prune)
    watcher.mark_synced(first)
    assert not watcher.poll()


def test_a_changed_file_syncs_again_and_a_deleted_one_after_the_debounce(
    tmp_path: Path,
) -> None:
    clock = Clock()
    watcher = FolderWatcher(tmp_path, debounce_s=1.0, clock=clock)
    write(tmp_path / "a.md", "one", 1_000)
    watcher.poll()
    clock.now += 1
    watcher.mark_synced(watcher.poll())
    write(tmp_path / "a.md", "two", 3_000)
    clock.now += 1
    assert not watcher.poll()
    clock.now += 1
    changed = watcher.poll()
    assert changed.changed
    watcher.mark_synced(changed)

    (tmp_path / "a.md").unlink()
    clock.now += 1
    assert not watcher.poll()  # gone for 0 s: a save-by-rename may bring it back
    clock.now += 1
    gone = watcher.poll()
    assert gone.removed == {(tmp_path / "a.md").resolve()}
    watcher.mark_synced(gone)
    clock.now += 1
    assert not watcher.poll()
