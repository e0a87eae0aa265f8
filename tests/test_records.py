"""The record schema (dualreal_bench.records): round trips, real records, invalid records, and
the method description every record carries."""

from __future__ import annotations

import dataclasses
import json
import math

import fake_components as fc
import pytest

from dualreal_bench.errors import ConfigError, DataError
from dualreal_bench.io import read_json
from dualreal_bench.metrics import METRIC_FIELDS
from dualreal_bench.records import Record, make_record, read_record, schema_keys
from dualreal_bench.runner import RunConfig, Runner
from dualreal_bench.store import ResultStore

VALUES = {
    "clip_t": 0.25,
    "clip_i": 0.5,
    "dino_i": 0.75,
    "temporal_flickering": 0.9,
    "temporal_consistency": 0.99,
    "motion_smoothness": 0.95,
    "dynamic_degree": 3.5,
    "dynamic_degree_dev": 1.25,
    "dynamic_degree_bool": True,
}


def _record(**changes) -> Record:
    case = fc.make_cases(1, 2)[0]
    kwargs = dict(
        run_id="r",
        method_label="m[k=1]",
        method={"name": "m", "class": "x:M", "config": {"k": 1}, "variant": "m[k=1]"},
        case=case,
        prompt_index=1,
        prompt=case.prompts[1],
        seed=3,
        video="m/id0__mo0/videos/p001_s3.mp4",
        metric_values=VALUES,
        metric_versions={"clip_t": "1.0"},
        metric_constants={"dd_top_fraction": 0.05},
        backbone={"profile": "fake"},
        suite="smoke",
        timestamps={"evaluated": "2026-01-01T00:00:00+00:00"},
        extra={"profile": "tiny", "seeds": {"generation": 3}},
    )
    return make_record(**{**kwargs, **changes})


def test_record_round_trips_through_dict_and_json():
    rec = _record()
    doc = rec.to_dict()
    assert Record.from_dict(doc) == rec
    assert Record.from_dict(json.loads(json.dumps(doc))).to_dict() == doc
    # the schema's keys and the extras, at the top level, as the runner has always written them
    assert set(doc) == set(schema_keys()) | {"profile", "seeds"}
    assert doc["method"] == "m[k=1]" and doc["method_name"] == "m"
    assert doc["configs"]["method"]["variant"] == "m[k=1]" == rec.method_description["variant"]
    assert (doc["case_id"], doc["identity"], doc["motion"]) == ("id0__mo0", "id0", "mo0")
    assert rec.key == ("m[k=1]", "id0__mo0", 1, 3)
    assert doc["metrics"] == VALUES and doc["versions"]["python"]


def test_a_real_record_from_a_smoke_run_parses(smoke_run):
    out, run_id, _ = smoke_run
    paths = sorted((out / run_id).glob("*/*/records/*.json"))
    assert len(paths) == 1
    doc = read_json(paths[0])
    rec = read_record(paths[0])
    assert rec.to_dict() == doc
    assert set(rec.metrics) == set(METRIC_FIELDS)
    assert all(isinstance(v, float) for k, v in rec.metrics.items() if k != "dynamic_degree_bool")
    assert isinstance(rec.metrics["dynamic_degree_bool"], bool)
    assert rec.method == "base" and rec.method_description["name"] == "base"
    assert {"run_config", "seeds", "determinism", "execution", "profile"} <= set(rec.extra)


