"""Parity with VBench 0.1.5's own code on the real UCF101 / UCF Sports clips.

Needs two things, else the tests skip with the reason:

* ``DUALREAL_BENCH_DATA``: the real data (``dualreal_benchmark/motions/*/videos``);
* ``DUALREAL_BENCH_VBENCH_ORACLE``: a directory made with
  ``pip install --no-deps --target DIR vbench==0.1.5 easydict omegaconf
  "antlr4-python3-runtime==4.9.*" imageio decord scipy`` (VBench's code and the light imports
  its modules need; nothing of it is a runtime dependency of this package).

Both sides get identical inputs (VBench's own frame readers) and identical seeded random
weights (VBench's RAFT and AMT-S checkpoints saved to files and loaded by VBench's classes;
the same state dicts loaded into ours), and must agree to 1e-5 relative.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dualreal_bench.metrics import MetricConstants
from dualreal_bench.metrics import functional as Fn

RTOL = 1e-5
C = MetricConstants()


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


@pytest.fixture(scope="module")
def motions_dir() -> Path:
    root = os.environ.get("DUALREAL_BENCH_DATA")
    if not root:
        pytest.skip("DUALREAL_BENCH_DATA is not set (real UCF101 / UCF Sports clips)")
    path = Path(root) / "dualreal_benchmark" / "motions"
    if not path.is_dir():
        pytest.skip(f"{path}: no such directory")
    return path


@pytest.fixture(scope="module")
def vbench():
    oracle = os.environ.get("DUALREAL_BENCH_VBENCH_ORACLE")
    if not oracle:
        pytest.skip(
            "DUALREAL_BENCH_VBENCH_ORACLE is not set (pip install --no-deps --target DIR vbench==0.1.5 ...)"
        )
    if oracle not in sys.path:
        sys.path.append(oracle)
    import vbench.dynamic_degree
    import vbench.motion_smoothness
    import vbench.temporal_flickering

    return vbench


def _clip(motions_dir: Path, motion: str, index: int = 0) -> Path:
    return sorted((motions_dir / motion / "videos").iterdir())[index]


def _write_frame_dir(frames_rgb: list[np.ndarray], directory: Path) -> Path:
    from PIL import Image

    directory.mkdir(parents=True)
    for i, f in enumerate(frames_rgb):
        Image.fromarray(np.ascontiguousarray(f)).save(
            directory / f"{i:04d}.bmp"
        )  # lossless, no zlib (OpenCV 5 + decord clash on PNG)
    return directory


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


# ---- temporal flickering ------------------------------------------------------------------------


# the shortest clips of each source and size: UCF101 320x240 at 25 and 29.97 fps, UCF Sports
# 480x360, 720x576 and 720x404 at 10 fps
FLICKER_CLIPS = [
    ("PushUps", 0),
    ("Basketball", 1),
    ("Kicking-Front", 0),
    ("Kicking-Front", 1),
    ("Swing-Bench", 0),
]


def test_temporal_flickering_matches_vbench(motions_dir, vbench):
    vtf = vbench.temporal_flickering
    worst = 0.0
    for i, (motion, index) in enumerate(FLICKER_CLIPS):
        path = str(_clip(motions_dir, motion, index))
        frames = vtf.get_frames(path)  # VBench's reader (BGR; MAE does not care)
        if i < 2:
            theirs = vtf.cal_score(path)  # the whole VBench function, path in
        else:
            theirs = (255.0 - np.mean(vtf.mae_seq(frames)).item()) / 255.0  # cal_score's body
        ours = Fn.temporal_flickering(np.stack(frames))
        worst = max(worst, _rel(ours, theirs))
    print(f"\ntemporal flickering: {len(FLICKER_CLIPS)} clips, max relative error {worst:.2e}")
    assert worst <= RTOL, worst


# ---- motion smoothness (AMT-S) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def amt_checkpoint(vbench, tmp_path_factory):
    from dualreal_bench.metrics.interpolation import build_amt_s

    torch.manual_seed(1234)
    model = build_amt_s()
    path = tmp_path_factory.mktemp("amt") / "amt-s.pth"
    torch.save({"state_dict": model.state_dict()}, path)
    return path


@pytest.mark.parametrize(
    ("motion", "num_frames"),
    [("PushUps", 11), ("Kicking-Front", 7)],  # UCF101 320x240; UCF Sports 480x360 (pads 360 -> 368)
)
def test_motion_smoothness_matches_vbench(
    motions_dir, vbench, amt_checkpoint, tmp_path, motion, num_frames
):
    from dualreal_bench.metrics.encoders import real_interpolator
    from dualreal_bench.metrics.interpolation import ms_interpolations

    vms = vbench.motion_smoothness
    frames = vms.FrameProcess().get_frames(str(_clip(motions_dir, motion)))[:num_frames]  # RGB
    folder = _write_frame_dir(frames, tmp_path / "frames")
    cfg = Path(vms.__file__).parent / "third_party" / "amt" / "cfgs" / "AMT-S.yaml"
    theirs = vms.MotionSmoothness(str(cfg), str(amt_checkpoint), "cpu").motion_score(str(folder))

    ours_frames = np.stack(vms.FrameProcess().get_frames_from_img_folder(str(folder)))
    interpolator = real_interpolator(amt_checkpoint, C)  # our loader, same file
    preds = ms_interpolations(ours_frames, interpolator, C)
    ours = Fn.motion_smoothness(ours_frames, preds, C)
    print(
        f"\nmotion smoothness {motion}: ours {ours:.8f} vbench {theirs:.8f} rel {_rel(ours, theirs):.2e}"
    )
    assert _rel(ours, theirs) <= RTOL, (ours, theirs)


# ---- dynamic degree (RAFT) -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raft_checkpoint(vbench, tmp_path_factory):
    """A seeded random *original* RAFT (VBench's class), saved as VBench loads it."""
    from easydict import EasyDict
    from vbench.third_party.RAFT.core.raft import RAFT

    torch.manual_seed(4321)
    model = RAFT(EasyDict(small=False, mixed_precision=False, alternate_corr=False))
    for m in model.modules():  # non-trivial batch-norm statistics in the context encoder
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.8, 1.2)
    path = tmp_path_factory.mktemp("raft") / "raft-things.pth"
    torch.save(
        {f"module.{k}": v for k, v in model.state_dict().items()}, path
    )  # DataParallel keys, as shipped
    return path


