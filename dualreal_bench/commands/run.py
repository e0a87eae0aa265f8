"""``dualreal-bench run``: train, generate and evaluate one method over a suite."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape

from ..errors import ConfigError
from ..metrics import MOTION_BACKEND_CHOICES
from ..run_config import RunConfig
from ..runner import Runner
from ..spec import CUSTOM_SUITE

#: what `run` runs without --method: the backbone alone (no training), a pipeline check in a
#: minute with the default smoke suite and tiny profile, and every table's floor row
DEFAULT_METHOD = "base"


class OptionValueError(ConfigError, argparse.ArgumentTypeError):
    """A bad option value: argparse shows its message (as the option's error); called
    directly, it is a ConfigError like any other."""


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` -> ``(i, N)``; OptionValueError otherwise."""
    index, sep, count = text.partition("/")
    try:
        if not sep:
            raise ValueError
        return int(index), int(count)
    except ValueError:
        raise OptionValueError(f"--shard {text!r}: expected i/N, e.g. 0/4") from None


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1"`` -> ``(0, 1)``; OptionValueError otherwise."""
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise OptionValueError(f"--seeds {text!r}: expected comma-separated integers") from None


def add_method_args(
    parser: argparse.ArgumentParser,
    *,
    method_default: str | None,
    profile_default: str = "tiny",
    overrides_dest: str = "method_overrides",
    metrics_profile: bool = True,
) -> None:
    """--method, --set, --profile, --backbone-set (and --metrics-profile): what a method runs on.
    ``method_default`` None makes --method required."""
    if method_default is None:
        parser.add_argument(
            "--method",
            required=True,
            help="registered name or module:Class (see `list methods`)",
        )
    else:
        about = (
            " the backbone alone: no training, every table's floor row"
            if method_default == "base"
            else ""
        )
        parser.add_argument(
            "--method",
            default=method_default,
            help=f"registered name or module:Class (see `list methods`; default: {method_default},{about})",
        )
    parser.add_argument(
        "--set",
        dest=overrides_dest,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="method option (repeatable); `list methods --options METHOD` lists them",
    )
    parser.add_argument(
        "--profile",
        default=profile_default,
        help=f"backbone: tiny | cogvideox-2b | cogvideox-5b (default: {profile_default})",
    )
    parser.add_argument(
        "--backbone-set",
        dest="backbone_overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backbone option (repeatable), e.g. model_path=/weights/CogVideoX-5b",
    )
    if metrics_profile:
        parser.add_argument(
            "--metrics-profile",
            choices=("tiny", "real"),
            help="metric encoders (default: tiny with the tiny backbone, real otherwise)",
        )


def add_device_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        metavar="DEVICE",
        help="device of the metric encoders: auto (CUDA when present) | cpu | cuda[:N] | mps "
        "(default: auto for the real encoders, cpu for the tiny ones, as the backbone's "
        "profiles)",
    )


def add_motion_backend_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--motion-backend",
        choices=MOTION_BACKEND_CHOICES,
        help="motion fidelity's descriptor (a measure beyond the paper): flow (weight-free, "
        "OpenCV DIS) or videomae (Kinetics-400 weights; random with the tiny metrics profile); "
        "default: flow with the tiny metrics profile, videomae with the real one",
    )


