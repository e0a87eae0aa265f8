"""Progress bars: the variant's label, the loss in its own column, an ETA, nothing cut at 80
columns (rendered on rich consoles of fixed width and read back as text), and off with --quiet."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import fake_components as fc
import pytest
from rich.console import Console

import dualreal_bench.progress as progress_module
from dualreal_bench.progress import RunProgress, format_loss
from dualreal_bench.runner import RunConfig, Runner

LABEL = "dualreal[controller=false]"
CASE = "smoke_toy__smoke_pendulum"


def _console(width: int) -> Console:
    return Console(
        width=width,
        record=True,
        force_terminal=True,
        color_system=None,
        file=open("/dev/null", "w"),
    )


def _render(width: int) -> list[str]:
    console = _console(width)
    progress = RunProgress(LABEL, console=console, auto_refresh=False)
    progress.set_case(CASE)
    progress.add_task("cases", total=50, completed=12)
    progress.add_task("train identity", total=1000, completed=37, loss=0.12345)
    progress.add_task("train textual_inversion", total=None)
    progress.add_task("reference clips", total=3, completed=1)
    console.print(progress.get_renderable())
    return console.export_text().rstrip("\n").split("\n")


@pytest.mark.parametrize("width", [80, 100, 160])
def test_rows_fit_the_console_and_keep_every_number(width):
    header, cases, train, textual, reference = _render(width)
    assert header == f"{LABEL} · {CASE}"  # the variant, not just the method
    for line in (header, cases, train, textual, reference):
        assert len(line) <= width, (width, line)
    assert cases.startswith("cases ") and cases.split()[-2:] == ["12/50", "00:00<?"]
    # steps, the loss in its own column, elapsed<remaining: whole, in this order
    assert train.startswith("train identity ")
    assert train.split()[-4:] == ["37/1000", "loss", "0.1235", "00:00<?"]
    assert textual.split()[-2:] == ["0/?", "00:00<?"] and "loss" not in textual
    assert reference.startswith("reference clips ") and reference.split()[-2:] == ["1/3", "00:00<?"]
    assert "…" not in "\n".join((header, cases, train, reference))  # 80 columns are enough
    # the numbers line up (right-aligned in their columns)
    assert train.index("37/1000") + len("37/1000") == cases.index("12/50") + len("12/50")


def test_a_narrow_console_cuts_the_stage_name_never_a_number():
    header, cases, train, textual, reference = _render(50)
    assert all(len(line) <= 50 for line in (header, cases, train, textual, reference))
    assert header.endswith("…") and header.startswith(LABEL)
    assert train.startswith("train id…") and textual.startswith("train te…")
    assert train.split()[-4:] == ["37/1000", "loss", "0.1235", "00:00<?"]
    assert cases.split()[-2:] == ["12/50", "00:00<?"]


def test_time_column_shows_the_estimate_then_the_elapsed_time():
    clock = {"t": 0.0}
    progress = RunProgress(
        LABEL, console=_console(80), auto_refresh=False, get_time=lambda: clock["t"]
    )
    task = progress.add_task("generate", total=10)
    progress.start_task(task)
    for step in range(1, 5):
        clock["t"] = 15.0 * step
        progress.update(task, completed=step)
    column = progress_module.TimeColumn()
    assert column.render(progress.tasks[0]).plain == "01:00<01:30"  # 4 of 10 in 60 s: 90 s left
    clock["t"] = 3700.0
    progress.update(task, completed=10)
    assert column.render(progress.tasks[0]).plain == "1:01:40"  # finished: elapsed only


def test_loss_format():
    assert format_loss(0.12345) == "loss 0.1235"
    assert format_loss(12.5) == "loss 12.5000"
    assert format_loss(3.2e-6) == "loss 3.20e-06"
    assert format_loss(0.0) == "loss 0.0000"
    assert format_loss(math.nan) == "loss nan"


@pytest.fixture
def recorded(monkeypatch):
    """What the run's progress display shows: every console it opens is 80 columns wide, and
    the display is rendered as text after each update (a fast fake training is seen step by
    step). Returns ``{"consoles": [...], "frames": [[line, ...], ...]}``."""
    seen: dict[str, list] = {"consoles": [], "frames": []}

    def console_factory(**kwargs):
        seen["consoles"].append(_console(80))
        return seen["consoles"][-1]

    monkeypatch.setattr(progress_module, "Console", console_factory)

    def capturing(method):
        def wrapper(self, *args, **kwargs):
            method(self, *args, **kwargs)
            console = _console(80)
            console.print(self.get_renderable())
            seen["frames"].append(console.export_text().rstrip("\n").split("\n"))

        return wrapper

    for name in ("update", "advance"):
        monkeypatch.setattr(RunProgress, name, capturing(getattr(RunProgress, name)))
    for k in fc.CALLS:
        fc.CALLS[k] = 0
    return seen


def _run(tmp_path, progress: bool):
    cfg = RunConfig(
        method="fake_components:LossReportingMethod",
        method_overrides=("scale=2",),
        output_dir=str(tmp_path),
        run_id="r",
        progress=progress,
    )
    runner = Runner(
        cfg, backbone=fc.FakeBackbone(), evaluator=fc.FakeEvaluator(), cases=fc.make_cases(2, 2)
    )
    runner.run()
    return runner


def test_a_run_shows_variant_case_loss_and_stages_at_80_columns(tmp_path, recorded):
    runner = _run(tmp_path, progress=True)
    label = runner.worker.label
    assert label.startswith("lossy[") and "scale=2" in label
    assert len(recorded["consoles"]) == 1  # one display for the run
    frames = recorded["frames"]
    assert frames and all(len(line) <= 80 for frame in frames for line in frame)
    # the header names the variant and the case being worked on
    headers = [frame[0] for frame in frames]
    assert set(headers) == {f"{label} · {case.case_id}" for case in fc.make_cases(2, 2)}
    rows = [line for frame in frames for line in frame[1:]]
    steps = fc.LossReportingMethod.LOSS_STEPS
    for step in range(1, steps + 1):  # each training step: steps done, its loss, elapsed<remaining
        row = [
            line
            for line in rows
            if line.startswith("train identity ") and f" {step}/{steps} " in line
        ]
        assert row, rows
        assert row[0].split()[-3:-1] == ["loss", format_loss(1.0 / step).split()[1]]
        assert "<" in row[0].split()[-1] or step == steps
    assert any(line.startswith("generate ") and " 1/2 " in line for line in rows)
    assert any(line.startswith("evaluate ") and " 2/2 " in line for line in rows)
    assert any(line.startswith("cases ") and " 2/2 " in line for line in rows)


def test_quiet_run_shows_no_progress(tmp_path, recorded):
    _run(tmp_path, progress=False)
    assert recorded == {"consoles": [], "frames": []}  # no display was even opened
    assert fc.CALLS["train"] == 2  # and the run did its work


# ---- speed of the first result -------------------------------------------------------------------


def test_cli_lets_openmp_threads_sleep_unless_the_user_chose(monkeypatch, capsys):
    from dualreal_bench import cli

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert cli.main(["list", "suites"]) == 0
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert cli.main(["list", "suites"]) == 0
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_cli_parser_does_not_load_torch():
    """The wait policy is read when torch (its OpenMP runtime) loads: the CLI must set it before
    any command module imports torch."""
    code = "import sys; from dualreal_bench import cli; cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
