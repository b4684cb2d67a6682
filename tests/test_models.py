"""The model registry on a public server: one load per checkpoint, an LRU budget, a source policy,
failures that are retried, private visitor models, and thread safety."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
from safetensors import safe_open

from sparse_demo.config import load_limits, load_settings
from sparse_demo.encoder import ModelLoadError
from sparse_demo.limits import folder_bytes
from sparse_demo.models import NOT_AVAILABLE, ModelRegistry, SourceRefused, check_weights_size
from sparse_demo.offline import DEMO_MODEL_NAME
from sparse_demo.ui.common import AppContext, UserError


def make_settings(tmp_path: Path, presets: list[dict] | None = None, default: str | None = None, **env: str):
    path = tmp_path / "presets.json"
    path.write_text(json.dumps({"default": default, "presets": presets or []}), encoding="utf-8")
    return load_settings({"SPARSE_DEMO_MODELS": str(path), "SPARSE_DEMO_DEVICE": "cpu", **env})


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def safetensors_bytes(folder: Path) -> int:
    """Bytes of every tensor stored in the folder's weight file (read from the file, not from torch)."""
    total = 0
    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        for name in f.keys():  # noqa: SIM118 - safe_open has no __iter__
            t = f.get_slice(name)
            n = 1
            for d in t.get_shape():
                n *= d
            total += n * {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}[t.get_dtype()]
    return total


# ---------------------------------------------------------------------- one load per checkpoint
@pytest.mark.slow
def test_every_spelling_of_a_folder_loads_once(tmp_path, tiny_model_dir):
    folder = copy_model(tiny_model_dir, tmp_path / "m" / "x")
    reg = ModelRegistry(make_settings(tmp_path))
    spellings = [str(folder), f"{tmp_path}/m/./x", f"{tmp_path}/m/././x", f"{tmp_path}/m/x/", f"{tmp_path}/m/../m/x"]
    encoders = [reg.get(s) for s in spellings]
    assert reg.loads == 1
    assert all(e is encoders[0] for e in encoders)


def test_a_preset_keeps_its_name_when_its_folder_was_typed_first(tmp_path, tiny_model_dir):
    """One checkpoint loads once, but the preset is shown under its own name, never a visitor's typed path (the
    name of whoever loaded the folder first), and the typed path keeps the encoder it got."""
    folder = copy_model(tiny_model_dir, tmp_path / "m" / "x")
    reg = ModelRegistry(make_settings(tmp_path, presets=[{"name": "the-preset", "source": str(folder)}]))
    typed = reg.get(str(folder))
    named = reg.get("the-preset")
    assert reg.loads == 1
    assert typed.name == str(folder) and named.name == "the-preset"
    assert named.model is typed.model and named.tokenizer is typed.tokenizer
    assert reg.get("the-preset") is named and reg.get(f"{tmp_path}/m/./x") is typed
    q = "당뇨병 치료 방법"
    assert named.encode([q])[0].vector.token_ids.tolist() == typed.encode([q])[0].vector.token_ids.tolist()


@pytest.mark.slow
def test_folder_rewritten_in_place_loads_again(tmp_path, tiny_model_dir, tiny_model_dir_b):
    folder = copy_model(tiny_model_dir, tmp_path / "x")
    reg = ModelRegistry(make_settings(tmp_path))
    first = reg.get(str(folder))
    shutil.copy(tiny_model_dir_b / "model.safetensors", folder / "model.safetensors")
    second = reg.get(str(folder))
    assert second is not first and reg.loads == 2


@pytest.mark.slow
def test_reregistering_a_name_serves_the_new_model(tmp_path, tiny_model_dir, tiny_model_dir_b):
    reg = ModelRegistry(make_settings(tmp_path))
    reg.register("mine", str(tiny_model_dir))
    a = reg.get("mine")
    reg.register("mine", str(tiny_model_dir_b))
    b = reg.get("mine")
    assert b is not a
    # the weights really are B's: the output projections differ
    assert not a.model.get_output_embeddings().weight.equal(b.model.get_output_embeddings().weight)


