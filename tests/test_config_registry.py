"""Config dataclasses (validation, --set parsing, JSON round trip) and the method registry."""

from __future__ import annotations

import dataclasses
import sys
import textwrap
from typing import Literal

import pytest

from dualreal_bench.config import Config
from dualreal_bench.errors import ConfigError, RegistryError
from dualreal_bench.method import Method, available_methods, get_method_class


@dataclasses.dataclass
class _Cfg(Config):
    steps: int = 10
    lr: float = 1e-3
    controller: bool = True
    mode: Literal["a", "b"] = "a"
    groups: tuple[int, ...] = (1, 2)
    path: str | None = None

    def validate(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"steps={self.steps}: must be >= 1")


def test_overrides_parse_by_field_type():
    cfg = _Cfg().with_overrides(
        ["steps=5", "lr=0.5", "controller=false", "mode=b", "groups=1,7", "path=none"]
    )
    assert (cfg.steps, cfg.lr, cfg.controller, cfg.mode, cfg.groups, cfg.path) == (
        5,
        0.5,
        False,
        "b",
        (1, 7),
        None,
    )
    assert _Cfg().with_overrides(["path=/x"]).path == "/x"


@pytest.mark.parametrize(
    "item, fragment",
    [
        ("steps=0", "must be >= 1"),
        ("steps=x", "expected int"),
        ("controller=maybe", "true or false"),
        ("mode=c", "one of a, b"),
        ("nope=1", "no option 'nope'"),
        ("steps", "key=value"),
    ],
)
def test_bad_overrides_name_the_option(item, fragment):
    with pytest.raises(ConfigError, match=fragment):
        _Cfg().with_overrides([item])


def test_json_round_trip(tmp_path):
    cfg = _Cfg(steps=3, groups=(4,))
    cfg.save(tmp_path / "c.json")
    assert _Cfg.load(tmp_path / "c.json") == cfg
    (tmp_path / "bad.json").write_text('{"steps": 3, "unknown": 1}')
    with pytest.raises(ConfigError, match="unknown option"):
        _Cfg.load(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(ConfigError, match="broken.json"):
        _Cfg.load(tmp_path / "broken.json")


def test_builtin_base_resolves():
    assert "base" in available_methods()
    cls = get_method_class("base")
    assert issubclass(cls, Method) and cls.name == "base" and cls.trains is False


def test_unknown_method_lists_available_and_suggests():
    with pytest.raises(RegistryError) as err:
        get_method_class("bsae")
    msg = str(err.value)
    assert (
        "unknown method 'bsae'" in msg
        and "Did you mean 'base'" in msg
        and "base" in msg.split("Available:")[1]
    )


def test_module_class_target_and_file_target(tmp_path, monkeypatch):
    src = textwrap.dedent(
        """
        from dualreal_bench.method import Method

        class Mine(Method):
            def train(self, case):
                return {}

            def generate(self, prompts, seed):
                return []

        class NotAMethod:
            pass

        class Half(Method):
            def train(self, case):
                return {}
        """
    )
    (tmp_path / "my_plugin_mod.py").write_text(src)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert get_method_class("my_plugin_mod:Mine").__name__ == "Mine"
    assert get_method_class(f"{tmp_path / 'my_plugin_mod.py'}:Mine").__name__ == "Mine"
    with pytest.raises(RegistryError, match="not a dualreal_bench.Method subclass"):
        get_method_class("my_plugin_mod:NotAMethod")
    with pytest.raises(RegistryError, match="does not implement generate"):
        get_method_class("my_plugin_mod:Half")
    with pytest.raises(RegistryError, match="has no attribute 'Nope'"):
        get_method_class("my_plugin_mod:Nope")
    with pytest.raises(RegistryError, match="cannot import module"):
        get_method_class("no_such_module_xyz:Mine")
    sys.modules.pop("my_plugin_mod", None)


def test_entry_point_registration(monkeypatch):
    from importlib import metadata

    import dualreal_bench.method as method_mod

    ep = metadata.EntryPoint(
        name="viaep",
        value="dualreal_bench.methods.base:BaseMethod",
        group=method_mod.ENTRY_POINT_GROUP,
    )
    monkeypatch.setattr(method_mod, "_entry_point_methods", lambda: {"viaep": ep})
    assert "viaep" in available_methods()
    assert get_method_class("viaep").__name__ == "BaseMethod"