def add_common_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--suite", default=None, help="paper | ablation | full | smoke (default: smoke)"
    )
    parser.add_argument(
        "--data-root", help="benchmark data (default: $DUALREAL_BENCH_DATA; smoke needs none)"
    )
    parser.add_argument(
        "--prompt-file", help="one prompt per line, used for every case instead of the suite's"
    )
    parser.add_argument("--num-prompts", type=int, help="use only the first N prompts of each case")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="train, generate and evaluate a method over a suite (resumable)")
    add_method_args(p, method_default=DEFAULT_METHOD)
    p.add_argument(
        "--name", help="label of this method variant in the store (default: method + --set)"
    )
    add_common_data_args(p)
    p.add_argument(
        "--seeds", type=parse_seeds, default=(0,), help="comma-separated seeds (default: 0)"
    )
    p.add_argument("--output-dir", default="results", help="results root (default: results)")
    p.add_argument("--run-id", help="run directory name (default: <suite>-<profile>)")
    p.add_argument(
        "--shard",
        type=parse_shard,
        default=(0, 1),
        metavar="i/N",
        help="run only cases k with k %% N == i (job arrays)",
    )
    p.add_argument(
        "--no-evaluate", dest="evaluate", action="store_false", help="train and generate only"
    )
    add_device_arg(p)
    add_motion_backend_arg(p)
    p.add_argument(
        "--cases",
        dest="cases_file",
        metavar="FILE",
        help="CSV of identity,motion pairs to run instead of a suite (found in --data-root)",
    )
    p.add_argument(
        "--cache-dir",
        help="root of the shared cache of metric reference values "
        "(default: $DUALREAL_BENCH_CACHE, else ~/.cache/dualreal-bench)",
    )
    p.add_argument(
        "--no-preflight",
        dest="preflight",
        action="store_false",
        help="skip decoding every reference image and clip before the run",
    )
    p.add_argument(
        "--nondeterministic",
        dest="deterministic",
        action="store_false",
        help="allow non-deterministic torch kernels (cuDNN autotuning)",
    )
    add_execution_args(p.add_argument_group("execution"))
    p.set_defaults(func=run)


def add_execution_args(ex: argparse._ArgumentGroup) -> None:
    """--executor and the Ray options."""
    ex.add_argument(
        "--executor",
        default="local",
        choices=("local", "ray"),
        help="local: this process (default); ray: one Ray actor per worker",
    )
    ex.add_argument(
        "--ray-address",
        "--address",
        dest="ray_address",
        metavar="ADDR",
        help="join this Ray cluster (default: start a local one)",
    )
    ex.add_argument(
        "--ray-num-workers",
        type=int,
        metavar="N",
        help="Ray workers (actors); the local cluster's size (default: as resources allow)",
    )
    ex.add_argument(
        "--gpus-per-case", type=float, metavar="G", help="GPUs each Ray worker reserves (default 0)"
    )
    ex.add_argument(
        "--cpus-per-case", type=float, metavar="C", help="CPUs each Ray worker reserves (default 1)"
    )


def run(args: argparse.Namespace) -> int:
    suite = args.suite or (CUSTOM_SUITE if args.cases_file else "smoke")
    config = RunConfig(
        suite=suite,
        method=args.method,
        method_overrides=tuple(args.method_overrides),
        name=args.name,
        profile=args.profile,
        backbone_overrides=tuple(args.backbone_overrides),
        metrics_profile=args.metrics_profile,
        motion_backend=args.motion_backend,
        data_root=args.data_root,
        prompt_file=args.prompt_file,
        num_prompts=args.num_prompts,
        seeds=tuple(args.seeds),
        output_dir=args.output_dir,
        run_id=args.run_id,
        shard=tuple(args.shard),
        evaluate=args.evaluate,
        device=args.device,
        progress=not args.quiet,
        cases_file=args.cases_file,
        cache_dir=args.cache_dir,
        preflight=args.preflight,
        deterministic=args.deterministic,
        executor=args.executor,
        ray_address=args.ray_address,
        ray_num_workers=args.ray_num_workers,
        gpus_per_case=args.gpus_per_case,
        cpus_per_case=args.cpus_per_case,
    )
    summary = Runner(config).run()
    console = Console(stderr=True, quiet=args.quiet, soft_wrap=True)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.counts.items())) or "nothing to do"
    console.print(
        f"[bold]{escape(summary.label)}[/] on {summary.cases} case(s): {counts} "
        f"in {summary.seconds:.1f} s -> {escape(str(summary.run_dir))}"
    )
    if config.profile == "tiny" or config.resolved_metrics_profile == "tiny":
        console.print(
            "[yellow]tiny profile: random-initialised models; the numbers check the pipeline, "
            "they measure nothing[/]"
        )
    return 0
