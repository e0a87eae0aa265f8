#!/usr/bin/env python
"""Throughput of the metric pass: shared (this package) vs separate per-metric passes (VBench).

Scores synthetic ``--frames``-frame ``--height x --width`` videos (default 49 x 480 x 720, what
CogVideoX generates) with the real architectures and random weights (timing does not depend
on the weights):

* shared: decode each video once, then ``Evaluator.evaluate_videos`` (one pass per network);
* separate: every metric on its own, as VBench 0.1.5 and the authors' script run them:
  each decodes the file with OpenCV, ``temporal_flickering.cal_score``,
  ``MotionSmoothness.motion_score`` (AMT-S), ``DynamicDegree.infer`` twice (VBench's boolean,
  and the authors' continuous variant, which is the same loop returning the mean), CLIP-T
  (all frames in one batch, OpenAI tower), CLIP-I and T-Cons (frame by frame, each with its
  own laion400m pass), DINO-I (frame by frame).

Reference embeddings and reference-clip values are computed before timing on both sides.
The separate pass needs VBench's code: ``--vbench-oracle DIR`` (or
``$DUALREAL_BENCH_VBENCH_ORACLE``), a ``pip install --no-deps --target DIR vbench==0.1.5``
plus its light imports (see tests/test_metrics_parity.py).

The shared pass includes the motion measures beyond the paper (issue 15); the script reports
it with and without them: ``motion_fidelity`` (one descriptor pass per video:
``--motion-backend flow``, the weight-free DIS descriptor, or ``videomae``, VideoMAE-Base with
random weights -- the cost of the Kinetics model) and ``trajectory_fidelity`` (tracks chained
through the dynamic-degree RAFT flows: no flow pass of its own). Describing every motion's
reference clips is a one-time cost (cached per machine): timed separately, on 3 synthetic
motions, or on the benchmark's clips with ``--motions-dir <data root>/motions``.

    python scripts/bench_metrics.py --videos 2            # the figures in the closing note
    python scripts/bench_metrics.py --videos 1 --frames 17 --height 240 --width 320   # quick
    python scripts/bench_metrics.py --skip-separate --motion-backend videomae \
        --motions-dir ../shared/data/dualreal_benchmark/motions
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch


def synthetic_video(n: int, h: int, w: int, seed: int) -> np.ndarray:
    """A random texture drifting diagonally (2 px / frame) with a little noise."""
    rng = np.random.default_rng(seed)
    tex = rng.integers(0, 256, (h + 2 * n + 8, w + 2 * n + 8, 3), dtype=np.uint8)
    frames = np.stack([tex[2 * t : 2 * t + h, t : t + w] for t in range(n)])
    noise = rng.integers(-3, 4, frames.shape)
    return np.clip(frames.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def build_real_arch_encoders(constants, device: str, motion: str = "flow"):
    """The paper's five architectures with seeded random weights, and the motion descriptor."""
    import open_clip
    from transformers import ViTConfig, ViTModel

    from dualreal_bench.metrics.encoders import ClipEncoder, DinoEncoder, EncoderSet
    from dualreal_bench.metrics.flow import RaftFlow, build_raft_large
    from dualreal_bench.metrics.interpolation import AmtInterpolator, build_amt_s

    torch.manual_seed(0)
    tok = open_clip.get_tokenizer("ViT-B-32")
    text = ClipEncoder(
        open_clip.create_model("ViT-B-32-quickgelu"), tok, identity="bench-openai", device=device
    )
    image = ClipEncoder(
        open_clip.create_model("ViT-B-32-quickgelu"), tok, identity="bench-laion", device=device
    )
    dino_cfg = ViTConfig(
        hidden_size=384,
        num_hidden_layers=12,
        num_attention_heads=6,
        intermediate_size=1536,
        image_size=224,
        patch_size=16,
    )  # facebook/dino-vits16
    dino = DinoEncoder(
        ViTModel(dino_cfg, add_pooling_layer=False), identity="bench-dino", device=device
    )
    flow = RaftFlow(
        build_raft_large(), iters=constants.raft_iters, identity="bench-raft", device=device
    )
    amt = AmtInterpolator(build_amt_s(), identity="bench-amt", device=device)
    return EncoderSet(text, image, dino, flow, amt, build_motion_backend(motion, device))


