"""One registry for everything the benchmark looks up by name: methods, backbone profiles,
metric encoders and metric profiles.

A :class:`Registry` maps names to entries. An entry is either the object itself or a lazy
``"package.module:Attr"`` string, imported the first time the name is asked for (so a heavy
method imports only when it runs), as lm-evaluation-harness's registry does::

    METHODS = Registry("method", base=Method, base_name="dualreal_bench.Method",
                       entry_point_group="dualreal_bench.methods", allow_targets=True)
    METHODS.register("lora", "dualreal_bench.methods.lora:LoRAMethod")
    METHODS.get("lora")          # imports dualreal_bench.methods.lora, checks the base class
    METHODS.get("lroa")          # RegistryError: unknown method 'lroa'. Did you mean 'lora'? ...

With ``entry_point_group``, installed packages add names through entry points; with
``allow_targets``, :meth:`Registry.get` also takes a ``"module:Attr"`` or
``"path/to/file.py:Attr"`` target directly. A file target is imported under a private module
name derived from its resolved path (``_dualreal_bench_plugin_<hash>_<stem>``), so a user's
``random.py`` never replaces the standard library's ``random`` in :data:`sys.modules`.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, Generic, TypeVar

from .errors import BenchmarkError, RegistryError

T = TypeVar("T")

#: prefix of the module names under which ``path/to/file.py:Attr`` targets are imported
PLUGIN_MODULE_PREFIX = "_dualreal_bench_plugin_"


def unknown_name_error(
    kind: str,
    name: str,
    available: Iterable[str],
    error: type[BenchmarkError] = RegistryError,
) -> BenchmarkError:
    """``error`` (a :class:`RegistryError` by default) listing what exists and the closest
    match: ``unknown method 'bsae'. Did you mean 'base'? Available: base, dualreal, ...``."""
    names = sorted(available)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return error(f"unknown {kind} {name!r}.{hint} Available: {', '.join(names) or '(none)'}")


def plugin_module_name(path: str | Path) -> str:
    """The private module name a plugin file is imported under: one per resolved path."""
    resolved = Path(path).resolve()
    digest = hashlib.sha256(str(resolved).encode("utf-8")).hexdigest()[:12]
    stem = "".join(c if c.isalnum() else "_" for c in resolved.stem)
    return f"{PLUGIN_MODULE_PREFIX}{digest}_{stem}"


def _import_file(path: Path, target: str) -> Any:
    if not path.is_file():
        raise RegistryError(f"{path}: no such file (from --method {target!r})")
    name = plugin_module_name(path)
    if name in sys.modules:  # the same file asked for again: the module already imported
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RegistryError(f"{path}: cannot be imported as a Python module (from {target!r})")
    module = importlib.util.module_from_spec(spec)
    # registered before it runs: dataclasses and pickling look classes up in sys.modules
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def import_target(target: str) -> Any:
    """Import ``"package.module:Attr"`` (or ``"path/to/file.py:Attr"``) and return the
    attribute; :class:`RegistryError` naming the target otherwise."""
    if ":" not in target:
        raise RegistryError(f"{target!r} is not of the form 'module:Class'")
    module_name, _, attr = target.rpartition(":")
    try:
        if module_name.endswith(".py"):
            module = _import_file(Path(module_name), target)
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


class Registry(Generic[T]):
    """Names -> entries (objects or lazy ``"module:Attr"`` strings), resolved on demand.

    Args:
        kind: what the names are, as messages say it (``"method"``, ``"backbone profile"``).
        base: when given, a resolved entry must be a subclass of it (``check`` may add more).
        base_name: how messages name ``base`` (default: its qualified name).
        entry_point_group: installed packages' entry points of this group add names.
        entry_points: where those entry points come from (default:
            ``importlib.metadata.entry_points(group=...)``); tests inject their own.
        allow_targets: :meth:`get` also accepts ``"module:Attr"`` / ``"file.py:Attr"``.
        error: the error class of an unknown name (a :class:`RegistryError` unless a caller
            has always raised another :class:`~dualreal_bench.errors.BenchmarkError`).
        check: ``check(name, obj)`` runs on every resolved entry; raise to refuse it.
    """

    def __init__(
        self,
        kind: str,
        entries: dict[str, T | str] | None = None,
        *,
        base: type | None = None,
        base_name: str | None = None,
        entry_point_group: str | None = None,
        entry_points: Callable[[], dict[str, metadata.EntryPoint]] | None = None,
        allow_targets: bool = False,
        error: type[BenchmarkError] = RegistryError,
        check: Callable[[str, Any], None] | None = None,
    ) -> None:
        self.kind = kind
        self.base = base
        self.base_name = base_name or (base and f"{base.__module__}.{base.__qualname__}")
        self.entry_point_group = entry_point_group
        self._entry_points = entry_points
        self.allow_targets = allow_targets
        self.error = error
        self._check = check
        self._entries: dict[str, T | str] = {}
        self._resolved: dict[str, T] = {}
        for name, entry in (entries or {}).items():
            self.register(name, entry)

    # ---- contents ------------------------------------------------------------------------
    def register(self, name: str, entry: T | str, *, replace: bool = False) -> None:
        """Add ``name``: the object itself or a lazy ``"module:Attr"`` string."""
        if name in self._entries and not replace:
            raise RegistryError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        self._resolved.pop(name, None)

    def entry_points(self) -> dict[str, metadata.EntryPoint]:
        """Names added by installed packages (empty without an entry-point group)."""
        if self._entry_points is not None:
            return self._entry_points()
        if self.entry_point_group is None:
            return {}
        return {ep.name: ep for ep in metadata.entry_points(group=self.entry_point_group)}

    def names(self) -> list[str]:
        """Registered names in registration order, then entry points' names, sorted."""
        extra = sorted(set(self.entry_points()) - set(self._entries))
        return [*self._entries, *extra]

    def available(self) -> list[str]:
        """Every name that resolves, sorted."""
        return sorted(self.names())

    def targets(self) -> dict[str, str]:
        """``{name: what it resolves from}`` (a ``"module:Attr"`` string, an entry point's value
        or the object's qualified name), sorted by name."""
        eps = self.entry_points()
        out = {}
        for name in self.available():
            entry = self._entries.get(name)
            if name not in self._entries:
                out[name] = eps[name].value
            elif isinstance(entry, str):
                out[name] = entry
            else:
                out[name] = f"{type(entry).__module__}:{type(entry).__qualname__}"
        return out

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._entries or name in self.entry_points())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def items(self) -> list[tuple[str, T]]:
        """``(name, resolved entry)`` for every name, in :meth:`names` order (imports all)."""
        return [(name, self.get(name)) for name in self.names()]

    # ---- lookup --------------------------------------------------------------------------
    def unknown(self, name: str) -> BenchmarkError:
        """The error for a name nobody registered (with a "did you mean")."""
        return unknown_name_error(self.kind, name, self.names(), self.error)

    def get(self, name: str) -> T:
        """The entry called ``name`` (or, with ``allow_targets``, the ``module:Attr`` target),
        imported if lazy and checked against ``base``."""
        if name in self._resolved:
            return self._resolved[name]
        if self.allow_targets and ":" in name:
            return self._checked(name, import_target(name))
        if name in self._entries:
            entry = self._entries[name]
            obj = import_target(entry) if isinstance(entry, str) else entry
            self._resolved[name] = self._checked(name, obj)
            return self._resolved[name]
        eps = self.entry_points()
        if name not in eps:
            raise self.unknown(name)
        try:
            obj = eps[name].load()
        except (ImportError, AttributeError) as exc:
            raise RegistryError(
                f"{self.kind} {name!r}: entry point {eps[name].value!r} fails to load: {exc}"
            ) from exc
        return self._checked(name, obj)

    def _checked(self, name: str, obj: Any) -> T:
        if self.base is not None and not (isinstance(obj, type) and issubclass(obj, self.base)):
            raise RegistryError(
                f"{self.kind} {name!r} resolves to {obj!r}, which is not a {self.base_name} subclass"
            )
        if self._check is not None:
            self._check(name, obj)
        return obj
