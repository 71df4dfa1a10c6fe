"""Progress on the terminal: a bar for long work on stderr, silent when stderr is not a terminal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Bar", "progress_bar"]


class Bar:
    """Reports work done to a rich progress display, one task per stage."""

    def __init__(self, progress: Any) -> None:
        self._progress = progress
        self._tasks: dict[str, Any] = {}

    def step(self, stage: str, done: int, total: int) -> None:
        """Show *stage* at *done* of *total* (a spinner when the total is unknown)."""
        if self._progress is None:
            return
        if stage not in self._tasks:
            for task in self._tasks.values():
                self._progress.update(
                    task,
                    completed=self._progress.tasks[task].total or 1,
                    total=self._progress.tasks[task].total or 1,
                )
            self._tasks[stage] = self._progress.add_task(stage, total=total or None)
        self._progress.update(self._tasks[stage], completed=done, total=total or None)

    def advance(self, stage: str, amount: int, total: int) -> None:
        """Add *amount* to *stage*'s work done."""
        if self._progress is None:
            return
        if stage not in self._tasks:
            self._tasks[stage] = self._progress.add_task(stage, total=total or None)
        self._progress.advance(self._tasks[stage], amount)


@contextmanager
def progress_bar() -> Iterator[Bar]:
    """A progress display for the duration of the block."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    if not console.is_terminal:
        yield Bar(None)
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        yield Bar(progress)