def build_motion_backend(name: str, device: str):
    """motion fidelity's descriptor: the weight-free one, or VideoMAE-Base (Kinetics-400
    classifier architecture, random weights: the cost of the real model)."""
    from dualreal_bench.metrics.motion import FlowDescriptor

    if name == "flow":
        return FlowDescriptor()
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    from dualreal_bench.metrics.motion import VideoMAEDescriptor

    torch.manual_seed(0)
    model = VideoMAEForVideoClassification(VideoMAEConfig(use_mean_pooling=True, num_labels=400))
    return VideoMAEDescriptor(model, identity="bench-videomae-base", device=device)


def fake_case(tmp: Path, size: tuple[int, int], motions_dir: Path | None = None):
    """Identity images, the case's reference clip, and the motions ranked among: 3 synthetic
    ones (the case's and two drifting otherwise), or every motion of ``motions_dir``."""
    from dualreal_bench.media import write_image, write_video
    from dualreal_bench.spec import motion_clips

    images = [tmp / f"ref{i}.png" for i in range(4)]
    for i, p in enumerate(images):
        write_image(
            p, np.random.default_rng(100 + i).integers(0, 256, (512, 512, 3), dtype=np.uint8)
        )
    clip = tmp / "ref_clip.mp4"
    write_video(clip, synthetic_video(3, *size, seed=99), fps=8)
    motions = {"bench": [clip]}
    if motions_dir is not None:
        motions |= motion_clips(motions_dir)
    else:
        frames = synthetic_video(17, *size, seed=200)
        for k, clip_frames in ((1, frames[:, ::-1]), (2, frames[::-1])):  # flipped, reversed
            other = tmp / f"other{k}.mp4"
            write_video(other, np.ascontiguousarray(clip_frames), fps=8)
            motions[f"other{k}"] = [other]
    return SimpleNamespace(
        case_id="bench__bench",
        identity=SimpleNamespace(name="bench"),
        motion=SimpleNamespace(name="bench"),
        image_paths=lambda: images,
        video_paths=lambda: [clip],
        motion_references=lambda: motions,
    )


# ---- separate passes, as VBench and the authors' script run them -----------------------------


def cv2_frames(path: str) -> list[np.ndarray]:
    import cv2

    cap, out = cv2.VideoCapture(path), []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    return out


