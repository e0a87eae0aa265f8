#!/usr/bin/env python
"""Leave-one-clip-out motion retrieval over the benchmark's reference clips, per descriptor variant.

Regenerates the figures behind the motion-fidelity defaults (issue 15): for every variant of the
weight-free (DIS flow) descriptor, each reference clip is a query against the centroids of every
motion's other clips; the table gives top-1 / top-5 accuracy and the mean rank of the true motion
(chance: 1/M and (M+1)/2), the cosine of two clips of the same motion vs two clips of different
motions (mean +- sd over pairs), and for how many motions same > mean different. It also prints
the CPU time per clip of each backend.

    DUALREAL_BENCH_DATA=../shared/data python scripts/motion_fidelity_validation.py
    python scripts/motion_fidelity_validation.py --variants default no_center --set flow_grid=3,3
    python scripts/motion_fidelity_validation.py --variants --videomae tiny base-random --trajectory
        # no table; the learned backend's cost (base-random: VideoMAE-Base with random weights)
        # and the trajectory_fidelity figures (self / reversed / same motion / different motion)
    python scripts/motion_fidelity_validation.py --per-motion   # the rank of each clip too

The figures of the issue-15 report came from ``--per-motion --videomae tiny base-random
--trajectory`` (about 6 minutes on one core).

Flows are computed once per clip per flow setting (``--cache-dir`` keeps them across runs).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from dualreal_bench.media import list_videos, read_video
from dualreal_bench.metrics.motion.constants import FLOW_KEYS, MotionConstants
from dualreal_bench.metrics.motion.flow_backend import descriptor_from_flows, dis_flows
from dualreal_bench.metrics.motion.retrieval import leave_one_clip_out
from dualreal_bench.metrics.motion.trajectory import dis_tracks, trajectory_fidelity

# motions whose two clips here are from the same event and camera set-up (seen on their first
# frames): any appearance-sensitive descriptor finds their other clip easily
SAME_SCENE = ("Lifting", "Swing-Bench", "Swing-SideAngle")

# (name, what it changes, overrides of the defaults). The first is the default descriptor; each
# other row changes one choice, so the difference to the first row is what that choice buys.
_SCAN = [
    (
        f"flow_{side}px_{preset}",
        f"DIS at short side {side} px, preset {preset}",
        {"flow_short_side": str(side), "flow_dis_preset": preset},
    )
    for side in (48, 64, 80, 96, 128)
    for preset in ("ultrafast", "fast", "medium")
]
VARIANTS: list[tuple[str, str, dict[str, str]]] = [
    ("default", "HOF+MBH, 3x3 cells, whole clip, 8 bins, sqrt, centred; DIS 96 px fast", {}),
    ("no_center", "cosine of raw descriptors (no mean subtracted)", {"flow_center": "false"}),
    ("power_1", "no square root (power 1)", {"flow_power": "1"}),
    (
        "no_block_norm",
        "HOF and MBH blocks not L1-normalised (power 1)",
        {"flow_block_norm": "none", "flow_power": "1"},
    ),
    ("mbh", "MBH only", {"flow_features": "mbh"}),
    ("hof", "HOF only", {"flow_features": "hof"}),
    (
        "hof_static_bin",
        "HOF with a static bin (|flow| < 0.002 counts 1)",
        {"flow_features": "hof", "flow_static_threshold": "0.002"},
    ),
    (
        "hof_raw_2x2",
        "HOF (static bin) on 2x2 cells, raw cosine, power 1, DIS 128 px medium",
        {
            "flow_features": "hof",
            "flow_static_threshold": "0.002",
            "flow_grid": "2,2",
            "flow_center": "false",
            "flow_power": "1",
            "flow_short_side": "128",
            "flow_dis_preset": "medium",
        },
    ),
    ("+mag", "and magnitude histogram", {"flow_features": "hof,mbh,mag"}),
    ("+freq", "and temporal spectrum of the magnitude", {"flow_features": "hof,mbh,freq"}),
    ("+dflow", "and orientation of the flow's temporal change", {"flow_features": "hof,mbh,dflow"}),
    ("grid_1x1", "one cell (no spatial layout)", {"flow_grid": "1,1"}),
    ("grid_2x2", "2x2 cells", {"flow_grid": "2,2"}),
    ("grid_4x4", "4x4 cells", {"flow_grid": "4,4"}),
    ("pyramid_2", "temporal pyramid: whole + halves", {"flow_temporal_levels": "2"}),
    ("pyramid_3", "temporal pyramid: whole + halves + quarters", {"flow_temporal_levels": "3"}),
    ("camera_none", "camera motion not removed", {"flow_camera": "none"}),
    ("camera_affine", "affine camera flow removed", {"flow_camera": "affine"}),
    ("mirror", "mirror-symmetric (sum with the mirrored clip's)", {"flow_mirror": "symmetric"}),
    ("bins_4", "4 orientation bins", {"flow_orientations": "4"}),
    ("bins_12", "12 orientation bins", {"flow_orientations": "12"}),
    ("mbh_2_scales", "MBH at 2 gradient scales (sigma 0, 2 px)", {"flow_mbh_sigmas": "0,2"}),
    ("intensity_norm", "gray stretched per clip before DIS", {"flow_intensity_norm": "true"}),
    *_SCAN,
]


def load_clips(root: Path, constants: MotionConstants) -> dict[str, list[tuple[str, np.ndarray]]]:
    motions = root / "dualreal_benchmark" / "motions"
    if not motions.is_dir():
        sys.exit(
            f"error: {motions} does not exist (point --data-root / DUALREAL_BENCH_DATA at ../shared/data)"
        )
    clips = {}
    for m in sorted(motions.iterdir(), key=lambda p: p.name.lower()):
        if (m / "videos").is_dir():
            clips[m.name] = [
                (v.name, read_video(v, sampling="fps", target_fps=constants.target_fps))
                for v in list_videos(m / "videos")
            ]
    return clips


class FlowCache:
    """DIS flows per (clip, flow setting), in memory and optionally on disk; CPU seconds per clip."""

    def __init__(self, cache_dir: Path | None) -> None:
        self.cache_dir = cache_dir
        self.memory: dict[tuple[str, str], np.ndarray] = {}
        self.cpu: dict[
            str, list[float]
        ] = {}  # flow setting -> CPU seconds of each clip computed here

    def get(
        self, motion: str, name: str, frames: np.ndarray, constants: MotionConstants
    ) -> np.ndarray:
        setting = f"{constants.flow_short_side} px, {constants.flow_dis_preset}" + (
            ", intensity norm" if constants.flow_intensity_norm else ""
        )
        key = (f"{motion}/{name}", constants.digest(*FLOW_KEYS))
        if key in self.memory:
            return self.memory[key]
        path = None
        if self.cache_dir is not None:
            path = self.cache_dir / key[1] / f"{motion}__{name}.npy"
            if path.exists():
                self.memory[key] = np.load(path)
                return self.memory[key]
        t0 = time.process_time()
        flows = dis_flows(frames, constants)
        self.cpu.setdefault(setting, []).append(time.process_time() - t0)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, flows.astype(np.float16))
        self.memory[key] = flows
        return flows


def run_variant(clips, cache: FlowCache, constants: MotionConstants):
    descriptors: dict[str, list[np.ndarray]] = {}
    t0 = time.process_time()
    n = 0
    for motion, items in clips.items():
        for name, frames in items:
            flows = cache.get(motion, name, frames, constants).astype(np.float32)
            descriptors.setdefault(motion, []).append(descriptor_from_flows(flows, constants))
            n += 1
    per_clip = (time.process_time() - t0) / n
    return leave_one_clip_out(descriptors, center=constants.flow_center), per_clip, descriptors


def distinct_scene(res) -> tuple[float, float]:
    """top-1 and mean rank over the queries of motions whose clips come from different scenes."""
    ranks = np.array(
        [r for motion, rs in res.ranks.items() if motion not in SAME_SCENE for r in rs]
    )
    return float((ranks == 1).mean()), float(ranks.mean())


def print_row(name: str, res, m: int, per_clip: float, what: str, per_motion: bool) -> None:
    top1_d, rank_d = distinct_scene(res)
    print(
        f"{name:<22} {res.top1:>6.3f} {res.top5:>6.3f} {res.mean_rank:>5.2f}+-{res.mean_rank_se:.2f}  "
        f"{top1_d:>6.3f} {rank_d:>6.2f}  "
        f"{res.same_mean:>5.2f}+-{res.same_sd:.2f}  {res.diff_mean:>5.2f}+-{res.diff_sd:.2f}  "
        f"{res.motions_same_gt_diff:>5}/{m:<3} {per_clip * 1000:>8.1f}  {what}",
        flush=True,
    )
    if per_motion:
        print(
            "    ranks: " + ", ".join(f"{k} {'/'.join(map(str, v))}" for k, v in res.ranks.items())
        )


def _nanmean(values) -> float:
    """Mean of the finite values (NaN when there are none, without numpy's warning)."""
    x = np.asarray(values, np.float64)
    return float(x[np.isfinite(x)].mean()) if np.isfinite(x).any() else float("nan")


def trajectory_section(clips, constants: MotionConstants) -> None:
    """trajectory_fidelity of each clip against itself, its time-reversed copy, the other clip of
    its motion and the clips of the other motions (DIS tracks), default and dmt_compatible."""
    tracks, backwards, cpu = {}, {}, []
    for motion, items in clips.items():
        for name, frames in items:
            t0 = time.process_time()
            tracks[motion, name] = dis_tracks(frames, constants)
            cpu.append(time.process_time() - t0)
            backwards[motion, name] = dis_tracks(frames[::-1].copy(), constants)
    print(
        f"\ntrajectory_fidelity (DIS {constants.traj_dis_short_side} px {constants.traj_dis_preset}, "
        f"{constants.traj_grid}x{constants.traj_grid} tracks, common length); tracks {np.mean(cpu) * 1000:.0f} ms "
        f"CPU per clip. NaN: a zero-length step (dmt_compatible); counted apart, not averaged."
    )
    print(
        f"{'definition':<16} {'self':>6} {'reversed':>9} {'same motion':>13} {'different':>13} {'same>diff':>9} {'NaN':>5}"
    )
    keys = list(tracks)
    for dmt in (False, True):

        def score(a, b, dmt=dmt):
            return trajectory_fidelity(a, [b], constants=constants, dmt_compatible=dmt)

        selfs = [score(tracks[k], tracks[k]) for k in keys]
        revs = [score(backwards[k], tracks[k]) for k in keys]
        same, diff, wins = [], [], 0
        for motion in clips:
            mine = [k for k in keys if k[0] == motion]
            s = [score(tracks[a], tracks[b]) for a in mine for b in mine if a != b]
            d = [score(tracks[a], tracks[b]) for a in mine for b in keys if b[0] != motion]
            same += s
            diff += d
            wins += bool(_nanmean(s) > _nanmean(d))
        nan = int(np.isnan(selfs + revs + same + diff).sum())
        print(
            f"{'dmt_compatible' if dmt else 'default':<16} {np.nanmean(selfs):>6.3f} {np.nanmean(revs):>9.3f} "
            f"{np.nanmean(same):>6.3f}+-{np.nanstd(same):.2f} {np.nanmean(diff):>6.3f}+-{np.nanstd(diff):.2f} "
            f"{wins:>5}/{len(clips):<3} {nan:>5}"
        )


def videomae_section(
    clips, spec: str, constants: MotionConstants, m: int, per_motion: bool
) -> None:
    """CPU time per clip of the learned backend; its retrieval table (with real weights, a
    measurement; tiny: a pipeline check only). ``base-random``: the real architecture with random
    weights, for its cost only (on 3 clips)."""
    import torch

    from dualreal_bench.metrics.motion.videomae import VideoMAEDescriptor, build_videomae

    if spec == "base-random":
        from transformers import VideoMAEConfig, VideoMAEForVideoClassification

        model = VideoMAEForVideoClassification(
            VideoMAEConfig(num_labels=400)
        )  # VideoMAE-Base, random
        enc = VideoMAEDescriptor(
            model, identity="random VideoMAE-Base (cost only)", constants=constants
        )
    else:
        enc = build_videomae(spec, constants=constants)
    items = [(mo, name, f) for mo, its in clips.items() for name, f in its]
    if spec == "base-random":
        items = items[:3]
    descriptors: dict[str, list[np.ndarray]] = {}
    cpu, windows = [], []
    for motion, _, frames in items:
        t0 = time.process_time()
        descriptors.setdefault(motion, []).append(enc(frames))
        cpu.append(time.process_time() - t0)
        windows.append(len(enc.preprocess(frames)))
    print(
        f"\nVideoMAE {spec} ({enc.identity}), torch threads {torch.get_num_threads()}: "
        f"{np.mean(cpu):.2f} s CPU per clip, {np.sum(cpu) / np.sum(windows):.2f} s per 16-frame window "
        f"({np.mean(windows):.1f} windows per clip, {len(items)} clips)"
    )
    if spec != "base-random":
        res = leave_one_clip_out(descriptors, center=constants.videomae_center)
        label = (
            "pipeline check only: random weights"
            if spec == "tiny"
            else "VideoMAE-Base Kinetics-400"
        )
        print_row(f"videomae_{spec}", res, m, float(np.mean(cpu)), label, per_motion)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", default=os.environ.get("DUALREAL_BENCH_DATA"))
    ap.add_argument(
        "--variants",
        nargs="*",
        help="names of the variants to run (default: all; none: skip the table)",
    )
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="an extra variant: these overrides",
    )
    ap.add_argument(
        "--cache-dir",
        type=Path,
        help="keep DIS flows here across runs (then flow time is not measured)",
    )
    ap.add_argument(
        "--per-motion", action="store_true", help="print each motion's ranks for each variant"
    )
    ap.add_argument(
        "--trajectory", action="store_true", help="also the trajectory_fidelity figures"
    )
    ap.add_argument(
        "--videomae",
        nargs="*",
        default=[],
        choices=["tiny", "base-random", "real"],
        help="also the learned backend: its cost (base-random: the real architecture, random weights) "
        "and, with real weights, its retrieval table",
    )
    args = ap.parse_args(argv)
    if not args.data_root:
        ap.error("pass --data-root or set DUALREAL_BENCH_DATA (../shared/data)")
    base = MotionConstants()
    chosen = [v for v in VARIANTS if args.variants is None or v[0] in args.variants]
    if args.set:
        chosen.append(("custom", " ".join(args.set), dict(kv.split("=", 1) for kv in args.set)))
    t0 = time.process_time()
    clips = load_clips(Path(args.data_root), base)
    n_clips = sum(len(v) for v in clips.values())
    decode_cpu = (time.process_time() - t0) / n_clips
    n_frames = [len(f) for items in clips.values() for _, f in items]
    print(
        f"{len(clips)} motions, {n_clips} clips, {np.mean(n_frames):.1f} frames per clip at ~{base.target_fps:g} fps "
        f"(min {min(n_frames)}, max {max(n_frames)}); decoding {decode_cpu * 1000:.0f} ms CPU per clip"
    )
    m = len(clips)
    print(
        f"\nchance: top-1 {1 / m:.3f}, top-5 {min(5, m) / m:.3f}, mean rank {(m + 1) / 2:.1f}; "
        "same/different: centred cosine of two clips (raw for no_center / hof_raw_2x2), mean +- sd over pairs;\n"
        f"top-1*, rank*: only the queries of motions whose two clips come from different scenes (not "
        f"{', '.join(SAME_SCENE)}: same event, same camera)"
    )
    header = (
        f"{'variant':<22} {'top-1':>6} {'top-5':>6} {'rank +- se':>10}  {'top-1*':>6} {'rank*':>6}  {'same':>11}  {'different':>11}  "
        f"{'same>diff':>9} {'ms/clip':>8}  what it changes"
    )
    print(header)
    print("-" * len(header))
    cache = FlowCache(args.cache_dir)
    for name, what, overrides in chosen:
        constants = base.with_overrides(overrides)
        res, per_clip, _ = run_variant(clips, cache, constants)
        print_row(name, res, m, per_clip, what, args.per_motion)
    if cache.cpu:
        print("\nCPU time per clip of the DIS flows (descriptor from flows: the ms/clip column):")
    for key, times in cache.cpu.items():
        print(
            f"  DIS {key}: {np.mean(times) * 1000:.0f} ms per clip "
            f"({np.sum(times) / np.sum(n_frames) * 1000:.2f} ms per frame), {len(times)} clips"
        )
    for spec in args.videomae:
        videomae_section(clips, spec, base, m, args.per_motion)
    if args.trajectory:
        trajectory_section(clips, base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
