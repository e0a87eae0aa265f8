"""Report tables from synthetic stores with known values: Tables 1-3, marks, counts, incomplete
cells, breakdowns, every output format, and the published numbers."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from dualreal_bench.io import atomic_write_json
from dualreal_bench.metrics import METRIC_FIELDS
from dualreal_bench.report import (
    aggregate,
    build_report,
    legacy_variant,
    load_paper_results,
    method_variants,
    metric_columns,
    parse_variant_key,
    render,
    render_report,
    split_tables,
)
from dualreal_bench.store import ResultStore

FIELDS = METRIC_FIELDS


# ---- a synthetic store written in the runner's layout -------------------------------------------


def write_store(
    root,
    methods,
    cases,
    prompts,
    value,
    *,
    run_id="r",
    suite="paper",
    profile="cogvideox-5b",
    skip=(),
    seeds=(0,),
    videos=False,
    traces=None,
    data_root=None,
    references=None,
):
    """methods: [(label, name, config)] or [(label, name, config, variant key)] (a run that
    records Method.describe()'s variant; without one, a record written before it);
    cases: [(identity, motion)]; prompts: case_id -> count;
    value(label, case_id, prompt_index, field) -> float | None; skip: {(label, case_id, prompt_index)}
    records not written; traces: label -> (steps, groups) array saved as controller_w_id;
    references: motion -> {clip name: dynamic degree} the records carry as the evaluator's
    reference clips (default: two clips of 0.4 and 0.6 per motion, average 0.5)."""
    from dualreal_bench.media import write_video

    store = ResultStore(root, run_id)
    store.init_run({"suite": suite, "profile": profile})
    for k, (label, name, config, *variant) in enumerate(methods):
        # a record of today's code carries its key and the generation of defaults it is
        # relative to; one without a key models a record written before either existed
        described = {
            "name": name,
            "config": config,
            **({"variant": variant[0], "variant_version": 2} if variant else {}),
        }
        store.init_method(label, {**described, "class": f"x:{name}"})
        atomic_write_json(
            store.run_dir / label / "expected" / "shard0of1.json",
            {f"{i}__{m}": prompts[f"{i}__{m}"] * len(seeds) for i, m in cases},
        )
        for c, (ident, motion) in enumerate(cases):
            case_id = f"{ident}__{motion}"
            cdir = store.case_dir(label, case_id)
            for p in range(prompts[case_id]):
                for s in seeds:
                    if (label, case_id, p) in skip:
                        continue
                    video = cdir.video(p, s)
                    if videos:
                        shade = (37 * (k + 1)) % 256
                        frames = np.full((9, 32, 48, 3), shade, np.uint8)
                        frames[:, :, : 8 + 4 * c] = 255 - shade
                        write_video(video, frames, fps=8)
                    if traces and label in traces:
                        video.parent.mkdir(parents=True, exist_ok=True)
                        np.savez(cdir.extras(p, s), controller_w_id=traces[label] + 0.001 * p)
                    rec = {
                        "schema": 1,
                        "run_id": run_id,
                        "suite": suite,
                        "method": label,
                        "method_name": name,
                        "identity": ident,
                        "motion": motion,
                        "case_id": case_id,
                        "prompt_index": p,
                        "prompt": f"{ident} * doing {motion}, prompt {p}",
                        "seed": s,
                        "video": str(video.relative_to(store.run_dir)),
                        "metrics": {f: value(label, case_id, p, f) for f in FIELDS},
                        "metric_constants": {"dd_reference": _reference(motion, references)},
                        "configs": {"method": described, "backbone": None},
                        "run_config": {"data_root": str(data_root) if data_root else None},
                        "profile": profile,
                    }
                    store.write_record(label, case_id, rec)
    return store


def _reference(motion, references):
    clips = (references or {}).get(motion) or {f"{motion}_1.avi": 0.4, f"{motion}_2.avi": 0.6}
    return {"motion": motion, "mean": sum(clips.values()) / len(clips), "clips": clips}


TABLE1_METHODS = [
    ("base", "base", {}),
    ("lora", "lora", {"rank": 4}),
    ("dualreal", "dualreal", {"num_groups": 7, "controller": None, "dual_aware": True}),
]
# case A has 3 prompts, case B one: a mean over videos would weight A three times as much as B
CASES = [("idA", "moA"), ("idB", "moB")]
PROMPTS = {"idA__moA": 3, "idB__moB": 1}
KNOWN = {  # label -> case -> per-prompt clip_i
    "base": {
        "idA__moA": [0.1, 0.2, 0.3],
        "idB__moB": [0.9],
    },  # case means 0.2, 0.9 -> 0.55 (videos: 0.375)
    "lora": {"idA__moA": [0.5, 0.5, 0.5], "idB__moB": [0.7]},  # 0.6
    "dualreal": {"idA__moA": [0.4, 0.6, 0.8], "idB__moB": [0.8]},  # 0.6 + 0.8 -> 0.7
}
# mean dynamic degree per method; the reference clips average 0.5, so the paper's deviations
# are +0.30, -0.05, +0.10: ranked by |deviation|, lora is best, dualreal second
DD = {"base": 0.80, "lora": 0.45, "dualreal": 0.60}


def known_value(label, case_id, p, field):
    if field == "clip_i":
        return KNOWN[label][case_id][p]
    if field == "dynamic_degree_dev":
        return abs(DD[label] - 0.5)
    if field == "dynamic_degree":
        return DD[label]
    if field == "dynamic_degree_bool":
        return 1.0
    return 0.25 + 0.01 * p  # same for every method: a three-way tie


@pytest.fixture
def table1_store(tmp_path):
    write_store(tmp_path, TABLE1_METHODS, CASES, PROMPTS, known_value)
    return tmp_path


def test_table1_means_over_videos_then_cases_counts_and_marks(table1_store):
    rep = build_report(table1_store, "r")
    assert [t.id for t in rep.tables] == ["table1"]
    t1 = rep.tables[0]
    assert t1.rows == [
        "base",
        "lora",
        "dualreal",
    ]  # the paper's order: base, baselines, DualReal last
    base = t1.cells[("base", "clip_i")]
    assert base.mean == pytest.approx((0.2 + 0.9) / 2)  # not the mean over the 4 videos (0.375)
    assert base.n_videos == 4 and base.n_cases == 2 and base.complete
    assert base.case_std == pytest.approx(0.35)
    assert t1.cells[("lora", "clip_i")].mean == pytest.approx(0.6)
    assert t1.cells[("dualreal", "clip_i")].mean == pytest.approx(0.7)
    assert t1.expected_videos == 4
    marks = t1.rank_marks()
    assert marks[("dualreal", "clip_i")] == "best" and marks[("lora", "clip_i")] == "second"
    assert ("base", "clip_i") not in marks
    # the dynamic-degree column is ranked by |mean DD - dataset average| (closer to 0 is better)
    assert t1.cells[("lora", "dynamic_degree_dataset_dev")].mean == pytest.approx(-0.05)
    assert t1.cells[("base", "dynamic_degree_dataset_dev")].mean == pytest.approx(0.30)
    assert (
        marks[("lora", "dynamic_degree")] == "best"
        and marks[("dualreal", "dynamic_degree")] == "second"
    )
    # ties share the mark
    assert {marks[(m, "clip_t")] for m in t1.rows} == {"best"}
    md = render(t1, "markdown")
    dual_line = next(line for line in md.splitlines() if line.startswith("| dualreal |"))
    assert "**0.7000**" in dual_line and "<u>0.1000</u>" not in dual_line
    assert "<u>0.60 (+0.10)</u>" in dual_line  # dynamic degree with its signed deviation
    lora_line = next(line for line in md.splitlines() if line.startswith("| lora |"))
    assert "**0.45 (-0.05)**" in lora_line
    assert "average a Dynamic Degree of 0.50 (4 reference clips of 2 motions)" in md
    assert dual_line.rstrip().endswith("| 4/4 |")


def _set_versions(store_root, versions):
    """Give every record of each label the metric versions ``versions[label]`` (field -> v)."""
    for label, fields in versions.items():
        for path in sorted((Path(store_root) / "r" / label).glob("*/records/*.json")):
            rec = json.loads(path.read_text())
            atomic_write_json(path, {**rec, "metric_versions": dict(fields)})


def test_rows_of_different_metric_versions_are_named_and_not_ranked(table1_store):
    """CLIP-I by two definitions (version 1.0 for base and lora, 2.0 for dualreal): the column
    is shown but not ranked, a note names the versions and their rows; the leaderboard ranks
    each version's rows among themselves; the other columns keep their marks."""
    from dualreal_bench.report.export import leaderboard

    _set_versions(
        table1_store,
        {
            "base": {"clip_i": "1.0", "clip_t": "1.0"},
            "lora": {"clip_i": "1.0", "clip_t": "1.0"},
            "dualreal": {"clip_i": "2.0", "clip_t": "1.0"},
        },
    )
    rep = build_report(table1_store, "r")
    t1 = rep.tables[0]
    marks = t1.rank_marks()
    assert t1.unranked == {"clip_i"}
    assert not any(field == "clip_i" for _, field in marks)
    assert marks[("lora", "dynamic_degree")] == "best"  # other columns still ranked
    assert {marks[(m, "clip_t")] for m in t1.rows} == {"best"}  # one version: ranked
    (note,) = [n for n in t1.notes if "different metric versions" in n]
    assert note.startswith("CLIP-I: ") and "1.0 (base, lora); 2.0 (dualreal)" in note
    assert note in render(t1, "markdown")
    # the per-motion breakdown too: the column unranked in every block, the note once
    (per_motion,) = build_report(table1_store, "r", breakdowns=["motion"]).tables[1:]
    assert per_motion.unranked == {"clip_i"}
    assert not any(field == "clip_i" for _, field in per_motion.rank_marks())
    assert [n for n in per_motion.notes if "different metric versions" in n] == [note]
    board = {row["method"]: row for row in leaderboard([rep])["rows"]}
    ranks = {m: board[m]["metrics"]["clip_i"]["rank"] for m in board}
    assert ranks == {"base": 2, "lora": 1, "dualreal": 1}  # 0.55 < 0.6 within 1.0; 2.0 alone
    # the same versions everywhere: ranked as before, no note
    _set_versions(table1_store, {m: {"clip_i": "2.0"} for m in ("base", "lora", "dualreal")})
    again = build_report(table1_store, "r").tables[0]
    assert not again.unranked and not any("metric versions" in n for n in again.notes)
    assert again.rank_marks()[("dualreal", "clip_i")] == "best"


def test_incomplete_cells_are_flagged_and_never_ranked(tmp_path):
    def value(label, case_id, p, field):
        return {"base": 0.1, "lora": 0.9, "dualreal": 0.95}[label] if field == "clip_t" else 0.5

    # dualreal misses one video of case A: every one of its cells is incomplete
    write_store(tmp_path, TABLE1_METHODS, CASES, PROMPTS, value, skip={("dualreal", "idA__moA", 2)})
    # a record with a metric that is not a number (null, written by hand: the store refuses
    # it) is invalid (issue 14): left out and named, so every cell of its row is incomplete
    # and counts the videos it stands on (3/4), CLIP-T is never averaged over fewer
    bad = tmp_path / "r" / "lora" / "idB__moB" / "records" / "p000_s0.json"
    doc = json.loads(bad.read_text())
    bad.write_text(json.dumps({**doc, "metrics": {**doc["metrics"], "clip_t": None}}))
    report = build_report(tmp_path, "r")
    t1 = report.tables[0]
    d = t1.cells[("dualreal", "clip_t")]
    assert not d.complete and d.n_videos == 3 and d.mean == pytest.approx(0.95)
    assert [path for path, _ in report.invalid] == [bad]
    for field in ("clip_t", "clip_i"):
        lora = t1.cells[("lora", field)]
        assert not lora.complete and lora.n_videos == 3 and lora.n_cases == 1
    assert any(str(bad) in note and "metrics.clip_t = None" in note for note in t1.notes)
    marks = t1.rank_marks()
    assert marks[("base", "clip_t")] == "best"  # the only complete cell, though the lowest value
    assert ("dualreal", "clip_t") not in marks and ("lora", "clip_t") not in marks
    md = render(t1, "markdown")
    assert "0.9500†" in md and "0.9000†" in md and "| 3/4 |" in md
    assert "$^\\dagger$" in render(t1, "latex")
    rows = {r["method"]: r for r in json.loads(render(t1, "json"))["rows"]}
    assert rows["dualreal"]["clip_t_complete"] is False and rows["dualreal"]["clip_t_rank"] is None
    assert rows["base"]["clip_t_complete"] is True
    # VBench's boolean dynamic degree is aggregated for JSON/CSV, not printed
    assert rows["base"]["dynamic_degree_bool"] == 0.5 and rows["base"]["dynamic_degree_bool_n"] == 4
    assert "dynamic_degree_bool" not in [c.field for c in t1.columns]


DUALREAL_VARIANTS = [
    ("dualreal", "dualreal", {"num_groups": 7, "controller": None, "dual_aware": True}),
    (
        "dualreal[dual_aware=false]",
        "dualreal",
        {"num_groups": 7, "controller": None, "dual_aware": False},
    ),
    # a label that says nothing: the report must read the config
    ("fixed_weights_run", "dualreal", {"num_groups": 7, "controller": False, "dual_aware": True}),
    (
        "dualreal[num_groups=1]",
        "dualreal",
        {"num_groups": 1, "controller": None, "dual_aware": True},
    ),
    (
        "dualreal[num_groups=42]",
        "dualreal",
        {"num_groups": 42, "controller": True, "dual_aware": True},
    ),
    (
        "dualreal[num_groups=2]",
        "dualreal",
        {"num_groups": 2, "controller": None, "dual_aware": True},
    ),
    ("lora", "lora", {}),
]


def test_split_tables_reads_only_variant_keys():
    """Rows are placed by their variant keys and the published layout alone: a published
    ablation with more options set is still that ablation; any other variant of the proposed
    method is a point of the sweep (the paper's n = 7 unless its key says otherwise); labels
    say nothing."""

    def rec(label, key):
        return {"method": label, "configs": {"method": {"name": key.split("[")[0], "variant": key}}}

    records = [
        rec("a", "dualreal[controller=false,lr=0.01]"),
        rec("b", "dualreal[lr=0.01]"),
        rec("c", "dualreal"),
        rec("d", "dualreal[num_groups=42]"),
        rec("e", "lora[placeholder=strip]"),
        rec("f", "dualreal[dual_aware=false]"),
    ]
    tables = split_tables(records)
    # every row is printed under its variant key (issue 12), with a label that says more
    assert tables["table1"] == [
        ("e", "lora[placeholder=strip] (e)"),
        ("b", "dualreal[lr=0.01] (b)"),
        ("c", "dualreal (c)"),
    ]
    assert tables["table2"] == [
        ("f", "w/o Dual-aware Adaptation: dualreal[dual_aware=false] (f)"),
        ("a", "w/o StageBlender Controller: dualreal[controller=false,lr=0.01] (a)"),
        ("b", "DualReal (ours): dualreal[lr=0.01] (b)"),
        ("c", "DualReal (ours): dualreal (c)"),
    ]
    assert tables["table3"] == [
        ("b", "n = 7: dualreal[lr=0.01] (b)"),
        ("c", "n = 7: dualreal (c)"),
        ("d", "n = 42: dualreal[num_groups=42] (d)"),
    ]


def test_shortened_runs_keep_their_tables():
    """Variant keys carry every option that differs (``--set steps_scale=0.1`` on every run of
    an ablation study): the tables compare the options they list and ignore the rest."""

    def rec(label, key):
        return {"method": label, "configs": {"method": {"name": "dualreal", "variant": key}}}

    records = [
        rec("full", "dualreal[num_groups=2,steps_scale=0.1]"),  # tiny: 2 groups
        rec("n1", "dualreal[num_groups=1,steps_scale=0.1]"),
        rec("noctl", "dualreal[controller=false,steps_scale=0.1]"),
        rec("sep", "dualreal[dual_aware=false,steps_scale=0.1]"),
    ]
    tables = split_tables(records)
    assert tables["table1"] == [("full", "dualreal[num_groups=2,steps_scale=0.1] (full)")]
    assert [lb for lb, _ in tables["table2"]] == ["sep", "noctl", "n1", "full"]
    assert tables["table3"] == [
        ("n1", "n = 1: dualreal[num_groups=1,steps_scale=0.1] (n1)"),
        ("full", "n = 2: dualreal[num_groups=2,steps_scale=0.1] (full)"),
    ]


def _legacy(name, config, label="x", blocks=None):
    """A record written before methods described their variant: a config, no variant key."""
    backbone = None if blocks is None else {"transformer": {"num_layers": blocks}}
    method = None if name is None else {"name": name, "config": config}
    return {
        "method": label,
        "method_name": name,
        "configs": {"method": method, "backbone": backbone},
    }


def test_legacy_variants_are_derived_from_the_stored_config():
    # the key DualReal's variant_key gives for the same resolved config: an unset controller
    # follows dual_aware, and options without effect are left out
    assert (
        legacy_variant(_legacy("dualreal", {"dual_aware": False, "controller": None})).key
        == "dualreal[dual_aware=false]"
    )
    assert (
        legacy_variant(_legacy("dualreal", {"controller": False, "num_groups": 1})).key
        == "dualreal[controller=false]"
    )
    assert (
        legacy_variant(_legacy("dualreal", {"controller": False, "num_groups": 7})).key
        == "dualreal[controller=false]"
    )
    assert (
        legacy_variant(_legacy("dualreal", {"controller": True, "num_groups": 2})).key
        == "dualreal[num_groups=2]"
    )
    assert legacy_variant(_legacy("dualreal", {"num_groups": 7}, "anything")).key == "dualreal"
    assert legacy_variant(_legacy("lora", {"num_groups": 1}, "lora[rank=8]")).key == "lora"
    assert legacy_variant(_legacy(None, None, "counting")).key == "counting"  # no configs
    # an unset group count is resolved on the recorded backbone, as DualReal resolves it:
    # the 2-block tiny profile 2 groups, the 30-block 2B 6, the 42-block 5B the paper's 7
    for blocks, key in (
        (2, "dualreal[num_groups=2]"),
        (30, "dualreal[num_groups=6]"),
        (42, "dualreal"),
    ):
        assert legacy_variant(_legacy("dualreal", {"num_groups": None}, blocks=blocks)).key == key


def test_variant_keys_are_read_from_the_method_description():
    """Records carrying Method.describe()'s variant: the key is read, never re-derived from
    the config (whose options the report does not know)."""
    rec = _legacy("dualreal", {"num_groups": None, "controller": None}, "dualreal", blocks=42)
    rec["configs"]["method"].update(
        variant="dualreal[num_groups=2]", label="DualReal, n = 2", variant_version=2
    )
    (variant,) = method_variants([rec]).values()
    assert variant.key == "dualreal[num_groups=2]" and variant.params == {"num_groups": 2}
    assert variant.label == "DualReal, n = 2"
    rec["configs"]["method"].update(
        name="lora", variant='lora[placeholder=strip,target_modules=["to_q","to_v"]]'
    )
    (variant,) = method_variants([rec]).values()
    assert variant.name == "lora"
    assert variant.params == {"placeholder": "strip", "target_modules": ["to_q", "to_v"]}


def test_row_names_are_variant_keys():
    """The key, and the store label beside it only when the label says more."""
    from dualreal_bench.report.variants import row_name

    key = parse_variant_key("dualreal[num_groups=2,steps_scale=0.01]")
    assert row_name("dualreal", key) == key.key
    assert row_name("dualreal[steps_scale=0.01]", key) == key.key  # the runner's label
    assert row_name("dualreal[steps_scale]", key) == key.key
    assert row_name("mine", key) == f"{key.key} (mine)"  # --name
    assert row_name("dualreal[seed]", parse_variant_key("dualreal")) == "dualreal (dualreal[seed])"


def test_keys_written_before_the_authors_defaults_are_re_derived():
    """A record whose key was written before issue 12's defaults (no variant_version): an old
    LoRA run fused its adapters as a delta sum and captioned "a dog *", so it is never read as
    today's ``lora`` (the authors' factor averaging); a record of today's code is read as is;
    an option set to today's default drops out of the key."""
    config = {
        "identity_prompt": "a {class_noun} *",
        "fusion_weights": [1.0, 1.0],
        "rank": 128,
    }
    old = _legacy("lora", config, "lora")
    old["configs"]["method"].update(variant="lora", label="lora")
    (variant,) = method_variants([old]).values()
    assert variant.key == (
        "lora[clip_frames=first,clip_resize=crop,fusion=delta_sum,identity_prompt=a {class_noun} *]"
    )
    assert variant.params["fusion"] == "delta_sum" and variant.label == "lora"
    new = _legacy("lora", {**config, "fusion": "delta_sum"}, "lora[fusion]")
    new["configs"]["method"].update(variant="lora[fusion=delta_sum]", variant_version=2)
    assert method_variants([new])["lora[fusion]"].key == "lora[fusion=delta_sum]"
    # DreamVideo: an old run at the then-default motion lr 4e-5 and an old run set to today's
    dv = {"motion_lr": 4e-05, "motion_batch_size": 2, "p_image_zero": 0.0}
    rec = _legacy("dreamvideo", {**dv, "identity_prompt": "{class_noun} *"}, "dv")
    rec["configs"]["method"].update(variant="dreamvideo[motion_batch_size=2,p_image_zero=0.0]")
    assert method_variants([rec])["dv"].key == "dreamvideo[motion_lr=4e-05]"
    # the generation of defaults the report knows is the one Method.describe() writes
    from dualreal_bench.method import VARIANT_VERSION
    from dualreal_bench.report.variants import CURRENT_VARIANT_VERSION

    assert VARIANT_VERSION == CURRENT_VARIANT_VERSION


def test_tiny_default_dualreal_is_labelled_with_its_own_group_count(tmp_path):
    """A default DualReal run on tiny resolves 2 groups (variant dualreal[num_groups=2]): it is
    n = 2 in Table 3 and never the paper's n = 7, whatever its label; the 5B default
    (variant dualreal) is n = 7."""
    methods = [
        ("base", "base", "base"),
        ("dualreal", "dualreal", "dualreal[num_groups=2]"),  # `run --method dualreal` on tiny
        ("dualreal[num_groups=1]", "dualreal", "dualreal[num_groups=1]"),
        ("dualreal[controller=false]", "dualreal", "dualreal[controller=false]"),
    ]
    write_store(
        tmp_path,
        [(label, name, {}, key) for label, name, key in methods],
        CASES,
        PROMPTS,
        lambda *a: 0.5,
        profile="tiny",
        suite="smoke",
    )
    tables = {t.id: t for t in build_report(tmp_path, "r").tables}
    t3 = tables["table3"]
    assert t3.rows == ["dualreal[num_groups=1]", "dualreal"]
    assert [t3.label(r) for r in t3.rows] == [
        "n = 1: dualreal[num_groups=1]",
        "n = 2: dualreal[num_groups=2]",
    ]
    assert not any("n = 7" in t3.label(r) for r in t3.rows)
    assert t3.variants["dualreal"] == "dualreal[num_groups=2]"
    # Table 1 shows the default run, and says it is not the paper's n = 7
    assert tables["table1"].rows == ["base", "dualreal"]
    assert any("n = 7 weight groups" in n for n in tables["table1"].notes)
    # the controller ablation is Table 2's controller row, beside the default run (n = 2) as
    # the full method
    t2 = tables["table2"]
    assert t2.rows == ["dualreal[controller=false]", "dualreal[num_groups=1]", "dualreal"]
    assert t2.label("dualreal[controller=false]").startswith("w/o StageBlender Controller")
    assert t2.label("dualreal") == "DualReal (ours): dualreal[num_groups=2]"

    # the same labels on a 5B run: the default run's variant is dualreal, n = 7
    methods[1] = ("dualreal", "dualreal", "dualreal")
    write_store(
        tmp_path / "5b",
        [(label, name, {}, key) for label, name, key in methods],
        CASES,
        PROMPTS,
        lambda *a: 0.5,
    )
    t3 = {t.id: t for t in build_report(tmp_path / "5b", "r").tables}["table3"]
    assert [t3.label(r) for r in t3.rows] == ["n = 1: dualreal[num_groups=1]", "n = 7: dualreal"]


def test_ablation_and_cardinality_tables(tmp_path):
    ns = {
        "dualreal": 7,
        "dualreal[num_groups=1]": 1,
        "dualreal[num_groups=2]": 2,
        "dualreal[num_groups=42]": 42,
    }

    def value(label, case_id, p, field):
        return ns.get(label, 0) / 100 if field == "dino_i" else 0.5

    write_store(tmp_path, DUALREAL_VARIANTS, CASES, PROMPTS, value, suite="ablation")
    rep = build_report(tmp_path, "r")
    tables = {t.id: t for t in rep.tables}
    assert tables["table1"].rows == ["lora", "dualreal"]
    t2 = tables["table2"]
    assert t2.rows == [
        "dualreal[dual_aware=false]",
        "fixed_weights_run",
        "dualreal[num_groups=1]",
        "dualreal",
    ]
    assert t2.label("fixed_weights_run") == (
        "w/o StageBlender Controller: dualreal[controller=false] (fixed_weights_run)"
    )
    assert t2.variants["fixed_weights_run"] == "dualreal[controller=false]"
    t3 = tables["table3"]
    assert t3.rows == [
        "dualreal[num_groups=1]",
        "dualreal[num_groups=2]",
        "dualreal",
        "dualreal[num_groups=42]",
    ]
    assert [t3.label(r).split(":")[0] for r in t3.rows] == ["n = 1", "n = 2", "n = 7", "n = 42"]
    marks = t3.rank_marks()
    assert (
        marks[("dualreal[num_groups=42]", "dino_i")] == "best"
        and marks[("dualreal", "dino_i")] == "second"
    )


def test_without_the_papers_group_count_table1_keeps_dualreal(tmp_path):
    # the tiny backbone has 2 blocks, so n = 7 cannot run there
    methods = [
        ("base", "base", {}),
        ("dualreal[num_groups=2]", "dualreal", {"num_groups": 2}),
        ("dualreal[num_groups=1]", "dualreal", {"num_groups": 1}),
    ]
    write_store(tmp_path, methods, CASES, PROMPTS, lambda *a: 0.5, profile="tiny", suite="smoke")
    tables = {t.id: t for t in build_report(tmp_path, "r").tables}
    assert tables["table1"].rows == ["base", "dualreal[num_groups=2]"]
    assert any("n = 7" in n for n in tables["table1"].notes) and any(
        "tiny" in n for n in tables["table1"].notes
    )
    assert tables["table2"].rows == ["dualreal[num_groups=1]", "dualreal[num_groups=2]"]
    assert tables["table3"].rows == ["dualreal[num_groups=1]", "dualreal[num_groups=2]"]
    assert split_tables([])["table1"] == []


def test_breakdowns_per_case_identity_motion(tmp_path):
    cases = [("idA", "moA"), ("idA", "moB"), ("idB", "moA")]
    prompts = {"idA__moA": 2, "idA__moB": 1, "idB__moA": 1}
    vals = {
        "idA__moA": {"base": [0.1, 0.3], "lora": [0.5, 0.5]},
        "idA__moB": {"base": [0.6], "lora": [0.2]},
        "idB__moA": {"base": [0.4], "lora": [0.9]},
    }
    write_store(
        tmp_path,
        TABLE1_METHODS[:2],
        cases,
        prompts,
        lambda label, c, p, f: vals[c][label][p] if f == "clip_i" else 0.5,
    )
    rep = build_report(tmp_path, "r", breakdowns=("case", "identity", "motion"))
    per = {t.id: t for t in rep.tables}
    ident = per["per_identity"]
    assert ident.rows == ["idA | base", "idA | lora", "idB | base", "idB | lora"]
    assert ident.cells[("idA | base", "clip_i")].mean == pytest.approx((0.2 + 0.6) / 2)
    assert ident.cells[("idA | lora", "clip_i")].mean == pytest.approx((0.5 + 0.2) / 2)
    assert ident.expected("idA | base") == 3 and ident.expected("idB | base") == 1
    marks = ident.rank_marks()  # ranked within each identity
    assert marks[("idA | base", "clip_i")] == "best" and marks[("idB | lora", "clip_i")] == "best"
    motion = per["per_motion"]
    assert motion.cells[("moA | lora", "clip_i")].mean == pytest.approx((0.5 + 0.9) / 2)
    case = per["per_case"]
    assert case.cells[("idA__moA | base", "clip_i")].mean == pytest.approx(0.2)
    md = render(case, "markdown")
    assert md.splitlines()[4].startswith("| case | method |")  # after the title and caption
    rows = json.loads(render_report(rep.tables, "json"))["rows"]
    assert {r["group"] for r in rows if r["table"] == "per_motion"} == {"moA", "moB"}


# ---- output formats parse ---------------------------------------------------------------------


def _strip_math(text):
    return re.sub(r"\$[^$]*\$", "", text)


def _check_latex(tex):
    """A compiler-free check: balanced braces, matched environments, every row has as many
    cells as the tabular spec has columns."""
    depth = 0
    for i, ch in enumerate(tex):
        if ch in "{}" and (i == 0 or tex[i - 1] != "\\"):
            depth += 1 if ch == "{" else -1
            assert depth >= 0, f"unbalanced '}}' at {i}"
    assert depth == 0
    assert tex.count("$") % 2 == 0
    begins = re.findall(r"\\begin\{(\w+)\}", tex)
    ends = re.findall(r"\\end\{(\w+)\}", tex)
    assert sorted(begins) == sorted(ends)
    spec = re.search(r"\\begin\{tabular\}\{([lcr]+)\}", tex).group(1)
    body = tex.split("\\midrule", 1)[1].split("\\bottomrule", 1)[0]
    header = tex.split("\\toprule", 1)[1].split("\\midrule", 1)[0]
    rows = [r for r in (header + body).split("\\\\") if r.strip()]
    assert rows
    for row in rows:
        cells = re.split(r"(?<!\\)&", _strip_math(row))
        assert len(cells) == len(spec), row


def _check_markdown(md):
    lines = [ln for ln in md.splitlines() if ln.startswith("|")]
    unescaped = [len(re.findall(r"(?<!\\)\|", ln)) for ln in lines]
    assert len(set(unescaped)) == 1, "rows with different cell counts"
    assert re.fullmatch(r"\|(-{3}:?\|)+", lines[1].replace("---:", "---:")), lines[1]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines]


