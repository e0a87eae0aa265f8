"""Motion fidelity in the pipeline (issue 15, points 4-5): the evaluator, records, ``evaluate``,
the report. The measurement core (descriptors, retrieval, tracks) is tested in
``test_motion_fidelity.py``; here: that the pipeline feeds it the right clips, caches what it
computes, reuses the dynamic-degree flows, and shows the results.

Known answers: a reference clip fed as the video ranks its own motion first, with the cosines
an independent computation gives; a video translating like the reference clip has trajectory
fidelity 1, against it -1; a second evaluator describes no reference clip again.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_metrics import GlobalShiftFlow, translating_clip

from dualreal_bench.errors import ConfigError, DataError, MediaError
from dualreal_bench.media import probe_video, read_video, write_image, write_video
from dualreal_bench.metrics import (
    MetricConstants,
    build_encoders,
    build_evaluator,
    motion_encoder_spec,
)
from dualreal_bench.metrics.evaluator import MOTION_REFERENCE_STAGE
from dualreal_bench.metrics.flow import dd_pair_scores_and_flows
from dualreal_bench.metrics.functional import centered_pads
from dualreal_bench.metrics.motion import (
    FlowDescriptor,
    MotionConstants,
    flow_descriptor,
    motion_similarities,
)
from dualreal_bench.report.motion_confusion import (
    confusion_counts,
    confusion_figure,
    motion_count_note,
)
from dualreal_bench.run_config import RunConfig
from dualreal_bench.sample_data import ensure_sample_data
from dualreal_bench.spec import build_case, build_cases, preflight

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py

RETRIEVAL = ("motion_fidelity", "motion_top1", "motion_top5", "motion_fidelity_rank")


def _as_motion(case, name: str):
    """The case with another motion of its data root as the intended one."""
    motion = dataclasses.replace(case.motion, name=name)
    return dataclasses.replace(case, motion=motion, motion_dir=case.motion_dir.parent / name)


def _independent_cosines(case, clip: Path) -> dict[str, float]:
    """The cosine of ``clip`` to every motion's centroid, computed outside the evaluator."""
    c = MotionConstants()
    refs = {
        m: np.stack([flow_descriptor(read_video(p, sampling="fps", target_fps=8), c) for p in ps])
        for m, ps in case.motion_references().items()
    }
    query = flow_descriptor(read_video(clip, sampling="fps", target_fps=8), c)
    return motion_similarities(query, refs, center=True)


@pytest.fixture(scope="module")
def cheap_evaluator():
    """The tiny profile's evaluator with an exact, cheap flow estimator (phase correlation)
    instead of the tiny RAFT: what these tests check does not depend on RAFT's weights."""
    return build_evaluator("tiny", progress=False, flow=GlobalShiftFlow())


# ---- the evaluator ---------------------------------------------------------------------------


def test_a_reference_clip_as_the_video_ranks_its_motion_first(smoke_case, cheap_evaluator):
    """Every clip of the smoke data's 2 motions, fed as the generated video: its own motion is
    the nearest (rank 1 of 2), and the cosines are those of an independent computation."""
    assert {m: len(c) for m, c in smoke_case.motion_references().items()} == {
        "smoke_pendulum": 3,
        "smoke_wave": 2,
    }
    for motion, clips in smoke_case.motion_references().items():
        case = _as_motion(smoke_case, motion)
        for clip in clips:
            result = cheap_evaluator.evaluate_video(
                read_video(clip), prompt=case.prompts[0], case=case, fps=probe_video(clip).fps
            )
            details = result["metric_details"]["motion_fidelity"]
            assert details["nearest"] == motion and details["rank"] == 1, clip
            assert result["motion_fidelity_rank"] == 1.0
            assert result["motion_top1"] == 1.0 and result["motion_top5"] == 1.0
            expected = _independent_cosines(case, clip)
            assert details["similarities"] == pytest.approx(expected, abs=1e-12)
            assert result["motion_fidelity"] == pytest.approx(expected[motion], abs=1e-12)
            constants = result["metric_constants"]
            assert constants["motion_references"] == {"motions": 2, "clips": 5}
            assert constants["motion"]["backend"] == "flow"
            assert constants["motion"]["constants"]["version"] == MotionConstants.VERSION
            assert constants["motion"]["constants"]["flow_grid"] == [3, 3]
            assert result["metric_versions"]["motion_fidelity"] == "1.0+flow"


