"""Adding a method from outside the package: a ``Method`` subclass in a user's file run with
``--method path/file.py:Class``, and a subclass of a bundled baseline registered by an entry
point; both go through ``dualreal-bench run`` and show up in ``dualreal-bench report``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

CLI = [sys.executable, "-m", "dualreal_bench.cli"]

#: what a user writes (the README's worked example)
USER_FILE = textwrap.dedent(
    '''
    """Two small methods defined outside dualreal_bench."""
    import dataclasses

    import numpy as np
    import torch

    from dualreal_bench import ConfigError, Method, MethodConfig
    from dualreal_bench.media import read_images
    from dualreal_bench.methods.lora import LoRAConfig, LoRAMethod
    from dualreal_bench.spec import strip_placeholder


    @dataclasses.dataclass
    class StyledPromptConfig(MethodConfig):
        #: words put before every prompt (whose " *" is removed)
        style: str = "a photo of"

        def validate(self):
            if not self.style.strip():
                raise ConfigError("style: must not be empty")


    class StyledPrompt(Method):
        """The base model with a style prefix; 'learns' the subject's mean colour."""

        name = "styled-prompt"
        config_class = StyledPromptConfig

        def train(self, case):
            images = read_images(case.image_paths())
            colour = np.mean([im.reshape(-1, 3).mean(0) for im in images], axis=0)
            self.mean_colour = torch.tensor(colour, dtype=torch.float32)
            return {"images": len(images)}

        def generate(self, prompts, seed):
            texts = [f"{self.config.style} {strip_placeholder(p)}" for p in prompts]
            return self.backbone.sample(texts, seed)

        def state_dict(self):
            return {"mean_colour": self.mean_colour}

        def load_state_dict(self, state):
            self.mean_colour = state["mean_colour"]


    @dataclasses.dataclass
    class QVLoRAConfig(LoRAConfig):
        """LoRA on the query and value projections only, rank 4."""

        target_modules: tuple[str, ...] = ("to_q", "to_v")
        rank: int = 4
        lora_alpha: float = 4.0


    class QVLoRA(LoRAMethod):
        name = "qv-lora"
        config_class = QVLoRAConfig
    '''
)

ENTRY_POINTS = "[dualreal_bench.methods]\nqv-lora = my_bench_plugins:QVLoRA\n"
METADATA = "Metadata-Version: 2.1\nName: my-bench-plugins\nVersion: 0.1\n"


def _cli(*args, cwd, env):
    proc = subprocess.run(
        [*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    """A user file, and the same classes installed as a package with an entry point (a bare
    ``.dist-info`` on PYTHONPATH is what importlib.metadata reads for an installed package)."""
    root = tmp_path_factory.mktemp("custom")
    user_file = root / "my_methods.py"
    user_file.write_text(USER_FILE, encoding="utf-8")
    site = root / "site"
    (site / "my_bench_plugins").mkdir(parents=True)
    (site / "my_bench_plugins" / "__init__.py").write_text(USER_FILE, encoding="utf-8")
    dist = site / "my_bench_plugins-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(METADATA, encoding="utf-8")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS, encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        ),
        "DUALREAL_BENCH_CACHE": str(root / "cache"),
        "OMP_NUM_THREADS": "1",
    }
    return root, user_file, env


def test_entry_point_is_listed(plugin_env):
    root, _, env = plugin_env
    out = _cli("list", "methods", cwd=root, env=env).stdout
    assert "qv-lora" in out and "my_bench_plugins:QVLoRA" in out


def test_options_of_a_file_target_and_of_an_entry_point(plugin_env):
    """The README's way of declaring options shows up in `list methods --options`; a subclass
    of a bundled config keeps the bundled fields' help."""
    root, user_file, env = plugin_env
    styled = json.loads(
        _cli(
            "list",
            "methods",
            "--options",
            f"{user_file}:StyledPrompt",
            "--format",
            "json",
            cwd=root,
            env=env,
        ).stdout
    )
    assert [(o["option"], o["type"], o["default"], o["help"]) for o in styled] == [
        ("seed", "int", 0, "seeds training (data order, timesteps, noise, dropout draws)"),
        ("style", "str", "a photo of", 'words put before every prompt (whose " *" is removed)'),
    ]
    table = _cli("list", "methods", "--options", "qv-lora", cwd=root, env=env).stdout
    rank = next(line for line in table.splitlines() if " rank " in line)
    assert "│ 4 " in rank and "LoRA rank" in rank, table
    assert "to_q,to_v" in table


def test_file_target_and_entry_point_run_and_show_up_in_the_report(plugin_env):
    root, user_file, env = plugin_env
    common = ["--suite", "smoke", "--num-prompts", "1", "--output-dir", "out"]
    _cli("--quiet", "run", "--method", f"{user_file}:StyledPrompt", *common, cwd=root, env=env)
    # the second method shares the run (and its cached reference-clip metrics)
    _cli(
        "--quiet",
        "run",
        "--method",
        "qv-lora",
        "--set",
        "steps_scale=0.01",
        *common,
        cwd=root,
        env=env,
    )

    report = json.loads(
        _cli(
            "report", "--table", "--format", "json", "--output-dir", "out", cwd=root, env=env
        ).stdout
    )
    methods = {row["method"] for row in report["rows"]}
    assert methods == {"styled-prompt", "qv-lora[steps_scale=0.01]"}, methods

    run_dir = root / "out" / "smoke-tiny"
    styled = next(run_dir.glob("styled-prompt*/*/state"))
    assert (styled / "weights.safetensors").is_file()
    method_json = json.loads(next(run_dir.glob("qv-lora*/method.json")).read_text())
    assert (
        method_json["config"]["target_modules"] == ["to_q", "to_v"]
        and method_json["config"]["rank"] == 4
    )
    stats = json.loads(next(run_dir.glob("qv-lora*/*/train.json")).read_text())
    assert stats["identity_steps"] == 3 and stats["motion_steps"] == 3