def test_every_format_parses_and_round_trips(tmp_path):
    # labels with characters every format must escape
    methods = TABLE1_METHODS + [
        ("lora[rank=8,alpha=16]", "lora", {"rank": 8}),
        ("dualreal[controller=false]", "dualreal", {"controller": False}),
    ]
    write_store(
        tmp_path,
        methods,
        CASES,
        PROMPTS,
        lambda label, c, p, f: (len(label) % 7) / 10 + 0.01 * p,
        skip={("lora", "idB__moB", 0)},
    )
    rep = build_report(tmp_path, "r", breakdowns=("identity",))
    for table in rep.tables:
        cells = _check_markdown(render(table, "markdown"))
        assert cells[0][-1] == "n" and len(cells) == 2 + len(table.rows)
        _check_latex(render(table, "latex"))
        parsed = list(csv.DictReader(io.StringIO(render(table, "csv"))))
        assert [r["method"] for r in parsed] == [table.methods[r] for r in table.rows]
        for row, rec in zip(table.rows, parsed, strict=True):
            for col in table.columns:
                mean = table.cells[(row, col.field)].mean
                assert (rec[col.field] == "" and mean is None) or float(
                    rec[col.field]
                ) == pytest.approx(mean)
                assert rec[f"{col.field}_complete"] == str(table.cells[(row, col.field)].complete)
        doc = json.loads(render(table, "json"))
        assert doc["id"] == table.id and len(doc["rows"]) == len(table.rows)
        assert [c["field"] for c in doc["columns"]] == [c.field for c in table.columns]
    doc = json.loads(render_report(rep.tables, "json", {"run_id": "r"}))
    assert [t["id"] for t in doc["tables"]] == ["table1", "table2", "per_identity"]
    assert doc["run_id"] == "r" and {r["table"] for r in doc["rows"]} == {
        "table1",
        "table2",
        "per_identity",
    }
    all_csv = list(csv.DictReader(io.StringIO(render_report(rep.tables, "csv"))))
    assert len(all_csv) == len(doc["rows"])
    from rich.console import Console

    console = Console(record=True, width=250)
    for t in render_report(rep.tables, "rich"):
        console.print(t)
    text = console.export_text()
    assert "lora[rank=8,alpha=16]" in text  # rich markup characters escaped, not swallowed