# ---------------------------------------------------------------------- LRU budget
@pytest.mark.slow
def test_lru_drops_the_least_recently_used_model(tmp_path, tiny_model_dir):
    folders = [copy_model(tiny_model_dir, tmp_path / f"m{i}") for i in range(3)]
    reg = ModelRegistry(make_settings(tmp_path, SPARSE_DEMO_MAX_MODELS="2"))
    a = reg.get(str(folders[0]))
    reg.get(str(folders[1]))
    assert reg.get(str(folders[0])) is a  # a is now the most recent
    reg.get(str(folders[2]))  # evicts folders[1]
    assert len(reg.cached) == 2 and reg.loads == 3
    assert reg.get(str(folders[0])) is a and reg.loads == 3
    reg.get(str(folders[1]))
    assert reg.loads == 4


@pytest.mark.slow
def test_lru_byte_budget(tmp_path, tiny_model_dir):
    one = safetensors_bytes(tiny_model_dir)
    budget_mb = 1.5 * one / 2**20  # room for one model, not two
    folders = [copy_model(tiny_model_dir, tmp_path / f"m{i}") for i in range(2)]
    reg = ModelRegistry(make_settings(tmp_path, SPARSE_DEMO_MODEL_CACHE_MB=f"{budget_mb:.6f}"))
    reg.get(str(folders[0]))
    assert reg.cached_bytes == pytest.approx(one, rel=0.05)  # parameters counted once (tied embeddings)
    reg.get(str(folders[1]))
    assert len(reg.cached) == 1


# ---------------------------------------------------------------------- failures
@pytest.mark.slow
def test_failed_preset_is_retried_after_timeout_or_refresh(tmp_path, tiny_model_dir):
    target = tmp_path / "later"
    presets = [{"name": "later", "source": str(target)}]
    reg = ModelRegistry(make_settings(tmp_path, presets, SPARSE_DEMO_RETRY_FAILED_S="3600"))
    with pytest.raises(ModelLoadError):
        reg.get("later")
    copy_model(tiny_model_dir, target)
    with pytest.raises(ModelLoadError):  # remembered for an hour...
        reg.get("later")
    assert any(s.error for s in reg.status())
    reg.refresh()  # ...unless *Refresh* forgets it
    assert reg.get("later") is not None
    assert not any(s.error for s in reg.status())

    reg0 = ModelRegistry(
        make_settings(tmp_path, [{"name": "x", "source": str(tmp_path / "x")}], SPARSE_DEMO_RETRY_FAILED_S="0")
    )
    with pytest.raises(ModelLoadError):
        reg0.get("x")
    copy_model(tiny_model_dir, tmp_path / "x")
    assert reg0.get("x") is not None  # timeout 0: retried at once


def test_typed_folder_failure_is_never_cached(tmp_path, tiny_model_dir):
    reg = ModelRegistry(make_settings(tmp_path))
    target = tmp_path / "typed"
    with pytest.raises(ModelLoadError):
        reg.get(str(target))
    copy_model(tiny_model_dir, target)
    assert reg.get(str(target)) is not None


# ---------------------------------------------------------------------- source policy
@pytest.fixture()
def public(tmp_path, tiny_model_dir):
    root = tmp_path / "allowed"
    copy_model(tiny_model_dir, root / "good")
    outside = copy_model(tiny_model_dir, tmp_path / "outside")
    (root / "afile.txt").write_text("x")
    settings = make_settings(
        tmp_path,
        SPARSE_DEMO_MODEL_SOURCES="public",
        SPARSE_DEMO_ALLOWED_ROOTS=str(root),
        SPARSE_DEMO_HUB_ALLOW="sewoong/*",
    )
    return ModelRegistry(settings), root, outside


@pytest.mark.slow
def test_public_mode_loads_only_under_allowed_roots(public):
    reg, root, _ = public
    assert reg.get(str(root / "good")) is not None
    assert reg.get(f"{root}/./good") is not None and reg.loads == 1


def test_public_mode_gives_one_message_for_missing_and_forbidden(public, tmp_path):
    reg, root, outside = public
    typed = [
        str(outside),
        "/etc",
        "/etc/passwd",
        f"{root}/../outside",
        "../outside",
        "../../etc",
        str(root / "missing"),
        "/nonexistent/folder",
        str(root / "afile.txt"),
        "~",
        "someone/else-model",
        "fine-tuned 05:36:32 (067f)",
    ]
    messages = set()
    for t in typed:
        with pytest.raises(SourceRefused) as info:
            reg.get(t)
        messages.add(str(info.value))
    assert messages == {NOT_AVAILABLE}