def test_a_reference_clip_ranks_first_among_the_21_real_motions(cheap_evaluator):
    """On the paper's data: ranks are over all 21 motions (42 clips), whatever the case's."""
    root = os.environ.get("DUALREAL_BENCH_DATA")
    if not root:
        pytest.skip("DUALREAL_BENCH_DATA is not set")
    for motion in ("Kicking-Front",):  # UCF Sports: 23 frames at 10 fps (UCF101: in the core's)
        case = build_case("cat", motion, data_root=root, num_prompts=1)
        clip = case.video_paths()[0]
        result = cheap_evaluator.evaluate_video(
            read_video(clip), prompt=case.prompts[0], case=case, fps=probe_video(clip).fps
        )
        details = result["metric_details"]["motion_fidelity"]
        assert len(details["similarities"]) == 21
        assert result["metric_constants"]["motion_references"] == {"motions": 21, "clips": 42}
        assert details["rank"] == 1 and details["nearest"] == motion
        expected = _independent_cosines(case, clip)
        assert result["motion_fidelity"] == pytest.approx(expected[motion], abs=1e-12)


def test_reference_descriptors_are_computed_once_and_cached(tmp_path, monkeypatch):
    """Every clip of every motion is described once: not again for another video or case, not
    again by another evaluator on the same cache (a new run), again after a descriptor constant
    changes, and only the changed clip after a clip's bytes change. The cold pass shows in the
    progress display."""
    root = ensure_sample_data(tmp_path / "data")
    case = build_cases("smoke", data_root=root, num_prompts=1)[0]
    calls = {"n": 0}
    original = FlowDescriptor.__call__

    def spy(self, frames):
        calls["n"] += 1
        return original(self, frames)

    monkeypatch.setattr(FlowDescriptor, "__call__", spy)
    video = read_video(case.video_paths()[0])
    cache = tmp_path / "cache"

    def evaluator(**kwargs):
        ev = build_evaluator(
            "tiny", progress=False, cache_dir=cache, flow=GlobalShiftFlow(), **kwargs
        )
        stages = []
        ev.progress_callback = lambda stage, step, total: stages.append((stage, step, total))
        return ev, stages

    first, stages = evaluator()
    first.evaluate_video(video, prompt="toy *", case=case, fps=12)
    assert calls["n"] == 5 + 1  # 5 reference clips, then the video
    motion_stages = [s for s in stages if s[0] == MOTION_REFERENCE_STAGE]
    assert motion_stages[0] == (MOTION_REFERENCE_STAGE, 0, 5)
    assert motion_stages[-1] == (MOTION_REFERENCE_STAGE, 5, 5)
    first.evaluate_video(video, prompt="toy *", case=_as_motion(case, "smoke_wave"), fps=12)
    assert calls["n"] == 7  # another video and case of the same data: the video only
    assert len(list((cache / "metrics" / "motion_descriptors").glob("*.npz"))) == 5

    calls["n"] = 0
    second, stages = evaluator()
    a = second.evaluate_video(video, prompt="toy *", case=case, fps=12)
    assert calls["n"] == 1 and not [s for s in stages if s[0] == MOTION_REFERENCE_STAGE]
    b = first.evaluate_video(video, prompt="toy *", case=case, fps=12)
    assert {k: a[k] for k in RETRIEVAL} == {k: b[k] for k in RETRIEVAL}

    calls["n"] = 0
    other = FlowDescriptor(MotionConstants(flow_grid=(2, 2)))
    evaluator(motion=other)[0].evaluate_video(video, prompt="toy *", case=case, fps=12)
    assert calls["n"] == 5 + 1  # another descriptor: every clip again
    calls["n"] = 0
    evaluator(motion=FlowDescriptor(MotionConstants(traj_grid=5)))[0].evaluate_video(
        video, prompt="toy *", case=case, fps=12
    )
    assert calls["n"] == 1  # a trajectory constant does not change a descriptor

    changed = case.motion_references()["smoke_wave"][0]
    write_video(changed, read_video(changed)[::-1].copy(), fps=12)  # reversed: other bytes
    calls["n"] = 0
    evaluator()[0].evaluate_video(video, prompt="toy *", case=case, fps=12)
    assert calls["n"] == 1 + 1


