"""Reading weights files safely (`sdcourse.weights.read_checkpoint`), each failure named for its cause.

The files are written here: a tiny course UNet in the original single-file layout, as safetensors,
as a zip pickle (a Lightning-style training checkpoint) and as a legacy pickle. Then they are
spoiled the ways real downloads go wrong: code hidden in the pickle, cut short, replaced by a web
page or a Git LFS pointer, or a pickle of something that is not a dict of tensors.
"""
import pickle

import pytest
import safetensors
import torch
from safetensors.torch import save_file

from sdcourse import Diffusion, UNetConfig
from sdcourse.perturb import perturb_
from sdcourse.weights import (
    ArchitectureError,
    CheckpointError,
    NotACheckpointError,
    TruncatedCheckpointError,
    UnsafeCheckpointError,
    export_unet,
    load_unet,
    read_checkpoint,
    report_mismatch,
    unsafe_globals,
)

TINY = UNetConfig.tiny()
NAMES = ["v1-tiny.safetensors", "v1-tiny.ckpt", "v1-tiny-legacy.ckpt"]


@pytest.fixture(scope="module")
def single():
    """A whole single-file checkpoint: the UNet under model.diffusion_model., and a stand-in VAE tensor."""
    torch.manual_seed(0)
    unet = perturb_(Diffusion(TINY), only_1d=True)
    return {**export_unet(unet.state_dict(), "compvis"), "first_stage_model.decoder.conv_out.weight": torch.randn(3, 8)}


@pytest.fixture(scope="module")
def files(single, tmp_path_factory):
    d = tmp_path_factory.mktemp("files")
    save_file(single, str(d / NAMES[0]))
    torch.save({"state_dict": single, "global_step": 1}, d / NAMES[1])  # zip pickle, Lightning-style
    torch.save(single, d / NAMES[2], _use_new_zipfile_serialization=False)
    return d


# ------------------------------------------------------------------ reading what is there
@pytest.mark.parametrize("name", NAMES)
def test_read_checkpoint_gives_shapes_first_and_tensors_on_demand(files, single, name):
    shapes, get = read_checkpoint(files / name)  # unpacks as a pair
    assert shapes == {k: tuple(v.shape) for k, v in single.items()}
    assert all(isinstance(s, tuple) for s in shapes.values())
    key = "model.diffusion_model.out.2.bias"
    assert torch.equal(get(key), single[key])
    with read_checkpoint(files / name) as ckpt:
        assert ckpt.format == ("safetensors" if name.endswith(".safetensors") else "pickle")
        assert ckpt.dropped == {}
        meta = ckpt.meta()[key]
        assert meta.device.type == "meta" and meta.shape == single[key].shape
    with pytest.raises(CheckpointError, match="closed"):
        ckpt.get(key)


def test_non_tensor_entries_of_a_pickle_are_reported(single, tmp_path, capsys):
    path = tmp_path / "with-extras.ckpt"
    torch.save({"state_dict": {**single, "step": 5, "names": ["a", "b"]}}, path)
    with read_checkpoint(path) as ckpt:
        assert ckpt.dropped == {"step": "int", "names": "list"}
        assert "step" not in ckpt.shapes
    load_unet(path, config=TINY)
    out = capsys.readouterr().out
    assert "left out 2 non-tensor entries" in out and "step (int)" in out and "names (list)" in out


def test_report_mismatch_reads_shapes_or_tensors():
    expected = {"a": (2, 3), "b": (4,)}
    assert report_mismatch(expected, {"a": torch.zeros(2, 3), "b": (4,)}) == ""
    table = report_mismatch(expected, {"a": torch.zeros(2, 4), "c": (1,)})
    assert table.splitlines()[:4] == ["missing (1):", "  b", "unexpected (1):", "  c"]
    assert table.splitlines()[4] == "mis-shaped (1):"
    assert table.splitlines()[5].split() == ["a", "file", "(2,", "4)", "model", "(2,", "3)"]


# ------------------------------------------------------------------ unsafe: refused, never run
class _RunsCode:
    """Pickles as a call to exec: loading the pickle fully would run `code`."""

    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))