@pytest.mark.parametrize("linked", ["model.safetensors", "tokenizer.json", "config.json"])
def test_public_mode_refuses_a_file_linked_to_outside_the_root(public, linked):
    """A folder inside the allowed root whose weights / tokenizer / config file is a symlink to a file outside."""
    reg, root, outside = public
    folder = copy_model(outside, root / "linked")
    (folder / linked).unlink()
    (folder / linked).symlink_to(outside / linked)
    for typed in (str(folder), f"{root}/./linked"):
        with pytest.raises(SourceRefused) as info:
            reg.get(typed)
        assert str(info.value) == NOT_AVAILABLE
    assert reg.loads == 0


def test_public_mode_refuses_a_linked_subfolder_and_too_many_entries(public, monkeypatch):
    reg, root, outside = public
    folder = copy_model(root / "good", root / "withdir")
    (folder / "extra").symlink_to(outside, target_is_directory=True)  # a folder link pointing outside
    with pytest.raises(SourceRefused):
        reg.get(str(folder))
    nested = copy_model(root / "good", root / "nested")
    (nested / "sub").mkdir()
    (nested / "sub" / "weights.safetensors").symlink_to(outside / "model.safetensors")
    with pytest.raises(SourceRefused):
        reg.get(str(nested))
    from sparse_demo import models

    monkeypatch.setattr(models, "MAX_FOLDER_ENTRIES", 3)  # the good folder holds more than 3 files
    assert len(list((root / "good").iterdir())) > 3
    with pytest.raises(SourceRefused):
        reg.get(str(root / "good"))


@pytest.mark.slow
def test_a_link_that_stays_inside_the_root_is_fine(public):
    reg, root, _ = public
    folder = root / "shared-weights"
    folder.mkdir()
    for f in (root / "good").iterdir():
        (folder / f.name).symlink_to(f)  # every file links to the other allowed folder
    assert reg.get(str(folder)) is not None


@pytest.mark.slow
def test_any_mode_refuses_a_link_into_another_visitors_folder(tmp_path, tiny_model_dir):
    reg = ModelRegistry(make_settings(tmp_path))
    root = reg.add_private_root(tmp_path / "visitors")
    theirs = copy_model(tiny_model_dir, root / "sessionA" / "model")
    mine = copy_model(tiny_model_dir, tmp_path / "mine")
    (mine / "model.safetensors").unlink()
    (mine / "model.safetensors").symlink_to(theirs / "model.safetensors")
    with pytest.raises(SourceRefused):
        reg.get(str(mine))
    assert reg.get(str(mine), owned=[str(theirs)]) is not None  # A's own link to A's own weights


def test_public_mode_checks_hub_size_before_download(public, monkeypatch):
    reg, _, _ = public
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as info:  # allowlisted, but its size cannot be checked offline
        reg.get("sewoong/korean-neural-sparse-encoder-v26")
    assert "size could not be checked" in str(info.value) and not isinstance(info.value, SourceRefused)
    check_weights_size("a/b", 100, 100)
    with pytest.raises(ModelLoadError, match="2 MB.*at most 1 MB.*SPARSE_DEMO_HUB_MAX_MB"):
        check_weights_size("a/b", 2 * 2**20, 2**20)


@pytest.mark.slow
def test_private_root_needs_ownership_in_any_mode(tmp_path, tiny_model_dir):
    reg = ModelRegistry(make_settings(tmp_path))
    root = reg.add_private_root(tmp_path / "visitors")
    theirs = copy_model(tiny_model_dir, root / "sessionA" / "model")
    for typed in (str(theirs), f"{root}/sessionA/./model", f"{root}/sessionB/../sessionA/model"):
        with pytest.raises(SourceRefused):
            reg.get(typed)
    assert reg.get(str(theirs), owned=[str(theirs)]) is not None


def test_bad_sources_setting():
    with pytest.raises(ValueError, match="any, public"):
        load_settings({"SPARSE_DEMO_MODEL_SOURCES": "open"})
    with pytest.raises(ValueError, match="SPARSE_DEMO_MAX_MODELS"):
        load_settings({"SPARSE_DEMO_MAX_MODELS": "lots"})
    s = load_settings({"SPARSE_DEMO_MODEL_SOURCES": "public", "SPARSE_DEMO_MODEL_CACHE_MB": "10"})
    assert s.public and "SOURCES" not in s.preset_names and "CACHE_MB" not in s.preset_names