def test_trajectory_fidelity_chains_the_dynamic_degree_flows(tmp_path):
    """Tracks come from the flows of the dynamic-degree pass (one flow call per video, none
    more), against tracks of the reference clip (one flow call, then cached): a video moving as
    the reference scores 1, against it -1, a static one 0 (static vs moving steps)."""
    image = write_image(tmp_path / "ref.png", np.full((32, 32, 3), 99, np.uint8))
    ref = write_video(tmp_path / "right.mp4", translating_clip(9, 64, 64, 2, seed=1), fps=8)
    still = write_video(
        tmp_path / "still.mp4", np.repeat(translating_clip(1, 64, 64, 0, seed=2), 9, 0), fps=8
    )
    case = SimpleNamespace(
        case_id="subject__right",
        identity=SimpleNamespace(name="subject"),
        motion=SimpleNamespace(name="right"),
        image_paths=lambda: [image],
        video_paths=lambda: [ref],
        motion_references=lambda: {"right": [ref], "still": [still]},
    )
    flow = GlobalShiftFlow()
    ev = build_evaluator("tiny", progress=False, flow=flow)
    scores = {}
    for name, dx in (("same", 2), ("against", -2), ("static", 0)):
        video = translating_clip(9, 64, 64, dx, seed=3)
        scores[name] = ev.evaluate_video(video, prompt="a *", case=case)["trajectory_fidelity"]
    assert scores["same"] == pytest.approx(1.0, abs=1e-9)
    assert scores["against"] == pytest.approx(-1.0, abs=1e-9)
    assert scores["static"] == pytest.approx(0.0, abs=1e-9)
    assert flow.calls == 1 + 3  # the reference clip once, each video once: no extra flow pass


def test_dynamic_degree_flows_are_cropped_to_the_frame():
    """RAFT runs on frames padded to a multiple of 8; the flows handed to the tracks are the
    frame's own pixels, as (T - 1, H, W, 2) (x, y)."""

    def coded_flow(frames: torch.Tensor) -> torch.Tensor:  # flow = the padded pixel's (x, y)
        n, _, h, w = frames.shape
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        return torch.stack([xs, ys]).float().expand(n - 1, 2, h, w)

    frames = torch.zeros(4, 3, 60, 70)
    left, _, top, _ = centered_pads(60, 70, 8)
    assert (left, top) != (0, 0)
    scores, flows = dd_pair_scores_and_flows(frames, coded_flow, MetricConstants())
    assert len(scores) == 3 and flows.shape == (3, 60, 70, 2) and flows.dtype == np.float32
    np.testing.assert_array_equal(flows[1, 5, :, 0], np.arange(left, left + 70))
    np.testing.assert_array_equal(flows[2, :, 7, 1], np.arange(top, top + 60))


# ---- choosing the backend ---------------------------------------------------------------------


def test_the_profile_chooses_the_motion_backend_and_a_run_can_override_it():
    from dualreal_bench.metrics.motion.videomae import VideoMAEDescriptor

    assert motion_encoder_spec(None, "real") is None
    assert motion_encoder_spec("flow", "real") == "flow"
    assert motion_encoder_spec("videomae", "real") == "real"
    assert motion_encoder_spec("videomae", "tiny") == "videomae-tiny"
    with pytest.raises(ConfigError, match="motion backend 'i3d'"):
        motion_encoder_spec("i3d", "tiny")
    with pytest.raises(ConfigError, match="--motion-backend 'i3d'"):
        RunConfig(motion_backend="i3d")
    assert isinstance(build_encoders("tiny").motion, FlowDescriptor)
    tiny = build_encoders("tiny", motion_backend="videomae").motion
    assert isinstance(tiny, VideoMAEDescriptor) and tiny.identity.startswith("tiny-videomae")
    with pytest.raises(ConfigError, match="'flow' is a motion encoder, not a flow encoder"):
        build_encoders("tiny", flow="flow")
    # the trajectory chains the dynamic-degree flows: both must sample alike
    with pytest.raises(ConfigError, match="must equal the metric constant dd_target_fps"):
        build_evaluator(
            "tiny", progress=False, motion=FlowDescriptor(MotionConstants(target_fps=4.0))
        )


def test_the_learned_backend_runs_in_the_pipeline(smoke_case):
    """--motion-backend videomae with the tiny profile: a random VideoMAE, explicitly; the
    records say which descriptor made the numbers."""
    ev = build_evaluator("tiny", progress=False, flow=GlobalShiftFlow(), motion_backend="videomae")
    clip = smoke_case.video_paths()[0]
    result = ev.evaluate_video(read_video(clip), prompt="toy *", case=smoke_case, fps=12)
    assert result["metric_constants"]["motion"]["backend"] == "videomae"
    assert result["metric_constants"]["encoders"]["motion"].startswith("tiny-videomae")
    assert result["metric_versions"]["motion_top1"] == "1.0+videomae"
    assert -1.0 <= result["motion_fidelity"] <= 1.0
    assert result["motion_fidelity_rank"] in (1.0, 2.0)


