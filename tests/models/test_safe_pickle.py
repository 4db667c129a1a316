"""The inert reader of torch checkpoints: both formats give back exactly what torch.save wrote, a
pickled whole module gives its state dict, and a file that would run code when unpickled runs
nothing (each payload is first shown to run under the plain unpickler, so the checks can fail)."""

from __future__ import annotations

import builtins
import copyreg
import io
import os
import pickle
import re
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest
import torch
from conftest import ROOT
from torch import nn

from superres.errors import WeightsError
from superres.models.safe_pickle import Opaque, load_torch_file, module_state_dict

PRETRAINED = Path(os.environ.get("SUPERRES_PRETRAINED", ROOT.parent / "shared" / "pretrained"))
VDSR_PORT = PRETRAINED / "vdsr_twtygqyy_epoch50.pth"
FORMATS = pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])


def save(obj: object, path: Path, zip_format: bool) -> Path:
    torch.save(obj, path, _use_new_zipfile_serialization=zip_format)
    return path


def small_network() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Sequential(nn.Conv2d(4, 2, 1, bias=False)))
    model(torch.rand(2, 1, 6, 6))  # running statistics that are not the initial ones
    return model


def assert_same_tensors(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert list(actual) == list(expected)
    for key, tensor in expected.items():
        assert actual[key].dtype == tensor.dtype and torch.equal(actual[key], tensor), key


# --- what torch.save writes comes back -------------------------------------------------------------


@FORMATS
def test_a_pickled_module_gives_exactly_its_state_dict(tmp_path, zip_format):
    model = small_network()
    assert_same_tensors(module_state_dict(load_torch_file(save(model, tmp_path / "m.pth", zip_format))),
                        model.state_dict())


@FORMATS
def test_a_module_nested_in_a_checkpoint_dict_and_in_data_parallel(tmp_path, zip_format):
    model = small_network()
    checkpoint = {"epoch": 7, "optimizer": {"lr": 0.1}, "model": nn.DataParallel(model)}
    loaded = load_torch_file(save(checkpoint, tmp_path / "c.pth", zip_format))
    assert loaded["epoch"] == 7 and loaded["optimizer"] == {"lr": 0.1}
    assert isinstance(loaded["model"], Opaque) and loaded["model"].name.endswith("DataParallel")
    assert_same_tensors(module_state_dict(loaded), model.state_dict())


@FORMATS
def test_tensors_of_every_dtype_views_and_shared_storages(tmp_path, zip_format):
    base = torch.arange(24, dtype=torch.float64).reshape(4, 6)
    tensors = {
        "base": base, "view": base[1:, 2:], "transposed": base.t(), "strided": base[:, ::2],
        "half": torch.rand(3, 5).half(), "bf16": torch.rand(7).bfloat16(), "long": torch.arange(-3, 9),
        "int": torch.arange(5, dtype=torch.int32), "short": torch.arange(4, dtype=torch.int16),
        "char": torch.arange(-2, 2, dtype=torch.int8), "byte": torch.arange(250, 256, dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]), "complex": torch.randn(3, dtype=torch.complex64),
        "empty": torch.empty(0, 3), "scalar": torch.tensor(2.5), "param": nn.Parameter(torch.rand(2, 2)),
    }
    if zip_format:
        tensors["uint16"] = torch.arange(65530, 65536, dtype=torch.int32).to(torch.uint16)  # torch.dtype as a global
    loaded = load_torch_file(save(tensors, tmp_path / "t.pth", zip_format))
    assert list(loaded) == list(tensors)
    for key, tensor in tensors.items():
        assert loaded[key].dtype == tensor.dtype and loaded[key].shape == tensor.shape, key
        assert torch.equal(loaded[key].detach().to(torch.int64 if key == "uint16" else tensor.dtype),
                           tensor.detach().to(torch.int64 if key == "uint16" else tensor.dtype)), key
    assert not loaded["param"].requires_grad  # a plain tensor: the parameter's flags are not kept
    loaded["base"][0, 0] = -1.0  # views share the storage, as with torch.load
    assert loaded["transposed"][0, 0] == -1.0


def test_a_state_dict_loads_as_an_ordered_dict_of_tensors(tmp_path):
    model = small_network()
    loaded = load_torch_file(save(model.state_dict(), tmp_path / "sd.pth", True))
    assert_same_tensors(dict(loaded), model.state_dict())
    assert_same_tensors(module_state_dict({"state_dict": loaded}), model.state_dict())


