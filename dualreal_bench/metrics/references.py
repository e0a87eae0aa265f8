"""A case's reference values, computed once and then read from the cache
(:mod:`.reference_cache`):

* the prompt embeddings (CLIP-T's text tower) and the identity images' embeddings (the CLIP-I
  tower and DINO), keyed by the cleaned prompt and by the image's bytes;
* the continuous Dynamic Degree of each reference clip of the case's motion and, from the same
  RAFT flows, the clip's grid tracks (trajectory fidelity);
* the motion descriptor of every reference clip of every motion of the benchmark (motion
  fidelity ranks the intended motion among all of them).

:class:`~.evaluator.Evaluator` holds one :class:`ReferenceValues` sharing its cache, its stage
timings and its progress callback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..cache import file_sha256
from ..errors import DataError, MediaError
from ..media import read_image, read_video, resize_frames
from . import functional as Fn
from .constants import DD_KEYS, PROMPT_KEYS, RAFT_FLOW_KEYS, MetricConstants
from .declarations import get_metric
from .encoders import EncoderSet, identity_of
from .flow import dd_pair_scores_and_flows
from .motion.constants import TRAJ_KEYS
from .motion.trajectory import grid_tracks
from .reference_cache import ReferenceCache, numerics

logger = logging.getLogger(__name__)

#: the stage of the progress display while reference clips of every motion are described
MOTION_REFERENCE_STAGE = "motion references (all motions)"
#: the stage of the progress display while the case's motion clips are scored (DD, tracks)
REFERENCE_CLIP_STAGE = "reference clips"


def encode_images(encoder: Any, pixels: torch.Tensor, batch_size: int) -> np.ndarray:
    """``encoder.encode_image`` over preprocessed ``pixels``, ``batch_size`` at a time."""
    chunks = [
        encoder.encode_image(pixels[i : i + batch_size]) for i in range(0, len(pixels), batch_size)
    ]
    return torch.cat(chunks).numpy()


def dd_flows(
    frames: np.ndarray, flow: Any, constants: MetricConstants
) -> tuple[list[float], np.ndarray]:
    """Dynamic-degree scores of the pairs of already sampled ``uint8 (T, H, W, 3)`` frames and
    their RAFT flows ``(T - 1, H, W, 2)`` (padding cropped)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    return dd_pair_scores_and_flows(x, flow, constants)


