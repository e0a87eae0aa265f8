"""Self-validating config dataclasses, overridable from the command line.

Every method (and the backbone) declares its options as a dataclass deriving from
:class:`Config`. ``__post_init__`` calls :meth:`Config.validate`, so an invalid or
contradictory value fails when the config is built, with a :class:`ConfigError` naming the
field. ``--set key=value`` strings from the CLI are parsed with the field's declared type.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError

C = TypeVar("C", bound="Config")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclasses.dataclass
class Config:
    """Base class of config dataclasses. Subclasses override :meth:`validate`."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` when a value is out of range or contradicts another."""

    # ---- (de)serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any], *, source: str = "config") -> C:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                f"{source}: unknown option(s) {', '.join(unknown)} for {cls.__name__}; "
                f"known: {', '.join(sorted(names))}"
            )
        hints = typing.get_type_hints(cls)
        kwargs = {k: _coerce_json(hints[k], v) for k, v in data.items()}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def save(self, path: str | Path) -> None:
        from .store import atomic_write_text

        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2, sort_keys=True))

    @classmethod
    def load(cls: type[C], path: str | Path) -> C:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config: {exc}") from None
        return cls.from_dict(data, source=str(path))

    def with_overrides(self: C, overrides: list[str] | dict[str, str] | None) -> C:
        """A copy with ``key=value`` overrides applied (values parsed by the field's type)."""
        if not overrides:
            return self
        if isinstance(overrides, dict):
            pairs = list(overrides.items())
        else:
            pairs = []
            for item in overrides:
                key, sep, value = item.partition("=")
                if not sep or not key.strip():
                    raise ConfigError(f"--set {item!r}: expected key=value")
                pairs.append((key.strip(), value.strip()))
        hints = typing.get_type_hints(type(self))
        names = {f.name for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for key, value in pairs:
            if key not in names:
                raise ConfigError(
                    f"--set {key}=...: {type(self).__name__} has no option {key!r}; "
                    f"known: {', '.join(sorted(names))}"
                )
            changes[key] = parse_value(hints[key], value, key)
        return dataclasses.replace(self, **changes)


def _coerce_json(tp: Any, value: Any) -> Any:
    """JSON gives lists where a dataclass wants tuples."""
    origin = typing.get_origin(tp)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if typing.get_origin(arg) is tuple and isinstance(value, list):
                return tuple(value)
    return value


def parse_value(tp: Any, text: str, key: str) -> Any:
    """Parse a command-line string into the type a dataclass field declares."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in {"none", "null"} and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return parse_value(arg, text, key)
            except ConfigError:
                continue
        raise ConfigError(f"--set {key}={text!r}: not a valid {tp}")
    if origin is typing.Literal:
        for arg in args:
            if str(arg) == text:
                return arg
        raise ConfigError(f"--set {key}={text!r}: must be one of {', '.join(map(str, args))}")
    if origin is tuple:
        parts = [p for p in text.strip("()[] ").split(",") if p.strip()]
        inner = args[0] if args else str
        return tuple(parse_value(inner, p.strip(), key) for p in parts)
    if tp is bool:
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"--set {key}={text!r}: expected true or false")
    if tp in (int, float, str):
        try:
            return tp(text)
        except ValueError:
            raise ConfigError(f"--set {key}={text!r}: expected {tp.__name__}") from None
    raise ConfigError(f"--set {key}: cannot parse values of type {tp}")
