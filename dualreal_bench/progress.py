"""The progress display of a run: rich bars that fit an 80-column terminal.

One header line names the method variant (its store label, e.g. ``dualreal[controller=false]``)
and the case being worked on; below it one row per running stage::

    dualreal[controller=false] · smoke_toy__smoke_pendulum
    cases            ━━━━━━━━━━━━━━━━━━━━━━━━━━━    0/1              00:12<?
    train identity   ━━━━━━━━━━╺━━━━━━━━━━━━━━━━   37/100 loss 0.1234 00:05<00:08

The numbers (steps, loss, elapsed<remaining, as tqdm writes them) always get their full width;
when the terminal is narrow the bar shrinks first, then the stage name is cut with an
ellipsis. The display goes to stderr, so stdout stays clean for what a command prints.
``make_progress(False)`` (``--quiet``) gives None, and every caller treats None as "no bars".
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator
from typing import Any

from rich.console import Console, RenderableType
from rich.progress import Progress, ProgressBar, ProgressColumn, Task
from rich.table import Column, Table
from rich.text import Text

BAR_WIDTH = (10, 40)  # the bar's narrowest and widest width, in columns
DESCRIPTION_MIN = 8  # the stage name is never cut below this many columns
JUSTIFY = ("right", "right", "left")  # steps, loss, time


def _clock(seconds: float) -> str:
    """``MM:SS`` below an hour, ``H:MM:SS`` above (as tqdm)."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def format_loss(loss: float) -> str:
    """``loss 0.1234``; tiny or huge losses in scientific notation, so the width stays small."""
    if not math.isfinite(loss):
        return f"loss {loss}"
    if loss == 0 or 1e-3 <= abs(loss) < 1e4:
        return f"loss {loss:.4f}"
    return f"loss {loss:.2e}"


class StepsColumn(ProgressColumn):
    """``completed/total`` (``completed/?`` while the total is unknown)."""

    def render(self, task: Task) -> Text:
        total = "?" if task.total is None else str(int(task.total))
        return Text(f"{int(task.completed):>{len(total)}d}/{total}", style="progress.download")


class LossColumn(ProgressColumn):
    """The task's ``loss`` field (training rows), empty otherwise."""

    max_refresh = 0.5  # not faster than a person reads

    def render(self, task: Task) -> Text:
        loss = task.fields.get("loss")
        return Text("" if loss is None else format_loss(float(loss)), style="cyan")


class TimeColumn(ProgressColumn):
    """``elapsed<remaining`` while running (``<?`` before an estimate exists), ``elapsed`` when done."""

    max_refresh = 0.5

    def render(self, task: Task) -> Text:
        elapsed = _clock(task.finished_time if task.finished else (task.elapsed or 0.0))
        if task.finished:
            return Text(elapsed, style="progress.elapsed")
        remaining = task.time_remaining
        return Text(
            f"{elapsed}<{'?' if remaining is None else _clock(remaining)}",
            style="progress.remaining",
        )


class RunProgress(Progress):
    """:class:`rich.progress.Progress` with a header (variant label and current case) and a
    layout computed for the console's width (see the module docstring).

    Tasks take the usual ``description`` / ``total`` / ``completed`` and an optional ``loss``
    field: ``progress.update(task, completed=step, loss=0.12)``.
    """

    def __init__(self, label: str, *, console: Console | None = None, **kwargs: Any) -> None:
        self.label = label
        self.case: str | None = None
        self._steps, self._loss, self._time = StepsColumn(), LossColumn(), TimeColumn()
        # kept here: rich renders once before ``self.live`` (and so ``self.console``) exists
        self._out = console or Console(stderr=True)
        super().__init__(self._steps, self._loss, self._time, console=self._out, **kwargs)

    def set_case(self, case_id: str | None) -> None:
        self.case = case_id
        self.refresh()

    def header(self) -> Text:
        text = Text(self.label, style="bold")
        if self.case:
            text.append(f" · {self.case}")
        text.no_wrap, text.overflow = True, "ellipsis"
        return text

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.header()
        yield self.make_tasks_table(self.tasks)

    def make_tasks_table(self, tasks: Iterable[Task]) -> Table:
        tasks = [t for t in tasks if t.visible]
        rows = [[col(t) for col in (self._steps, self._loss, self._time)] for t in tasks]
        # the numbers first: each column as wide as its widest cell
        widths = [
            max((cell.cell_len for cell in column), default=0)
            for column in zip(*rows, strict=False)
        ]
        widths = widths or [0, 0, 0]
        room = self._out.width - sum(widths) - 4  # one space between the 5 columns
        wanted = max((Text(t.description).cell_len for t in tasks), default=0)
        bar = max(BAR_WIDTH[0], min(BAR_WIDTH[1], room - wanted))
        description = max(DESCRIPTION_MIN, min(wanted, room - bar))
        bar = max(1, min(bar, room - description))
        table = Table.grid(
            Column(width=description, no_wrap=True, overflow="ellipsis"),
            Column(width=bar, no_wrap=True),
            *(
                Column(width=w, no_wrap=True, justify=j)
                for w, j in zip(widths, JUSTIFY, strict=True)
            ),
            padding=(0, 1),
        )
        for task, cells in zip(tasks, rows, strict=True):
            pulse = task.total is None or not task.started
            table.add_row(
                Text(task.description, no_wrap=True, overflow="ellipsis"),
                ProgressBar(
                    total=max(0, task.total) if task.total is not None else None,
                    completed=max(0, task.completed),
                    width=bar,
                    pulse=pulse,
                    animation_time=task.get_time(),
                ),
                *cells,
            )
        return table


@contextlib.contextmanager
def make_progress(
    enabled: bool, label: str, *, console: Console | None = None
) -> Iterator[RunProgress | None]:
    """A live :class:`RunProgress` for the ``with`` block, or None when ``enabled`` is False."""
    if not enabled:
        yield None
        return
    with RunProgress(label, console=console) as progress:
        yield progress