class ReferenceValues:
    """The reference values of cases, each computed once (see the module doc).

    Args:
        encoders, constants: the evaluator's.
        cache: where values are kept (memory, and the shared cache when it has a root).
        batch_size: images per image-encoder call.
        timed: ``timed(stage)``, a context manager adding the time spent to the stage.
        report_progress: ``report_progress(stage, step, total)`` while clips are scored.
    """

    def __init__(
        self,
        encoders: EncoderSet,
        constants: MetricConstants,
        cache: ReferenceCache,
        *,
        batch_size: int,
        timed: Callable[[str], AbstractContextManager],
        report_progress: Callable[[str, int, int], None],
    ) -> None:
        self.encoders = encoders
        self.constants = constants
        self.cache = cache
        self.batch_size = batch_size
        self._timed = timed
        self._report_progress = report_progress

    # ---- CLIP-T, CLIP-I, DINO-I ------------------------------------------------------------------
    def prompt_embeddings(self, prompts: list[str]) -> list[np.ndarray]:
        """The text tower's embedding of each prompt (cleaned as CLIP-T's definition says)."""
        c, enc = self.constants, self.encoders.text_clip
        ident = identity_of(enc)
        out: list[np.ndarray | None] = []
        todo: dict[str, list[int]] = {}
        for i, prompt in enumerate(prompts):
            text = Fn.clean_prompt(prompt, c)
            key = [ident or id(enc), numerics(enc), c.digest(*PROMPT_KEYS), text]
            hit = self.cache.get("prompts", key, persistent=ident is not None)
            out.append(hit)
            if hit is None:
                todo.setdefault(text, []).append(i)
        if todo:
            texts = list(todo)
            embs = enc.encode_text(texts).numpy()
            for text, emb in zip(texts, embs, strict=True):
                key = [ident or id(enc), numerics(enc), c.digest(*PROMPT_KEYS), text]
                self.cache.put("prompts", key, emb, persistent=ident is not None)
                for i in todo[text]:
                    out[i] = emb
        return out  # type: ignore[return-value]

    def identity_embeddings(self, case: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(CLIP-I tower, DINO)`` embeddings ``(n_images, D)`` of the case's identity images."""
        paths = list(case.image_paths())
        if not paths:
            raise DataError(f"identity {case.identity.name!r} has no reference images")
        result = []
        for encoder in (self.encoders.image_clip, self.encoders.dino):
            ident = identity_of(encoder)
            keys = [
                [ident or id(encoder), numerics(encoder), file_sha256(p)] for p in paths
            ]  # by content
            embs = [self.cache.get("images", k, persistent=ident is not None) for k in keys]
            missing = [i for i, e in enumerate(embs) if e is None]
            if missing:
                images = [read_image(paths[i]) for i in missing]
                new = encode_images(encoder, encoder.preprocess(images), self.batch_size)
                for i, emb in zip(missing, new, strict=True):
                    embs[i] = self.cache.put("images", keys[i], emb, persistent=ident is not None)
            result.append(np.stack(embs))
        return result[0], result[1]

    # ---- the case's motion clips: Dynamic Degree and tracks ----------------------------------------
    def dynamic_degrees(
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
        # the size the clip is resized to (the key's other parts: see ReferenceCache)
        base = [ident or id(flow), numerics(flow)]
        dd_version = get_metric("dynamic_degree").version
        dd_keys = {
            p: [*base, dd_version, c.digest(*DD_KEYS), target, file_sha256(p)] for p in paths
        }
        mc = self.encoders.motion.constants
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
            self._report_progress(REFERENCE_CLIP_STAGE, done, len(missing))
            logger.info(
                "dynamic degree of reference clip %s (motion %s)", path.name, case.motion.name
            )
            scores, flows = self._clip_flows(path, target)
            dd[path] = self.cache.put(
                "reference_dd", dd_keys[path], np.float64(np.mean(scores)), persistent
            )
            # the tracks come free with the flows: kept even when not asked for
            track = grid_tracks(flows, mc).astype(np.float32)
            tr[path] = self.cache.put("reference_tracks", track_keys[path], track, persistent)
        if missing:
            self._report_progress(REFERENCE_CLIP_STAGE, len(missing), len(missing))
        return (
            {p.name: float(v) for p, v in dd.items()},
            {p.name: tr[p] for p in paths} if tracks else {},
        )

    def _clip_flows(self, path: Path, target: list[int] | None) -> tuple[list[float], np.ndarray]:
        """:func:`dd_flows` of a reference clip sampled at about 8 fps (resized to ``target``)."""
        c = self.constants
        frames = read_video(path, sampling="fps", target_fps=c.dd_target_fps)
        if target is not None:
            frames = resize_frames(frames, tuple(target), mode="crop")
        if len(frames) < 2:
            raise MediaError(f"{path}: fewer than 2 frames at {c.dd_target_fps:g} fps")
        with self._timed("reference_flow"):
            return dd_flows(frames, self.encoders.flow, c)

    # ---- every motion's clips: motion descriptors ----------------------------------------------
    def motion_descriptors(self, case: Any) -> dict[str, np.ndarray]:
        """``{motion: (n_clips, D)}``: the motion descriptor of every reference clip of every
        motion of the benchmark (:meth:`~dualreal_bench.spec.Case.motion_references`), each clip
        sampled at about ``target_fps``. Computed once per clip: cached by the clip's bytes, the
        backend's identity and the constants the descriptor depends on."""
        backend = self.encoders.motion
        mc = backend.constants
        refs = case.motion_references()
        ident = identity_of(backend)
        persistent = ident is not None
        num = numerics(backend) if hasattr(backend, "model") else None  # torch backends
        base = [ident or id(backend), num, mc.digest(*backend.cache_keys)]
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