# ---------------------------------------------------------------------- threads
@pytest.mark.slow
def test_concurrent_register_names_and_get(tmp_path, tiny_model_dir):
    reg = ModelRegistry(make_settings(tmp_path))
    errors: list[BaseException] = []
    got = []

    def writer(i: int) -> None:
        try:
            for j in range(300):
                reg.register(f"m{i}-{j}", str(tiny_model_dir))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(300):
                _ = reg.names
                _ = reg.status_markdown() if len(reg.names) < 50 else None
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def loader() -> None:
        try:
            got.append(reg.get(str(tiny_model_dir)))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
    threads += [threading.Thread(target=reader) for _ in range(3)]
    threads += [threading.Thread(target=loader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(reg.names) == 900
    assert len({id(e) for e in got}) == 1 and reg.loads == 1


# ---------------------------------------------------------------------- visitors (AppContext)
@pytest.mark.slow
def test_visitor_models_are_private_and_removed(tmp_path, tiny_model_dir):
    ctx = AppContext.create(make_settings(tmp_path, [{"name": "base", "source": str(tiny_model_dir)}], "base"))
    folder_a = copy_model(tiny_model_dir, ctx.visitor_dir("sessionA") / "finetune-1")
    visitor_a = {"fine-tuned 05:36:32 (067f)": str(folder_a)}
    assert ctx.encoder("fine-tuned 05:36:32 (067f)", None, visitor_a) is not None
    assert "fine-tuned 05:36:32 (067f)" not in ctx.model_choices({})
    assert "fine-tuned 05:36:32 (067f)" not in ctx.registry.names
    # visitor B: by name (picked or typed) and by folder, however spelled
    for choice, typed in [
        ("fine-tuned 05:36:32 (067f)", None),
        (None, "fine-tuned 05:36:32 (067f)"),
        (None, str(folder_a)),
        (None, f"{ctx.workdir}/./visitors/sessionA/finetune-1"),
        (None, f"{ctx.visitor_dir('sessionB')}/../sessionA/finetune-1"),
    ]:
        with pytest.raises(UserError):
            ctx.encoder(choice, typed, {})
    assert folder_bytes(folder_a) > 0
    ctx.forget_visitor("sessionA", visitor_a)
    assert not folder_a.exists() and not (ctx.workdir / "visitors" / "sessionA").exists()
    assert not any(n.startswith("fine-tuned") for n in ctx.registry.cached)
    with pytest.raises(UserError, match="no longer available"):
        ctx.encoder("fine-tuned 05:36:32 (067f)", None, visitor_a)


def test_forget_visitor_never_leaves_the_private_root(tmp_path, tiny_model_dir):
    ctx = AppContext.create(make_settings(tmp_path))
    keep = copy_model(tiny_model_dir, tmp_path / "keep")
    ctx.forget_visitor("../../", {"x": str(keep), "y": "/"})
    assert keep.is_dir()


@pytest.mark.slow
def test_demo_model_selected_when_default_cannot_load(tmp_path, tiny_model_dir):
    settings = make_settings(tmp_path, [{"name": "V26", "source": str(tmp_path / "no-v26")}], "V26")
    ctx = AppContext.create(settings)
    ctx.registry.register(DEMO_MODEL_NAME, str(tiny_model_dir))
    assert ctx.default_model() == DEMO_MODEL_NAME
    ok = AppContext.create(make_settings(tmp_path, [{"name": "V26", "source": str(tiny_model_dir)}], "V26"))
    ok.registry.register(DEMO_MODEL_NAME, str(tiny_model_dir))
    assert ok.default_model() == "V26"


# ---------------------------------------------------------------------- limits
def test_limits_state_every_cut(tmp_path):
    lim = load_limits(
        {"SPARSE_DEMO_MAX_BATCH": "3", "SPARSE_DEMO_MAX_QUERY_CHARS": "5", "SPARSE_DEMO_MAX_UPLOAD_MB": "0.001"}
    )
    kept, note = lim.cut_batch([f"q{i}" for i in range(5)])
    assert kept == ["q0", "q1", "q2"] and "first 3 of 5 queries" in note and "2 were left out" in note
    assert lim.cut_batch(["a"]) == (["a"], None)
    with pytest.raises(ValueError, match="6 characters; the limit is 5"):
        lim.check_query("당뇨병 치료")
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 2000)
    with pytest.raises(ValueError, match="2,000 bytes; the limit is 1,048"):
        lim.check_upload(big)
    with pytest.raises(ValueError, match="SPARSE_DEMO_MAX_BATCH must be at least 1"):
        load_limits({"SPARSE_DEMO_MAX_BATCH": "0"})
