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
    python scripts/motion_fidelity_validation.py --videomae tiny   # also time the learned backend

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
from dualreal_bench.metrics.motion.flow_descriptor import descriptor_from_flows, dis_flows
from dualreal_bench.metrics.motion.retrieval import leave_one_clip_out

# (name, what it changes, overrides of the defaults). The first is the default descriptor; each
# other row changes one choice, so the difference to the first row is what that choice buys.
_SCAN = [(f"flow_{side}px_{preset}", f"DIS at short side {side} px, preset {preset}",
          {"flow_short_side": str(side), "flow_dis_preset": preset})
         for side in (48, 64, 80, 96, 128) for preset in ("ultrafast", "fast", "medium")]
VARIANTS: list[tuple[str, str, dict[str, str]]] = [
    ("default", "HOF+MBH, 3x3 cells, whole clip, 8 bins, sqrt, centred; DIS 96 px fast", {}),
    ("no_center", "cosine of raw descriptors (no mean subtracted)", {"flow_center": "false"}),
    ("power_1", "no square root (power 1)", {"flow_power": "1"}),
    ("no_block_norm", "HOF and MBH blocks not L1-normalised (power 1)", {"flow_block_norm": "none", "flow_power": "1"}),
    ("mbh", "MBH only", {"flow_features": "mbh"}),
    ("hof", "HOF only", {"flow_features": "hof"}),
    ("hof_static_bin", "HOF with a static bin (|flow| < 0.002 counts 1)",
     {"flow_features": "hof", "flow_static_threshold": "0.002"}),
    ("hof_raw_2x2", "HOF (static bin) on 2x2 cells, raw cosine, power 1, DIS 128 px medium",
     {"flow_features": "hof", "flow_static_threshold": "0.002", "flow_grid": "2,2", "flow_center": "false",
      "flow_power": "1", "flow_short_side": "128", "flow_dis_preset": "medium"}),
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
        sys.exit(f"error: {motions} does not exist (point --data-root / DUALREAL_BENCH_DATA at ../shared/data)")
    clips = {}
    for m in sorted(motions.iterdir(), key=lambda p: p.name.lower()):
        if (m / "videos").is_dir():
            clips[m.name] = [(v.name, read_video(v, sampling="fps", target_fps=constants.target_fps))
                             for v in list_videos(m / "videos")]
    return clips


class FlowCache:
    """DIS flows per (clip, flow setting), in memory and optionally on disk; CPU seconds per clip."""

    def __init__(self, cache_dir: Path | None) -> None:
        self.cache_dir = cache_dir
        self.memory: dict[tuple[str, str], np.ndarray] = {}
        self.cpu: dict[str, list[float]] = {}  # flow setting -> CPU seconds of each clip computed here

    def get(self, motion: str, name: str, frames: np.ndarray, constants: MotionConstants) -> np.ndarray:
        setting = (f"{constants.flow_short_side} px, {constants.flow_dis_preset}"
                   + (", intensity norm" if constants.flow_intensity_norm else ""))
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", default=os.environ.get("DUALREAL_BENCH_DATA"))
    ap.add_argument("--variants", nargs="*", help="names of the variants to run (default: all)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="an extra variant: these overrides")
    ap.add_argument("--cache-dir", type=Path, help="keep DIS flows here across runs")
    ap.add_argument("--per-motion", action="store_true", help="print each motion's ranks for each variant")
    ap.add_argument("--videomae", choices=["tiny", "real"], help="also time the learned backend (and, real, its table)")
    args = ap.parse_args(argv)
    if not args.data_root:
        ap.error("pass --data-root or set DUALREAL_BENCH_DATA (../shared/data)")
    base = MotionConstants()
    chosen = [v for v in VARIANTS if not args.variants or v[0] in args.variants]
    if args.set:
        chosen.append(("custom", " ".join(args.set), dict(kv.split("=", 1) for kv in args.set)))
    t0 = time.process_time()
    clips = load_clips(Path(args.data_root), base)
    n_clips = sum(len(v) for v in clips.values())
    decode_cpu = (time.process_time() - t0) / n_clips
    n_frames = [len(f) for items in clips.values() for _, f in items]
    print(f"{len(clips)} motions, {n_clips} clips, {np.mean(n_frames):.1f} frames per clip at ~{base.target_fps:g} fps "
          f"(min {min(n_frames)}, max {max(n_frames)}); decoding {decode_cpu * 1000:.0f} ms CPU per clip")
    cache = FlowCache(args.cache_dir)
    m = len(clips)
    print(f"\nchance: top-1 {1 / m:.3f}, top-5 {min(5, m) / m:.3f}, mean rank {(m + 1) / 2:.1f}")
    header = (f"{'variant':<22} {'top-1':>6} {'top-5':>6} {'rank +- se':>10}  {'same':>11}  {'different':>11}  "
              f"{'same>diff':>9} {'ms/clip':>8}  what it changes")
    print(header)
    print("-" * len(header))
    for name, what, overrides in chosen:
        constants = base.with_overrides(overrides)
        res, per_clip, _ = run_variant(clips, cache, constants)
        print(f"{name:<22} {res.top1:>6.3f} {res.top5:>6.3f} {res.mean_rank:>5.2f}+-{res.mean_rank_se:.2f}  "
              f"{res.same_mean:>5.2f}+-{res.same_sd:.2f}  {res.diff_mean:>5.2f}+-{res.diff_sd:.2f}  "
              f"{res.motions_same_gt_diff:>5}/{m:<3} {per_clip * 1000:>8.1f}  {what}", flush=True)
        if args.per_motion:
            print("    " + ", ".join(f"{k}:{'/'.join(map(str, v))}" for k, v in res.ranks.items()))
    print("\nCPU time per clip (DIS flow at each flow setting; descriptor: ms/clip column above):")
    for key, times in cache.cpu.items():
        print(f"  DIS {key}: {np.mean(times) * 1000:.0f} ms per clip "
              f"({np.sum(times) / np.sum(n_frames) * 1000:.1f} ms per frame), {len(times)} clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