@pytest.mark.parametrize("zip_format", [True, False])
@pytest.mark.parametrize("suffix", [".ckpt", ".bin", ".pt"])
def test_malicious_pickle_is_refused_and_not_executed(tmp_path, single, suffix, zip_format):
    marker = tmp_path / "code-was-executed"
    path = tmp_path / f"evil{suffix}"
    payload = _RunsCode(f"open({str(marker)!r}, 'w').write('pwned')")
    torch.save({"state_dict": single, "callbacks": payload}, path, _use_new_zipfile_serialization=zip_format)
    assert unsafe_globals(path) == ["builtins.exec"]
    with pytest.raises(UnsafeCheckpointError, match=r"(?s)Refused.*`builtins\.exec`.*arbitrary code.*safetensors"):
        load_unet(path, config=TINY)
    assert not marker.exists(), "load_unet executed code from the pickle"
    # The file really is dangerous: a full unpickle runs the payload.
    torch.load(path, weights_only=False)
    assert marker.read_text() == "pwned"


def test_unsafe_is_decided_from_the_files_globals_not_from_torchs_wording(tmp_path, single, files, monkeypatch):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": single, "callbacks": _RunsCode("pass")}, path)

    def reworded(*args, **kwargs):  # a future torch that words its refusal differently
        raise pickle.UnpicklingError("weights-only loading stopped (new wording)")

    monkeypatch.setattr(torch, "load", reworded)
    with pytest.raises(UnsafeCheckpointError, match="builtins.exec"):
        read_checkpoint(path)
    # ... and a clean file that torch cannot unpickle is damaged, not malicious
    assert unsafe_globals(files / "v1-tiny.ckpt") == []
    with pytest.raises(TruncatedCheckpointError, match="new wording"):
        read_checkpoint(files / "v1-tiny.ckpt")


# ------------------------------------------------------------------ truncated: said so, with the fix
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("keep", [0.0, 0.0001, 0.01, 0.5, 0.999])
def test_truncated_file_is_reported_as_truncated(files, tmp_path, name, keep):
    data = (files / name).read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(TruncatedCheckpointError, match=r"truncated or corrupt") as info:
        load_unet(cut, config=TINY)
    assert "download it again" in str(info.value)
    assert not isinstance(info.value, UnsafeCheckpointError)


def test_a_pickle_cut_inside_a_global_name_is_truncated_not_malicious(files, tmp_path):
    data = (files / "v1-tiny-legacy.ckpt").read_bytes()
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(data[: data.index(b"_rebuild_tensor_v2") + 8])  # "torch._utils\n_rebuild" and no more
    with pytest.raises(TruncatedCheckpointError, match="truncated or corrupt"):
        load_unet(cut, config=TINY)


# ------------------------------------------------------------------ not a checkpoint at all
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1\noid sha256:4c86efd0\nsize 4265146304\n"
HTML = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>...</body></html>\n"


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
@pytest.mark.parametrize("content, pattern", [(LFS_POINTER, "Git LFS pointer"), (HTML, "HTML"),
                                              (b"just some words of text, long enough", "starts with")])
def test_a_file_that_is_no_checkpoint_is_named_so(tmp_path, suffix, content, pattern):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(content)
    with pytest.raises(NotACheckpointError, match=pattern):
        load_unet(path, config=TINY)


def test_a_pickle_of_something_else_is_no_checkpoint(tmp_path):
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(NotACheckpointError, match="holds a list, not a dict of tensors"):
        read_checkpoint(tmp_path / "list.pt")
    (tmp_path / "weights.npz").write_bytes(b"123")
    with pytest.raises(NotACheckpointError, match="unknown file type"):
        read_checkpoint(tmp_path / "weights.npz")


def test_wrong_architecture_is_named_so(tmp_path, single):
    save_file({"encoder.conv_in.weight": torch.zeros(1)}, str(tmp_path / "vae.safetensors"))
    with pytest.raises(ArchitectureError, match="No UNet weights found"):
        load_unet(tmp_path / "vae.safetensors")
    sd2 = dict(single)
    key = "model.diffusion_model.input_blocks.1.1.proj_in.weight"
    sd2[key] = sd2[key][:, :, 0, 0]  # SD 2.x: a linear proj_in instead of a 1x1 convolution
    torch.save(sd2, tmp_path / "sd2.ckpt")
    with pytest.raises(ArchitectureError, match=r"SD 2\.x UNet"):
        load_unet(tmp_path / "sd2.ckpt", config=TINY)


# ------------------------------------------------------------------ other errors stay what they are
@pytest.mark.parametrize("error", [MemoryError, TypeError])
def test_other_errors_pass_through_as_themselves(files, monkeypatch, error):
    def fails(*args, **kwargs):
        raise error("raised inside the reader")

    monkeypatch.setattr(torch, "load", fails)
    monkeypatch.setattr(safetensors, "safe_open", fails)
    for name in NAMES:
        with pytest.raises(error, match="raised inside the reader"):
            read_checkpoint(files / name)