def test_a_big_endian_zip_archive_is_swapped(tmp_path):
    tensors = {"f": torch.tensor([1.5, -2.25]), "c": torch.tensor([1 + 2j], dtype=torch.complex64),
               "l": torch.tensor([3, -4])}
    path = save(tensors, tmp_path / "le.pth", True)
    swapped = tmp_path / "be.pth"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(swapped, "w", zipfile.ZIP_STORED) as dst:
        for name in src.namelist():
            data = src.read(name)
            if name.endswith("/byteorder"):
                data = b"big"
            elif "/data/" in name:  # record <n> holds the n-th storage the pickle refers to
                unit = 8 if list(tensors.values())[int(name.rsplit("/", 1)[1])].dtype == torch.int64 else 4
                data = b"".join(data[i:i + unit][::-1] for i in range(0, len(data), unit))
            dst.writestr(name, data)
    loaded = load_torch_file(swapped)
    for key, tensor in tensors.items():
        assert torch.equal(loaded[key], tensor), key


# --- the VDSR port: a pickled vdsr.Net in the legacy format ---------------------------------------


@pytest.mark.skipif(not VDSR_PORT.is_file(), reason=f"the VDSR port's checkpoint is not in {PRETRAINED} "
                                                     "(set SUPERRES_PRETRAINED to the folder of the fixtures)")
def test_the_vdsr_port_gives_its_twenty_convolutions():
    checkpoint = load_torch_file(VDSR_PORT)
    assert checkpoint["epoch"] == 50
    assert isinstance(checkpoint["model"], Opaque) and checkpoint["model"].name == "vdsr.Net"
    state = module_state_dict(checkpoint, source=VDSR_PORT)
    # the order of the port's attributes: residual_layer (18 Conv_ReLU_Blocks), input, output; no biases
    assert list(state) == ([f"residual_layer.{i}.conv.weight" for i in range(18)]
                           + ["input.weight", "output.weight"])
    assert state["input.weight"].shape == (64, 1, 3, 3) and state["output.weight"].shape == (1, 64, 3, 3)
    assert all(state[f"residual_layer.{i}.conv.weight"].shape == (64, 64, 3, 3) for i in range(18))
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in state.values())
    assert sum(t.numel() for t in state.values()) == 664_704
    assert 0.01 < float(state["residual_layer.9.conv.weight"].std()) < 0.1  # trained weights, not zeros


# --- files that would run code -----------------------------------------------------------------------


class Payload:
    """Unpickled by a plain unpickler, calls ``function(*args)``."""

    def __init__(self, function, args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def payloads(marker: Path) -> dict[str, Payload]:
    create = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": Payload(os.system, (f"touch '{marker}'",)),
        "exec": Payload(builtins.exec, (create,)),
        "eval": Payload(builtins.eval, (create,)),
        "subprocess.call": Payload(subprocess.call, (["touch", str(marker)],)),
    }


@pytest.mark.parametrize("kind", ["os.system", "exec", "eval", "subprocess.call"])
def test_a_malicious_reduce_runs_nothing(tmp_path, kind):
    control, marker = tmp_path / "control", tmp_path / "marker"
    pickle.loads(pickle.dumps(payloads(control)[kind]))
    assert control.exists()  # the payload is real: a plain unpickler runs it

    payload = payloads(marker)[kind]
    files = {"raw": tmp_path / "raw.pkl"}
    files["raw"].write_bytes(pickle.dumps({"model": payload}))
    for zip_format in (True, False):
        files[f"torch-{zip_format}"] = save({"model": payload, "w": torch.ones(2)}, tmp_path / f"{zip_format}.pth",
                                            zip_format)
    for name, path in files.items():
        if name == "raw":
            with pytest.raises(WeightsError, match=rf"{re.escape(str(path))} is not a PyTorch checkpoint"):
                load_torch_file(path)
        else:
            loaded = load_torch_file(path)
            assert isinstance(loaded["model"], Opaque) and torch.equal(loaded["w"], torch.ones(2))
            assert loaded["model"].name.endswith(kind.split(".")[-1]) and loaded["model"].args == payload.args
            with pytest.raises(WeightsError, match="holds no pickled nn.Module"):
                module_state_dict(loaded, source=path)
        assert not marker.exists(), name