def test_preflight_probes_every_motion_clip(tmp_path):
    """Motion fidelity reads every motion's clips: a broken clip of another motion fails the
    run before any work, naming the file."""
    root = ensure_sample_data(tmp_path / "data")
    case = build_cases("smoke", data_root=root, num_prompts=1)[0]
    preflight([case])
    broken = case.motion_references()["smoke_wave"][1]
    broken.write_bytes(b"not a video")
    with pytest.raises(MediaError, match=str(broken.name)):
        preflight([case])


# ---- records, evaluate, report ---------------------------------------------------------------


def test_records_of_a_run_carry_motion_fidelity(smoke_run):
    out, run_id, _ = smoke_run
    (path,) = sorted((out / run_id).glob("*/*/records/*.json"))
    rec = json.loads(path.read_text())
    assert set(RETRIEVAL) | {"trajectory_fidelity"} <= set(rec["metrics"])
    assert all(isinstance(rec["metrics"][k], float) for k in (*RETRIEVAL, "trajectory_fidelity"))
    details = rec["metric_details"]["motion_fidelity"]
    assert set(details["similarities"]) == {"smoke_pendulum", "smoke_wave"}
    assert details["rank"] == rec["metrics"]["motion_fidelity_rank"]
    assert details["similarities"][rec["motion"]] == rec["metrics"]["motion_fidelity"]
    assert rec["metric_constants"]["motion"]["backend"] == "flow"
    assert rec["metric_constants"]["motion"]["tracks"].startswith("raft")
    assert rec["run_config"]["motion_backend"] is None  # the profile's


def test_evaluate_command_carries_motion_fidelity(tmp_path):
    """External videos: a pendulum reference clip and a waving one, both scored as the
    pendulum case: the first ranks its motion first, the second ranks it second."""
    from dualreal_bench.cli import main

    root = ensure_sample_data(tmp_path / "data")
    case = build_cases("smoke", data_root=root, num_prompts=2)[0]
    refs = case.motion_references()
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(refs["smoke_pendulum"][0], videos / "000.mp4")
    shutil.copy(refs["smoke_wave"][0], videos / "1_wave.mp4")
    argv = ["-q", "evaluate", "--videos", str(videos), "--identity", case.identity.name]
    argv += ["--motion", case.motion.name, "--data-root", str(root), "--profile", "tiny"]
    argv += ["--output-dir", str(tmp_path / "results"), "--run-id", "ext"]
    assert main(argv) == 0
    folder = tmp_path / "results" / "ext" / "external" / case.case_id / "records"
    first, second = (json.loads(p.read_text()) for p in sorted(folder.glob("*.json")))
    assert first["metric_details"]["motion_fidelity"]["nearest"] == "smoke_pendulum"
    assert first["metrics"]["motion_top1"] == 1.0
    assert second["metric_details"]["motion_fidelity"]["nearest"] == "smoke_wave"
    assert second["metrics"]["motion_fidelity_rank"] == 2.0
    assert second["metrics"]["motion_top1"] == 0.0 and second["metrics"]["motion_top5"] == 1.0
    assert first["metric_constants"]["motion"]["backend"] == "flow"
    assert first["external"] is True


def test_report_shows_the_measures_beyond_the_paper(smoke_run, tmp_path):
    """Columns after dynamic degree, marked ‡ in every format, a footnote on every table saying
    what they measure and among how many motions; the HTML page has the confusion matrix."""
    from dualreal_bench.cli import main
    from dualreal_bench.report import build_report, render

    out, run_id, _ = smoke_run
    rep = build_report(out, run_id, breakdowns=("motion",))
    (rec,) = rep.records
    for table in rep.tables:
        fields = [c.field for c in table.columns]
        dd = fields.index("dynamic_degree")
        assert fields[dd + 1 : dd + 5] == [
            "motion_fidelity",
            "motion_top1",
            "motion_top5",
            "trajectory_fidelity",
        ]
        md = render(table, "markdown")
        for header in ("Motion Fid. ↑ ‡", "Top-1 ↑ ‡", "Top-5 ↑ ‡", "Traj. Fid. ↑ ‡"):
            assert header in md
        assert "CLIP-T ↑ |" in md  # the paper's own columns carry no mark
        assert f"{rec['metrics']['motion_fidelity']:.4f}" in md
        assert "_‡ not in the DualReal paper" in md and "point-track similarity" in md
        assert "among the 2 motions of the data root (chance: top-1 0.500" in md
        assert "$^\\ddagger$" in render(table, "latex")
        columns = {c["field"]: c for c in json.loads(render(table, "json"))["columns"]}
        assert columns["motion_fidelity"]["in_paper"] is False
        assert columns["clip_t"]["in_paper"] is True
    page = tmp_path / "page.html"
    assert main(["-q", "report", "--output-dir", str(out), "--run-id", run_id]
                + ["--html", str(page), "--plots", str(tmp_path / "plots")]) == 0  # fmt: skip
    text = page.read_text()
    assert "alt='motion_confusion'" in text and "intended motion (rows)" in text
    assert (tmp_path / "plots" / "motion_confusion.png").is_file()


