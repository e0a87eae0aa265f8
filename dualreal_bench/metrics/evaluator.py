"""One pass per video: decode once, run each network once, score all seven metrics.

:class:`Evaluator` is what the runner and ``dualreal-bench evaluate`` call. For a batch of
videos of one case it

1. preprocesses every frame once per preprocessing (the two CLIP towers share one: same
   size, crop and mean/std) and runs each image encoder once over all frames of all videos
   in batches: the CLIP-T tower (OpenAI weights) feeds CLIP-T, the CLIP-I tower (laion400m)
   feeds CLIP-I *and* T-Cons, DINO feeds DINO-I;
2. runs RAFT once over the frames sampled at about 8 fps (feature maps shared between
   consecutive pairs), giving the continuous Dynamic Degree, VBench's boolean and the
   deviation from the motion's reference clips;
3. runs AMT once over the even frames for Motion Smoothness; Temporal Flickering needs no
   network;
4. beyond the paper (issue 15): runs the motion descriptor once per video for motion fidelity
   (cosine to the intended motion's reference centroid, the intended motion's rank among every
   motion of the benchmark, top-1/top-5), and chains the RAFT flows of step 2 into point tracks
   for trajectory fidelity (no extra flow pass).

Reference values -- identity-image and prompt embeddings, the reference clips' Dynamic Degree
and chained tracks, the motion descriptor of every clip of every motion -- are computed by
:class:`~.references.ReferenceValues`, once: they are cached in memory for the evaluator's life
and, with ``cache_dir``, in the shared :class:`~dualreal_bench.cache.ArrayCache` under
``<cache_dir>/metrics``, keyed by all they depend on (:mod:`.reference_cache`).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, MediaError
from ..io import as_json
from ..media import check_video_array, fps_interval
from . import functional as Fn
from .constants import MIN_VIDEO_FRAMES, MetricConstants, scorable_problem
from .declarations import declared, metric_fields
from .encoders import EncoderSet, identity_of
from .interpolation import ms_interpolations
from .motion.retrieval import motion_similarities, rank_of
from .motion.trajectory import grid_tracks, trajectory_fidelity
from .reference_cache import ReferenceCache
from .references import MOTION_REFERENCE_STAGE, ReferenceValues, dd_flows, encode_images

__all__ = ["MOTION_REFERENCE_STAGE", "RETRIEVAL_FIELDS", "Evaluator"]

#: the metric fields of the motion retrieval (their versions name the descriptor backend)
RETRIEVAL_FIELDS = ("motion_fidelity", "motion_top1", "motion_top5", "motion_fidelity_rank")


class Evaluator:
    """Scores videos of a case with the seven metrics of the paper and the motion measures
    beyond it (every declared field, :mod:`.declarations`).

    Args:
        encoders: the six networks (see :func:`~dualreal_bench.metrics.build_evaluator`).
        constants: every named constant; recorded with each result.
        cache_dir: root of the persistent cache of reference embeddings and reference-clip
            Dynamic Degrees (``<cache_dir>/metrics``); None keeps them in memory only.
        batch_size: frames per image-encoder call.
    """

    #: set by the runner: ``callback(stage, step, total)`` while reference clips are scored
    progress_callback: Callable[[str, int, int], None] | None = None

    def __init__(
        self,
        encoders: EncoderSet,
        constants: MetricConstants | None = None,
        *,
        cache_dir: str | Path | None = None,
        progress: bool = True,
        batch_size: int = 32,
        profile: str = "custom",
    ) -> None:
        self.encoders = encoders
        self.constants = constants or MetricConstants()
        self.cache = ReferenceCache(Path(cache_dir) if cache_dir is not None else None)
        self.progress = progress
        self.batch_size = batch_size
        self.profile = profile
        #: wall-clock and process-CPU seconds per stage since creation (decode excluded)
        self.timings: dict[str, float] = defaultdict(float)
        self.cpu_timings: dict[str, float] = defaultdict(float)
        #: the reference values of cases (prompts, identity images, motion clips), cached
        self.references = ReferenceValues(
            encoders,
            self.constants,
            self.cache,
            batch_size=batch_size,
            timed=self._timed,
            report_progress=self._report_progress,
        )
        motion = self.motion_constants
        if motion.target_fps != self.constants.dd_target_fps:
            raise ConfigError(
                f"motion constant target_fps ({motion.target_fps:g}) must equal the metric "
                f"constant dd_target_fps ({self.constants.dd_target_fps:g}): trajectory fidelity "
                "chains the flows of the dynamic-degree pass"
            )

    @property
    def motion_constants(self) -> Any:
        """The :class:`~.motion.MotionConstants` of the motion descriptor (its own)."""
        return self.encoders.motion.constants

    @contextmanager
    def _timed(self, stage: str):
        start, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.timings[stage] += time.perf_counter() - start
            self.cpu_timings[stage] += time.process_time() - cpu

    # ---- public ----------------------------------------------------------------------------
    def evaluate_video(
        self, frames: np.ndarray, *, prompt: str, case: Any, fps: float | None = None
    ) -> dict[str, Any]:
        """All metric fields of one video ``uint8 (T, H, W, 3)`` generated for ``prompt``.

        ``fps`` is the video's frame rate (default ``constants.generated_fps``, 8 as CogVideoX);
        it sets the Dynamic Degree sampling step ``max(1, round(fps / 8))``.
        """
        return self.evaluate_videos([(frames, prompt)], case, fps=fps)[0]

    def evaluate_videos(
        self, items: Sequence[tuple[np.ndarray, str]], case: Any, *, fps: float | None = None
    ) -> list[dict[str, Any]]:
        """:meth:`evaluate_video` for several videos of one case, image encoders batched across them."""
        c = self.constants
        videos = [self._check(frames) for frames, _ in items]
        prompts = [prompt for _, prompt in items]
        if not videos:
            return []
        # 1. image encoders over every frame of every video (one preprocessing per kind)
        text_frames, image_frames, dino_frames = self._frame_embeddings(videos)
        # 2. references: prompts, identity images, motion clips
        text_embs = self.references.prompt_embeddings(prompts)
        clip_refs, dino_refs = self.references.identity_embeddings(case)
        motion_refs = self.references.motion_descriptors(case)
        results = []
        for i, frames in enumerate(videos):
            # 3. per video: the flow-based measures, then the frame-based ones
            motion, dd_info, ref, details = self._motion_values(frames, fps, case, motion_refs)
            with self._timed("flickering"):
                flickering = Fn.temporal_flickering(frames)
            with self._timed("interpolator"):
                interpolated = ms_interpolations(frames, self.encoders.interpolator, c)
                smoothness = Fn.motion_smoothness(frames, interpolated, c)
            values = {
                "clip_t": Fn.clip_t(text_frames[i], text_embs[i]),
                "clip_i": Fn.identity_similarity(image_frames[i], clip_refs),
                "dino_i": Fn.identity_similarity(dino_frames[i], dino_refs),
                "temporal_flickering": flickering,
                "temporal_consistency": Fn.temporal_consistency(image_frames[i]),
                "motion_smoothness": smoothness,
                **motion,
            }
            self._check_computed(values)
            results.append(self._result(values, case, dd_info, ref, motion_refs, details))
        return results

    def reference_dynamic_degrees(
        self, case: Any, size: tuple[int, int] | None = None
    ) -> dict[str, float]:
        """Continuous Dynamic Degree of each reference clip of the case's motion, by file name.

        Clips are sampled at about 8 fps from their own frame rate (VBench's rule) and, with
        ``dd_reference_size="video"``, resized (cover + centre crop) to ``size``, the
        evaluated videos' ``(H, W)``, so that pixel displacements are comparable.
        """
        return self.references.dynamic_degrees(case, size)[0]

    def motion_reference_descriptors(self, case: Any) -> dict[str, np.ndarray]:
        """``{motion: (n_clips, D)}``: the motion descriptor of every reference clip of every
        motion of the benchmark (:meth:`.ReferenceValues.motion_descriptors`)."""
        return self.references.motion_descriptors(case)

    def _result(
        self,
        values: dict[str, Any],
        case: Any,
        dd_info: dict[str, Any],
        ref: dict[str, float],
        motion_refs: dict[str, np.ndarray],
        details: dict[str, Any],
    ) -> dict[str, Any]:
        """One video's result: its values, the versions and constants they were computed with
        (the DD sampling, the reference clips' DD, how many motion references), and the
        details a value cannot say."""
        return {
            **values,
            "metric_versions": self.metric_versions(),
            "metric_constants": {
                **self.metric_constants(),
                "dd_sampling": dd_info,
                "dd_reference": {
                    "motion": case.motion.name,
                    "mean": float(np.mean(list(ref.values()))),
                    "clips": ref,
                },
                "motion_references": {
                    "motions": len(motion_refs),
                    "clips": sum(len(v) for v in motion_refs.values()),
                },
            },
            # what a value cannot say: the nearest motion and every motion's cosine
            "metric_details": {"motion_fidelity": details},
        }

    @staticmethod
    def expected_fields() -> tuple[str, ...]:
        """The metric fields every result holds: the declared ones
        (:mod:`~dualreal_bench.metrics.declarations`), in declaration order."""
        return metric_fields()

    def scorable_problem(
        self, num_frames: int, fps: float | None, size: tuple[int, int] | None = None
    ) -> str | None:
        """:func:`scorable_problem` with this evaluator's constants and optical flow."""
        min_side = getattr(self.encoders.flow, "min_side", None)
        return scorable_problem(num_frames, fps, self.constants, size, min_side)

    def _check_computed(self, values: dict[str, Any]) -> None:
        missing = [f for f in self.expected_fields() if f not in values]
        if missing:
            raise NotImplementedError(
                f"metric(s) {', '.join(missing)} are declared (metrics/declarations.py) but "
                "Evaluator.evaluate_videos computes no value for them"
            )

    def metric_versions(self) -> dict[str, str]:
        versions = {name: d.version for name, d in declared().items() if d.per_video}
        interp = identity_of(self.encoders.interpolator) or ""
        if interp.startswith("blend"):
            versions["motion_smoothness"] += "+blend-interpolator"
        # values of different descriptors are different measures: the backend is in the version
        kind = getattr(self.encoders.motion, "kind", "custom")
        for name in RETRIEVAL_FIELDS:
            if name in versions:
                versions[name] += f"+{kind}"
        return versions

    def metric_constants(self) -> dict[str, Any]:
        motion = self.encoders.motion
        return {
            **self.constants.to_dict(),
            "profile": self.profile,
            "encoders": self.encoders.identities(),
            "motion": {
                "backend": getattr(motion, "kind", "custom"),
                "identity": identity_of(motion),
                "center": bool(motion.center),
                # trajectory fidelity's tracks: the RAFT flows of the dynamic-degree pass, of the
                # video and of the intended motion's clips (resized as for dynamic degree)
                "tracks": "raft (dynamic-degree flows)",
                "constants": as_json(self.motion_constants.to_record()),
            },
        }

    # ---- image encoders ------------------------------------------------------------------------
    def _frame_embeddings(self, videos: list[np.ndarray]) -> tuple[list[np.ndarray], ...]:
        """Embeddings of every frame, per video, for the three image encoders. The frames of
        all videos go through each encoder in shared batches; videos of one frame size are
        preprocessed together, those of other sizes (``evaluate`` on a folder of mixed
        resolutions) each on its own, which gives the same pixels."""
        enc = self.encoders
        bounds = np.cumsum([0] + [len(v) for v in videos])
        pixels: dict[Any, torch.Tensor] = {}

        def preprocess(encoder: Any) -> torch.Tensor:
            if len({v.shape[1:] for v in videos}) == 1:
                return encoder.preprocess(np.concatenate(videos))
            return torch.cat([encoder.preprocess(v) for v in videos])

        def run(encoder: Any, stage: str) -> list[np.ndarray]:
            key = getattr(encoder, "preprocess_key", id(encoder))
            if key not in pixels:
                with self._timed(f"{key[0] if isinstance(key, tuple) else stage}_preprocess"):
                    pixels[key] = preprocess(encoder)
            with self._timed(stage):
                emb = encode_images(encoder, pixels[key], self.batch_size)
            return [emb[bounds[i] : bounds[i + 1]] for i in range(len(videos))]

        text = run(enc.text_clip, "text_clip")
        # the same tower with the same weights is not run twice
        same = enc.image_clip is enc.text_clip or (
            identity_of(enc.image_clip) is not None
            and identity_of(enc.image_clip) == identity_of(enc.text_clip)
        )
        image = text if same else run(enc.image_clip, "image_clip")
        dino = run(enc.dino, "dino")
        return text, image, dino

    # ---- flow-based measures ----------------------------------------------------------------------
    def _motion_values(
        self, frames: np.ndarray, fps: float | None, case: Any, motion_refs: dict[str, np.ndarray]
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, float], dict[str, Any]]:
        """(the Dynamic Degree, motion fidelity and trajectory fidelity fields of one video, its
        DD sampling, the reference clips' DD by name, motion fidelity's details). One RAFT pass:
        its flows give the Dynamic Degree and are chained into the video's tracks."""
        with self._timed("flow"):
            dd, dd_bool, dd_info, flows = self._dynamic_degree(frames, fps)
        with self._timed("trajectory"):  # the flows chained into tracks, then let go
            tracks = grid_tracks(flows, self.motion_constants)
            del flows
        h, w = frames.shape[1:3]
        ref, ref_tracks = self.references.dynamic_degrees(case, (h, w), tracks=True)
        motion, details = self._motion_fidelity(frames, fps, case, motion_refs)
        with self._timed("trajectory"):
            motion["trajectory_fidelity"] = trajectory_fidelity(
                tracks, list(ref_tracks.values()), constants=self.motion_constants
            )
        values = {
            "dynamic_degree": dd,
            "dynamic_degree_dev": Fn.dynamic_degree_deviation(
                dd, list(ref.values()), self.constants
            ),
            "dynamic_degree_bool": dd_bool,
            **motion,
        }
        return values, dd_info, ref, details

    def _dynamic_degree(
        self, frames: np.ndarray, fps: float | None
    ) -> tuple[float, bool, dict[str, Any], np.ndarray]:
        c = self.constants
        fps = float(fps) if fps else c.generated_fps
        step = fps_interval(fps, c.dd_target_fps)
        sampled = frames[::step]
        if len(sampled) < 2:
            raise MediaError(
                f"dynamic degree: {len(frames)} frames at {fps:g} fps give fewer than 2 at "
                f"{c.dd_target_fps:g} fps"
            )
        scores, flows = dd_flows(sampled, self.encoders.flow, c)
        h, w = frames.shape[1:3]
        dd, dd_bool = Fn.dynamic_degree(scores, h, w, len(sampled), c)
        thres, count_num = Fn.dynamic_degree_params(h, w, len(sampled), c)
        info = {
            "fps": fps,
            "interval": step,
            "num_sampled_frames": len(sampled),
            "thres": thres,
            "count_num": count_num,
        }
        return dd, dd_bool, info, flows

    # ---- motion fidelity (beyond the paper) --------------------------------------------------------
    def _motion_fidelity(
        self, frames: np.ndarray, fps: float | None, case: Any, refs: dict[str, np.ndarray]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the retrieval fields of one video, its details: the nearest motion and the cosine
        to every motion's centroid). Ties rank the intended motion first."""
        backend = self.encoders.motion
        step = fps_interval(
            float(fps) if fps else self.constants.generated_fps, self.motion_constants.target_fps
        )
        with self._timed("motion_fidelity"):  # the descriptor pass and the comparison
            desc = backend(frames[::step])
            sims = motion_similarities(desc, refs, center=backend.center)
        intended = case.motion.name
        rank = rank_of(sims, intended)
        nearest = intended if rank == 1 else max(sims, key=lambda m: sims[m])
        values = {
            "motion_fidelity": sims[intended],
            "motion_top1": float(rank == 1),  # 0/1: averaged, the top-1 accuracy
            "motion_top5": float(rank <= 5),
            "motion_fidelity_rank": float(rank),
        }
        return values, {"nearest": nearest, "rank": rank, "similarities": sims}

    def _report_progress(self, stage: str, step: int, total: int) -> None:
        if self.progress_callback is not None:
            self.progress_callback(stage, step, total)

    # ---- checks ------------------------------------------------------------------------------------
    @staticmethod
    def _check(frames: Any) -> np.ndarray:
        frames = check_video_array(frames, "evaluate_video")
        if len(frames) < MIN_VIDEO_FRAMES:
            raise MediaError(
                f"a video needs at least {MIN_VIDEO_FRAMES} frames to be scored (motion "
                f"smoothness), got {len(frames)}"
            )
        return frames
