"""Peak bytes of the tensors a computation creates, on any device (the meta device included).

:class:`LiveBytes` is a ``TorchDispatchMode``: every ATen operator's outputs pass through it.
An output whose storage is new is counted (its storage's bytes) until the last tensor on
that storage dies; an output that aliases an input (a view, an in-place result) adds no bytes.
Tensors that existed before (weights, inputs) are not counted. Run on meta tensors it gives
the peak memory a computation allocates without running it: what
:mod:`.memory` uses for generation (a no-grad transformer forward, the VAE decode), where
nothing is kept for backward and the peak is the largest set of intermediates alive at once.

PyTorch keeps a tensor's Python object alive as long as the C++ tensor lives, so a tensor
dies for the tracker exactly when its memory would be freed.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["LiveBytes"]


class LiveBytes(TorchDispatchMode):
    """``with LiveBytes() as live: ...`` then ``live.peak`` (bytes above the start) and
    ``live.current`` (bytes still held by tensors created inside)."""

    def __init__(self) -> None:
        super().__init__()
        self.current = 0
        self.peak = 0
        self._storages: dict[int, list[int]] = {}  # storage key -> [bytes, live tensors on it]
        self._tensors: dict[int, int] = {}  # id(tensor) -> storage key, for tracked tensors

    @staticmethod
    def _key(tensor: torch.Tensor) -> int:
        return tensor.untyped_storage()._cdata

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        inputs = {self._key(t) for t in _tensors((args, kwargs))}
        for tensor in _tensors(out):
            if id(tensor) not in self._tensors:
                self._track(tensor, inputs)
        return out

    def _track(self, tensor: torch.Tensor, inputs: set[int]) -> None:
        key = self._key(tensor)
        entry = self._storages.get(key)
        if entry is None:
            if key in inputs:  # a view of (or in-place on) a tensor made before: not ours
                return
            entry = self._storages[key] = [tensor.untyped_storage().nbytes(), 0]
            self.current += entry[0]
            self.peak = max(self.peak, self.current)
        entry[1] += 1
        self._tensors[id(tensor)] = key
        weakref.finalize(tensor, self._release, id(tensor), key)

    def _release(self, tensor_id: int, key: int) -> None:
        self._tensors.pop(tensor_id, None)
        entry = self._storages.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self._storages[key]


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    """The tensors in nested tuples, lists and dicts (an operator's arguments and results)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, tuple | list):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)
