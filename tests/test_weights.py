"""The one weights finder (dualreal_bench.weights): every entry of the table names what is
missing, where it looked and how to get it; weights are found in a weights directory, the
fixed caches, a Hugging Face cache snapshot (wherever the environment puts it) and at a path
the user gives; nothing is downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dualreal_bench import weights as W
from dualreal_bench.errors import RegistryError, WeightsError
from dualreal_bench.weights import WEIGHTS, KnownWeights, find_weights, hf_hub_cache

#: what the rest of the benchmark relies on finding in the table
EXPECTED_KEYS = {
    "clip-vit-b-32-openai",
    "clip-vit-b-32-laion400m",
    "dino-vits16",
    "raft-large",
    "amt-s",
    "open-clip-vit-h-14",
    "cogvideox-2b",
    "cogvideox-5b",
    "videomae-kinetics",
}


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    """HOME, the torch hub and the Hugging Face cache all empty, under tmp_path."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path


def fake_snapshot(cache: Path, repo: str, files: dict[str, bytes], commit: str = "0" * 40) -> Path:
    """A Hugging Face hub cache entry as huggingface_hub lays it out: refs/main -> commit,
    snapshots/<commit>/<files> (real caches symlink blobs; plain files read the same)."""
    entry = cache / f"models--{repo.replace('/', '--')}"
    (entry / "refs").mkdir(parents=True, exist_ok=True)
    (entry / "refs" / "main").write_text(commit)
    snapshot = entry / "snapshots" / commit
    for name, data in files.items():
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).write_bytes(data)
    return snapshot


def test_the_table_holds_the_known_weights():
    assert EXPECTED_KEYS <= set(WEIGHTS)
    for key, entry in WEIGHTS.items():
        assert entry.key == key and entry.name and entry.used_for and entry.hint, key
        assert entry.files or entry.caches or entry.hf_repo, f"{key}: looked for nowhere"
        assert entry.kind in ("file", "directory")
        assert not entry.hf_repo or entry.repo_files, f"{key}: which files of the repository?"
    assert WEIGHTS["cogvideox-5b"].hf_repo == "THUDM/CogVideoX-5b"
    assert WEIGHTS["open-clip-vit-h-14"].hf_repo == "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
    assert "raft-things.pth" in WEIGHTS["raft-large"].files


@pytest.mark.parametrize("key", sorted(WEIGHTS))
def test_missing_weights_name_the_files_the_places_and_the_hint(empty_home, key):
    entry = WEIGHTS[key]
    weights_dir = empty_home / "weights"
    with pytest.raises(WeightsError) as err:
        find_weights(key, weights_dir=weights_dir)
    message = str(err.value)
    assert "\n" not in message and entry.name in message and entry.used_for in message
    for name in entry.files:  # every file name, in the weights directory
        assert str(weights_dir / name) in message
    for location in entry.caches:  # every fixed cache, expanded under this HOME / TORCH_HOME
        expanded = location.replace("~", str(empty_home / "home")).replace(
            "$TORCH_HUB", str(empty_home / "torch" / "hub" / "checkpoints")
        )
        assert expanded in message, (location, message)
    if entry.hf_repo:  # the Hugging Face cache, where HF_HOME puts it, and the repository
        assert str(empty_home / "hf" / "hub") in message and entry.hf_repo in message
        assert all(f in message for f in entry.repo_files)
    assert f"To get them: {entry.how_to_get()}." in message
    assert "No download is attempted" in message and entry.option in message


@pytest.mark.parametrize("key", sorted(k for k in WEIGHTS if WEIGHTS[k].hf_repo))
def test_a_hugging_face_cache_snapshot_is_found(empty_home, monkeypatch, key):
    entry = WEIGHTS[key]
    cache = empty_home / "elsewhere" / "hub"
    snapshot = fake_snapshot(cache, entry.hf_repo, {entry.repo_files[-1]: b"weights"})
    monkeypatch.setenv("HUGGINGFACE_HUB_CACHE", str(cache))  # the legacy variable, read now
    assert hf_hub_cache() == cache
    found = find_weights(key)
    expected = snapshot / entry.repo_files[-1] if entry.kind == "file" else snapshot
    assert found == expected and found.exists()
    # HF_HUB_CACHE wins over the legacy variable and over HF_HOME
    monkeypatch.setenv("HF_HUB_CACHE", str(empty_home / "nothing"))
    with pytest.raises(WeightsError, match=str(empty_home / "nothing")):
        find_weights(key)


@pytest.mark.parametrize("key", sorted(k for k in WEIGHTS if WEIGHTS[k].files))
def test_a_weights_directory_is_searched_under_each_name(empty_home, key):
    entry = WEIGHTS[key]
    weights_dir = empty_home / "weights"
    target = weights_dir / entry.files[-1]  # the last accepted name: all names are tried
    if entry.kind == "directory":
        target.mkdir(parents=True)
        with pytest.raises(WeightsError, match=r"\(no config\.json\)"):  # an incomplete folder
            find_weights(key, weights_dir=weights_dir)
        (target / entry.repo_files[0]).write_text("{}")
    else:
        target.parent.mkdir(parents=True)
        target.write_bytes(b"weights")
    assert find_weights(key, weights_dir=weights_dir) == target