def test_lead_aggregate_api_still_works():
    recs = [
        {"method": "m", "case_id": "A", "prompt_index": 0, "seed": 0, "metrics": {"clip_t": 0.5}}
    ]
    table = aggregate(recs, [c for c in metric_columns() if c.field == "clip_t"])
    assert table.rows == ["m"] and table.cells[("m", "clip_t")].mean == 0.5


# ---- published numbers ------------------------------------------------------------------------


def test_paper_numbers_as_transcribed():
    """The shipped published numbers hold values quoted from the paper's Tables 1-3
    (../shared/data/paper/tables.csv), under the variant keys the paper's rows stand for."""
    paper = load_paper_results()
    assert paper.transcribed and paper.source["arxiv"] == "2505.02192"

    def value(table, key, field):
        return paper.values(table, key)[1][field]

    # Table 1: "CogVideoX-5B" is the sequential full fine-tune, not the untuned backbone
    assert paper.values("table1", "sequential")[0] == "CogVideoX-5B (sequential full fine-tune)"
    assert value("table1", "sequential", "clip_t") == 0.336
    assert paper.values("table1", "base") is None  # Table 1 has no row for the backbone
    assert value("table1", "dualreal", "clip_i") == 0.629
    assert value("table1", "dualreal", "dino_i") == 0.551
    assert value("table1", "dualreal", "dynamic_degree") == 14.96
    assert value("table1", "dualreal", "dynamic_degree_dataset_dev") == 2.94
    assert value("table1", "lora", "dynamic_degree_dataset_dev") == 13.32
    assert value("table1", "dreamvideo", "dynamic_degree") == 8.841
    assert value("table1", "motionbooth", "temporal_flickering") == 0.962
    assert paper.dataset_dynamic_degree("table1") == 12.02
    assert "average Dynamic Degree of 12.02" in paper.tables["table1"]["caption"]
    # Table 2: the ablation subset's 9.04; the printing slips kept as printed, with a note
    assert paper.dataset_dynamic_degree("table2") == paper.dataset_dynamic_degree("table3") == 9.04
    assert value("table2", "dualreal[dual_aware=false]", "dynamic_degree") == 3.51
    assert value("table2", "dualreal[num_groups=1]", "dynamic_degree_dataset_dev") == -3.12
    assert (
        "-3.21"
        in paper.row("table2", "dualreal[num_groups=1]")["notes"]["dynamic_degree_dataset_dev"]
    )
    assert value("table2", "dualreal[controller=false]", "dynamic_degree_dataset_dev") == -3.31
    assert value("table2", "dualreal", "temporal_flickering") is None  # not in Table 2
    # Table 3: n = 1 is Table 2's "w/o Weight Groups", printed with the arithmetic's -3.21
    assert paper.values("table3", "dualreal[num_groups=1]")[0] == "n=1"
    assert value("table3", "dualreal[num_groups=1]", "dynamic_degree_dataset_dev") == -3.21
    assert value("table3", "dualreal[num_groups=42]", "dino_i") == 0.706
    assert paper.values("table3", "dualreal")[0] == "ours(n=7)"
    # the published deviation is the row's mean minus the dataset average (but the two slips)
    for tid in ("table1", "table2", "table3"):
        for key in paper.published_variants(tid):
            name, vals = paper.values(tid, key)
            arithmetic = vals["dynamic_degree"] - paper.dataset_dynamic_degree(tid)
            slip = (tid, name) in {
                ("table2", "w/o Weight Groups"),
                ("table2", "w/o StageBlender Controller"),
            }
            assert (abs(arithmetic - vals["dynamic_degree_dataset_dev"]) < 0.006) != slip, name


