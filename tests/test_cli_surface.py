"""The command line's conventions: what goes to stdout and stderr, where the global flags may
stand, --version, the default run of `report`, `list runs`, the metric encoders' device, a
method's options, and `evaluate` scoring a run's own videos exactly as the run did."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dualreal_bench.cli import build_parser, cli_logging, main
from dualreal_bench.errors import ConfigError

CLI = [sys.executable, "-m", "dualreal_bench.cli"]
PAIR = ("smoke_toy", "smoke_pendulum")
CASE = "__".join(PAIR)


def _cli(*args, cwd, check=True):
    env = {**os.environ, "DUALREAL_BENCH_CACHE": str(cwd / "cache"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def _records(run_dir: Path, label: str) -> dict[str, dict]:
    return {
        p.name: json.loads(p.read_text())
        for p in sorted((run_dir / label / CASE / "records").glob("*.json"))
    }


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """`run -q` (the flag after the subcommand, as the README writes it) on the smoke suite,
    then `evaluate` of the run's own videos into another run id."""
    cwd = tmp_path_factory.mktemp("surface")
    run = _cli("run", "-q", "--method", "base", "--suite", "smoke", cwd=cwd)
    videos = cwd / "results" / "smoke-tiny" / "base" / CASE / "videos"
    evaluate = _cli(
        "evaluate",
        "--videos",
        str(videos),
        "--identity",
        PAIR[0],
        "--motion",
        PAIR[1],
        "--metrics-profile",
        "tiny",
        "--run-id",
        "rescored",
        cwd=cwd,
    )
    return cwd, run, evaluate


# ---- 3. output streams ---------------------------------------------------------------------


def test_quiet_after_the_subcommand_leaves_stdout_empty_and_stderr_without_info(smoke):
    _, run, _ = smoke
    assert run.stdout == ""
    assert " INFO " not in run.stderr and "loading backbone" not in run.stderr, run.stderr


def test_report_json_on_stdout_parses_and_stderr_names_the_chosen_run(smoke):
    cwd, _, _ = smoke
    os.utime(cwd / "results" / "smoke-tiny" / "run.json")  # the newest write: the default run
    proc = _cli("report", "--format", "json", cwd=cwd)
    doc = json.loads(proc.stdout)
    assert [r["run_id"] for r in doc["runs"]] == ["smoke-tiny"]
    assert [r["method"] for r in doc["rows"]] == ["base"]
    assert "reporting run 'smoke-tiny', the most recently modified" in proc.stderr


def test_report_csv_in_process_stdout_is_only_the_table(smoke, capsys):
    cwd, _, _ = smoke
    args = ["report", "--format", "csv", "--output-dir", str(cwd / "results")]
    assert main([*args, "--run-id", "smoke-tiny"]) == 0
    out, err = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["method"] for r in rows] == ["base"], out
    assert float(rows[0]["clip_t"]) == pytest.approx(
        sum(
            r["metrics"]["clip_t"]
            for r in _records(cwd / "results" / "smoke-tiny", "base").values()
        )
        / 2
    )


def test_inspect_json_stdout_parses(tmp_path):
    proc = _cli(
        "inspect", "--method", "dualreal", "--profile", "tiny", "--format", "json", cwd=tmp_path
    )
    doc = json.loads(proc.stdout)
    assert doc["method"] == "dualreal" and doc["trainable_total"] > 0


def test_third_party_info_hidden_unless_debug(capsys):
    """open_clip logs INFO lines on the root logger whenever it builds a tokenizer."""
    import open_clip

    own = logging.getLogger("dualreal_bench.test")
    with cli_logging():
        open_clip.get_tokenizer("ViT-B-32")
        logging.getLogger("somelib").info("library chatter")
        logging.getLogger("somelib").warning("library warning")
        own.info("our progress")
        own.debug("our details")
    out, err = capsys.readouterr()
    assert out == ""
    assert "Parsing tokenizer" not in err and "library chatter" not in err
    assert "library warning" in err and "our progress" in err and "our details" not in err

    with cli_logging(debug=True):
        open_clip.get_tokenizer("ViT-B-32")
        own.debug("our details")
        logging.getLogger("PIL.PngImagePlugin").debug("STREAM b'IHDR'")
    out, err = capsys.readouterr()
    assert out == "" and "Parsing tokenizer" in err and "our details" in err
    assert "STREAM" not in err  # third-party DEBUG stays hidden even with --debug

    with cli_logging(quiet=True):
        own.info("our progress")
        own.warning("our warning")
    out, err = capsys.readouterr()
    assert out == "" and "our progress" not in err and "our warning" in err