def legacy_file(path: Path, main_pickle: bytes) -> Path:
    """A legacy-format torch file around ``main_pickle`` (no storages)."""
    header = b"".join(pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    path.write_bytes(header + main_pickle + pickle.dumps([], protocol=2))
    return path


def zip_file(path: Path, main_pickle: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", main_pickle)
    return path


def test_getattr_tricks_are_inert(tmp_path):
    control, marker = tmp_path / "control", tmp_path / "marker"

    def trick(target: Path) -> bytes:  # getattr(__import__("os"), "system")("touch <target>"), protocol 0
        return (b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(Vos\ntRVsystem\ntR(V"
                + f"touch '{target}'".encode() + b"\ntR.")

    pickle.loads(trick(control))
    assert control.exists()
    for path in (legacy_file(tmp_path / "legacy.pth", trick(marker)), zip_file(tmp_path / "zip.pth", trick(marker))):
        loaded = load_torch_file(path)
        assert isinstance(loaded, Opaque) and loaded.name == "builtins.getattr(...)"
        assert loaded.args == (f"touch '{marker}'",)
        assert not marker.exists()


def test_the_extension_registry_is_refused(tmp_path):
    control, marker = tmp_path / "control", tmp_path / "marker"

    def via_extension(target: Path) -> bytes:  # EXT1 <code>, the command, TUPLE1, REDUCE
        command = f"touch '{target}'".encode()
        return b"\x80\x02\x82\xf1X" + struct.pack("<I", len(command)) + command + b"\x85R."

    copyreg.add_extension("os", "system", 0xF1)
    try:
        pickle.loads(via_extension(control))
        assert control.exists()
        with pytest.raises(WeightsError, match="extension registry"):
            load_torch_file(legacy_file(tmp_path / "ext.pth", via_extension(marker)))
    finally:
        copyreg.remove_extension("os", "system", 0xF1)
    assert not marker.exists()


def test_setting_the_state_of_a_plain_object_is_refused(tmp_path):
    # BUILD on a list: a plain unpickler would look up its __setstate__ or set its attributes
    with pytest.raises(WeightsError, match="sets the state of a list"):
        load_torch_file(legacy_file(tmp_path / "build.pth", b"\x80\x02]}\x8c\x01a\x88sb."))


# --- files that are not torch checkpoints -----------------------------------------------------------


@FORMATS
def test_a_truncated_file_names_itself(tmp_path, zip_format):
    path = save(small_network(), tmp_path / "m.pth", zip_format)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 3):
        cut_path = tmp_path / f"cut{cut}.pth"
        cut_path.write_bytes(data[:cut])
        with pytest.raises(WeightsError, match=rf"^{re.escape(str(cut_path))} is truncated or corrupt .*download it"):
            load_torch_file(cut_path)


def test_files_that_are_not_torch_checkpoints(tmp_path):
    for name, data in {"text.pth": b"hello, world\n", "empty.pth": b"", "pickle.pkl": pickle.dumps({"a": 1}),
                       "archive.zip": _zip_without_pickle()}.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(WeightsError, match=rf"^{re.escape(str(path))} is not a PyTorch checkpoint"):
            load_torch_file(path)
    with pytest.raises(WeightsError, match=r"nowhere\.pth not found"):
        load_torch_file(tmp_path / "nowhere.pth")


def _zip_without_pickle() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "not a checkpoint")
    return buffer.getvalue()


STORAGE = object()


class HugeTensor:
    def __reduce__(self):
        return torch._utils._rebuild_tensor, (STORAGE, 0, (1,), (1,))


class LegacyPickler(pickle.Pickler):
    """Writes STORAGE as a legacy storage reference of 2**40 floats."""

    def persistent_id(self, obj):
        return ("storage", torch.FloatStorage, "0", "cpu", 2**40, None) if obj is STORAGE else None


def test_a_storage_larger_than_the_file_is_not_allocated(tmp_path):
    buffer = io.BytesIO()
    LegacyPickler(buffer, protocol=2).dump(HugeTensor())
    main = buffer.getvalue()
    with pytest.raises(WeightsError, match="more than the rest of the file holds"):
        load_torch_file(legacy_file(tmp_path / "huge.pth", main))


def test_no_module_and_no_tensors_name_the_file(tmp_path):
    with pytest.raises(WeightsError, match=r"^ckpt\.pth holds no pickled nn.Module and no state dict .*'epoch'"):
        module_state_dict({"epoch": 3}, source="ckpt.pth")
    path = save(nn.ReLU(), tmp_path / "relu.pth", False)
    no_tensors = rf"^{re.escape(str(path))}: the pickled module torch\.nn\.modules\.activation\.ReLU holds no tensors"
    with pytest.raises(WeightsError, match=no_tensors):
        module_state_dict(load_torch_file(path), source=path)
    two = {"student": small_network(), "teacher": small_network()}
    with pytest.raises(WeightsError, match=r"several networks \(\['student'\], \['teacher'\]\) and none under"):
        module_state_dict(load_torch_file(save(two, tmp_path / "two.pth", True)))