# ---- the confusion matrix ------------------------------------------------------------------------


def _record(method: str, intended: str, nearest: str | None, motions=None) -> dict:
    rec = {
        "method": method,
        "motion": intended,
        "case_id": f"dog__{intended}",
        "metric_constants": {"motion_references": {"motions": len(motions or ()) or 3}},
    }
    if nearest is not None:
        sims = {m: 0.0 for m in motions or (intended, nearest)}
        rec["metric_details"] = {"motion_fidelity": {"nearest": nearest, "similarities": sims}}
    return rec


def test_confusion_counts_of_synthetic_records():
    motions = ("Archery", "Biking", "playingGuitar")
    pairs_a = [("Archery", "Archery"), ("Archery", "Biking"), ("Biking", "Biking")]
    pairs_a += [("playingGuitar", "Archery"), ("Archery", "Archery")]
    records = [_record("a", i, n, motions) for i, n in pairs_a]
    records += [_record("b", "Biking", "playingGuitar", motions), _record("b", "Biking", None)]
    conf = confusion_counts(records)
    assert list(conf) == ["a", "b"]
    assert conf["a"].labels == ["Archery", "Biking", "playingGuitar"]  # case-insensitive order
    np.testing.assert_array_equal(conf["a"].counts, [[2, 1, 0], [0, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(conf["b"].counts, [[0, 0, 0], [0, 0, 1], [0, 0, 0]])
    assert conf["a"].top1 == pytest.approx(3 / 5) and conf["b"].videos == 1  # no details: out
    fig = confusion_figure(records)
    panel = fig.axes[0]
    texts = {(t.get_position(), t.get_text()) for t in panel.texts if t.get_gid() == "count"}
    assert texts == {((0, 0), "2"), ((1, 0), "1"), ((1, 1), "1"), ((0, 2), "1")}
    assert [t.get_text() for t in panel.get_yticklabels()] == list(conf["a"].labels)
    assert "top-1 0.600 (5 videos)" in panel.get_title()
    assert motion_count_note(records) is not None and "among the 3 motions" in motion_count_note(
        records
    )
    mixed = records + [_record("c", "Archery", "Archery")]
    mixed[-1]["metric_constants"]["motion_references"]["motions"] = 21
    assert "different numbers of motions (3, 21)" in motion_count_note(mixed)


def test_confusion_matrix_of_21_motions_and_bad_details():
    motions = [f"m{i:02d}" for i in range(21)]
    rng = np.random.default_rng(0)
    records = [
        _record(meth, motions[i], motions[j], motions)
        for meth in ("lora", "dualreal")
        for i, j in zip(rng.integers(0, 21, 300), rng.integers(0, 21, 300), strict=True)
    ]
    conf = confusion_counts(records)
    for meth in ("lora", "dualreal"):
        assert conf[meth].counts.shape == (21, 21) and conf[meth].videos == 300
    naive = np.zeros((21, 21), int)
    for r in records:
        if r["method"] == "lora":
            naive[
                int(r["motion"][1:]), int(r["metric_details"]["motion_fidelity"]["nearest"][1:])
            ] += 1
    np.testing.assert_array_equal(conf["lora"].counts, naive)
    bad = _record("a", "m00", "m01", motions)
    bad["metric_details"]["motion_fidelity"]["nearest"] = 3
    with pytest.raises(DataError, match="nearest is not a motion name"):
        confusion_counts([bad])
    with pytest.raises(DataError, match="nothing to plot"):
        confusion_figure([_record("a", "m00", None)])
