"""The benchmark specification: identities, motions, suites, cases and their prompts.

The manifests ship as data in ``benchmark/`` (installed as ``dualreal_bench.benchmark``):
identities, motions, suites and the prompt generator's vocabulary. The modules:

- :mod:`.manifests`: :class:`Identity`, :class:`Motion`, :class:`Suite` and their loaders;
- :mod:`.prompts`: the subject placeholder, the prompt generator, prompt files;
- :mod:`.data_root`: where the images and clips are (``--data-root``, ``$DUALREAL_BENCH_DATA``);
- :mod:`.cases`: :class:`Case`, built from a suite or a pair;
- :mod:`.cases_file`: the cases of a cases file (``--cases FILE``); shards;
- :mod:`.preflight`: every reference image and clip decoded before a run starts;
- :mod:`.listing`: the rows of ``dualreal-bench list identities|motions|suites``.

Everything public is importable from here (``from dualreal_bench.spec import build_cases``).
"""

from __future__ import annotations

from .cases import (
    Case,
    build_case,
    build_cases,
    default_action,
    default_class_noun,
)
from .cases_file import CASES_COLUMNS, CUSTOM_SUITE, read_cases_file, shard_cases
from .data_root import (
    AUTHORS_PROMPT_FILE,
    BENCHMARK_SUBDIR,
    CLASS_NOUN_FILE,
    DATA_ROOT_ENV,
    MOTION_PROMPTS_FILE,
    resolve_data_root,
)
from .files import benchmark_dir
from .listing import describe_identities, describe_motions, describe_suites
from .manifests import (
    CATEGORIES,
    NAME_RE,
    Identity,
    Motion,
    Suite,
    check_name,
    get_suite,
    load_identities,
    load_motions,
    load_suites,
)
from .preflight import preflight
from .prompts import (
    PLACEHOLDER,
    PROMPTS_PER_CASE,
    PromptVocab,
    generate_prompts,
    load_prompt_vocab,
    prompts_match_motion,
    read_prompt_file,
    strip_placeholder,
)

__all__ = [
    "AUTHORS_PROMPT_FILE",
    "BENCHMARK_SUBDIR",
    "CASES_COLUMNS",
    "CATEGORIES",
    "CLASS_NOUN_FILE",
    "CUSTOM_SUITE",
    "DATA_ROOT_ENV",
    "MOTION_PROMPTS_FILE",
    "NAME_RE",
    "PLACEHOLDER",
    "PROMPTS_PER_CASE",
    "Case",
    "Identity",
    "Motion",
    "PromptVocab",
    "Suite",
    "benchmark_dir",
    "build_case",
    "build_cases",
    "check_name",
    "default_action",
    "default_class_noun",
    "describe_identities",
    "describe_motions",
    "describe_suites",
    "generate_prompts",
    "get_suite",
    "load_identities",
    "load_motions",
    "load_prompt_vocab",
    "load_suites",
    "preflight",
    "prompts_match_motion",
    "read_cases_file",
    "read_prompt_file",
    "resolve_data_root",
    "shard_cases",
    "strip_placeholder",
]
