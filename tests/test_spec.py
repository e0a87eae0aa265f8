"""Benchmark spec: manifests, suites, prompts (authors' files and the generator), data roots."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dualreal_bench import spec
from dualreal_bench.errors import BenchmarkError, ConfigError, DataError, RegistryError

SHARED = os.environ.get("DUALREAL_BENCH_DATA")
needs_data = pytest.mark.skipif(
    not SHARED or not Path(SHARED, "dualreal_benchmark").is_dir(),
    reason="DUALREAL_BENCH_DATA unset or without dualreal_benchmark/ (point it at ../shared/data)",
)

# The two ablation pairs whose motion is not the identity's paper pair: the authors wrote no
# prompts for them, so the benchmark generates them.
ABLATION_GENERATED = {"cat3__playingGuitar", "plushie_teddybear__SkateBoarding-Front"}

# sha256 of "\n".join(prompts) of generated cases: a regression fixture (changing the generator
# or prompt_vocab.json changes it; then bump the vocabulary version and update these).
GENERATED_SHA256 = {
    ("dog6", "Archery"): "31417e4694fe86404fa1bb4498c9048cea45d7dd1cfe5f5e9916d9c9c1435905",
    (
        "plushie_pink",
        "Kicking-Front",
    ): "c44dd253ce4afda2353035170e2d08d8375d573307166043fcdfe07d8e7db72e",
    ("cat3", "playingGuitar"): "c44d9e247ea7f87f8b5fd8b5b1c4894af3e28bf4e5e19c2d2437026a321dd208",
}


def _sha(prompts) -> str:
    return hashlib.sha256("\n".join(prompts).encode("utf-8")).hexdigest()


def _fake_root(tmp_path: Path, identities=(), motions=(), name="root") -> Path:
    """A data root with placeholder media files (listing only; nothing decodes them)."""
    root = tmp_path / name
    for ident in identities:
        d = root / "identities" / ident / "images"
        d.mkdir(parents=True)
        (d / "00.jpg").write_bytes(b"x")
        (d / "notes.txt").write_text("not an image")
    for motion in motions:
        d = root / "motions" / motion / "videos"
        d.mkdir(parents=True)
        (d / "clip.avi").write_bytes(b"x")
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(spec.DATA_ROOT_ENV, raising=False)


# ---- manifests and suites -------------------------------------------------------------------
def test_manifest_counts():
    identities, motions, suites = spec.load_identities(), spec.load_motions(), spec.load_suites()
    assert len(identities) == 50
    assert len(motions) == 21
    assert [m.source for m in motions.values()].count("UCF101") == 14
    assert [m.source for m in motions.values()].count("UCF Sports") == 7
    assert list(suites) == ["paper", "ablation", "full", "smoke"]
    assert suites["paper"].num_cases == 50
    assert suites["ablation"].num_cases == 10
    assert suites["full"].num_cases == 1050
    assert suites["smoke"].num_cases == 1
    assert suites["paper"].num_videos == 2500 and suites["full"].num_videos == 52500
    for name in ("paper", "ablation", "full"):
        assert suites[name].prompts_per_case == 50 and not suites[name].uses_sample_data


def test_paper_pairs_are_one_motion_per_identity_and_define_prompt_motion():
    identities = spec.load_identities()
    paper = spec.load_suites()["paper"].pairs
    assert sorted(i for i, _ in paper) == sorted(identities)  # every identity exactly once
    for ident, motion in paper:
        assert identities[ident].prompt_motion == motion
    assert len({m for _, m in paper}) == 21  # the paper pairs cover every motion


def test_ablation_is_the_papers_subset():
    identities = spec.load_identities()
    ablation = spec.load_suites()["ablation"].pairs
    off_pair = {f"{i}__{m}" for i, m in ablation if identities[i].prompt_motion != m}
    assert off_pair == ABLATION_GENERATED
    assert ("toy_gnome", "TaiChi") in ablation and ("cat", "PullUps") in ablation


def test_full_is_the_cross_product_in_stable_order():
    identities, motions = spec.load_identities(), spec.load_motions()
    pairs = spec.load_suites()["full"].pairs
    assert pairs == tuple((i, m) for i in identities for m in motions)
    assert len(set(pairs)) == 1050
    assert pairs[0] == ("plushie_2", "Archery") and pairs[-1] == ("toy", "Swing-SideAngle")


def test_manifest_facts():
    identities, motions = spec.load_identities(), spec.load_motions()
    assert identities["plushie_bear"].class_noun == "plushie bear"
    assert identities["plushie_pink"].class_noun == "plushie pink"  # "plushie pink * bear"
    assert identities["plushie_grey_sloth"].class_noun == "plushie grey sloth"
    assert identities["actionfigure_2"].class_noun == "actionfigure"
    assert identities["cat2"].class_noun == "cat" and identities["dog3"].category == "dog"
    assert {i.category for i in identities.values()} <= set(spec.CATEGORIES)
    assert motions["playingGuitar"].action == "playing guitar"
    assert motions["Kicking-Front"].action == "kicking a football"
    assert motions["Swing-Bench"].action == "swinging on a pommel horse"
    assert motions["Swing-SideAngle"].action == "swinging on a high bar"
    assert motions["Kicking-Front"].source == "UCF Sports"
    for name in list(identities) + list(motions):
        assert spec.NAME_RE.match(name) and ".." not in name
    smoke = spec.load_suites()["smoke"]
    assert smoke.prompts_per_case == 2 and smoke.uses_sample_data
    assert smoke.identities[0].name == "smoke_toy" and smoke.identities[0].class_noun == "toy"
    assert smoke.motions[0].name == "smoke_pendulum"
    assert smoke.motions[0].action == "swinging back and forth"


def test_unknown_suite_suggests():
    with pytest.raises(RegistryError, match="did you mean 'paper'"):
        spec.get_suite("papr")


def test_describe_rows(no_env):
    ids = spec.describe_identities()
    assert len(ids) == 50 and set(ids[0]) == {"name", "class_noun", "category", "prompt_motion"}
    mots = spec.describe_motions()
    assert len(mots) == 21 and set(mots[0]) == {"name", "action", "source"}
    suites = {r["name"]: r for r in spec.describe_suites()}
    assert suites["full"]["cases"] == 1050 and suites["smoke"]["prompts_per_case"] == 2


# ---- the generator --------------------------------------------------------------------------
def test_generated_prompts_for_the_whole_matrix():
    identities, motions = spec.load_identities(), spec.load_motions()
    for ident in identities.values():
        for motion in motions.values():
            prompts = spec.generate_prompts(ident, motion)
            assert len(prompts) == 50 and len(set(prompts)) == 50, (ident.name, motion.name)
            for p in prompts:
                assert p.count(f"{ident.class_noun} *") == 1, p
                assert p.count("*") == 1, p
                assert f"is {motion.action}" in p, p
                assert motion.mentioned_in(p), p
                assert p == " ".join(p.split())


def test_generated_prompts_mix_decorations_and_environments():
    ident, motion = spec.load_identities()["dog6"], spec.load_motions()["Archery"]
    vocab = spec.load_prompt_vocab()
    prompts = spec.generate_prompts(ident, motion)
    with_deco = sum(any(d in p for d in vocab.decorations) for p in prompts)
    with_env = sum(any(e in p for e in vocab.environments) for p in prompts)
    both = sum(
        any(d in p for d in vocab.decorations) and any(e in p for e in vocab.environments)
        for p in prompts
    )
    assert 0 < both < with_deco < 50 and both < with_env < 50
    assert any(p.startswith("a dog *") for p in prompts)
    assert any(p.startswith("dog *") for p in prompts)
    actionfigure = spec.load_identities()["actionfigure_2"]
    assert any(
        p.startswith("an actionfigure *") for p in spec.generate_prompts(actionfigure, motion)
    )


def test_generated_prompts_are_deterministic():
    identities, motions = spec.load_identities(), spec.load_motions()
    for (i, m), digest in GENERATED_SHA256.items():
        prompts = spec.generate_prompts(identities[i], motions[m])
        assert prompts == spec.generate_prompts(identities[i], motions[m])
        assert _sha(prompts) == digest, (i, m)
    # prefix property: asking for fewer gives the first ones
    dog6, archery = identities["dog6"], motions["Archery"]
    assert spec.generate_prompts(dog6, archery, 7) == spec.generate_prompts(dog6, archery)[:7]
    # different pairs differ
    assert spec.generate_prompts(dog6, archery) != spec.generate_prompts(identities["dog"], archery)


def test_generated_prompts_are_the_same_in_another_process():
    code = (
        "import hashlib; from dualreal_bench import spec; "
        "p = spec.generate_prompts(spec.load_identities()['dog6'], spec.load_motions()['Archery']); "
        "print(hashlib.sha256('\\n'.join(p).encode()).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == GENERATED_SHA256["dog6", "Archery"]


def test_generator_rejects_bad_counts():
    ident, motion = spec.load_identities()["dog"], spec.load_motions()["Surfing"]
    with pytest.raises(ConfigError):
        spec.generate_prompts(ident, motion, 0)
    assert len(spec.generate_prompts(ident, motion, 200)) == 200


# ---- the real data ----------------------------------------------------------------------------
@needs_data
def test_shared_data_case_lists_match_the_manifests():
    root = Path(SHARED, "dualreal_benchmark")
    suites = spec.load_suites()
    for file, suite in (("paper_cases.csv", "paper"), ("ablation_cases.csv", "ablation")):
        with open(root / file, newline="", encoding="utf-8") as fh:
            pairs = tuple((r["identity"], r["motion"]) for r in csv.DictReader(fh))
        assert pairs == suites[suite].pairs
    assert sorted(p.name for p in (root / "identities").iterdir() if p.is_dir()) == sorted(
        spec.load_identities()
    )
    assert sorted(p.name for p in (root / "motions").iterdir()) == sorted(spec.load_motions())


@needs_data
def test_authors_prompt_files_parse_and_match_their_motions():
    root = Path(SHARED, "dualreal_benchmark")
    identities, motions = spec.load_identities(), spec.load_motions()
    for ident in identities.values():
        path = root / "identities" / ident.name / spec.AUTHORS_PROMPT_FILE
        prompts = spec.read_prompt_file(path, expected=50)
        assert len(prompts) == 50
        motion = motions[ident.prompt_motion]
        assert all(motion.mentioned_in(p) for p in prompts), ident.name
        assert spec.prompts_match_motion(prompts, motion)
        for p in prompts:  # the manifest's class noun is how the file writes the subject
            subject = re.sub(r"^(a|an) ", "", p.split(" *")[0].lower())
            assert subject == ident.class_noun, (ident.name, p)
    # the keyword check discriminates: a file written for another motion does not pass
    cat3 = spec.read_prompt_file(root / "identities" / "cat3" / spec.AUTHORS_PROMPT_FILE)
    assert not spec.prompts_match_motion(cat3, motions["playingGuitar"])
    teddy = spec.read_prompt_file(root / "identities/plushie_teddybear" / spec.AUTHORS_PROMPT_FILE)
    assert not spec.prompts_match_motion(teddy, motions["SkateBoarding-Front"])


@needs_data
def test_motion_keywords_recognise_the_datasets_own_captions():
    root = Path(SHARED, "dualreal_benchmark")
    for motion in spec.load_motions().values():
        caption = (root / "motions" / motion.name / "prompts.txt").read_text().splitlines()[0]
        assert motion.mentioned_in(caption), (motion.name, caption)


@needs_data
def test_paper_suite_uses_the_authors_prompts():
    cases = spec.build_cases("paper", data_root=SHARED)
    assert len(cases) == 50
    for case in cases:
        path = Path(
            SHARED, "dualreal_benchmark", "identities", case.identity.name, spec.AUTHORS_PROMPT_FILE
        )
        assert case.prompt_source == f"authors:{path}"
        assert case.prompts == spec.read_prompt_file(path)
        assert case.case_id == f"{case.identity.name}__{case.motion.name}"
        assert len(case.image_paths()) >= 3
        assert all(p.suffix == ".jpg" for p in case.image_paths())
        assert len(case.video_paths()) >= 1
    assert cases[0].data_root == Path(SHARED, "dualreal_benchmark")


@needs_data
def test_ablation_generates_only_for_pairs_the_authors_did_not_write(monkeypatch):
    monkeypatch.setenv(spec.DATA_ROOT_ENV, SHARED)
    cases = spec.build_cases("ablation")
    generated = {c.case_id for c in cases if c.prompt_source == "generated"}
    assert generated == ABLATION_GENERATED
    by_id = {c.case_id: c for c in cases}
    assert _sha(by_id["cat3__playingGuitar"].prompts) == GENERATED_SHA256["cat3", "playingGuitar"]
    for case in cases:
        assert len(case.prompts) == 50 and spec.prompts_match_motion(case.prompts, case.motion)


@needs_data
def test_full_suite_and_num_prompts():
    cases = spec.build_cases("full", data_root=SHARED, num_prompts=3)
    assert len(cases) == 1050
    assert len({c.case_id for c in cases}) == 1050
    assert sum(c.prompt_source.startswith("authors:") for c in cases) == 50
    assert all(len(c.prompts) == 3 for c in cases)
    full = {c.case_id: c for c in spec.build_cases("ablation", data_root=SHARED)}
    for c in cases:
        if c.case_id in full:
            assert c.prompts == full[c.case_id].prompts[:3]


@needs_data
def test_custom_case_outside_the_manifest():
    # black_poodle lives in <shared>/identities, Archery in <shared>/dualreal_benchmark/motions
    case = spec.build_case("black_poodle", "Archery", SHARED)
    assert case.identity.class_noun == "black poodle" and case.identity.prompt_motion is None
    assert case.prompt_source == "generated" and len(case.prompts) == 50
    assert case.identity_dir == Path(SHARED, "identities", "black_poodle")
    assert [p.suffix for p in case.image_paths()] == [".png"] * 5
    named = spec.build_case("black_poodle", "Archery", SHARED, class_noun="poodle", num_prompts=4)
    assert len(named.prompts) == 4 and all("poodle *" in p for p in named.prompts)
    # a manifest identity on its paper motion gets its authors' prompts
    assert spec.build_case("dog6", "playingGuitar", SHARED).prompt_source.startswith("authors:")


@needs_data
def test_describe_with_a_data_root():
    rows = {r["name"]: r for r in spec.describe_identities(SHARED)}
    assert rows["cat"]["images"] >= 3 and rows["cat"]["authors_prompts"] is True
    assert {r["name"]: r for r in spec.describe_motions(SHARED)}["Lifting"]["clips"] == 2


# ---- prompt files, data roots and bad input ---------------------------------------------------
def test_user_prompt_file_is_used_for_every_case(tmp_path, no_env):
    root = _fake_root(tmp_path, ["dog6", "cat3"], ["playingGuitar", "TaiChi"])
    pf = tmp_path / "mine.txt"
    pf.write_text(
        "\ufeffdog * is dancing\r\na cat * is  sleeping on a sofa\n\n\n", encoding="utf-8"
    )
    suite = spec.Suite("t", "", (("dog6", "playingGuitar"), ("cat3", "TaiChi")))
    cases = spec.build_cases(suite, data_root=root, prompt_file=pf)
    assert [c.prompts for c in cases] == [("dog * is dancing", "a cat * is sleeping on a sofa")] * 2
    assert all(c.prompt_source == f"file:{pf}" for c in cases)
    assert spec.build_cases(suite, data_root=root, prompt_file=pf, num_prompts=1)[0].prompts == (
        "dog * is dancing",
    )


def test_prompt_file_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("dog * at the caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=re.escape(str(bad)) + ".*not UTF-8"):
        spec.read_prompt_file(bad)
    gap = tmp_path / "gap.txt"
    gap.write_text("dog * is surfing\n\ndog * is skiing\n")
    with pytest.raises(DataError, match=re.escape(f"{gap}, line 2") + ".*empty line"):
        spec.read_prompt_file(gap)
    nostar = tmp_path / "nostar.txt"
    nostar.write_text("dog * is surfing\na dog is skiing\n")
    with pytest.raises(DataError, match=re.escape(f"{nostar}, line 2") + ".*placeholder"):
        spec.read_prompt_file(nostar)
    short = tmp_path / "short.txt"
    short.write_text("\n".join(f"dog * is surfing {k}" for k in range(49)))
    with pytest.raises(DataError, match=re.escape(str(short)) + ".*expected 50.*found 49"):
        spec.read_prompt_file(short, expected=50)
    with pytest.raises(DataError, match="missing.txt"):
        spec.read_prompt_file(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match="no prompts"):
        spec.read_prompt_file(empty)


def _authors_root(tmp_path: Path, lines: list[str]) -> Path:
    root = _fake_root(tmp_path, ["dog6"], ["playingGuitar"])
    (root / "identities" / "dog6" / spec.AUTHORS_PROMPT_FILE).write_text("\n".join(lines))
    return root


def test_authors_file_with_49_prompts_is_an_error(tmp_path):
    root = _authors_root(tmp_path, [f"dog * is playing guitar, take {k}" for k in range(49)])
    with pytest.raises(DataError, match=r"eval_pro_50\.txt: expected 50 .* found 49"):
        spec.build_case("dog6", "playingGuitar", root)


def test_authors_file_for_another_motion_falls_back_to_generated(tmp_path, caplog):
    root = _authors_root(tmp_path, [f"dog * is surfing, wave {k}" for k in range(50)])
    with caplog.at_level(logging.WARNING, logger="dualreal_bench.spec"):
        case = spec.build_case("dog6", "playingGuitar", root)
    assert case.prompt_source == "generated"
    assert "do not all mention motion 'playingGuitar'" in caplog.text
    good = _authors_root(tmp_path / "b", [f"dog * is playing guitar, take {k}" for k in range(50)])
    case = spec.build_case("dog6", "playingGuitar", good)
    assert case.prompt_source.startswith("authors:") and case.prompts[0].endswith("take 0")


def test_missing_authors_file_generates_with_a_warning(tmp_path, caplog):
    root = _fake_root(tmp_path, ["dog6"], ["playingGuitar"])
    with caplog.at_level(logging.WARNING, logger="dualreal_bench.spec"):
        case = spec.build_case("dog6", "playingGuitar", root)
    assert case.prompt_source == "generated" and "not found" in caplog.text
    assert case.prompts == spec.generate_prompts(case.identity, case.motion)


def test_data_root_resolution(tmp_path, monkeypatch, no_env):
    with pytest.raises(
        DataError, match="no data root: pass --data-root or set DUALREAL_BENCH_DATA"
    ):
        spec.build_cases("paper")
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "nope")) + " does not exist"):
        spec.build_cases("paper", data_root=tmp_path / "nope")
    monkeypatch.setenv(spec.DATA_ROOT_ENV, str(tmp_path / "gone"))
    with pytest.raises(DataError, match="DUALREAL_BENCH_DATA.*gone does not exist"):
        spec.resolve_data_root()
    outer = tmp_path / "outer"
    _fake_root(outer, ["dog"], ["Basketball"], name="dualreal_benchmark")
    assert spec.resolve_data_root(outer) == outer / "dualreal_benchmark"
    monkeypatch.setenv(spec.DATA_ROOT_ENV, str(outer))
    assert spec.resolve_data_root() == outer / "dualreal_benchmark"
    assert spec.resolve_data_root(tmp_path) == tmp_path  # explicit beats the env


def test_missing_identity_names_the_expected_path(tmp_path):
    root = _fake_root(tmp_path, ["dog"], ["Basketball"])
    with pytest.raises(DataError) as err:
        spec.build_cases("paper", data_root=root)
    assert str(root / "identities" / "plushie_2" / "images") in str(err.value)
    assert "more missing" in str(err.value)
    with pytest.raises(DataError, match=re.escape(str(root / "motions" / "Skiing" / "videos"))):
        spec.build_case("dog", "Skiing", root)


def test_traversal_names_are_rejected(tmp_path):
    root = _fake_root(tmp_path, ["dog"], ["Basketball"])
    for bad in ("../../x", "a/b", "..", ".hidden", "x..y", ""):
        with pytest.raises(ConfigError, match="invalid name"):
            spec.build_case(bad, "Basketball", root)
    with pytest.raises(ConfigError, match="invalid name"):
        spec.build_case("dog", "../Basketball", root)
    manifest = tmp_path / "identities.csv"
    manifest.write_text("name,class_noun,category,prompt_motion\n../../etc,dog,dog,Archery\n")
    with pytest.raises(ConfigError, match=re.escape(f"{manifest}, line 2") + ".*invalid name"):
        spec.load_identities(manifest)
    suites = tmp_path / "suites.json"
    suites.write_text(json.dumps({"suites": {"x": {"pairs": [["dog", "../Archery"]]}}}))
    with pytest.raises(ConfigError, match=re.escape(str(suites)) + ".*invalid name"):
        spec.load_suites(suites)


def test_bad_manifests(tmp_path):
    latin = tmp_path / "motions.csv"
    latin.write_bytes("name,action,source,keywords\nCaf\xe9,x,UCF101,x\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=re.escape(str(latin)) + ".*not UTF-8"):
        spec.load_motions(latin)
    dup = tmp_path / "dup.csv"
    dup.write_text("name,action,source,keywords\nA,x,UCF101,x\nA,y,UCF101,y\n")
    with pytest.raises(ConfigError, match="line 3: duplicate motion"):
        spec.load_motions(dup)
    cat = tmp_path / "ids.csv"
    cat.write_text("name,class_noun,category,prompt_motion\nx,dog,dragon,\n")
    with pytest.raises(ConfigError, match="category 'dragon'"):
        spec.load_identities(cat)
    unknown = tmp_path / "ids2.csv"
    unknown.write_text("name,class_noun,category,prompt_motion\nx,dog,dog,Dancing\n")
    with pytest.raises(ConfigError, match="unknown prompt_motion 'Dancing'"):
        spec.load_identities(unknown)
    header = tmp_path / "ids3.csv"
    header.write_text("name,noun\nx,dog\n")
    with pytest.raises(ConfigError, match="header"):
        spec.load_identities(header)


def test_num_prompts_must_be_positive(tmp_path):
    root = _fake_root(tmp_path, ["dog"], ["Basketball"])
    for bad in (0, -1, 2.5):
        with pytest.raises(ConfigError, match="num_prompts"):
            spec.build_case("dog", "Basketball", root, num_prompts=bad)


def test_case_media_listing(tmp_path):
    root = _fake_root(tmp_path, ["dog"], ["Basketball"])
    case = spec.build_case("dog", "Basketball", root, num_prompts=2)
    assert case.image_paths() == [root / "identities/dog/images/00.jpg"]
    assert case.video_paths() == [root / "motions/Basketball/videos/clip.avi"]
    (root / "identities/dog/images/00.jpg").unlink()
    with pytest.raises(DataError, match=re.escape(str(root / "identities/dog/images"))):
        case.image_paths()
    assert case.to_dict()["case_id"] == "dog__Basketball"


def test_custom_identity_class_noun_sources(tmp_path):
    root = _fake_root(tmp_path, ["red_robot_3", "duck"], ["Moonwalk-Side"])
    (root / "identities/duck/class.txt").write_text("rubber duck\n")
    (root / "motions/Moonwalk-Side/prompts.txt").write_text("a person is doing the moonwalk\n")
    case = spec.build_case("red_robot_3", "Moonwalk-Side", root, num_prompts=5)
    assert case.identity.class_noun == "red robot"
    assert case.motion.action == "doing the moonwalk" and case.motion.source == "custom"
    assert all("red robot * " in p and "doing the moonwalk" in p for p in case.prompts)
    assert spec.build_case("duck", "Moonwalk-Side", root).identity.class_noun == "rubber duck"
    assert spec.default_class_noun("dog6") == "dog"
    assert spec.default_action("playingGuitar") == "playing guitar"


def test_errors_are_benchmark_errors():
    assert issubclass(DataError, BenchmarkError) and issubclass(ConfigError, BenchmarkError)


# ---- smoke ------------------------------------------------------------------------------------
def test_smoke_suite(tmp_path):
    pytest.importorskip("dualreal_bench.sample_data", reason="sample_data.py not written yet")
    cases = spec.build_cases("smoke", data_root=tmp_path / "sample")
    assert len(cases) == 1
    (case,) = cases
    assert case.case_id == "smoke_toy__smoke_pendulum"
    assert case.prompt_source == "generated" and len(case.prompts) == 2
    assert all("toy *" in p and "swinging back and forth" in p for p in case.prompts)
    assert case.image_paths() and case.video_paths()
