"""Self-validating config dataclasses, overridable from the command line.

Every method (and the backbone) declares its options as a dataclass deriving from
:class:`Config`. ``__post_init__`` calls :meth:`Config.validate`, so an invalid or
contradictory value fails when the config is built, with a :class:`ConfigError` naming the
field. ``--set key=value`` strings from the CLI are parsed with the field's declared type.

An option's help (``dualreal-bench list methods --options NAME``) is its field's
``metadata["help"]`` if it has one, else its comment in the source: a ``#:`` block above the
field (Sphinx's attribute-doc convention; it also covers the fields right below it up to a
blank line, so one comment can document a group) or a ``# ...`` comment on the same line::

    @dataclasses.dataclass
    class MyConfig(MethodConfig):
        #: LoRA rank of every adapted layer
        rank: int = 4
        alpha: float = 4.0  # the update is scaled by alpha / rank
        style: str = dataclasses.field(default="photo", metadata={"help": "prompt prefix"})
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import io
import json
import textwrap
import tokenize
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError
from .io import atomic_write_text

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
        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2, sort_keys=True))

    @classmethod
    def load(cls: type[C], path: str | Path) -> C:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config: {exc}") from None
        return cls.from_dict(data, source=str(path))

    def with_overrides(
        self: C, overrides: list[str] | dict[str, str] | None, option: str = "--set"
    ) -> C:
        """A copy with ``key=value`` overrides applied (values parsed by the field's type).
        ``option``: the command-line option errors name (a key given twice is one)."""
        if not overrides:
            return self
        if isinstance(overrides, dict):
            pairs = list(overrides.items())
        else:
            pairs = []
            given: dict[str, str] = {}
            for item in overrides:
                key, sep, value = item.partition("=")
                if not sep or not key.strip():
                    raise ConfigError(f"{option} {item!r}: expected key=value")
                key = key.strip()
                if key in given:  # which one would win is a guess the label could not show
                    raise ConfigError(
                        f"{option} {key}: given twice ({given[key]!r}, then {item!r}); "
                        "give each option once"
                    )
                given[key] = item
                pairs.append((key, value.strip()))
        hints = typing.get_type_hints(type(self))
        names = {f.name for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for key, value in pairs:
            if key not in names:
                raise ConfigError(
                    f"{option} {key}=...: {type(self).__name__} has no option {key!r}; "
                    f"known: {', '.join(sorted(names))}"
                )
            try:
                changes[key] = parse_value(hints[key], value, key)
            except ConfigError as exc:
                raise ConfigError(option + str(exc).removeprefix("--set")) from None
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


#: units :func:`parse_size` reads (binary and decimal)
SIZE_UNITS = {
    "b": 1,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
}


def parse_size(text: str, key: str = "size") -> int:
    """``"24GiB"``, ``"24 GB"``, ``"22.5gib"``, ``"1048576"`` -> bytes (GiB = 2**30, GB = 10**9;
    a bare number is bytes). A :class:`ConfigError` naming ``key`` otherwise."""
    raw = str(text).strip().lower().replace(" ", "")
    number = raw.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = raw[len(number) :] or "b"
    try:
        value = float(number)
    except ValueError:
        value = float("nan")
    if unit not in SIZE_UNITS or not value > 0 or value == float("inf"):
        raise ConfigError(
            f"{key}={text!r}: expected a positive size such as 24GiB, 24GB or 22.5GiB "
            f"(units: {', '.join(SIZE_UNITS)})"
        )
    return int(value * SIZE_UNITS[unit])


#: the largest seed accepted anywhere (numpy's generators take 32-bit seeds, torch's 64-bit)
MAX_SEED = 2**32 - 1


def check_seed(value: object, option: str) -> int:
    """``value`` if it is an integer seed in ``[0, MAX_SEED]``, else ConfigError naming
    ``option`` (a seed too large for the random generators fails here, not mid-run)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEED:
        shown = repr(value) if len(repr(value)) <= 30 else repr(value)[:27] + "..."
        raise ConfigError(f"{option} {shown}: seeds are integers from 0 to {MAX_SEED} (2**32 - 1)")
    return value


# ---- self-description -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OptionDoc:
    """One config field as ``--set`` sees it."""

    name: str
    type: str  # e.g. "int", "bool | None", "tuple[float, float]", "cosine | constant"
    default: Any  # the Python value (a default_factory is called)
    help: str

    @property
    def default_text(self) -> str:
        """The default as ``--set name=...`` would write it."""
        return format_value(self.default)


def describe_options(cls: type[Config]) -> list[OptionDoc]:
    """Every field of the config class ``cls``, in declaration order, with its type, default
    and help (field metadata, else the source comment; see the module docstring). Inherited
    fields use the comment of the class that declares them, overridden ones the nearest."""
    hints = typing.get_type_hints(cls)
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            comments.update({k: v for k, v in _field_comments(klass).items() if v})
    out = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        help_text = f.metadata.get("help") or comments.get(f.name, "")
        out.append(OptionDoc(f.name, type_name(hints.get(f.name, f.type)), default, help_text))
    return out


def type_name(tp: Any) -> str:
    """A readable type: ``int``, ``bool | None``, ``tuple[str, ...]``, ``keep | strip``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return " | ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is tuple:
        return "tuple[" + ", ".join("..." if a is Ellipsis else type_name(a) for a in args) + "]"
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


def format_value(value: Any) -> str:
    """``value`` as a ``--set`` value: true/false, none, comma-separated tuples."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(format_value(v) for v in value)
    if value == "":
        return '""'
    return str(value)


@functools.lru_cache(maxsize=256)
def _field_comments(cls: type) -> dict[str, str]:
    """Field name -> its comment in ``cls``'s own source (empty where it has none)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (an interactive class, a frozen install)
        return {}
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    if not tree.body or not isinstance(tree.body[0], ast.ClassDef):
        return {}
    comments = {
        tok.start[0]: tok.string.lstrip("#").strip()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    lines = source.splitlines()

    def own_line_doc(lineno: int) -> bool:  # a line holding only a "#:" comment
        return lineno in comments and lines[lineno - 1].lstrip().startswith("#:")

    out: dict[str, str] = {}
    group, group_end = "", -1  # a "#:" block's text covers the fields right below it
    for node in tree.body[0].body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            group, group_end = "", -1
            continue
        block, ln = [], node.lineno - 1
        while ln >= 1 and own_line_doc(ln):
            block.insert(0, comments[ln].lstrip(":").strip())
            ln -= 1
        end = node.end_lineno or node.lineno
        trailing = [comments[i] for i in range(node.lineno, end + 1) if i in comments]
        if block:
            group = " ".join(block)
            text = group
        elif group and group_end == node.lineno - 1:
            text = group
        else:
            group = ""
            text = ""
        if trailing:
            text = trailing[0] if not text else text
        group_end = end
        out[node.target.id] = text
    return out