def test_cli_logging_restores_what_it_changed(capsys):
    import rich

    root, own = logging.getLogger(), logging.getLogger("dualreal_bench")
    before = (root.level, own.level, list(root.handlers), rich.get_console().stderr)
    with cli_logging(quiet=True):
        assert rich.get_console().stderr  # progress bars draw on stderr
    assert (root.level, own.level, list(root.handlers), rich.get_console().stderr) == before


# ---- 4. conventions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, quiet, debug",
    [
        (["-q", "run"], True, False),
        (["run", "-q"], True, False),
        (["run", "--quiet"], True, False),
        (["run"], False, False),
        (["--debug", "report"], False, True),
        (["report", "--debug"], False, True),
        (["list", "runs", "--quiet", "--debug"], True, True),
        (["evaluate", "--videos", "v", "--identity", "i", "--motion", "m", "-q"], True, False),
    ],
)
def test_global_flags_before_or_after_the_subcommand(argv, quiet, debug):
    args = build_parser().parse_args(argv)
    assert (args.quiet, args.debug) == (quiet, debug)


def test_version_and_run_help(tmp_path, capsys):
    from importlib.metadata import version

    import dualreal_bench

    out = _cli("--version", cwd=tmp_path).stdout.strip()
    assert out == f"dualreal-bench {dualreal_bench.__version__}"
    assert dualreal_bench.__version__ == version("dualreal-bench")
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "default: base, the backbone alone" in help_text
    assert "auto (CUDA when present)" in help_text


def test_latest_run_is_the_most_recently_modified_not_the_last_created(tmp_path):
    from dualreal_bench.store import ResultStore, latest_run

    stores = {}
    for run_id in ("older-but-busy", "newer"):  # created in this order
        stores[run_id] = ResultStore(tmp_path, run_id)
        stores[run_id].init_run({"suite": "smoke", "profile": "tiny"})
        stores[run_id].init_method("base", {"name": "base", "class": "x", "config": {}})
    for run_id, t in (("older-but-busy", 1_000_000), ("newer", 2_000_000)):
        for folder, _, files in os.walk(tmp_path / run_id):
            for name in [*files, "."]:
                os.utime(Path(folder) / name, (t, t))
    assert latest_run(tmp_path) == "newer"
    # a record written into the older run makes it the latest
    stores["older-but-busy"].case_dir("base", CASE).records.mkdir(parents=True)
    (stores["older-but-busy"].case_dir("base", CASE).record(0, 0)).write_text("{}")
    assert latest_run(tmp_path) == "older-but-busy"
    with pytest.raises(Exception, match="no runs found"):
        latest_run(tmp_path / "empty")


