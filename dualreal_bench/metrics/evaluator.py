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
and chained tracks, the motion descriptor of every clip of every motion -- are cached in memory for the evaluator's life and, with ``cache_dir``, in the shared
:class:`~dualreal_bench.cache.ArrayCache` under ``<cache_dir>/metrics``. The runner and the CLI
pass the user cache (:func:`~dualreal_bench.cache.user_cache_dir`), so another run, another run
id or another process on the machine does not recompute them. A key names all a value depends
on: the file's bytes (SHA-256, not its path or time), the encoder's identity (a tiny encoder's
architecture version and seed, a real one's weights hash), the device and CPU thread count,
the constants and metric version that matter, the size a clip is resized to, the versions of
the packages on the way, and :data:`CACHE_VERSION`.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..cache import ArrayCache, file_sha256, key_digest
from ..errors import ConfigError, DataError, MediaError
from ..io import as_json
from ..media import check_video_array, fps_interval, read_image, read_video, resize_frames
from ..provenance import package_versions
from . import functional as Fn
from .constants import (
    CACHE_VERSION,
    DD_KEYS,
    MIN_VIDEO_FRAMES,
    PROMPT_KEYS,
    RAFT_FLOW_KEYS,
    MetricConstants,
    scorable_problem,
)
from .declarations import declared, get_metric, metric_fields
from .encoders import EncoderSet, identity_of
from .flow import dd_pair_scores_and_flows
from .interpolation import ms_interpolations
from .motion.constants import TRAJ_KEYS
from .motion.retrieval import motion_similarities, rank_of
from .motion.trajectory import grid_tracks, trajectory_fidelity

logger = logging.getLogger(__name__)


#: the metric fields of the motion retrieval (their versions name the descriptor backend)
RETRIEVAL_FIELDS = ("motion_fidelity", "motion_top1", "motion_top5", "motion_fidelity_rank")
#: the stage of the progress display while reference clips of every motion are described
MOTION_REFERENCE_STAGE = "motion references (all motions)"


def _numerics(encoder: Any) -> list[Any]:
    """What changes an encoder's output bits besides its weights: the device type and, on CPU,
    torch's thread count (the records are bit-identical only with equal thread counts)."""
    device = torch.device(getattr(encoder, "device", "cpu"))
    return [device.type, torch.get_num_threads() if device.type == "cpu" else None]


class _Cache:
    """The evaluator's reference values: in memory for its life, and in the shared
    :class:`~dualreal_bench.cache.ArrayCache` (``<root>/metrics``) when ``root`` is set.

    Keys name everything a value depends on; values of encoders without an identity (injected
    callables) stay in memory only.
    """

    def __init__(self, root: Path | None) -> None:
        self.disk = ArrayCache(Path(root) / "metrics") if root is not None else None
        self.root = self.disk.root if self.disk is not None else None
        self.memory: dict[str, np.ndarray] = {}
        self.hits = {"memory": 0, "disk": 0, "miss": 0}
        # the packages a value passes through (decoding, resizing, the networks' code)
        self._context = [CACHE_VERSION, package_versions()]

    def _full(self, kind: str, key: list[Any]) -> list[Any]:
        return [kind, *self._context, *key]

    def get(self, kind: str, key: list[Any], persistent: bool) -> np.ndarray | None:
        full = self._full(kind, key)
        d = key_digest(full)
        if d in self.memory:
            self.hits["memory"] += 1
            return self.memory[d]
        if persistent and self.disk is not None:
            value = self.disk.get(kind, full)
            if value is not None:
                self.memory[d] = value
                self.hits["disk"] += 1
                return value
        self.hits["miss"] += 1
        return None

    def put(self, kind: str, key: list[Any], value: np.ndarray, persistent: bool) -> np.ndarray:
        full = self._full(kind, key)
        value = np.asarray(value)
        self.memory[key_digest(full)] = value
        if persistent and self.disk is not None:
            self.disk.put(kind, full, value)
        return value


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
        self.cache = _Cache(Path(cache_dir) if cache_dir is not None else None)
        self.progress = progress
        self.batch_size = batch_size
        self.profile = profile
        #: wall-clock and process-CPU seconds per stage since creation (decode excluded)
        self.timings: dict[str, float] = defaultdict(float)
        self.cpu_timings: dict[str, float] = defaultdict(float)
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
        enc = self.encoders
        # 1. image encoders over every frame of every video (one preprocessing per kind)
        text_frames, image_frames, dino_frames = self._frame_embeddings(videos)
        # 2. references: prompts, identity images, motion clips
        text_embs = self._prompt_embeddings(prompts)
        clip_refs, dino_refs = self._identity_embeddings(case)
        motion_refs = self.motion_reference_descriptors(case)
        results = []
        for i, frames in enumerate(videos):
            h, w = frames.shape[1:3]
            with self._timed("flow"):
                dd, dd_bool, dd_info, flows = self._dynamic_degree(frames, fps)
            with self._timed("trajectory"):  # the flows chained into tracks, then let go
                tracks = grid_tracks(flows, self.motion_constants)
                del flows
            ref, ref_tracks = self._reference_dd(case, (h, w), tracks=True)
            motion, details = self._motion_fidelity(frames, fps, case, motion_refs)
            with self._timed("trajectory"):
                motion["trajectory_fidelity"] = trajectory_fidelity(
                    tracks, list(ref_tracks.values()), constants=self.motion_constants
                )
            with self._timed("flickering"):
                flickering = Fn.temporal_flickering(frames)
            with self._timed("interpolator"):
                smoothness = Fn.motion_smoothness(
                    frames, ms_interpolations(frames, enc.interpolator, c), c
                )
            values = {
                "clip_t": Fn.clip_t(text_frames[i], text_embs[i]),
                "clip_i": Fn.identity_similarity(image_frames[i], clip_refs),
                "dino_i": Fn.identity_similarity(dino_frames[i], dino_refs),
                "temporal_flickering": flickering,
                "temporal_consistency": Fn.temporal_consistency(image_frames[i]),
                "motion_smoothness": smoothness,
                "dynamic_degree": dd,
                "dynamic_degree_dev": Fn.dynamic_degree_deviation(dd, list(ref.values()), c),
                "dynamic_degree_bool": dd_bool,
                **motion,
            }
            self._check_computed(values)
            results.append(
                {
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
            )
        return results

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
    def _encode(self, encoder: Any, pixels: torch.Tensor) -> np.ndarray:
        chunks = [
            encoder.encode_image(pixels[i : i + self.batch_size])
            for i in range(0, len(pixels), self.batch_size)
        ]
        return torch.cat(chunks).numpy()

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
                emb = self._encode(encoder, pixels[key])
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

    def _prompt_embeddings(self, prompts: list[str]) -> list[np.ndarray]:
        c, enc = self.constants, self.encoders.text_clip
        ident = identity_of(enc)
        out: list[np.ndarray | None] = []
        todo: dict[str, list[int]] = {}
        for i, prompt in enumerate(prompts):
            text = Fn.clean_prompt(prompt, c)
            key = [ident or id(enc), _numerics(enc), c.digest(*PROMPT_KEYS), text]
            hit = self.cache.get("prompts", key, persistent=ident is not None)
            out.append(hit)
            if hit is None:
                todo.setdefault(text, []).append(i)
        if todo:
            texts = list(todo)
            embs = enc.encode_text(texts).numpy()
            for text, emb in zip(texts, embs, strict=True):
                key = [ident or id(enc), _numerics(enc), c.digest(*PROMPT_KEYS), text]
                self.cache.put("prompts", key, emb, persistent=ident is not None)
                for i in todo[text]:
                    out[i] = emb
        return out  # type: ignore[return-value]

    def _identity_embeddings(self, case: Any) -> tuple[np.ndarray, np.ndarray]:
        paths = list(case.image_paths())
        if not paths:
            raise DataError(f"identity {case.identity.name!r} has no reference images")
        result = []
        for encoder in (self.encoders.image_clip, self.encoders.dino):
            ident = identity_of(encoder)
            keys = [
                [ident or id(encoder), _numerics(encoder), file_sha256(p)] for p in paths
            ]  # by content
            embs = [self.cache.get("images", k, persistent=ident is not None) for k in keys]
            missing = [i for i, e in enumerate(embs) if e is None]
            if missing:
                images = [read_image(paths[i]) for i in missing]
                new = self._encode(encoder, encoder.preprocess(images))
                for i, emb in zip(missing, new, strict=True):
                    embs[i] = self.cache.put("images", keys[i], emb, persistent=ident is not None)
            result.append(np.stack(embs))
        return result[0], result[1]

    # ---- motion ----------------------------------------------------------------------------------
    def _dd_flows(self, frames: np.ndarray) -> tuple[list[float], np.ndarray]:
        """Dynamic-degree scores of the sampled frames' pairs and their RAFT flows
        ``(T - 1, H, W, 2)`` (padding cropped)."""
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
        return dd_pair_scores_and_flows(x, self.encoders.flow, self.constants)

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
        scores, flows = self._dd_flows(sampled)
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

    def reference_dynamic_degrees(
        self, case: Any, size: tuple[int, int] | None = None
    ) -> dict[str, float]:
        """Continuous Dynamic Degree of each reference clip of the case's motion, by file name.

        Clips are sampled at about 8 fps from their own frame rate (VBench's rule) and, with
        ``dd_reference_size="video"``, resized (cover + centre crop) to ``size``, the
        evaluated videos' ``(H, W)``, so that pixel displacements are comparable.
        """
        return self._reference_dd(case, size)[0]

    def _reference_dd(
        self, case: Any, size: tuple[int, int] | None, *, tracks: bool = False
    ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """(Dynamic Degree of each reference clip of the case's motion, and with ``tracks`` the
        clip's grid tracks chained through the same RAFT flows), by file name; one RAFT pass
        per clip that misses either."""
        c, flow = self.constants, self.encoders.flow
        paths = list(case.video_paths())
        if not paths:
            raise DataError(f"motion {case.motion.name!r} has no reference clips")
        target = list(size) if (c.dd_reference_size == "video" and size is not None) else None
        ident = identity_of(flow)
        persistent = ident is not None
        # the clip's bytes, the flow network, how it computes, the DD definition and constants,
        # the size the clip is resized to (the key's other parts: see _Cache)
        base = [ident or id(flow), _numerics(flow)]
        dd_version = get_metric("dynamic_degree").version
        dd_keys = {
            p: [*base, dd_version, c.digest(*DD_KEYS), target, file_sha256(p)] for p in paths
        }
        mc = self.motion_constants
        track_keys = {
            p: [*base, c.digest(*RAFT_FLOW_KEYS), mc.digest(*TRAJ_KEYS), target, file_sha256(p)]
            for p in paths
        }
        dd = {p: self.cache.get("reference_dd", dd_keys[p], persistent) for p in paths}
        tr = {
            p: self.cache.get("reference_tracks", track_keys[p], persistent) if tracks else None
            for p in paths
        }
        missing = [p for p in paths if dd[p] is None or (tracks and tr[p] is None)]
        for done, path in enumerate(missing):
            self._report_progress("reference clips", done, len(missing))
            logger.info(
                "dynamic degree of reference clip %s (motion %s)", path.name, case.motion.name
            )
            scores, flows = self._reference_flows(path, target)
            dd[path] = self.cache.put(
                "reference_dd", dd_keys[path], np.float64(np.mean(scores)), persistent
            )
            # the tracks come free with the flows: kept even when not asked for
            track = grid_tracks(flows, mc).astype(np.float32)
            tr[path] = self.cache.put("reference_tracks", track_keys[path], track, persistent)
        if missing:
            self._report_progress("reference clips", len(missing), len(missing))
        return (
            {p.name: float(v) for p, v in dd.items()},
            {p.name: tr[p] for p in paths} if tracks else {},
        )

    def _reference_flows(
        self, path: Path, target: list[int] | None
    ) -> tuple[list[float], np.ndarray]:
        c = self.constants
        frames = read_video(path, sampling="fps", target_fps=c.dd_target_fps)
        if target is not None:
            frames = resize_frames(frames, tuple(target), mode="crop")
        if len(frames) < 2:
            raise MediaError(f"{path}: fewer than 2 frames at {c.dd_target_fps:g} fps")
        with self._timed("reference_flow"):
            return self._dd_flows(frames)

    # ---- motion fidelity (beyond the paper) --------------------------------------------------------
    def motion_reference_descriptors(self, case: Any) -> dict[str, np.ndarray]:
        """``{motion: (n_clips, D)}``: the motion descriptor of every reference clip of every
        motion of the benchmark (:meth:`~dualreal_bench.spec.Case.motion_references`), each clip
        sampled at about ``target_fps``. Computed once per clip: cached by the clip's bytes, the
        backend's identity and the constants the descriptor depends on."""
        backend = self.encoders.motion
        mc = self.motion_constants
        refs = case.motion_references()
        ident = identity_of(backend)
        persistent = ident is not None
        numerics = _numerics(backend) if hasattr(backend, "model") else None  # torch backends
        base = [ident or id(backend), numerics, mc.digest(*backend.cache_keys)]
        paths = list(dict.fromkeys(p for clips in refs.values() for p in clips))
        keys = {p: [*base, file_sha256(p)] for p in paths}
        got = {p: self.cache.get("motion_descriptors", keys[p], persistent) for p in paths}
        missing = [p for p in paths if got[p] is None]
        for done, path in enumerate(missing):
            self._report_progress(MOTION_REFERENCE_STAGE, done, len(missing))
            frames = read_video(path, sampling="fps", target_fps=mc.target_fps)
            with self._timed("reference_motion"):
                desc = np.asarray(backend(frames), np.float64)
            got[path] = self.cache.put("motion_descriptors", keys[path], desc, persistent)
        if missing:
            self._report_progress(MOTION_REFERENCE_STAGE, len(missing), len(missing))
        return {m: np.stack([got[p] for p in clips]) for m, clips in refs.items()}

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