def test_fixed_caches_are_read_where_the_environment_puts_them(empty_home, monkeypatch):
    amt = empty_home / "home" / ".cache" / "vbench" / "amt_model" / "amt-s.pth"
    amt.parent.mkdir(parents=True)
    amt.write_bytes(b"amt")
    assert find_weights("amt-s") == amt
    raft = empty_home / "torch" / "hub" / "checkpoints" / "raft_large_C_T_V1-22a6c225.pth"
    raft.parent.mkdir(parents=True)
    raft.write_bytes(b"raft")
    assert find_weights("raft-large") == raft
    # HF_HOME, else XDG_CACHE_HOME/huggingface, as huggingface_hub reads them
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(empty_home / "xdg"))
    assert hf_hub_cache() == empty_home / "xdg" / "huggingface" / "hub"


def test_a_path_the_user_gives_is_the_only_place_looked_at(empty_home):
    folder = empty_home / "mine"
    folder.mkdir()
    # a directory holding a checkpoint: the checkpoint
    (folder / "open_clip_pytorch_model.bin").write_bytes(b"x")
    found = find_weights("open-clip-vit-h-14", path=folder)
    assert found == folder / "open_clip_pytorch_model.bin"
    assert find_weights("open-clip-vit-h-14", path=str(found)) == found
    with pytest.raises(WeightsError) as err:
        find_weights("open-clip-vit-h-14", path=empty_home / "open_clip.bin")
    message = str(err.value)
    assert message.startswith(
        f"{empty_home / 'open_clip.bin'}: OpenCLIP ViT-H-14 checkpoint not found"
    )
    assert "image_encoder_path" in message and "huggingface-cli download laion/" in message
    with pytest.raises(WeightsError, match=r"no OpenCLIP ViT-H-14 there \(no open_clip_model"):
        find_weights("open-clip-vit-h-14", path=empty_home)
    # a file where a folder of files is expected
    with pytest.raises(WeightsError, match="is a file; VideoMAE-Base Kinetics-400 is a directory"):
        find_weights("videomae-kinetics", path=found)


def test_another_repository_is_looked_up_and_named(empty_home, monkeypatch):
    cache = empty_home / "hf" / "hub"
    with pytest.raises(WeightsError) as err:
        find_weights("cogvideox-5b", hf_repo="me/cogvideox-5b-ft")
    assert "me/cogvideox-5b-ft" in str(err.value) and "hf download me/cogvideox-5b-ft" in str(
        err.value
    )
    snapshot = fake_snapshot(cache, "me/cogvideox-5b-ft", {"transformer/config.json": b"{}"})
    assert find_weights("cogvideox-5b", hf_repo="me/cogvideox-5b-ft") == snapshot


def test_the_backbone_finds_a_cached_snapshot(empty_home):
    from dualreal_bench.backbone import BackboneConfig, get_profile
    from dualreal_bench.backbone.loading import SUBFOLDERS, resolve_model_dir

    files = {f"{sub}/{name or 'spiece.model'}": b"{}" for sub, name in SUBFOLDERS.items()}
    snapshot = fake_snapshot(empty_home / "hf" / "hub", "THUDM/CogVideoX-2b", files)
    config = BackboneConfig.for_profile("cogvideox-2b", ["device=cpu"])
    assert resolve_model_dir(config, get_profile("cogvideox-2b")) == snapshot
    (snapshot / "vae" / "config.json").unlink()
    with pytest.raises(WeightsError, match="vae"):
        resolve_model_dir(config, get_profile("cogvideox-2b"))


def test_adding_weights_is_one_entry(empty_home, monkeypatch):
    monkeypatch.setattr(W, "WEIGHTS", dict(WEIGHTS))
    entry = KnownWeights(
        "sam-vit-b",
        "SAM ViT-B",
        "a test's subject masks",
        files=("sam_vit_b_01ec64.pth",),
        hint="download sam_vit_b_01ec64.pth",
    )
    W.register(entry)
    with pytest.raises(WeightsError, match="already in the table"):
        W.register(entry)
    with pytest.raises(WeightsError, match=r"To get them: download sam_vit_b_01ec64\.pth\."):
        W.find_weights("sam-vit-b", weights_dir=empty_home)
    (empty_home / "sam_vit_b_01ec64.pth").write_bytes(b"sam")
    assert (
        W.find_weights("sam-vit-b", weights_dir=empty_home) == empty_home / "sam_vit_b_01ec64.pth"
    )
    with pytest.raises(
        RegistryError, match="unknown weights 'sam-vit-h'. Did you mean 'sam-vit-b'"
    ):
        W.find_weights("sam-vit-h")


def test_the_identity_is_the_content_wherever_it_lies(tmp_path):
    a, b = tmp_path / "a.pth", tmp_path / "b" / "a.pth"
    b.parent.mkdir()
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    assert W.weights_identity("k", a) == W.weights_identity("k", b)
    b.write_bytes(b"other")
    os.utime(b, (1, 1))
    assert W.weights_identity("k", a) != W.weights_identity("k", b)
