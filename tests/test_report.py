"""Report tables from synthetic stores with known values: Tables 1-3, marks, counts, incomplete
cells, breakdowns, every output format, and the published numbers."""

from __future__ import annotations

import csv
import io
import json
import re

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
):
    """methods: [(label, name, config)] or [(label, name, config, variant key)] (a run that
    records Method.describe()'s variant; without one, a record written before it);
    cases: [(identity, motion)]; prompts: case_id -> count;
    value(label, case_id, prompt_index, field) -> float | None; skip: {(label, case_id, prompt_index)}
    records not written; traces: label -> (steps, groups) array saved as controller_w_id."""
    from dualreal_bench.media import write_video

    store = ResultStore(root, run_id)
    store.init_run({"suite": suite, "profile": profile})
    for k, (label, name, config, *variant) in enumerate(methods):
        described = {"name": name, "config": config, **({"variant": variant[0]} if variant else {})}
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
                        "configs": {"method": described, "backbone": None},
                        "run_config": {"data_root": str(data_root) if data_root else None},
                        "profile": profile,
                    }
                    store.write_record(label, case_id, rec)
    return store


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
DEV = {"base": 0.30, "lora": 0.05, "dualreal": 0.10}  # dynamic-degree deviation, lower is better


def known_value(label, case_id, p, field):
    if field == "clip_i":
        return KNOWN[label][case_id][p]
    if field == "dynamic_degree_dev":
        return DEV[label]
    if field == "dynamic_degree":
        return 0.5
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
    # the dynamic-degree column is ranked by the deviation (lower is better)
    assert (
        marks[("lora", "dynamic_degree")] == "best"
        and marks[("dualreal", "dynamic_degree")] == "second"
    )
    # ties share the mark
    assert {marks[(m, "clip_t")] for m in t1.rows} == {"best"}
    md = render(t1, "markdown")
    dual_line = next(line for line in md.splitlines() if line.startswith("| dualreal |"))
    assert "**0.7000**" in dual_line and "<u>0.1000</u>" not in dual_line
    assert "<u>0.5000 (0.1000)</u>" in dual_line  # dynamic degree with its deviation in parentheses
    assert dual_line.rstrip().endswith("| 4/4 |")


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
    assert tables["table1"] == [("e", "e"), ("b", "b"), ("c", "c")]
    assert tables["table2"] == [
        ("f", "w/o dual-aware adaptation (f)"),
        ("a", "w/o StageBlender controller (a)"),
        ("b", "DualReal (full) (b)"),
        ("c", "DualReal (full) (c)"),
    ]
    assert tables["table3"] == [("b", "n = 7 (b)"), ("c", "n = 7 (c)"), ("d", "n = 42 (d)")]


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
    assert tables["table1"] == [("full", "full")]
    assert [lb for lb, _ in tables["table2"]] == ["sep", "noctl", "n1", "full"]
    assert tables["table3"] == [("n1", "n = 1 (n1)"), ("full", "n = 2 (full)")]


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
    rec["configs"]["method"].update(variant="dualreal[num_groups=2]", label="DualReal, n = 2")
    (variant,) = method_variants([rec]).values()
    assert variant.key == "dualreal[num_groups=2]" and variant.params == {"num_groups": 2}
    assert variant.label == "DualReal, n = 2"
    rec["configs"]["method"].update(
        name="lora", variant='lora[placeholder=strip,target_modules=["to_q","to_v"]]'
    )
    (variant,) = method_variants([rec]).values()
    assert variant.name == "lora"
    assert variant.params == {"placeholder": "strip", "target_modules": ["to_q", "to_v"]}


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
    assert [t3.label(r) for r in t3.rows] == ["n = 1 (dualreal[num_groups=1])", "n = 2 (dualreal)"]
    assert not any("n = 7" in t3.label(r) for r in t3.rows)
    assert t3.variants["dualreal"] == "dualreal[num_groups=2]"
    # Table 1 shows the default run, and says it is not the paper's n = 7
    assert tables["table1"].rows == ["base", "dualreal"]
    assert any("n = 7 weight groups" in n for n in tables["table1"].notes)
    # the controller ablation is Table 2's controller row, beside the default run (n = 2) as
    # the full method
    t2 = tables["table2"]
    assert t2.rows == ["dualreal[controller=false]", "dualreal[num_groups=1]", "dualreal"]
    assert t2.label("dualreal[controller=false]").startswith("w/o StageBlender controller")
    assert t2.label("dualreal") == "DualReal (full) (dualreal)"

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
    assert [t3.label(r) for r in t3.rows] == ["n = 1 (dualreal[num_groups=1])", "n = 7 (dualreal)"]


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
    assert t2.label("fixed_weights_run").startswith("w/o StageBlender controller")
    assert t2.variants["fixed_weights_run"] == "dualreal[controller=false]"
    t3 = tables["table3"]
    assert t3.rows == [
        "dualreal[num_groups=1]",
        "dualreal[num_groups=2]",
        "dualreal",
        "dualreal[num_groups=42]",
    ]
    assert [t3.label(r).split(" (")[0] for r in t3.rows] == ["n = 1", "n = 2", "n = 7", "n = 42"]
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
    assert md.splitlines()[2].startswith("| case | method |")
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
    """The shipped file is checked against what was read from the paper.

    The paper's table values could not be read from the sources the project could reach
    (see the file's 'status'), so the file ships the structure with every value null and the
    status says so; once transcribed, replace this test's expectations by a few values quoted
    from the paper's Tables 1-3 (e.g. DualReal's CLIP-I and DINO-I in Table 1).
    """
    paper = load_paper_results()
    assert paper.status.startswith("not transcribed: ") and not paper.transcribed
    assert paper.source["arxiv"] == "2505.02192"
    keys = {tid: [r["variant"] for r in t["rows"]] for tid, t in paper.tables.items()}
    assert keys == {
        "table1": ["base", "lora", "sequential", "dreamvideo", "dualreal"],
        "table2": [
            "dualreal[dual_aware=false]",
            "dualreal[controller=false]",
            "dualreal[num_groups=1]",
            "dualreal",
        ],
        "table3": [
            "dualreal[num_groups=1]",
            "dualreal[num_groups=2]",
            "dualreal",
            "dualreal[num_groups=42]",
        ],
    }
    for table in paper.tables.values():
        for row in table["rows"]:
            assert set(row["values"]) == set(FIELDS) - {"dynamic_degree_bool"}
            assert all(v is None for v in row["values"].values()), (
                "a value without a transcription source"
            )


