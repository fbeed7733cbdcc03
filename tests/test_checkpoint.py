import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from swincli import Preprocessing, load, load_model, read_info, save_model
from swincli.checkpoint import FORMAT_VERSION
from swincli.convert.hf_layout import to_hf
from swincli.convert.timm_layout import to_timm
from swincli.convert.torchvision_layout import to_torchvision
from swincli.errors import CheckpointError, SwinError


def test_round_trip_keeps_weights_and_metadata(tiny_v2, tmp_path):
    names = [f"class {i}" for i in range(10)]
    prep = Preprocessing(input_size=(256, 256), crop_pct=0.9)
    path = save_model(tiny_v2, tmp_path / "sub" / "m.safetensors", class_names=names, preprocessing=prep,
                      provenance={"source": "test"})  # fmt: skip
    assert [p.name for p in path.parent.iterdir()] == ["m.safetensors"]  # no temporary file left behind
    model = load_model(path)
    x = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        assert torch.equal(model(x), tiny_v2(x))
    assert model.class_names == names and model.preprocessing == prep
    assert model.provenance["source"] == "test" and "swincli_version" in model.provenance
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata()
        assert not [k for k in fh.keys() if "index" in k or "coords" in k]
    assert meta["format"] == "swincli" and int(meta["format_version"]) == FORMAT_VERSION
    assert json.loads(meta["config"])["version"] == 2
    info = read_info(path)
    assert info.config == tiny_v2.config


def test_saving_again_keeps_what_the_model_carries(tiny_v1, tmp_path):
    first = load_model(save_model(tiny_v1, tmp_path / "a.safetensors", class_names=list("abcdefghij")))
    second = load_model(save_model(first, tmp_path / "b.safetensors"))
    assert second.class_names == list("abcdefghij")


def test_class_name_count_must_match(tiny_v1, tmp_path):
    with pytest.raises(SwinError, match="3 class names"):
        save_model(tiny_v1, tmp_path / "x.safetensors", class_names=["a", "b", "c"])


@pytest.fixture
def saved(tiny_v1, tmp_path):
    return save_model(tiny_v1, tmp_path / "m.safetensors")


def test_missing_and_directory(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_model(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="is a directory"):
        load_model(tmp_path)


@pytest.mark.parametrize("keep", [0, 7, 5000, -100])
def test_truncated_files(saved, keep):
    data = saved.read_bytes()
    saved.write_bytes(data[:keep] if keep >= 0 else data[:keep])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_model(saved)


def test_text_file(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("hello, this is not a checkpoint\n")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_model(path)


def test_pickle_checkpoints_point_at_convert(tiny_v1, tmp_path):
    path = tmp_path / "model.pth"
    torch.save({"model": tiny_v1.state_dict()}, path)
    with pytest.raises(CheckpointError, match="pickle") as info:
        load_model(path)
    assert "swin convert" in info.value.hint


@pytest.mark.parametrize(
    "to_layout, layout",
    [
        (lambda s, m: s, "official"),
        (lambda s, m: to_hf(s, 1), "Hugging Face"),
        (lambda s, m: to_timm(s), "timm"),
        (to_torchvision, "torchvision"),
    ],
)
def test_foreign_layouts_are_refused_by_the_strict_reader_and_read_by_load(tiny_v1, tmp_path, to_layout, layout):
    path = tmp_path / "foreign.safetensors"
    state = to_layout(tiny_v1.state_dict(), tiny_v1)
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    with pytest.raises(CheckpointError, match="without swincli metadata") as info:
        load_model(path)
    assert "swin convert" in info.value.hint and "swincli.load" in info.value.hint
    model = load(path)  # the one loader reads every layout
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(model(x), tiny_v1(x), atol=1e-5)


def _rewrite(path, tensors=None, **meta_changes):
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata()
        state = {k: fh.get_tensor(k) for k in fh.keys()}
    meta.update(meta_changes)
    save_file(tensors(state) if tensors else state, str(path), metadata=meta)


def test_newer_format_is_refused(saved):
    _rewrite(saved, format_version=str(FORMAT_VERSION + 1))
    with pytest.raises(CheckpointError, match="upgrade|reads up to"):
        load_model(saved)


def test_corrupt_metadata(saved):
    _rewrite(saved, config="{not json")
    with pytest.raises(SwinError):
        load_model(saved)


def test_weights_that_do_not_match_the_config(saved):
    def drop_head(state):
        state.pop("head.weight")
        state["layers.0.blocks.0.attn.relative_position_bias_table"] = torch.zeros(3, 1)
        return state

    _rewrite(saved, tensors=drop_head)
    with pytest.raises(CheckpointError, match="missing: head.weight.*wrong shape"):
        load_model(saved)


def test_header_lengths_whose_low_byte_looks_like_pickle_are_read(tiny_v1, tmp_path):
    """The first byte of a safetensors file is the low byte of its header length; 0x80 is also pickle's
    PROTO opcode. Pad the metadata until the header length ends in that byte, then read it back."""
    path = tmp_path / "m.safetensors"
    for pad in range(0, 300):
        save_model(tiny_v1, path, provenance={"pad": "x" * pad})
        if path.read_bytes()[0] == 0x80:
            break
    else:
        pytest.fail("no padding gave the wanted header length")
    assert torch.equal(load_model(path).head.weight, tiny_v1.head.weight)


def test_a_header_that_reads_as_pickle_protocol_2_is_still_safetensors(tmp_path):
    """Header length 0x280 starts the file with 80 02, the first two bytes of a protocol-2 pickle."""
    path = tmp_path / "w.safetensors"
    for pad in range(0, 700):
        save_file({"w": torch.zeros(2)}, str(path), metadata={"pad": "x" * pad})
        if path.read_bytes()[:2] == b"\x80\x02":
            break
    else:
        pytest.fail("no padding gave header length 0x280")
    with pytest.raises(CheckpointError, match="without swincli metadata"):
        read_info(path)
    pickled = tmp_path / "p.pth"
    torch.save({"w": torch.zeros(2)}, pickled, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="pickle"):
        read_info(pickled)