def separate_passes(
    paths: list[str], prompts: list[str], enc, tmp: Path, timings: dict, device: str
) -> None:
    import vbench.dynamic_degree as vdd
    import vbench.motion_smoothness as vms
    import vbench.temporal_flickering as vtf
    from easydict import EasyDict
    from vbench.third_party.RAFT.core.raft import RAFT

    # VBench loads its models from files: save the same-architecture random weights
    amt_ckpt = tmp / "amt-s.pth"
    torch.save({"state_dict": enc.interpolator.model.state_dict()}, amt_ckpt)
    amt_cfg = Path(vms.__file__).parent / "third_party/amt/cfgs/AMT-S.yaml"
    raft_ckpt = tmp / "raft-things.pth"
    torch.save(
        RAFT(EasyDict(small=False, mixed_precision=False, alternate_corr=False)).state_dict(),
        raft_ckpt,
    )
    ms = vms.MotionSmoothness(str(amt_cfg), str(amt_ckpt), device)
    dd = vdd.DynamicDegree(
        EasyDict(model=str(raft_ckpt), small=False, mixed_precision=False, alternate_corr=False),
        device,
    )

    class AuthorsDD(vdd.DynamicDegree):  # the authors' variant: same loop, returns the mean
        def check_move(self, score_list):
            return float(np.mean(score_list))

    dd_cont = AuthorsDD(
        EasyDict(model=str(raft_ckpt), small=False, mixed_precision=False, alternate_corr=False),
        device,
    )

    def timed(stage, fn, *a):
        t = time.process_time()  # CPU time: robust to other processes on a shared machine
        out = fn(*a)
        timings[stage] = timings.get(stage, 0.0) + time.process_time() - t
        return out

    for path, prompt in zip(paths, prompts, strict=True):
        timed("temporal_flickering", vtf.cal_score, path)
        timed("motion_smoothness", ms.motion_score, path)
        timed("dynamic_degree_bool", dd.infer, path)
        timed("dynamic_degree", dd_cont.infer, path)

        def clip_t(path=path, prompt=prompt):  # authors: all frames in one batch
            pix = enc.text_clip.preprocess(cv2_frames(path))
            f = enc.text_clip.encode_image(pix)
            t = enc.text_clip.encode_text([prompt])
            return (
                torch.nn.functional.normalize(f, dim=-1)
                @ torch.nn.functional.normalize(t, dim=-1).T
            ).mean()

        def per_frame(encoder, path=path):  # authors: one frame at a time
            return torch.cat(
                [encoder.encode_image(encoder.preprocess([f])) for f in cv2_frames(path)]
            )

        timed("clip_t", clip_t)
        timed("clip_i", per_frame, enc.image_clip)
        timed("temporal_consistency", per_frame, enc.image_clip)
        timed("dino_i", per_frame, enc.dino)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=int, default=2)
    ap.add_argument("--frames", type=int, default=49)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--width", type=int, default=720)
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: CPU time then measures work, not waiting)",
    )
    ap.add_argument("--vbench-oracle", default=os.environ.get("DUALREAL_BENCH_VBENCH_ORACLE"))
    ap.add_argument("--skip-separate", action="store_true", help="time the shared pass only")
    ap.add_argument(
        "--motion-backend",
        choices=("flow", "videomae"),
        default="flow",
        help="motion fidelity's descriptor (videomae: VideoMAE-Base, random weights)",
    )
    ap.add_argument(
        "--motions-dir",
        type=Path,
        help="rank among this motions folder's motions (default: 3 synthetic ones)",
    )
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.vbench_oracle:
        sys.path.append(str(Path(args.vbench_oracle).resolve()))
    elif not args.skip_separate:
        ap.error(
            "the separate (VBench) passes need --vbench-oracle DIR or $DUALREAL_BENCH_VBENCH_ORACLE"
        )

    from dualreal_bench.media import read_video, write_video
    from dualreal_bench.metrics import MetricConstants
    from dualreal_bench.metrics.evaluator import Evaluator

    size = (args.height, args.width)
    constants = MetricConstants()
    enc = build_real_arch_encoders(constants, args.device, args.motion_backend)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        case = fake_case(tmp, size, args.motions_dir)
        paths, prompts = [], []
        for i in range(args.videos):
            p = tmp / f"video{i:03d}.mp4"
            write_video(p, synthetic_video(args.frames, *size, seed=i), fps=8)
            paths.append(str(p))
            prompts.append(f"a dog * riding a bike, take {i}")
        total_frames = args.videos * args.frames
        print(
            f"{args.videos} video(s) x {args.frames} frames at {args.height}x{args.width}, "
            f"torch threads {torch.get_num_threads()}, device {args.device}"
        )

        ev = Evaluator(enc, constants, progress=False)
        t0 = time.process_time()
        ev.motion_reference_descriptors(case)  # once per machine (the user cache keeps them)
        t_refs, n_refs = time.process_time() - t0, sum(map(len, case.motion_references().values()))
        ev.evaluate_videos(
            [(read_video(paths[0])[:5], prompts[0])], case
        )  # warm: references, prompt cache
        ev.timings.clear()
        ev.cpu_timings.clear()
        # process CPU time (single-threaded by default): robust to other jobs on a shared machine
        t0, w0 = time.process_time(), time.perf_counter()
        decoded = [read_video(p) for p in paths]
        t_decode = time.process_time() - t0
        ev.evaluate_videos(list(zip(decoded, prompts, strict=True)), case)
        shared, shared_wall = time.process_time() - t0, time.perf_counter() - w0
        print(
            f"\nshared pass: {shared:.1f} CPU s ({shared_wall:.1f} s wall), {total_frames / shared:.3f} frames/CPU-s "
            f"(decode {t_decode:.1f} s)"
        )
        for stage, sec in sorted(ev.cpu_timings.items(), key=lambda kv: -kv[1]):
            print(f"  {stage:22s} {sec:8.1f} s")
        mf, tf = ev.cpu_timings.get("motion_fidelity", 0.0), ev.cpu_timings.get("trajectory", 0.0)
        without = shared - mf - tf
        print(
            f"\nmotion measures (beyond the paper), {args.motion_backend} descriptor: "
            f"motion_fidelity {mf / args.videos:.2f} s/video, trajectory_fidelity "
            f"{tf / args.videos:.3f} s/video (no flow pass: the dynamic-degree flows)\n"
            f"shared pass without them: {without:.1f} CPU s; with them: {shared:.1f} CPU s "
            f"(+{100 * (shared - without) / without:.1f} %)\n"
            f"every motion's reference clips, once (then cached): {t_refs:.1f} CPU s for "
            f"{n_refs} clips of {len(case.motion_references())} motions"
        )

        if args.skip_separate:
            return 0
        timings: dict[str, float] = {}
        t0, w0 = time.process_time(), time.perf_counter()
        separate_passes(paths, prompts, enc, tmp, timings, args.device)
        separate, separate_wall = time.process_time() - t0, time.perf_counter() - w0
        print(
            f"\nseparate passes: {separate:.1f} CPU s ({separate_wall:.1f} s wall), "
            f"{total_frames / separate:.3f} frames/CPU-s"
        )
        for stage, sec in sorted(timings.items(), key=lambda kv: -kv[1]):
            print(f"  {stage:22s} {sec:8.1f} s")
        print(f"\nratio separate / shared: {separate / shared:.2f}x")
        ours = {
            "dynamic_degree (+bool, dev)": ev.cpu_timings.get("flow", 0.0),
            "motion_smoothness": ev.cpu_timings.get("interpolator", 0.0),
            "temporal_flickering": ev.cpu_timings.get("flickering", 0.0),
            "clip_t": ev.cpu_timings.get("text_clip", 0.0)
            + ev.cpu_timings.get("clip_preprocess", 0.0),
            "clip_i + temporal_consistency": ev.cpu_timings.get("image_clip", 0.0),
            "dino_i": ev.cpu_timings.get("dino", 0.0) + ev.cpu_timings.get("dino_preprocess", 0.0),
        }
        theirs = {
            "dynamic_degree (+bool, dev)": timings["dynamic_degree"]
            + timings["dynamic_degree_bool"],
            "motion_smoothness": timings["motion_smoothness"],
            "temporal_flickering": timings["temporal_flickering"],
            "clip_t": timings["clip_t"],
            "clip_i + temporal_consistency": timings["clip_i"] + timings["temporal_consistency"],
            "dino_i": timings["dino_i"],
        }
        print(
            "\nper metric, CPU s (ours excludes the one shared decode; VBench's includes its own):"
        )
        for k in ours:
            print(
                f"  {k:30s} ours {ours[k]:8.1f} s   separate {theirs[k]:8.1f} s   "
                f"{theirs[k] / max(ours[k], 1e-9):6.2f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
