"""The generation stage of a case: one video per (prompt, seed), written with its provenance
(``videos/p007_s0.json``) and the method's per-video extras; the video is written last, so its
existence marks the stage done."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..io import atomic_path, atomic_write_json, failpoint
from ..media import check_video_array, write_video
from ..method import Method
from ..provenance import now_iso
from ..spec import Case
from ..store import CaseDir, EventLog
from .seeding import global_seed, seed_global_rngs

if TYPE_CHECKING:
    from ..progress import RunProgress


def generate_videos(
    method: Method,
    case: Case,
    cdir: CaseDir,
    items: list[tuple[int, int]],
    *,
    fps: int,
    method_seed: int,
    backbone_info: Callable[[], dict[str, Any] | None],
    events: EventLog,
    counts: Counter,
    progress: RunProgress | None,
) -> None:
    """Generate and save the videos ``items`` (prompt index, seed) of ``case`` with ``method``.

    ``backbone_info()`` describes the backbone for each video's provenance (asked after the
    video is generated, with the method's adapters in place)."""
    task = progress.add_task("generate", total=len(items)) if progress else None
    for prompt_index, seed in items:
        seed_global_rngs(global_seed(method_seed, case.case_id, prompt_index, seed))
        t0 = time.perf_counter()
        frames = _generate_one(method, case.prompts[prompt_index], seed)
        seconds = time.perf_counter() - t0
        failpoint("generate")
        extras = method.generation_extras()
        if extras and extras[0]:
            with atomic_path(cdir.extras(prompt_index, seed)) as tmp:
                np.savez(tmp, **extras[0])
        atomic_write_json(
            cdir.generation_info(prompt_index, seed),
            {"generated": now_iso(), "seconds": seconds, "backbone": backbone_info()},
        )
        # The video is written last: its existence marks the generation stage done.
        write_video(cdir.video(prompt_index, seed), frames, fps=fps)
        counts["generated"] += 1
        events.write(
            "generated",
            case=case.case_id,
            prompt_index=prompt_index,
            seed=seed,
            seconds=round(seconds, 3),
        )
        if progress:
            progress.advance(task)
    if progress:
        progress.remove_task(task)


def _generate_one(method: Method, prompt: str, seed: int) -> np.ndarray:
    """The one video ``method`` generates for ``prompt``, checked (uint8 ``(T, H, W, 3)``)."""
    video = method.generate([prompt], seed)
    if len(video) != 1:
        raise TypeError(
            f"{type(method).__name__}.generate returned {len(video)} videos for 1 prompt"
        )
    return check_video_array(video[0], f"{type(method).__name__}.generate")
