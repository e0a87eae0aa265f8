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
   network.

Reference values -- identity-image and prompt embeddings, the reference clips' Dynamic Degree
-- are cached in memory for the evaluator's life and, with ``cache_dir``, in the shared
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
from ..errors import DataError, MediaError
from ..media import check_video_array, fps_interval, read_image, read_video, resize_frames
from ..provenance import package_versions
from . import functional as Fn
from .constants import (
    CACHE_VERSION,
    DD_KEYS,
    MIN_VIDEO_FRAMES,
    PROMPT_KEYS,
    MetricConstants,
    scorable_problem,
)
from .declarations import declared, get_metric, metric_fields
from .encoders import EncoderSet, identity_of
from .flow import dd_pair_scores
from .interpolation import ms_interpolations

logger = logging.getLogger(__name__)


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
    """Scores videos of a case with the seven metrics (nine fields).

    Args:
        encoders: the five networks (see :func:`~dualreal_bench.metrics.build_evaluator`).
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
        results = []
        for i, frames in enumerate(videos):
            h, w = frames.shape[1:3]
            with self._timed("flow"):
                dd, dd_bool, dd_info = self._dynamic_degree(frames, fps)
            ref = self._reference_dd(case, (h, w))
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
                    },
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
        return versions

    def metric_constants(self) -> dict[str, Any]:
        return {
            **self.constants.to_dict(),
            "profile": self.profile,
            "encoders": self.encoders.identities(),
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
    def _dd_scores(self, frames: np.ndarray) -> list[float]:
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
        return dd_pair_scores(x, self.encoders.flow, self.constants)

    def _dynamic_degree(
        self, frames: np.ndarray, fps: float | None
    ) -> tuple[float, bool, dict[str, Any]]:
        c = self.constants
        fps = float(fps) if fps else c.generated_fps
        step = fps_interval(fps, c.dd_target_fps)
        sampled = frames[::step]
        if len(sampled) < 2:
            raise MediaError(
                f"dynamic degree: {len(frames)} frames at {fps:g} fps give fewer than 2 at "
                f"{c.dd_target_fps:g} fps"
            )
        scores = self._dd_scores(sampled)
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
        return dd, dd_bool, info

    def reference_dynamic_degrees(
        self, case: Any, size: tuple[int, int] | None = None
    ) -> dict[str, float]:
        """Continuous Dynamic Degree of each reference clip of the case's motion, by file name.

        Clips are sampled at about 8 fps from their own frame rate (VBench's rule) and, with
        ``dd_reference_size="video"``, resized (cover + centre crop) to ``size``, the
        evaluated videos' ``(H, W)``, so that pixel displacements are comparable.
        """
        return self._reference_dd(case, size)

    def _reference_dd(self, case: Any, size: tuple[int, int] | None) -> dict[str, float]:
        c, flow = self.constants, self.encoders.flow
        paths = list(case.video_paths())
        if not paths:
            raise DataError(f"motion {case.motion.name!r} has no reference clips")
        target = list(size) if (c.dd_reference_size == "video" and size is not None) else None
        ident = identity_of(flow)
        # the clip's bytes, the flow network, how it computes, the DD definition and constants,
        # the size the clip is resized to (the key's other parts: see _Cache)
        keys = {
            path: [
                ident or id(flow),
                _numerics(flow),
                get_metric("dynamic_degree").version,
                c.digest(*DD_KEYS),
                target,
                file_sha256(path),
            ]
            for path in paths
        }
        out = {
            path: self.cache.get("reference_dd", keys[path], persistent=ident is not None)
            for path in paths
        }
        missing = [path for path, hit in out.items() if hit is None]
        for done, path in enumerate(missing):
            self._report_progress("reference clips", done, len(missing))
            logger.info(
                "dynamic degree of reference clip %s (motion %s)", path.name, case.motion.name
            )
            value = np.float64(np.mean(self._reference_scores(path, target)))
            out[path] = self.cache.put(
                "reference_dd", keys[path], value, persistent=ident is not None
            )
        if missing:
            self._report_progress("reference clips", len(missing), len(missing))
        return {path.name: float(value) for path, value in out.items()}

    def _reference_scores(self, path: Path, target: list[int] | None) -> list[float]:
        c = self.constants
        frames = read_video(path, sampling="fps", target_fps=c.dd_target_fps)
        if target is not None:
            frames = resize_frames(frames, tuple(target), mode="crop")
        if len(frames) < 2:
            raise MediaError(f"{path}: fewer than 2 frames at {c.dd_target_fps:g} fps")
        with self._timed("reference_flow"):
            return self._dd_scores(frames)

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
