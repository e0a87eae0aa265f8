"""Small helpers shared by the registries (methods, metrics, profiles)."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path

from .errors import RegistryError


def unknown_name_error(kind: str, name: str, available: Iterable[str]) -> RegistryError:
    """A :class:`RegistryError` listing what exists and the closest match ("did you mean")."""
    names = sorted(available)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return RegistryError(
        f"unknown {kind} {name!r}.{hint} Available: {', '.join(names) or '(none)'}"
    )


def import_target(target: str) -> object:
    """Import ``"package.module:Attr"`` (or ``"path/to/file.py:Attr"``) and return the attribute."""
    if ":" not in target:
        raise RegistryError(f"{target!r} is not of the form 'module:Class'")
    module_name, _, attr = target.rpartition(":")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise RegistryError(f"{module_name}: no such file (from --method {target!r})")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise RegistryError(
            f"cannot import module {module_name!r} (from {target!r}): {exc}"
        ) from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise RegistryError(
            f"module {module_name!r} has no attribute {attr!r} (from {target!r})"
        ) from None