def test_paper_file_equals_the_transcribed_csv():
    """Every value of the shipped file equals the shared copy of the paper's tables."""
    root = os.environ.get("DUALREAL_BENCH_DATA")
    if not root or not (Path(root) / "paper" / "tables.csv").is_file():
        pytest.skip("DUALREAL_BENCH_DATA (with paper/tables.csv) is not set")
    paper = load_paper_results()
    with open(Path(root) / "paper" / "tables.csv", encoding="utf-8") as f:
        csv_rows = list(csv.DictReader(f))
    assert len(csv_rows) == sum(len(paper.published_variants(t)) for t in paper.tables)
    for row in csv_rows:
        tid = f"table{row['table']}"
        (key,) = [
            r["variant"] for r in paper.tables[tid]["rows"] if r.get("paper_name") == row["row"]
        ]
        _, vals = paper.values(tid, key)
        for field, text in row.items():
            if field in ("table", "suite", "row"):
                continue
            mine = vals["dynamic_degree_dataset_dev" if field == "dynamic_degree_dev" else field]
            assert mine == (float(text) if text else None), (tid, row["row"], field)
        assert paper.tables[tid]["suite"] == row["suite"]


def _untranscribed(tmp_path):
    doc = json.loads(load_paper_results().path.read_text())
    doc["status"] = "not transcribed: test"
    path = tmp_path / "untranscribed.json"
    path.write_text(json.dumps(doc))
    return path


