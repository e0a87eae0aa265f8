"""The one registry (dualreal_bench.registry) behind methods, backbone profiles, metric
encoders and metric profiles: lazy targets, entry points, base-class checks, "did you mean"
errors, and plugin files imported under a private module name."""

from __future__ import annotations

import random
import sys
import textwrap
from importlib import metadata

import pytest

from dualreal_bench.errors import ConfigError, RegistryError
from dualreal_bench.method import METHODS, Method, get_method_class
from dualreal_bench.registry import PLUGIN_MODULE_PREFIX, Registry, plugin_module_name

PLUGIN = textwrap.dedent(
    """
    from dualreal_bench.method import Method

    EXECUTED = globals().get("EXECUTED", 0) + 1


    class Mine(Method):
        def train(self, case):
            return {}

        def generate(self, prompts, seed):
            return []
    """
)


def test_a_plugin_file_named_random_leaves_the_standard_random_alone(tmp_path):
    stdlib_random = sys.modules["random"]
    assert stdlib_random is random
    (tmp_path / "random.py").write_text(PLUGIN)
    cls = get_method_class(f"{tmp_path / 'random.py'}:Mine")
    assert issubclass(cls, Method) and cls.name == "Mine"
    assert sys.modules["random"] is stdlib_random and hasattr(sys.modules["random"], "shuffle")
    assert cls.__module__ == plugin_module_name(tmp_path / "random.py")
    assert cls.__module__.startswith(PLUGIN_MODULE_PREFIX) and cls.__module__.endswith("_random")
    module = sys.modules[cls.__module__]  # registered, so dataclasses and pickle find it
    assert module.Mine is cls
    # asked for again: the same module, not executed twice
    assert get_method_class(f"{tmp_path / 'random.py'}:Mine") is cls and module.EXECUTED == 1
    # another file of the same name elsewhere is another module
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "random.py").write_text(PLUGIN)
    other = get_method_class(f"{tmp_path / 'other' / 'random.py'}:Mine")
    assert other is not cls and other.__module__ != cls.__module__
    assert sys.modules["random"] is stdlib_random


def test_a_plugin_file_that_fails_to_import_leaves_nothing_behind(tmp_path):
    path = tmp_path / "broken_plugin.py"
    path.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(RuntimeError, match="boom"):
        get_method_class(f"{path}:Mine")
    assert plugin_module_name(path) not in sys.modules
    with pytest.raises(RegistryError, match="no such file"):
        get_method_class(f"{tmp_path / 'absent.py'}:Mine")


def test_lazy_targets_import_only_when_asked_for(tmp_path, monkeypatch):
    (tmp_path / "lazy_registry_mod.py").write_text("VALUE = 41\nclass Thing(dict):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_registry_mod", raising=False)
    reg: Registry = Registry(
        "widget", {"thing": "lazy_registry_mod:Thing", "eager": dict}, base=dict
    )
    assert reg.available() == ["eager", "thing"] and "thing" in reg and "nope" not in reg
    assert "lazy_registry_mod" not in sys.modules  # listing imports nothing
    assert reg.targets() == {"eager": "builtins:type", "thing": "lazy_registry_mod:Thing"}
    thing = reg.get("thing")
    assert thing.__name__ == "Thing" and "lazy_registry_mod" in sys.modules
    assert reg["thing"] is thing and reg.get("eager") is dict
    reg.register("value", "lazy_registry_mod:VALUE")
    with pytest.raises(RegistryError, match="widget 'value' resolves to 41, which is not a"):
        reg.get("value")
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("thing", dict)


def test_unknown_names_say_what_exists_and_the_closest_one():
    reg: Registry = Registry("gadget", {"alpha": 1, "beta": 2}, error=ConfigError)
    with pytest.raises(ConfigError) as err:
        reg.get("alpah")
    assert str(err.value) == "unknown gadget 'alpah'. Did you mean 'alpha'? Available: alpha, beta"
    with pytest.raises(ConfigError, match=r"unknown gadget 'zzz'\. Available: alpha, beta$"):
        reg.get("zzz")
    # without allow_targets a "module:Attr" string is just an unknown name
    with pytest.raises(ConfigError, match="unknown gadget 'json:dumps'"):
        reg.get("json:dumps")


def test_entry_points_are_injected_and_listed():
    ep = metadata.EntryPoint(
        name="viaep", value="dualreal_bench.methods.base:BaseMethod", group="g"
    )
    reg: Registry = Registry("method", base=Method, entry_points=lambda: {"viaep": ep})
    assert reg.available() == ["viaep"] and reg.targets() == {"viaep": ep.value}
    assert reg.get("viaep").__name__ == "BaseMethod"
    bad = metadata.EntryPoint(name="bad", value="dualreal_bench.methods.base:Nope", group="g")
    reg = Registry("method", entry_points=lambda: {"bad": bad})
    with pytest.raises(RegistryError, match="entry point 'dualreal_bench.methods.base:Nope'"):
        reg.get("bad")


def test_every_registry_of_the_package_uses_it():
    from dualreal_bench.backbone import PROFILES, get_profile
    from dualreal_bench.metrics import PROFILES as METRIC_PROFILES
    from dualreal_bench.metrics import build_encoders
    from dualreal_bench.metrics.encoders import ENCODERS, ROLES

    assert {"base", "dualreal", "lora", "sequential", "dreamvideo"} <= set(METHODS.available())
    assert METHODS.targets()["lora"] == "dualreal_bench.methods.lora:LoRAMethod"
    with pytest.raises(ConfigError, match="unknown backbone profile 'tinny'. Did you mean 'tiny'"):
        get_profile("tinny")
    assert PROFILES.available() == ["cogvideox-2b", "cogvideox-5b", "tiny"]
    assert PROFILES["cogvideox-5b"].repo_id == "THUDM/CogVideoX-5b"  # from the weights table
    with pytest.raises(RegistryError, match="unknown metrics profile 'rael'. Did you mean 'real'"):
        build_encoders("rael")
    assert METRIC_PROFILES["tiny"].default_device == "cpu"
    assert ROLES == ("text_clip", "image_clip", "dino", "flow", "interpolator")
    with pytest.raises(ConfigError, match="unknown metric encoder 'flwo'. Did you mean 'flow'"):
        build_encoders("tiny", flwo="tiny")
    assert ENCODERS["flow"].weights == "raft-large"
