"""The parameters of a MatConvNet DagNN network saved from MATLAB (``.mat``), as PyTorch tensors.

Read with SciPy (``scipy.io.loadmat``: MATLAB v5 files; v7.3 files are HDF5 and are refused with
what to do). A DagNN file holds ``net.params`` (name/value pairs) and ``net.layers`` (each with its
type and the names of its parameters). MatConvNet stores a convolution filter as
H x W x C_in x C_out and a transposed convolution's as H x W x C_out x C_in; PyTorch wants
C_out x C_in x H x W for ``Conv2d`` and C_in x C_out x H x W for ``ConvTranspose2d``. MATLAB drops
trailing singleton dimensions, so each filter is first reshaped to the size its layer declares.
Both libraries correlate (neither flips the filter), so no flip is needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
import torch

from superres.errors import WeightsError

_FILTER_LAYOUT = {"dagnn.Conv": (3, 2, 0, 1), "dagnn.ConvTranspose": (3, 2, 0, 1)}


def _layers(net: object, path: Path) -> list[object]:
    layers = getattr(net, "layers", None)
    if layers is None or not hasattr(net, "params"):
        raise WeightsError(f"{path} is not a MatConvNet DagNN network (no net.params / net.layers); "
                           "give a DagNN .mat file (a SimpleNN one can be converted with dagnn.DagNN.fromSimpleNN)")
    return list(np.atleast_1d(layers))


def read_dagnn(path: str | Path) -> dict[str, torch.Tensor]:
    """Every parameter of the DagNN network in ``path`` by its MatConvNet name, filters in PyTorch's layout."""
    path = Path(path)
    try:
        mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    except FileNotFoundError:
        raise WeightsError(f"{path} not found; check the path") from None
    except NotImplementedError:
        raise WeightsError(f"{path} is a MATLAB v7.3 (HDF5) file; save it again in MATLAB with "
                           "save(file, 'net', '-v7') and import that") from None
    except (ValueError, TypeError, IndexError, OSError) as exc:  # scipy's reader fails in these ways on a bad file
        raise WeightsError(f"{path} is not a readable MATLAB file ({exc}); check the file") from None
    if "net" not in mat:
        raise WeightsError(f"{path} holds no variable `net`; give a MatConvNet network file")
    net = mat["net"]
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    for layer in _layers(net, path):
        layout = _FILTER_LAYOUT.get(str(layer.type))
        names = [str(n) for n in np.atleast_1d(layer.params)]
        if layout is not None and names:
            shapes[names[0]] = (tuple(int(s) for s in np.atleast_1d(layer.block.size)), layout)
    params: dict[str, torch.Tensor] = {}
    for param in np.atleast_1d(net.params):
        name, value = str(param.name), np.asarray(param.value, dtype=np.float32)
        if name in shapes:
            size, layout = shapes[name]
            if value.size != int(np.prod(size)):
                raise WeightsError(f"{path}: parameter {name} has {value.size} values, its layer declares {size}")
            value = value.reshape(size).transpose(layout)  # only singleton dimensions come back
        else:
            value = np.atleast_1d(value)
        params[name] = torch.from_numpy(np.ascontiguousarray(value))
    return params