def _write(tmp_path, doc, text=None):
    path = tmp_path / "p000_s0.json"
    path.write_text(text if text is not None else json.dumps(doc))
    return path


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["metrics"].update(clip_t="nan"), "metrics.clip_t = 'nan': not a finite"),
        (lambda d: d["metrics"].update(clip_i=float("nan")), "metrics.clip_i = nan: not a finite"),
        (lambda d: d["metrics"].update(dino_i=math.inf), "metrics.dino_i = inf"),
        (lambda d: d["metrics"].update(dino_i="0.5"), "metrics.dino_i = '0.5'"),
        # a metric that could not be computed is no record (issue 14: never averaged over fewer)
        (lambda d: d["metrics"].update(dino_i=None), "metrics.dino_i = None: not a finite"),
        (lambda d: d.pop("prompt"), "record lacks the key(s) prompt"),
        (lambda d: d.update(prompt_index="1"), "field 'prompt_index' is '1'"),
        (lambda d: d.update(seed=True), "field 'seed' is True"),
        (lambda d: d.update(metrics=[0.5]), "field 'metrics' is [0.5]"),
    ],
)
def test_invalid_records_are_rejected_naming_the_file_and_field(tmp_path, change, message):
    doc = _record().to_dict()
    change(doc)
    path = _write(tmp_path, doc)
    with pytest.raises(DataError) as err:
        read_record(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_truncated_json_is_rejected_naming_the_file(tmp_path):
    text = json.dumps(_record().to_dict())
    path = _write(tmp_path, None, text[: len(text) // 2])
    with pytest.raises(DataError, match="unreadable JSON") as err:
        read_record(path)
    assert str(err.value).startswith(f"{path}: ")


def test_an_invalid_metric_is_never_written(tmp_path):
    """make_record refuses a NaN (no record exists to drop it from later); the store's readers
    refuse one written by hand, naming the file."""
    with pytest.raises(DataError, match="metrics.clip_t = nan"):
        _record(metric_values={**VALUES, "clip_t": float("nan")})
    store = ResultStore(tmp_path, "r")
    doc = _record().to_dict()
    with pytest.raises(DataError, match="metrics.clip_t = 'oops'"):
        store.write_record("m", doc["case_id"], {**doc, "metrics": {"clip_t": "oops"}})
    assert not list(tmp_path.rglob("*.json"))
    path = store.case_dir("m", doc["case_id"]).record(1, 3)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**doc, "metrics": {"clip_t": 0.5, "clip_i": "nan"}}))
    with pytest.raises(DataError, match="metrics.clip_i = 'nan'") as err:
        list(store.iter_records())
    assert str(path) in str(err.value)
    # a report's reader names it and leaves it out instead (issue 14)
    seen = []
    assert list(store.iter_records(on_invalid=lambda p, msg: seen.append((p, msg)))) == []
    assert seen == [(path, f"{path}: metrics.clip_i = 'nan': not a finite number or a boolean")]


# ---- the method's description in method.json and every record -----------------------------------


@dataclasses.dataclass
class ResolvingConfig(fc.CountingConfig):
    layers: int | None = None  # None: one per backbone layer (resolved when built)


class ResolvingMethod(fc.CountingMethod):
    """Resolves a config value from the backbone it is built on, as DualReal's group count."""

    name = "resolving"
    config_class = ResolvingConfig
    BUILT = {"n": 0}

    def __init__(self, backbone, config=None):
        super().__init__(backbone, config)
        ResolvingMethod.BUILT["n"] += 1
        self.layers = self.config.layers or backbone.fingerprint()["transformer"]["num_layers"]

    def describe(self):
        info = super().describe()
        info["config"] = {**info["config"], "layers": self.layers}
        info["variant"] = f"resolving[layers={self.layers}]"
        return info


def _resolving_run(tmp_path, backbone=None, evaluator=None):
    config = RunConfig(method="test_records:ResolvingMethod", output_dir=str(tmp_path),
                       progress=False, run_id="r")  # fmt: skip
    return Runner(config, backbone=backbone or fc.FakeBackbone(),
                  evaluator=evaluator or fc.FakeEvaluator(), cases=fc.make_cases(2, 2))  # fmt: skip


def test_records_and_method_json_carry_the_constructed_methods_description(tmp_path):
    ResolvingMethod.BUILT["n"] = 0
    _resolving_run(tmp_path).run()
    method_json = read_json(tmp_path / "r" / "resolving" / "method.json")
    # what was asked (layers unset) and what the built method resolved it to (2 layers)
    assert method_json["config"]["layers"] is None
    assert method_json["description"]["config"]["layers"] == 2
    assert method_json["description"]["variant"] == "resolving[layers=2]"
    records = list(ResultStore(tmp_path, "r").iter_records())
    assert len(records) == 4
    assert all(r["configs"]["method"] == method_json["description"] for r in records)

    # a resumed run that only evaluates builds no method: the records still carry the description
    for path in (tmp_path / "r").glob("resolving/*/records/*.json"):
        path.unlink()
    built = ResolvingMethod.BUILT["n"]
    summary = _resolving_run(tmp_path).run()
    assert summary.counts == {"evaluated": 4} and ResolvingMethod.BUILT["n"] == built
    again = list(ResultStore(tmp_path, "r").iter_records())
    assert [r["configs"]["method"] for r in again] == [r["configs"]["method"] for r in records]


class _ThreeLayers(fc.FakeBackbone):
    def fingerprint(self):
        return {"profile": "fake", "transformer": {"num_layers": 3}}


def test_another_resolved_variant_under_the_same_label_is_refused(tmp_path):
    _resolving_run(tmp_path).run()
    for path in (tmp_path / "r").glob("resolving/*/*/p*_s*.*"):
        path.unlink()  # videos and records: the next run generates, so builds the method
    refused = r"method.json: method 'resolving' .* constructed as 'resolving\[layers=2\]', now as"
    with pytest.raises(ConfigError, match=refused + r" 'resolving\[layers=3\]'.*pass --name"):
        _resolving_run(tmp_path, backbone=_ThreeLayers()).run()