def test_compare_paper_says_when_numbers_are_missing(table1_store, tmp_path, capsys):
    from dualreal_bench.cli import main

    args = ["report", "--output-dir", str(table1_store), "--run-id", "r", "--compare-paper"]
    path = _untranscribed(tmp_path)
    assert main([*args, "--paper-file", str(path), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "published numbers: not transcribed" in out and "↳ paper" not in out


def test_compare_paper_with_published_values(table1_store, tmp_path):
    paper = json.loads(load_paper_results().path.read_text())
    rows = paper["tables"]["table1"]["rows"]
    for row in rows:
        row["values"] = None if row["values"] is None else dict.fromkeys(row["values"])
    by_key = {r["variant"]: r for r in rows}
    by_key["dualreal"]["paper_name"] = "DualReal (Ours)"
    by_key["dualreal"]["values"].update(
        clip_i=65.0, dynamic_degree=0.45, dynamic_degree_dataset_dev=0.12
    )
    paper["tables"]["table1"]["scale"] = {"clip_i": 0.01}  # printed as a percentage
    path = tmp_path / "paper.json"
    path.write_text(json.dumps(paper))
    rep = build_report(table1_store, "r", compare_paper=True, paper_file=path)
    t1 = rep.tables[0]
    assert t1.paper["dualreal"]["clip_i"] == pytest.approx(0.65)
    md = render(t1, "markdown")
    assert "| ↳ paper (DualReal (Ours)) | - | 0.6500 |" in md
    assert "| ↳ Δ | - | +0.0500 |" in md  # 0.7 measured - 0.65 published
    # DD 0.60 measured, deviation +0.10 (reference clips average 0.5); published 0.45 (+0.12)
    assert "0.45 (+0.12)" in md and "+0.15 (-0.02)" in md
    assert "(paper: 12.02)" in md  # the published dataset average beside the measured one
    flat = {r["method"]: r for r in json.loads(render(t1, "json"))["rows"]}
    assert flat["dualreal"]["clip_i_delta"] == pytest.approx(0.05)
    assert flat["dualreal"]["dynamic_degree_dataset_dev_delta"] == pytest.approx(-0.02)
    assert flat["dualreal"]["dynamic_degree_dataset_avg"] == pytest.approx(0.5)
    assert flat["dualreal"]["dynamic_degree_dataset_avg_paper"] == 12.02
    assert (
        flat["lora"]["clip_i_paper"] is None and flat["dualreal"]["paper_name"] == "DualReal (Ours)"
    )
    _check_latex(render(t1, "latex"))
    assert _check_markdown(md)
    # published on suite "paper": a run on another suite is told it is not the same cases
    write_store(tmp_path / "s", TABLE1_METHODS, CASES, PROMPTS, known_value, suite="ablation")
    other = build_report(tmp_path / "s", "r", compare_paper=True, paper_file=path).tables[0]
    assert any("not a reproduction check" in n for n in other.notes)


def test_compare_paper_missing_methods_render_in_every_format(tmp_path):
    """The shipped numbers beside a run that has only some of the paper's methods, one of
    them in another protocol (lora[fusion=delta_sum]): the published rows it lacks show with
    empty measured cells; no format fails; no measured row is paired with another variant."""
    from rich.console import Console

    from dualreal_bench.report import render_html_table

    methods = [
        ("base", "base", {}, "base"),
        ("lora[fusion]", "lora", {"fusion": "delta_sum"}, "lora[fusion=delta_sum]"),
        ("dualreal", "dualreal", {}, "dualreal"),
    ]
    write_store(tmp_path, methods, CASES, PROMPTS, lambda *a: 0.5)
    rep = build_report(tmp_path, "r", compare_paper=True)
    (t1,) = rep.tables
    shown = [t1.label(r) for r in t1.rows]
    # the paper's order; motionbooth (no method yet) and lora as the paper ran it: not run here
    assert shown == [
        "base",
        "motionbooth",
        "lora",
        "lora[fusion=delta_sum]",
        "sequential",
        "dreamvideo",
        "dualreal",
    ]
    assert t1.unmeasured == {
        f"paper:{k}" for k in ("motionbooth", "lora", "sequential", "dreamvideo")
    }
    assert "lora[fusion]" not in t1.paper  # another protocol: no published row beside it
    # the paper's DreamVideo ran on another backbone: said once, under the table
    assert sum("ModelScopeT2V V1.5" in n for n in t1.notes) == 1
    assert t1.paper["paper:lora"]["dynamic_degree"] == 25.34
    assert t1.paper["dualreal"]["clip_i"] == 0.629
    md = render(t1, "markdown")
    cells = _check_markdown(md)
    mb = cells[[c[0] for c in cells].index("motionbooth")]
    # the paper's 7 columns, then the 4 of motion fidelity (issue 15: beyond the paper)
    assert mb[1:] == ["-"] * 11 + ["not run"]
    mb_paper = cells[[c[0] for c in cells].index("motionbooth") + 1]
    assert mb_paper[0] == "↳ paper (MotionBooth)" and mb_paper[1] == "0.3170"
    assert mb_paper[7] == "10.95 (-1.07)"
    assert mb_paper[8:12] == ["-"] * 4  # no published value of a measure beyond the paper
    # nothing measured: no difference row under it; the measured DualReal row has one
    names = [c[0] for c in cells]
    assert names[names.index("motionbooth") + 2] == "lora"
    assert names[names.index("dualreal") + 2] == "↳ Δ"
    _check_latex(render(t1, "latex"))
    flat = {r["name"]: r for r in json.loads(render(t1, "json"))["rows"]}
    assert flat["motionbooth"]["method"] is None and flat["motionbooth"]["clip_t"] is None
    assert flat["motionbooth"]["clip_t_paper"] == 0.317
    assert flat["lora[fusion=delta_sum]"]["clip_t_paper"] is None
    csv_rows = list(csv.DictReader(io.StringIO(render(t1, "csv"))))
    assert [r["name"] for r in csv_rows] == shown
    html_text = render_html_table(t1)
    assert "motionbooth" in html_text and "not run" in html_text
    console = Console(width=250, record=True, file=io.StringIO())
    console.print(render(t1, "rich"))
    text = console.export_text()
    assert "motionbooth" in text and "↳ paper (MotionBooth)" in text and "not run" in text
    for fmt in ("markdown", "latex", "csv", "json"):
        assert render_report(rep.tables, fmt)


def test_cli_report_tables_and_bad_inputs(table1_store, capsys):
    from dualreal_bench.cli import main

    assert (
        main(["report", "--output-dir", str(table1_store), "--format", "json", "--per-motion"]) == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert [t["id"] for t in doc["tables"]] == ["table1", "per_motion"]
    assert doc["runs"] == [{"run_id": "r", "suite": "paper", "profile": "cogvideox-5b"}]
    assert main(["report", "--output-dir", str(table1_store), "--methods", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    out = table1_store / "t.tex"
    assert (
        main(["report", "--output-dir", str(table1_store), "--format", "latex", "--out", str(out)])
        == 0
    )
    _check_latex(out.read_text())


# ---- the paper's dynamic-degree deviation -------------------------------------------------------


def _dd_store(root, suite, cases, prompts, references, dd, methods):
    """dd: label -> case id -> per-prompt dynamic degrees; every record carries its motion's
    reference clips and the per-video absolute deviation the evaluator writes."""

    def value(label, case_id, p, field):
        motion = case_id.partition("__")[2]
        clips = references[motion]
        if field == "dynamic_degree":
            return dd[label][case_id][p]
        if field == "dynamic_degree_dev":
            return abs(dd[label][case_id][p] - sum(clips.values()) / len(clips))
        return 0.5

    write_store(root, methods, cases, prompts, value, suite=suite, references=references)


def test_dd_deviation_is_signed_and_between_averages_paper_suite(tmp_path):
    """The paper's 50-pair suite shape: motions shared by several pairs count their clips once.
    Dataset average (10 + 12 + 14 + 12.08) / 4 = 12.02; DualReal's mean DD over cases
    (15 + 15 + 14.88) / 3 = 14.96, so its deviation is +2.94 (as the paper's Table 1 row),
    where the mean of per-case deviations from each motion's own mean would be 2.9333."""
    cases = [("i1", "mA"), ("i2", "mB"), ("i3", "mA")]
    prompts = {"i1__mA": 2, "i2__mB": 1, "i3__mA": 1}
    references = {"mA": {"a1.avi": 10.0, "a2.avi": 12.0, "a3.avi": 14.0}, "mB": {"b1.avi": 12.08}}
    dd = {
        "dualreal": {"i1__mA": [14.0, 16.0], "i2__mB": [15.0], "i3__mA": [14.88]},
        "lora": {"i1__mA": [25.0, 25.0], "i2__mB": [26.0], "i3__mA": [25.04]},
    }
    methods = [("lora", "lora", {}, "lora"), ("dualreal", "dualreal", {}, "dualreal")]
    _dd_store(tmp_path, "paper", cases, prompts, references, dd, methods)
    (t1,) = build_report(tmp_path, "r").tables
    assert t1.dataset_dd["dualreal"].mean == pytest.approx(12.02)
    assert t1.dataset_dd["dualreal"].n_clips == 4
    dev = t1.cells[("dualreal", "dynamic_degree_dataset_dev")]
    assert t1.cells[("dualreal", "dynamic_degree")].mean == pytest.approx(14.96)
    assert dev.mean == pytest.approx(2.94) and dev.complete
    lora = t1.cells[("lora", "dynamic_degree_dataset_dev")].mean
    assert lora == pytest.approx((25.0 + 26.0 + 25.04) / 3 - 12.02)  # +13.33
    # the per-video absolute deviation stays a secondary field: (3 + 2.92 + 2.88) / 3
    assert t1.cells[("dualreal", "dynamic_degree_dev")].mean == pytest.approx(8.8 / 3)
    assert t1.rank_marks()[("dualreal", "dynamic_degree")] == "best"  # |+2.94| < |+13.33|
    md = render(t1, "markdown")
    assert "| dualreal |" in md and "**14.96 (+2.94)**" in md and "25.35 (+13.33)" in md
    assert "average a Dynamic Degree of 12.02 (4 reference clips of 2 motions)" in md
    latex_caption = next(
        ln for ln in render(t1, "latex").splitlines() if ln.startswith("\\caption")
    )
    assert "cogvideox-5b. The motion clips of these cases average a Dynamic Degree of 12.02" in (
        latex_caption
    )
    row = {r["method"]: r for r in json.loads(render(t1, "json"))["rows"]}["dualreal"]
    assert row["dynamic_degree_dataset_dev"] == pytest.approx(2.94)
    assert row["dynamic_degree_dataset_avg"] == pytest.approx(12.02)
    assert row["dynamic_degree_dev"] == pytest.approx(8.8 / 3)


def test_dd_deviation_ablation_suite_and_breakdown(tmp_path):
    """The ablation subset's shape: (8 + 9 + 10.12) / 3 = 9.04; DualReal (6 + 6.5 + 6.52) / 3
    = 6.34 -> -2.70, the controller ablation 5.70 -> -3.34; Table 2 ranks by |deviation|;
    a per-motion breakdown takes each motion's own clips (mC: 6.25 - 8.5 = -2.25)."""
    cases = [("j1", "mC"), ("j2", "mC"), ("j3", "mD")]
    prompts = {c: 1 for c in ("j1__mC", "j2__mC", "j3__mD")}
    references = {"mC": {"c1.avi": 8.0, "c2.avi": 9.0}, "mD": {"d1.avi": 10.12}}
    dd = {
        "dualreal": {"j1__mC": [6.0], "j2__mC": [6.5], "j3__mD": [6.52]},
        "noctl": {"j1__mC": [5.7], "j2__mC": [5.7], "j3__mD": [5.7]},
    }
    methods = [
        ("dualreal", "dualreal", {}, "dualreal"),
        ("noctl", "dualreal", {}, "dualreal[controller=false]"),
    ]
    _dd_store(tmp_path, "ablation", cases, prompts, references, dd, methods)
    rep = build_report(tmp_path, "r", breakdowns=("motion",))
    t2 = {t.id: t for t in rep.tables}["table2"]
    assert t2.dataset_dd["noctl"].mean == pytest.approx(9.04)
    assert t2.cells[("dualreal", "dynamic_degree_dataset_dev")].mean == pytest.approx(-2.70)
    assert t2.cells[("noctl", "dynamic_degree_dataset_dev")].mean == pytest.approx(-3.34)
    marks = t2.rank_marks()
    assert marks[("dualreal", "dynamic_degree")] == "best"
    assert marks[("noctl", "dynamic_degree")] == "second"
    md = render(t2, "markdown")
    assert "**6.34 (-2.70)**" in md and "<u>5.70 (-3.34)</u>" in md
    assert "9.04 (3 reference clips of 2 motions)" in md
    per = {t.id: t for t in rep.tables}["per_motion"]
    cell = per.cells[("mC | dualreal", "dynamic_degree_dataset_dev")]
    assert cell.mean == pytest.approx(6.25 - 8.5)
    assert per.cells[("mD | noctl", "dynamic_degree_dataset_dev")].mean == pytest.approx(
        5.7 - 10.12
    )


def test_dreamvideo_rows_say_the_papers_ran_on_another_backbone(tmp_path):
    methods = [("dreamvideo", "dreamvideo", {}, "dreamvideo"), ("lora", "lora", {}, "lora")]
    write_store(tmp_path, methods, CASES, PROMPTS, lambda *a: 0.5)
    (t1,) = build_report(tmp_path, "r").tables
    (note,) = [n for n in t1.notes if "ModelScopeT2V" in n]
    assert note.startswith("dreamvideo: the paper's DreamVideo row ran VGen's DreamVideo")
    assert "comparable in protocol, not in backbone" in note
    write_store(tmp_path / "no", methods[1:], CASES, PROMPTS, lambda *a: 0.5)
    (t1,) = build_report(tmp_path / "no", "r").tables
    assert not any("ModelScopeT2V" in n for n in t1.notes)


def test_dd_deviation_without_reference_values_is_unknown(tmp_path):
    """Records that carry no reference clips (written before the evaluator stored them): the
    deviation is unknown, never a number made up."""
    write_store(tmp_path, TABLE1_METHODS, CASES, PROMPTS, known_value)
    for path in (tmp_path / "r").rglob("records/*.json"):
        rec = json.loads(path.read_text())
        rec["metric_constants"] = {}
        path.write_text(json.dumps(rec))
    (t1,) = build_report(tmp_path, "r").tables
    assert t1.cells[("lora", "dynamic_degree_dataset_dev")].mean is None
    assert ("lora", "dynamic_degree") not in t1.rank_marks()
    assert "0.45 (-)" in render(t1, "markdown")
