"""Which variant of which method a row of the tables is, read from the records.

A record stores the description of the method that made it (:meth:`Method.describe()
<dualreal_bench.method.Method.describe>`): its registered ``name``, its resolved ``config``, a
short ``label`` and its ``variant`` key (:meth:`Method.variant_key()
<dualreal_bench.method.Method.variant_key>`): the name for the method's reference
configuration, else ``name[k=v,...]`` over the options that differ from it, sorted by key,
values in JSON (``dualreal[controller=false]``, ``dualreal[num_groups=2]``). The report reads
that key and nothing else of a method's options; which key is which published row is data
(``benchmark/paper_results.json``, :mod:`dualreal_bench.report.paper`).

Records written before methods described their variant carry only the config:
:func:`legacy_variant` derives their key once, here, the only code that knows that layout.
Records written before a method's default changed carry the key relative to the old default
(their description has a key but no ``variant_version``, or an older one; the keys of records
from before variant keys, :func:`legacy_variant`'s, are read as they always were):
:data:`DEFAULT_CHANGES` lists
those changes, and :func:`record_variant` re-derives the key over them, so that an old ``lora``
run (fused as a delta sum) reads ``lora[fusion=delta_sum,...]`` and is never taken for the new
default.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any


@dataclasses.dataclass(frozen=True)
class Variant:
    """A parsed variant key: ``dualreal[controller=false,num_groups=2]`` is the method
    ``dualreal`` with ``{"controller": False, "num_groups": 2}`` differing from its reference."""

    key: str
    name: str
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    label: str | None = None  # the method's own short description of the variant

    def extends(self, other: Variant) -> bool:
        """Whether this is ``other`` (same method, every option ``other`` sets, set alike)
        with possibly more options set."""
        return self.name == other.name and all(
            k in self.params and self.params[k] == v for k, v in other.params.items()
        )

    def without(self, option: str) -> dict[str, Any]:
        return {k: v for k, v in self.params.items() if k != option}


def _split_top_level(text: str) -> list[str]:
    """``text`` split at the commas outside brackets, braces and quotes."""
    parts, depth, quote, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == '"' and (i == 0 or text[i - 1] != "\\"):
            quote = not quote
        elif not quote and ch in "[{":
            depth += 1
        elif not quote and ch in "]}":
            depth -= 1
        elif not quote and depth == 0 and ch == ",":
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text  # a bare word (lora[placeholder=strip])


def parse_variant_key(key: str, label: str | None = None) -> Variant:
    """``name[k=v,...]`` -> :class:`Variant`; a key without brackets is the name alone (a text
    that is not a well-formed key is taken whole as the name)."""
    name, bracket, rest = key.partition("[")
    if not bracket or not rest.endswith("]") or not name:
        return Variant(key, key, {}, label)
    params: dict[str, Any] = {}
    for part in _split_top_level(rest[:-1]):
        k, eq, v = part.partition("=")
        if not eq or not k:
            return Variant(key, key, {}, label)
        params[k] = _value(v)
    return Variant(key, name, params, label)


def method_description(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """The description of the method behind ``record`` (``Method.describe()``, stored at
    ``record["configs"]["method"]``; ``record["method"]`` is the row's label, the store's folder)."""
    return (record.get("configs") or {}).get("method") or {}


def record_variant(record: Mapping[str, Any]) -> Variant:
    """The variant of the method that made ``record``: the key its description carries
    (re-derived over the options whose default changed since, :data:`DEFAULT_CHANGES`, when it
    was written before them), else (records from before methods described their variant)
    :func:`legacy_variant`."""
    desc = method_description(record)
    if not isinstance(desc.get("variant"), str):
        return legacy_variant(record)
    variant = parse_variant_key(desc["variant"], desc.get("label"))
    if desc.get("variant_version", 1) >= CURRENT_VARIANT_VERSION:
        return variant
    return with_default_changes(variant, desc.get("config"))


#: the generation of defaults today's keys are relative to (Method.describe()'s
#: "variant_version"; records without it were written before issue 12's defaults)
CURRENT_VARIANT_VERSION = 2

_TRAINING_CHANGES = {  # issue 12: the options every training method shares
    # the authors' identity captions ("dog *"; customvideo prompts.txt)
    "identity_prompt": ("a {class_noun} *", "{class_noun} *"),
    # the clips stretched to the training size (decord.VideoReader(width, height))
    "clip_resize": ("crop", "stretch"),
}
#: Defaults that changed after records were written, per method: option -> (the value a record
#: ran with when its config lacks the option (the old default), the default now). Options
#: whose "auto" depends on the machine (DualReal's trainable_dtype, vae_tiling) are not listed:
#: an old record cannot say what it resolved to.
DEFAULT_CHANGES: dict[str, dict[str, tuple[Any, Any]]] = {
    "lora": {
        **_TRAINING_CHANGES,
        # the authors' fusion (customvideo lora_joint.py); before: peft's delta sum
        "fusion": ("delta_sum", "avg_factors"),
        # the official CogVideoX LoRA script's frame sampling
        "clip_frames": ("first", "stride"),
    },
    "sequential": {**_TRAINING_CHANGES, "clip_frames": ("first", "stride")},
    "dreamvideo": {
        "identity_prompt": _TRAINING_CHANGES["identity_prompt"],
        # the supplement's motion schedule (VGen playingGuitar_motionLearning.yaml)
        "motion_lr": (4e-5, 1e-5),
        "motion_batch_size": (1, 2),
        "p_image_zero": (0.5, 0.0),
    },
    "dualreal": {
        **_TRAINING_CHANGES,
        # the authors' condition preprocessing; before: open_clip's for both uses
        "condition_preprocess": ("clip", "authors"),
    },
}


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def with_default_changes(variant: Variant, config: Mapping[str, Any] | None) -> Variant:
    """``variant`` with the options of :data:`DEFAULT_CHANGES` set as ``config`` ran them:
    named in the key where they differ from today's default, left out where they equal it
    (the same key a run of today's code with that config gets)."""
    changes = DEFAULT_CHANGES.get(variant.name)
    if not changes or not isinstance(config, Mapping):
        return variant
    params = dict(variant.params)
    for option, (missing, now) in changes.items():
        value = config.get(option, missing)
        if _json(value) == _json(now):
            params.pop(option, None)
        else:
            params.setdefault(option, value)
    if params == dict(variant.params):
        return variant
    found = variant_from(variant.name, params)
    return Variant(found.key, found.name, found.params, variant.label)


#: DualReal's reference configuration as its old records describe it: the options its variants
#: differ in, resolved (methods/dualreal/config.py and model.py when those records were written)
_LEGACY_DUALREAL_REFERENCE = {"controller": True, "dual_aware": True, "num_groups": 7}


def _legacy_num_groups(record: Mapping[str, Any], config: Mapping[str, Any]) -> int:
    """DualReal's group count: the config's, or unset the largest divisor of the recorded
    backbone's block count up to the paper's 7 (7 when the backbone was not recorded)."""
    if config.get("num_groups"):
        return int(config["num_groups"])
    backbone = (record.get("configs") or {}).get("backbone") or {}
    blocks = (backbone.get("transformer") or {}).get("num_layers")
    paper = _LEGACY_DUALREAL_REFERENCE["num_groups"]
    if not isinstance(blocks, int) or blocks < 1:
        return paper
    return max(d for d in range(1, paper + 1) if blocks % d == 0)


def legacy_variant(record: Mapping[str, Any]) -> Variant:
    """The variant key of a record whose method description has none, from its stored config.

    Every method but DualReal is its registered name (as these records were always read).
    DualReal's key is what :meth:`DualRealMethod.variant_key` gives for the same config, over
    the options its ablations change: an unset ``controller`` follows ``dual_aware``; an unset
    ``num_groups`` is resolved on the recorded backbone (the 2-block tiny profile: 2);
    ``resolved`` values stored beside the config win; options without effect are left out
    (the group count without the controller, the controller without dual-aware training).
    """
    desc = method_description(record)
    name = record.get("method_name") or desc.get("name") or record["method"]
    if name != "dualreal":
        return parse_variant_key(name)
    stored = desc.get("config") or {}
    config = {**stored, **{k: v for k, v in (desc.get("resolved") or {}).items() if v is not None}}
    dual_aware = bool(config.get("dual_aware", True))
    controller = config.get("controller")
    resolved = {
        "controller": dual_aware if controller is None else bool(controller),
        "dual_aware": dual_aware,
        "num_groups": _legacy_num_groups(record, config),
    }
    inactive = set() if resolved["controller"] else {"num_groups"}
    if not dual_aware:
        inactive.add("controller")
    params = {
        k: v
        for k, v in resolved.items()
        if k not in inactive and v != _LEGACY_DUALREAL_REFERENCE[k]
    }
    return variant_from(name, params)


def _key_value(value: Any) -> str:
    """An option value as a variant key writes it: strings bare, the rest as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def variant_from(name: str, params: Mapping[str, Any]) -> Variant:
    """The :class:`Variant` of ``name`` with ``params`` differing from its reference."""
    if not params:
        return Variant(name, name, {})
    inner = ",".join(f"{k}={_key_value(params[k])}" for k in sorted(params))
    return Variant(f"{name}[{inner}]", name, dict(params))


def row_name(label: str, variant: Variant) -> str:
    """What a table prints for the row of store label ``label``: its variant key, which says
    exactly which config made it (``lora[fusion=delta_sum]``), and the label too when the label
    says something the key does not (``--name``, or options without effect on the key)."""
    key = variant.key
    if label in (key, variant.name):
        return key
    # the runner's default label: the name and the options set on the command line
    # (``dualreal[steps_scale=0.01]``, or their names alone), when the key shows each of them
    written = parse_variant_key(label)
    if written.name == variant.name and variant.extends(written):
        return key
    name, bracket, rest = label.partition("[")
    if name == variant.name and bracket and rest.endswith("]"):
        if set(rest[:-1].split(",")) <= set(variant.params):
            return key
    return f"{key} ({label})"


def method_variants(records: Sequence[Mapping[str, Any]]) -> dict[str, Variant]:
    """method label -> its variant, from the first record of each label."""
    out: dict[str, Variant] = {}
    for rec in records:
        label = rec["method"]
        if label not in out:
            out[label] = record_variant(rec)
    return out