def test_compare_paper_says_when_numbers_are_missing(table1_store, capsys):
    from dualreal_bench.cli import main

    assert (
        main(
            [
                "report",
                "--output-dir",
                str(table1_store),
                "--run-id",
                "r",
                "--compare-paper",
                "--format",
                "markdown",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "published numbers: not transcribed" in out and "↳ paper" not in out


def test_compare_paper_with_published_values(table1_store, tmp_path):
    paper = json.loads(load_paper_results().path.read_text())
    paper["status"] = "transcribed"
    rows = paper["tables"]["table1"]["rows"]
    for row in rows:
        row["values"] = dict.fromkeys(row["values"])
    by_key = {r["variant"]: r for r in rows}
    by_key["dualreal"]["paper_name"] = "DualReal (Ours)"
    by_key["dualreal"]["values"].update(clip_i=65.0, dynamic_degree=0.45, dynamic_degree_dev=0.12)
    paper["tables"]["table1"]["scale"] = {"clip_i": 0.01}  # printed as a percentage
    path = tmp_path / "paper.json"
    path.write_text(json.dumps(paper))
    rep = build_report(table1_store, "r", compare_paper=True, paper_file=path)
    t1 = rep.tables[0]
    assert t1.paper["dualreal"]["clip_i"] == pytest.approx(0.65)
    md = render(t1, "markdown")
    assert "| ↳ paper (DualReal (Ours)) | - | 0.6500 |" in md
    assert "| ↳ Δ | - | +0.0500 |" in md  # 0.7 measured - 0.65 published
    assert "0.4500 (0.1200)" in md and "+0.0500 (-0.0200)" in md
    flat = {r["method"]: r for r in json.loads(render(t1, "json"))["rows"]}
    assert flat["dualreal"]["clip_i_delta"] == pytest.approx(0.05)
    assert (
        flat["lora"]["clip_i_paper"] is None and flat["dualreal"]["paper_name"] == "DualReal (Ours)"
    )
    _check_latex(render(t1, "latex"))
    assert _check_markdown(md)
    # published on suite "paper": a run on another suite is told it is not the same cases
    write_store(tmp_path / "s", TABLE1_METHODS, CASES, PROMPTS, known_value, suite="ablation")
    other = build_report(tmp_path / "s", "r", compare_paper=True, paper_file=path).tables[0]
    assert any("not a reproduction check" in n for n in other.notes)


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