def test_list_runs_shows_methods_variants_and_completeness(tmp_path, capsys):
    from dualreal_bench.store import ResultStore

    store = ResultStore(tmp_path, "abl")
    store.init_run({"suite": "ablation", "profile": "tiny", "metrics_profile": "tiny"})
    for label, done in (("dualreal", 2), ("dualreal[controller=false]", 1)):
        store.init_method(label, {"name": "dualreal", "class": "x", "config": {}})
        store.write_expected(label, (0, 2), {"a__m": 2})
        store.write_expected(label, (1, 2), {"b__m": 0})  # another shard's plan
        for i in range(done):
            cdir = store.case_dir(label, "a__m")
            cdir.records.mkdir(parents=True, exist_ok=True)
            cdir.record(i, 0).write_text("{}")
    assert main(["list", "runs", "--output-dir", str(tmp_path), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    got = [
        (r["run"], r["method"], r["variant"], r["records"], r["expected"], r["complete"])
        for r in rows
    ]
    assert got == [
        ("abl", "dualreal", "dualreal", 2, 2, True),
        ("abl", "dualreal", "dualreal[controller=false]", 1, 2, False),
    ]
    assert rows[0]["suite"] == "ablation" and rows[0]["cases"] == 2
    assert main(["list", "runs", "--output-dir", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "dualreal[controller=false]" in table and "1/2 (incomplete)" in table and "2/2" in table


def test_list_runs_of_the_smoke_run_and_its_evaluation(smoke, capsys):
    cwd, _, _ = smoke
    assert main(["list", "runs", "--output-dir", str(cwd / "results"), "--format", "json"]) == 0
    rows = {(r["run"], r["variant"]): r for r in json.loads(capsys.readouterr().out)}
    ran, rescored = rows["smoke-tiny", "base"], rows["rescored", "external"]
    assert (ran["method"], ran["records"], ran["expected"], ran["complete"]) == ("base", 2, 2, True)
    assert (rescored["records"], rescored["expected"], rescored["complete"]) == (2, 2, True)
    assert (rescored["suite"], rescored["profile"]) == ("smoke", "tiny")


def test_options_flag_only_with_methods(capsys):
    assert main(["list", "runs", "--options", "dualreal"]) == 2
    assert "--options dualreal: only with `list methods`" in capsys.readouterr().err


# ---- 4. the metric encoders' device ----------------------------------------------------------


@pytest.mark.parametrize(
    "cuda, device, profile, expected",
    [
        (True, None, "real", "cuda"),  # a GPU box scores on its GPU by default
        (False, None, "real", "cpu"),
        (True, None, "tiny", "cpu"),  # tiny encoders stay on the CPU (records match everywhere)
        (True, "auto", "tiny", "cuda"),
        (False, "auto", "real", "cpu"),
        (True, "cpu", "real", "cpu"),
        (True, "cuda:1", "real", "cuda:1"),
    ],
)
def test_metrics_device_resolution(monkeypatch, cuda, device, profile, expected):
    import torch

    from dualreal_bench.metrics import resolve_metrics_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2 if cuda else 0)
    assert resolve_metrics_device(device, profile) == expected


def test_bad_device_is_a_config_error():
    from dualreal_bench.metrics import resolve_metrics_device
    from dualreal_bench.run_config import RunConfig

    with pytest.raises(ConfigError, match="--device='gpu'"):
        resolve_metrics_device("gpu", "real")
    with pytest.raises(ConfigError, match="--device='gpu'"):
        RunConfig(device="gpu")


class _Built(Exception):
    pass


@pytest.fixture
def cuda_box(monkeypatch):
    """torch sees a GPU; build_evaluator records its device and stops the command there."""
    import torch

    import dualreal_bench.metrics as metrics

    seen = {}

    def fake_build_evaluator(profile, *, device=None, **kwargs):
        seen.update(profile=profile, device=device)
        raise _Built

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(metrics, "build_evaluator", fake_build_evaluator)
    return seen


def test_run_scores_on_cuda_by_default_with_real_metrics(cuda_box, tmp_path):
    from dualreal_bench.executors.worker import CaseWorker
    from dualreal_bench.run_config import RunConfig

    worker = CaseWorker(
        RunConfig(metrics_profile="real", output_dir=str(tmp_path), deterministic=False)
    )
    with pytest.raises(_Built):
        worker.evaluator  # noqa: B018 - the property builds it
    assert cuda_box == {"profile": "real", "device": "cuda"}


def test_evaluate_scores_on_cuda_by_default(cuda_box, smoke, tmp_path):
    cwd, _, _ = smoke
    videos = cwd / "results" / "smoke-tiny" / "base" / CASE / "videos"
    argv = ["evaluate", "--videos", str(videos), "--identity", PAIR[0], "--motion", PAIR[1]]
    argv += ["--output-dir", str(tmp_path), "--run-id", "gpu-check"]
    argv += ["--data-root", str(cwd / "cache" / "sample_data")]
    with pytest.raises(_Built):
        main(argv)
    assert cuda_box == {"profile": "real", "device": "cuda"}


def test_estimate_scores_on_cuda_by_default(monkeypatch, smoke, one_torch_thread):
    """The real encoders' weights are missing here: the estimate says so, after resolving
    their device (nothing touches CUDA)."""
    import torch

    from dualreal_bench.commands.estimate import estimate

    cwd, _, _ = smoke
    monkeypatch.setenv("DUALREAL_BENCH_CACHE", str(cwd / "cache"))  # the smoke sample data
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    out = estimate(method="base", profile="tiny", metrics_profile="real", steps=2)
    assert out["metrics_device"] == "cuda" and out["device"] == "cpu"
    assert any("metric encoder weights missing" in u for u in out["unmeasured"])


# ---- 5. evaluate scores like run -------------------------------------------------------------


def test_evaluate_of_a_runs_own_videos_gives_the_runs_numbers(smoke):
    cwd, _, evaluate = smoke
    results = cwd / "results"
    ran, rescored = (
        _records(results / "smoke-tiny", "base"),
        _records(results / "rescored", "external"),
    )
    assert list(ran) == list(rescored) == ["p000_s0.json", "p001_s0.json"]
    for name in ran:
        a, b = ran[name], rescored[name]
        assert b["prompt"] == a["prompt"] and b["prompt"].startswith(("toy *", "a toy *")), b[
            "prompt"
        ]
        assert b["metrics"] == a["metrics"], name  # every field, bit for bit
        assert b["suite"] == a["suite"] == "smoke"
        assert b["metric_constants"] == a["metric_constants"]
    run_json = json.loads((results / "rescored" / "run.json").read_text())
    assert (run_json["suite"], run_json["profile"], run_json["metrics_profile"]) == (
        "smoke",
        "tiny",
        "tiny",
    )
    assert "tiny metrics profile" in evaluate.stderr and "mean clip_t=" in evaluate.stdout


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def test_a_run_keeps_to_one_motion_backend(smoke):
    """Motion fidelity by two descriptors (flow vs VideoMAE) is not comparable, so a run records
    its backend and `run` / `evaluate` with another one into it stop before any write."""
    cwd, _, _ = smoke
    results = cwd / "results"
    for run_id in ("smoke-tiny", "rescored"):  # the tiny metrics profile's own: flow
        assert json.loads((results / run_id / "run.json").read_text())["motion_backend"] == "flow"
    before = _tree(results)
    videos = results / "smoke-tiny" / "base" / CASE / "videos"
    attempts = [
        ("run", "-q", "--method", "dualreal", "--suite", "smoke", "--motion-backend", "videomae"),
        ("evaluate", "--videos", str(videos), "--identity", PAIR[0], "--motion", PAIR[1],
         "--metrics-profile", "tiny", "--run-id", "rescored", "--motion-backend", "videomae"),
    ]  # fmt: skip
    for argv in attempts:
        proc = _cli(*argv, cwd=cwd, check=False)
        assert proc.returncode == 2, proc.stderr
        (line,) = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert "run.json" in line and "motion_backend='flow', not 'videomae'" in line, line
    assert _tree(results) == before


def test_the_motion_backend_a_run_records():
    from dualreal_bench.metrics import resolved_motion_backend

    assert resolved_motion_backend(None, "tiny") == "flow"
    assert resolved_motion_backend(None, "real") == "videomae"
    assert resolved_motion_backend("flow", "real") == "flow"
    assert resolved_motion_backend("videomae", "tiny") == "videomae"
    with pytest.raises(ConfigError, match="choose one of flow, videomae"):
        resolved_motion_backend("x3d", "real")


def test_report_of_an_evaluated_run_has_suite_profile_and_the_tiny_caveat(smoke, capsys):
    cwd, _, _ = smoke
    argv = [
        "report",
        "--format",
        "json",
        "--output-dir",
        str(cwd / "results"),
        "--run-id",
        "rescored",
    ]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["runs"] == [{"run_id": "rescored", "suite": "smoke", "profile": "tiny"}]
    table = doc["tables"][0]
    assert "suite smoke, profile tiny" in table["title"]
    assert any("tiny profile" in note for note in table["notes"]), table["notes"]


def test_evaluate_into_the_runs_own_store_and_suite_checks(smoke, capsys):
    cwd, _, _ = smoke
    results = cwd / "results"
    videos = results / "smoke-tiny" / "base" / CASE / "videos"
    common = ["evaluate", "--videos", str(videos), "--identity", PAIR[0], "--motion", PAIR[1]]
    common += ["--output-dir", str(results), "--metrics-profile", "tiny", "-q"]
    # beside the run's own method, in its run: the run's suite is checked, not overwritten.
    # A fresh process, as the run's: the tiny motion-smoothness interpolator depends on
    # whether VBench is importable, which other tests change in this one.
    _cli(*common, "--run-id", "smoke-tiny", "--method-name", "rescored", "--batch", "1", cwd=cwd)
    ran = _records(results / "smoke-tiny", "base")
    again = _records(results / "smoke-tiny", "rescored")
    assert {k: v["metrics"] for k, v in again.items()} == {k: v["metrics"] for k, v in ran.items()}
    assert json.loads((results / "smoke-tiny" / "run.json").read_text())["profile"] == "tiny"
    capsys.readouterr()
    assert main([*common, "--suite", "paper", "--run-id", "x"]) == 2
    assert "--suite paper: has no case smoke_toy__smoke_pendulum" in capsys.readouterr().err
    assert main([*common, "--metrics-profile", "real", "--run-id", "smoke-tiny"]) == 2
    assert "metrics_profile='tiny'" in capsys.readouterr().err


def test_evaluation_case_prefers_the_runs_suite_then_the_first_suite():
    from dualreal_bench.commands.evaluate import evaluation_case
    from dualreal_bench.spec import get_suite

    data = os.environ.get("DUALREAL_BENCH_DATA")
    if not data:
        pytest.skip("DUALREAL_BENCH_DATA is not set")
    ident, motion = get_suite("ablation").pairs[0]  # in paper, ablation and full
    case, suite = evaluation_case(ident, motion, data_root=data)
    assert suite == "paper"
    case2, suite2 = evaluation_case(ident, motion, data_root=data, prefer="ablation")
    assert suite2 == "ablation" and case2.prompts == case.prompts


# ---- 9. a method's options --------------------------------------------------------------------


def test_list_method_options_prints_every_dualreal_field_with_its_default(capsys):
    from dualreal_bench.methods.dualreal.config import DualRealConfig

    from dualreal_bench.config import format_value

    fields = dataclasses.fields(DualRealConfig)
    assert main(["list", "methods", "--options", "dualreal", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["option"] for r in rows] == [f.name for f in fields]
    defaults = json.loads(json.dumps({f.name: f.default for f in fields}))
    assert {r["option"]: r["default"] for r in rows} == defaults
    assert all(r["help"] and r["type"] for r in rows), [r["option"] for r in rows if not r["help"]]
    by_name = {r["option"]: r for r in rows}
    assert by_name["fixed_weights"]["type"] == "tuple[float, float]"
    assert by_name["optimizer"]["type"] == "auto | adamw | adamw8bit"
    assert by_name["num_groups"]["type"] == "int | None"
    assert "StageBlender" in by_name["controller"]["help"]

    assert main(["list", "methods", "--options", "dualreal"]) == 0
    table = capsys.readouterr().out
    for f in fields:
        assert f.name in table and format_value(f.default) in table, f.name
    assert "tuple[float, float]" in table  # text, not rich markup


def test_every_bundled_methods_option_has_help():
    from dualreal_bench.config import describe_options
    from dualreal_bench.method import BUILTIN_METHODS, get_method_class

    for name in BUILTIN_METHODS:
        missing = [
            o.name for o in describe_options(get_method_class(name).config_class) if not o.help
        ]
        assert not missing, f"{name}: options without help: {missing}"


def test_option_help_from_metadata_comments_and_groups():
    from dualreal_bench.config import Config, describe_options

    @dataclasses.dataclass
    class Parent(Config):
        #: LoRA rank
        #: of every layer
        rank: int = 4
        #: AdamW settings
        beta: float = 0.9
        eps: float = 1e-8

        alpha: float = 4.0  # scales the update by alpha / rank
        # ---- a section header, not a field's doc
        tag: str = "a # not a comment"
        names: tuple[str, ...] = dataclasses.field(
            default=("q", "v"), metadata={"help": "layers to adapt"}
        )

    @dataclasses.dataclass
    class Child(Parent):
        # overridden without a doc comment (a plain "#" line is none): the parent's help
        rank: int = 8

    docs = {o.name: o for o in describe_options(Child)}
    assert [o for o in docs] == ["rank", "beta", "eps", "alpha", "tag", "names"]
    assert docs["rank"].help == "LoRA rank of every layer" and docs["rank"].default == 8
    assert docs["beta"].help == docs["eps"].help == "AdamW settings"
    assert docs["alpha"].help == "scales the update by alpha / rank"
    assert docs["tag"].help == "" and docs["tag"].default == "a # not a comment"
    assert docs["names"].help == "layers to adapt" and docs["names"].default_text == "q,v"
    assert docs["names"].type == "tuple[str, ...]"
