"""Saving and loading a method's learned state.

A state directory holds::

    weights.safetensors   Method.state_dict() (only safetensors: no pickle is ever loaded)
    config.json           the method's resolved config
    method.json           method name/class and the backbone fingerprint it was trained on
    COMPLETE              written last: a directory without it is an interrupted save

:func:`save_state` writes into a temporary sibling directory and renames it into place, so
a killed process never leaves a half-written state that looks complete.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

from .errors import DataError, WeightsError
from .io import atomic_write_json, read_json
from .provenance import now_iso


class Checkpointable(Protocol):
    """What is saved and restored: a :class:`~dualreal_bench.method.Method` (named here by
    what this module uses, so that the method module, which calls it, is not imported back)."""

    name: str
    config: Any  # a Config: to_dict()
    backbone: Any  # fingerprint()

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


WEIGHTS = "weights.safetensors"
COMPLETE = "COMPLETE"


def save_state(directory: Path, method: Checkpointable) -> None:
    """Write ``method``'s state to ``directory`` atomically (replacing an incomplete one)."""
    from safetensors.torch import save_file  # torch: `import dualreal_bench` loads this module

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        tensors = {k: v.detach().contiguous().cpu() for k, v in method.state_dict().items()}
        save_file(tensors, str(tmp / WEIGHTS), metadata={"method": method.name})
        atomic_write_json(tmp / "config.json", method.config.to_dict())
        atomic_write_json(tmp / "method.json", _identity(method))
        atomic_write_json(tmp / COMPLETE, {"saved": now_iso(), "tensors": len(tensors)})
        if directory.exists():
            shutil.rmtree(directory)
        tmp.rename(directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def check_state_files(directory: Path) -> None:
    """Check, without loading a tensor or the backbone, that a state directory is what
    :func:`save_state` writes: the marker, ``method.json`` and ``config.json`` JSON objects,
    and a safetensors file whose header reads. WeightsError naming the file otherwise. (A
    resumed run calls it before it loads anything; :func:`load_state` checks the rest.)"""
    from safetensors import SafetensorError, safe_open

    directory = Path(directory)
    if not (directory / COMPLETE).is_file():
        raise WeightsError(f"{directory}: not a complete method state (no {COMPLETE} marker)")
    for name in ("method.json", "config.json"):
        _json_object(directory / name)
    weights = directory / WEIGHTS
    try:
        with safe_open(str(weights), framework="pt") as fh:
            fh.keys()
    except (OSError, SafetensorError) as exc:
        raise WeightsError(f"{weights}: unreadable safetensors file ({exc})") from None


def _json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; WeightsError naming the file if it is unreadable or holds
    something else (a list, a number, null)."""
    try:
        doc = read_json(path)
    except DataError as exc:
        raise WeightsError(f"{exc}; delete the state folder to train again") from None
    if not isinstance(doc, dict):
        raise WeightsError(
            f"{path}: holds {type(doc).__name__} JSON, not the object a method state saves; "
            "delete the state folder to train again"
        )
    return doc


def load_state(directory: Path, method: Checkpointable) -> None:
    """Load a state saved by :func:`save_state` into ``method`` after checking it fits."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file  # torch, on use only (as save_state)

    directory = Path(directory)
    check_state_files(directory)
    saved = _json_object(directory / "method.json")
    expected = _identity(method)
    if saved.get("method") != expected["method"]:
        raise WeightsError(
            f"{directory}: state of method {saved.get('method')!r}, cannot load into {expected['method']!r}"
        )
    if saved.get("backbone") != expected["backbone"]:
        diff = _first_difference(saved.get("backbone"), expected["backbone"])
        raise WeightsError(f"{directory}: trained on a different backbone ({diff})")
    saved_config = _json_object(directory / "config.json")
    current_config = json.loads(json.dumps(method.config.to_dict()))  # tuples -> lists, as saved
    if saved_config != current_config:
        diff = _first_difference(saved_config, current_config)
        raise WeightsError(
            f"{directory}: saved with a different {type(method.config).__name__} ({diff})"
        )
    try:
        tensors = load_file(str(directory / WEIGHTS))
    except (OSError, SafetensorError) as exc:
        raise WeightsError(f"{directory / WEIGHTS}: unreadable safetensors file ({exc})") from None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            raise WeightsError(f"{directory / WEIGHTS}: tensor {name!r} holds NaN or Inf values")
    method.load_state_dict(tensors)


def _identity(method: Checkpointable) -> dict[str, Any]:
    return {
        "method": method.name,
        "class": f"{type(method).__module__}:{type(method).__qualname__}",
        "backbone": json.loads(json.dumps(method.backbone.fingerprint(), default=str)),
    }


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(
                    a.get(key), b.get(key), f"{path}.{key}" if path else str(key)
                )
    if isinstance(a, float) and isinstance(b, float) and math.isclose(a, b):
        return "none"
    return f"{path or 'value'}: saved {a!r}, now {b!r}"