def _vbench_dd(vdd, raft_checkpoint: Path, video: str) -> tuple[list[float], bool]:
    from easydict import EasyDict

    dd = vdd.DynamicDegree(
        EasyDict(
            model=str(raft_checkpoint), small=False, mixed_precision=False, alternate_corr=False
        ),
        "cpu",
    )
    seen: list[list[float]] = []
    original = dd.check_move

    def capture(score_list):
        seen.append(list(score_list))
        return original(score_list)

    dd.check_move = capture
    moved = dd.infer(video)
    return seen[0], moved


def _ours_dd(
    raft_checkpoint: Path, frames: np.ndarray, fps: float
) -> tuple[list[float], float, bool]:
    from dualreal_bench.metrics.encoders import real_flow
    from dualreal_bench.metrics.flow import dd_pair_scores

    flow = real_flow(
        raft_checkpoint, C
    )  # our loader: original checkpoint -> torchvision raft_large
    sampled = frames[:: Fn.fps_interval(fps, C.dd_target_fps)]
    x = torch.from_numpy(np.ascontiguousarray(sampled)).permute(0, 3, 1, 2).float()
    scores = dd_pair_scores(x, flow, C)
    dd, moved = Fn.dynamic_degree(scores, frames.shape[1], frames.shape[2], len(sampled), C)
    return scores, dd, moved


def test_dynamic_degree_matches_vbench_mp4_with_fps_sampling(
    motions_dir, vbench, raft_checkpoint, tmp_path
):
    """UCF101 at 29.97 fps: VBench samples every round(29.97 / 8) = 4th frame of the mp4.

    A 128x160 centre crop (RAFT's smallest size: a 4-level pyramid on 1/8-scale features)
    of the first 17 frames keeps the test fast; content and sampling stay the clip's own."""
    import cv2

    from dualreal_bench.media import write_video

    vdd = vbench.dynamic_degree
    src = vbench.temporal_flickering.get_frames(str(_clip(motions_dir, "Basketball", 1)))[
        :17
    ]  # BGR
    video = write_video(
        tmp_path / "clip.mp4", np.stack([f[56:184, 80:240, ::-1] for f in src]), fps=30000 / 1001
    )
    theirs, their_bool = _vbench_dd(vdd, raft_checkpoint, str(video))

    cap = cv2.VideoCapture(str(video))  # the same decoded frames and fps VBench saw
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    frames = np.stack(vbench.motion_smoothness.FrameProcess().get_frames(str(video)))
    ours, dd, our_bool = _ours_dd(raft_checkpoint, frames, fps)
    assert len(ours) == len(theirs) == 4
    print(
        f"\ndynamic degree mp4: pair rel {max(_rel(a, b) for a, b in zip(ours, theirs, strict=True)):.2e}, "
        f"mean ours {dd:.6f} vbench {np.mean(theirs):.6f}, bool {our_bool}/{their_bool}"
    )
    assert max(_rel(a, b) for a, b in zip(ours, theirs, strict=True)) <= RTOL
    assert _rel(dd, float(np.mean(theirs))) <= RTOL  # the authors' continuous value
    assert our_bool == their_bool


def test_dynamic_degree_matches_vbench_odd_size_frames(
    motions_dir, vbench, raft_checkpoint, tmp_path
):
    """UCF Sports frames cropped to 132x172 (not multiples of 8): padding, thresholds, scores."""
    vdd = vbench.dynamic_degree
    src = vbench.motion_smoothness.FrameProcess().get_frames(
        str(_clip(motions_dir, "Kicking-Front"))
    )
    crops = [f[100:232, 150:322] for f in src[:3]]
    folder = _write_frame_dir(crops, tmp_path / "frames")
    theirs, their_bool = _vbench_dd(vdd, raft_checkpoint, str(folder))  # a folder: no fps sampling

    frames = np.stack(
        vbench.motion_smoothness.FrameProcess().get_frames_from_img_folder(str(folder))
    )
    ours, dd, our_bool = _ours_dd(raft_checkpoint, frames, fps=C.dd_target_fps)
    assert frames.shape[1:3] == (132, 172)
    print(
        f"\ndynamic degree odd size: pair rel {max(_rel(a, b) for a, b in zip(ours, theirs, strict=True)):.2e}, "
        f"mean ours {dd:.6f} vbench {np.mean(theirs):.6f}, bool {our_bool}/{their_bool}"
    )
    assert max(_rel(a, b) for a, b in zip(ours, theirs, strict=True)) <= RTOL
    assert our_bool == their_bool
    # VBench's constants, recomputed from its own set_params
    probe = vdd.DynamicDegree.__new__(vdd.DynamicDegree)
    probe.set_params(frame=torch.zeros(1, 3, 132, 172), count=len(frames))
    assert Fn.dynamic_degree_params(132, 172, len(frames), C) == (
        pytest.approx(probe.params["thres"]),
        probe.params["count_num"],
    )
