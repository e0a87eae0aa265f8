"""Prompt text helpers shared by methods and metrics."""

from __future__ import annotations

import re

PLACEHOLDER = "*"
_PLACEHOLDER_RE = re.compile(r"\s*\*")


def strip_placeholder(prompt: str) -> str:
    """Remove the subject placeholder: ``"dog * is surfing"`` -> ``"dog is surfing"``.

    This is what the authors' CLIP-T evaluation does to prompts and what methods without
    a learned token feed their text encoder.
    """
    return " ".join(_PLACEHOLDER_RE.sub("", prompt).split())
