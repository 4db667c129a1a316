"""Read a PyTorch checkpoint without running anything it contains.

Some ports published a whole pickled ``nn.Module`` rather than its state dict. Its pickle names the
port's own classes (``vdsr.Net``), so ``torch.load(weights_only=True)`` refuses it, and
``weights_only=False`` would call whatever the pickle names: a file can run any code that way.
:func:`load_torch_file` reads both of torch's formats itself:

- the zip format (``torch.save`` since PyTorch 1.6): ``<archive>/data.pkl`` and one record
  ``<archive>/data/<key>`` per storage, raw and uncompressed, little endian unless
  ``<archive>/byteorder`` says ``big``;
- the legacy format: a pickled magic number, protocol version and system information, then the
  object's pickle, the pickled list of storage keys and, per storage in that order, its element
  count (int64) and its raw bytes, little endian.

How the pickles are read, and why nothing in them runs: only a few opcodes of the pickle machine
can call anything (``GLOBAL``/``STACK_GLOBAL``/``INST`` look a name up; ``REDUCE``, ``NEWOBJ``,
``NEWOBJ_EX``, ``OBJ``, ``INST`` call what is on the stack; ``BUILD`` calls ``__setstate__``;
``EXT1/2/4`` look a name up in the copyreg registry; ``PERSID``/``BINPERSID`` call
``persistent_load``; the list/dict/set opcodes call ``append``/``extend``/``__setitem__``/``add``).
The unpickler here (the standard library's pure-Python unpickler, so that each of those opcodes
can be replaced) closes them all:

- every name goes through :meth:`_InertUnpickler.find_class`, which resolves only the allow-list
  ``_ALLOWED``: this module's own tensor rebuild functions (standing for
  ``torch._utils._rebuild_tensor``, ``_rebuild_tensor_v2``, ``_v3``, ``_rebuild_parameter``,
  ``_rebuild_parameter_with_state``, the legacy ``torch.nn.parameter.Parameter`` and
  ``torch.Size``; they check their arguments and build a tensor over the file's data with
  ``as_strided``), ``collections.OrderedDict``, ``set``, ``frozenset``, the ``torch.*Storage``
  names as inert storage-type markers (a dtype, not callable) and the ``torch`` dtypes. Every
  other name becomes a fresh subclass of :class:`Opaque`, whose construction and call only record
  their arguments: the name's module is never imported, nothing it names is looked up;
- so the callables on the stack are only those functions, those three container types, Opaque
  classes and instances (whose ``__call__`` records), never a function of the file's choosing;
- ``BUILD`` sets the recorded state of an Opaque object; on a tensor (the requires-grad flags of a
  legacy parameter) and on an ``OrderedDict`` (a state dict's ``_metadata``) it is ignored; on
  anything else it is refused;
- ``EXT1/2/4`` are refused (torch never writes them; the registry would bypass ``find_class``);
- ``persistent_load`` resolves storage references to flat tensors read from the file (the sizes
  checked against the file's before anything is allocated) and, in the legacy format, a pickled
  class reference to its Opaque class.

Tensors come back as plain CPU tensors (a parameter's requires-grad flag and backward hooks are
dropped); a tensor kind this module does not rebuild (quantized, sparse, nested, with conjugate or
negative bits, a subclass) stays an Opaque record. :func:`module_state_dict` turns an inert
pickled module into its flat state dict.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, ClassVar

import torch

from superres.errors import WeightsError

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # the legacy format's first pickle
_PROTOCOL_VERSION = 1001
_ZIP_SIGNATURE = b"PK\x03\x04"

# torch's legacy storage classes, each of one dtype; UntypedStorage holds bytes
_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "DoubleStorage": torch.float64,
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexDoubleStorage": torch.complex128,
    "ComplexFloatStorage": torch.complex64,
    "UntypedStorage": torch.uint8,
}
_DTYPES: dict[str, torch.dtype] = {name: value for name, value in vars(torch).items() if isinstance(value, torch.dtype)}
# what a module's pickle calls its parallel wrappers: their one submodule is the network
_PARALLEL_WRAPPERS = ("torch.nn.parallel.data_parallel.DataParallel",
                      "torch.nn.parallel.distributed.DistributedDataParallel")
# where checkpoints keep the network, most preferred first, when a dict holds several
_MODULE_KEYS = ("model", "module", "net", "network", "generator", "netG", "state_dict", "params_ema", "params")


class Opaque:
    """What the file asked for and this reader does not build: an object of a class it names (or
    the class itself: a subclass of Opaque per name), recorded as data and never called.

    ``name`` is the dotted name of the global (``vdsr.Net``); calling an Opaque object (the file
    asking for ``getattr(os, "system")("...")``, say) gives another Opaque named ``<name>(...)``.
    ``args``/``kwargs`` are what it was constructed with, ``state`` what ``BUILD`` gave it (an
    ``nn.Module``'s ``__dict__``), ``items`` what was appended, ``entries`` what was set by key.
    """

    global_name: ClassVar[str] = "?"

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    state: Any
    items: list[Any]
    entries: dict[Any, Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> Opaque:
        self = super().__new__(cls)
        self.name, self.args, self.kwargs = cls.global_name, args, kwargs
        self.state, self.items, self.entries = None, [], {}
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Everything was recorded by ``__new__`` (``NEWOBJ`` calls only that)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Opaque:
        result = Opaque(*args, **kwargs)
        result.name = f"{self.name}(...)"
        return result

    def append(self, item: Any) -> None:
        self.items.append(item)

    def extend(self, items: list[Any]) -> None:
        self.items.extend(items)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.entries[key] = value

    def __repr__(self) -> str:
        return f"Opaque({self.name})"


class _Refused(Exception):
    """The file is not what a torch checkpoint is; ``load_torch_file`` names the file."""


class _NotTorch(_Refused):
    pass


class _Truncated(_Refused):
    pass


class _StorageType:
    """A ``torch.*Storage`` name in a pickle: a marker of the storage's dtype, not callable."""

    __slots__ = ("dtype", "name")

    def __init__(self, name: str, dtype: torch.dtype) -> None:
        self.name, self.dtype = name, dtype

    def __repr__(self) -> str:
        return f"torch.{self.name}"


class _Storage:
    """A storage of the file: ``data`` is a flat tensor of its dtype over its bytes (in the legacy
    format it is allocated while the pickle is read and filled from the file afterwards)."""

    __slots__ = ("data",)

    def __init__(self, data: torch.Tensor) -> None:
        self.data = data


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Refused(f"{what} is {value!r}, not a count")
    return value


def _counts(values: Any, what: str) -> tuple[int, ...]:
    if not isinstance(values, tuple | list):
        raise _Refused(f"{what} is {type(values).__name__}, not a tuple of counts")
    return tuple(_count(v, what) for v in values)


def _text(value: Any, what: str) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii")
    if not isinstance(value, str):
        raise _Refused(f"{what} is {type(value).__name__}, not text")
    return value


def _strided(storage: Any, offset: Any, size: Any, stride: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The tensor of ``size`` and ``stride`` at ``offset`` (in elements) over ``storage``, inside it."""
    if not isinstance(storage, _Storage):
        raise _Refused(f"a tensor's storage is {storage!r}, not one of the file's storages")
    offset, size, stride = _count(offset, "a storage offset"), _counts(size, "a size"), _counts(stride, "a stride")
    if len(size) != len(stride):
        raise _Refused(f"a tensor has size {size} but stride {stride}")
    flat = storage.data
    if dtype is not None and dtype != flat.dtype:
        flat = flat.view(dtype)  # the bytes of an UntypedStorage, read as the tensor's dtype
    if 0 in size:
        return torch.empty(size, dtype=flat.dtype)
    extent = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) + 1
    if extent > flat.numel():
        raise _Refused(f"a tensor of size {size}, stride {stride} at offset {offset} reaches past its storage "
                       f"of {flat.numel()} elements")
    return flat.as_strided(size, stride, flat.storage_offset() + offset)


def _no_metadata(metadata: Any) -> None:
    if metadata:
        raise _Refused(f"a tensor carries metadata {metadata!r} (conjugate or negative bits) that this reader "
                       "does not apply")


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> torch.Tensor:
    return _strided(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                       backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    _no_metadata(metadata)
    return _strided(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any,
                       backward_hooks: Any, dtype: Any, metadata: Any = None) -> torch.Tensor:
    if not isinstance(dtype, torch.dtype):
        raise _Refused(f"a tensor's dtype is {dtype!r}")
    _no_metadata(metadata)
    return _strided(storage, storage_offset, size, stride, dtype)


def _rebuild_parameter(data: Any, requires_grad: Any = True, backward_hooks: Any = None,
                       state: Any = None) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise _Refused(f"a parameter holds {data!r}, not a tensor")
    return data


def _size(sizes: Any = ()) -> torch.Size:
    return torch.Size(_counts(sizes, "a torch.Size"))


# dotted name in the pickle -> what it stands for here; nothing else resolves (see the module docstring)
_ALLOWED: dict[str, Any] = {
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
    "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch.nn.parameter.Parameter": _rebuild_parameter,  # legacy pickles call the class on the tensor
    "torch.Size": _size,
    "collections.OrderedDict": collections.OrderedDict,
    "builtins.set": set,
    "builtins.frozenset": frozenset,
    "__builtin__.set": set,  # Python 2 pickles
    "__builtin__.frozenset": frozenset,
    **{f"torch.{name}": _StorageType(name, dtype) for name, dtype in _STORAGE_DTYPES.items()},
    **{f"torch.cuda.{name}": _StorageType(name, dtype) for name, dtype in _STORAGE_DTYPES.items()},
    "torch.storage.UntypedStorage": _StorageType("UntypedStorage", torch.uint8),
    **{f"torch.{name}": dtype for name, dtype in _DTYPES.items()},
}


class _InertUnpickler(pickle._Unpickler):
    """The standard library's pure-Python unpickler with every way to run code closed."""

    def __init__(self, file: IO[bytes], storages: _ZipStorages | _LegacyStorages | None) -> None:
        super().__init__(file, encoding="utf-8")  # Python 2 strings as torch reads them
        self._storages = storages
        self._opaque: dict[str, type[Opaque]] = {}

    def find_class(self, module: str, name: str) -> Any:
        dotted = f"{module}.{name}"
        if dotted in _ALLOWED:
            return _ALLOWED[dotted]
        cls = self._opaque.get(dotted)
        if cls is None:
            cls = type("Opaque", (Opaque,), {"global_name": dotted, "__qualname__": f"Opaque[{dotted}]"})
            self._opaque[dotted] = cls
        return cls

    def persistent_load(self, pid: Any) -> Any:
        if self._storages is None:
            raise _Refused(f"a persistent reference {pid!r} where the format has none")
        return self._storages.resolve(pid)

    def _load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, Opaque):
            inst.state = state
        elif not ((isinstance(inst, torch.Tensor) and isinstance(state, tuple))
                  or (isinstance(inst, collections.OrderedDict) and isinstance(state, dict))):
            raise _Refused(f"the pickle sets the state of a {type(inst).__name__}")

    def _refuse_extension(self) -> None:
        raise _Refused("the pickle uses the copyreg extension registry (EXT opcodes)")

    dispatch: ClassVar[dict[int, Any]] = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BUILD[0]] = _load_build
    for _opcode in (pickle.EXT1, pickle.EXT2, pickle.EXT4):
        dispatch[_opcode[0]] = _refuse_extension
    del _opcode


def _unpickle(f: IO[bytes], storages: _ZipStorages | _LegacyStorages | None = None) -> Any:
    """One pickle from ``f``, inertly; one the unpickler cannot read (cut short, damaged) is :class:`_Truncated`."""
    try:
        return _InertUnpickler(f, storages).load()
    except _Refused:
        raise
    except Exception as exc:  # whatever a pickle cut short or damaged makes the unpickler raise
        raise _Truncated(f"a pickle cannot be read: {type(exc).__name__}: {exc or 'no more data'}") from None


def _read_into(src: IO[bytes], data: torch.Tensor, what: str) -> None:
    """Fill ``data`` (a flat tensor) with its bytes from ``src``."""
    view = memoryview(data.view(torch.uint8).numpy())
    done = 0
    while done < len(view):
        got = src.readinto(view[done:])
        if not got:
            raise _Truncated(f"{what} has {done} of its {len(view)} bytes")
        done += got


def _byteswap(data: torch.Tensor) -> None:
    """Turn big-endian elements of ``data`` little endian, in place (complex: each half alone)."""
    unit = data.element_size() // (2 if data.is_complex() else 1)
    if unit > 1:
        raw = data.view(torch.uint8).view(-1, unit)
        raw.copy_(raw.flip(1))


def _storage_id(pid: Any, length: int) -> tuple[Any, ...]:
    if not isinstance(pid, tuple) or len(pid) != length or _text(pid[0], "a persistent id") != "storage":
        raise _Refused(f"an unknown persistent reference {pid!r}")
    if not isinstance(pid[1], _StorageType):
        raise _Refused(f"a storage of type {pid[1]!r}, not one of torch's storage types")
    return pid


class _ZipStorages:
    """The storages of a zip-format file, each read when the pickle first refers to it."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str, big_endian: bool) -> None:
        self.archive, self.prefix, self.big_endian = archive, prefix, big_endian
        self.loaded: dict[str, _Storage] = {}

    def resolve(self, pid: Any) -> _Storage:
        _, storage_type, key, _location, numel = _storage_id(pid, 5)
        key, numel = _text(key, "a storage key"), _count(numel, "a storage size")
        if key in self.loaded:
            return self.loaded[key]
        name = f"{self.prefix}data/{key}"
        try:
            info = self.archive.getinfo(name)
        except KeyError:
            raise _Truncated(f"the archive has no record {name}") from None
        nbytes = numel * storage_type.dtype.itemsize
        if info.compress_type != zipfile.ZIP_STORED:
            raise _Refused(f"the record {name} is compressed; torch writes its storages uncompressed")
        if info.file_size < nbytes:
            raise _Truncated(f"the record {name} has {info.file_size} bytes, its storage needs {nbytes}")
        data = torch.empty(numel, dtype=storage_type.dtype)
        try:
            with self.archive.open(info) as src:
                _read_into(src, data, f"the record {name}")
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise _Truncated(f"the record {name} cannot be read: {exc}") from None
        if self.big_endian:
            _byteswap(data)
        self.loaded[key] = storage = _Storage(data)
        return storage


class _LegacyStorages:
    """The storages of a legacy-format file: allocated while the pickle refers to them (no more bytes
    than the file holds), filled from the data that follows the pickle."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.roots: dict[str, _Storage] = {}
        self.views: dict[str, _Storage] = {}

    def resolve(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and pid and isinstance(pid[0], str | bytes) and _text(pid[0], "") == "module":
            # ("module", class, source file, source): a class reference, kept with the source check skipped
            if len(pid) != 4 or not (isinstance(pid[1], type) and issubclass(pid[1], Opaque)):
                raise _Refused(f"a module reference {pid[:2]!r} that is not a class of the file")
            return pid[1]
        _, storage_type, key, _location, numel, view = _storage_id(pid, 6)
        key, numel = _text(key, "a storage key"), _count(numel, "a storage size")
        root = self.roots.get(key)
        if root is None:
            nbytes = numel * storage_type.dtype.itemsize
            if nbytes > self.budget:
                raise _Truncated(f"storage {key} needs {nbytes} bytes, more than the rest of the file holds")
            self.budget -= nbytes
            self.roots[key] = root = _Storage(torch.zeros(numel, dtype=storage_type.dtype))
        elif root.data.dtype != storage_type.dtype:
            raise _Refused(f"storage {key} is referred to as {root.data.dtype} and as {storage_type.dtype}")
        if view is None:
            return root
        if not isinstance(view, tuple) or len(view) != 3:
            raise _Refused(f"a storage view {view!r}")
        view_key = _text(view[0], "a view key")
        offset, length = _count(view[1], "a view offset"), _count(view[2], "a view size")
        if offset + length > root.data.numel():
            raise _Refused(f"view {view_key} of storage {key} reaches past it")
        if view_key not in self.views:
            self.views[view_key] = _Storage(root.data[offset:offset + length])
        return self.views[view_key]

    def fill(self, f: IO[bytes], keys: Any) -> None:
        if not isinstance(keys, list):
            raise _Refused(f"the storage keys are {type(keys).__name__}, not a list")
        for key in keys:
            key = _text(key, "a storage key")
            if key not in self.roots:
                raise _Refused(f"data for storage {key}, which the pickle does not use")
            header = f.read(8)
            if len(header) < 8:
                raise _Truncated(f"the data of storage {key} is missing")
            (count,) = struct.unpack("<q", header)
            data = self.roots[key].data
            if count != data.numel():
                raise _Refused(f"storage {key} has {count} elements in the data, {data.numel()} in the pickle")
            _read_into(f, data, f"the data of storage {key}")
        unfilled = sorted(set(self.roots) - {_text(key, "a storage key") for key in keys})
        if unfilled:
            raise _Refused(f"no data for storage(s) {', '.join(unfilled)}")


def _load_zip(f: IO[bytes]) -> Any:
    try:
        archive = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise _Truncated(f"a zip archive that cannot be opened: {exc}") from None
    with archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
        if len(pickles) != 1:
            raise _NotTorch("a zip archive without one <archive>/data.pkl, so not written by torch.save")
        prefix = pickles[0][: -len("data.pkl")]
        try:
            byteorder = archive.read(f"{prefix}byteorder") if f"{prefix}byteorder" in archive.namelist() else b"little"
            pickled = archive.read(pickles[0])
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise _Truncated(f"a record cannot be read: {exc}") from None
        if byteorder not in (b"little", b"big"):
            raise _Refused(f"the byte order is {byteorder!r}")
        return _unpickle(io.BytesIO(pickled), _ZipStorages(archive, prefix, byteorder == b"big"))


def _load_legacy(f: IO[bytes], size: int) -> Any:
    try:
        magic = _unpickle(f)
    except _Refused as exc:
        raise _NotTorch(f"it does not start with torch's magic number: {exc}") from None
    if type(magic) is not int or magic != _MAGIC_NUMBER:
        raise _NotTorch("it does not start with torch's magic number")
    version = _unpickle(f)
    if type(version) is not int or version != _PROTOCOL_VERSION:
        raise _Refused(f"legacy serialisation protocol {version!r}, not {_PROTOCOL_VERSION}")
    _unpickle(f)  # system information: the data is little endian whatever it says
    storages = _LegacyStorages(budget=size - f.tell())
    result = _unpickle(f, storages)
    storages.fill(f, _unpickle(f))
    return result


def load_torch_file(path: str | Path) -> Any:
    """The object a ``torch.save`` file holds (either format), built inertly: tensors, containers
    and :class:`Opaque` records of everything else, nothing of the file's choosing called.

    Raises:
        WeightsError: the file is missing, not a PyTorch file, truncated or corrupt; the message
            names the file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(0)
            head = f.read(4)
            f.seek(0)
            if size == 0:
                raise _NotTorch("it is empty")
            return _load_zip(f) if head == _ZIP_SIGNATURE else _load_legacy(f, size)
    except FileNotFoundError:
        raise WeightsError(f"{path} not found; check the path") from None
    except _NotTorch as exc:
        raise WeightsError(f"{path} is not a PyTorch checkpoint ({exc}); give a file written by torch.save") from None
    except _Truncated as exc:
        raise WeightsError(f"{path} is truncated or corrupt ({exc}); download it again") from None
    except _Refused as exc:
        raise WeightsError(f"{path} cannot be read as a PyTorch checkpoint ({exc})") from None
    except OSError as exc:
        raise WeightsError(f"{path} cannot be read ({exc})") from None


def _is_module(obj: Any) -> bool:
    """An inert pickled ``nn.Module``: an Opaque object whose state has the module's dicts."""
    return (isinstance(obj, Opaque) and isinstance(obj.state, dict)
            and ("_parameters" in obj.state or "_modules" in obj.state))


def _is_state_dict(obj: Any) -> bool:
    return (isinstance(obj, Mapping) and bool(obj)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()))


def _candidates(obj: Any, trail: str, depth: int, found: list[tuple[str, Any]]) -> None:
    """Every module or state dict in ``obj`` (not looking inside those), with where it was."""
    if _is_module(obj) or _is_state_dict(obj):
        found.append((trail, obj))
    elif depth < 4 and isinstance(obj, Mapping):
        for key, value in obj.items():
            _candidates(value, f"{trail}[{key!r}]", depth + 1, found)
    elif depth < 4 and isinstance(obj, list | tuple):
        for index, value in enumerate(obj):
            _candidates(value, f"{trail}[{index}]", depth + 1, found)


def _describe(obj: Any) -> str:
    if isinstance(obj, Mapping):
        return f"a dict with keys {', '.join(map(repr, list(obj)[:10])) or 'none'}"
    return repr(obj) if isinstance(obj, Opaque) else f"a {type(obj).__name__}"


def _walk(module: Opaque, prefix: str, out: dict[str, torch.Tensor], seen: set[int], where: str) -> None:
    if id(module) in seen:
        raise WeightsError(f"{where}: the pickled module {module.name} contains itself")
    seen.add(id(module))
    state = module.state
    non_persistent = state.get("_non_persistent_buffers_set") or ()
    if not isinstance(non_persistent, set | frozenset | list | tuple):
        non_persistent = ()
    for kind in ("_parameters", "_buffers"):
        entries = state.get(kind) or {}
        if not isinstance(entries, Mapping):
            raise WeightsError(f"{where}: {module.name}.{kind} is {_describe(entries)}, not a dict")
        for name, value in entries.items():
            if value is None or (kind == "_buffers" and name in non_persistent):
                continue
            if not isinstance(value, torch.Tensor):
                raise WeightsError(f"{where}: {prefix}{name} is {_describe(value)}, not a tensor this reader builds")
            out[f"{prefix}{name}"] = value
    children = state.get("_modules") or {}
    if not isinstance(children, Mapping):
        raise WeightsError(f"{where}: {module.name}._modules is {_describe(children)}, not a dict")
    for name, child in children.items():
        if child is None:
            continue
        if not _is_module(child):
            raise WeightsError(f"{where}: submodule {prefix}{name} is {_describe(child)}, not a pickled module")
        _walk(child, f"{prefix}{name}.", out, seen, where)


def module_state_dict(obj: Any, *, source: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The flat state dict (``a.b.weight`` names) of the inert pickled ``nn.Module`` in ``obj``.

    ``obj`` is what :func:`load_torch_file` returned: the module itself, or a dict (or list) holding
    it, such as ``{"epoch": 50, "model": <module>}``. A ``DataParallel`` wrapper is removed. If several
    modules are found, the one under ``model`` (then ``module``, ``net``, ``generator``...) is taken.
    A plain state dict found in their place is returned as it is. ``source`` (the file) is named in
    errors. Parameters and buffers that are None are skipped, as are non-persistent buffers.

    Raises:
        WeightsError: no module or state dict found, several and none preferred, or a module whose
            tensors are not plain tensors, or that holds none.
    """
    where = str(source) if source is not None else "the checkpoint"
    found: list[tuple[str, Any]] = []
    _candidates(obj, "", 0, found)
    if not found:
        raise WeightsError(f"{where} holds no pickled nn.Module and no state dict (it holds {_describe(obj)}); "
                           "give the checkpoint of a network")
    if len(found) > 1:
        preferred = [(trail, o) for key in _MODULE_KEYS for trail, o in found if trail == f"[{key!r}]"]
        if not preferred:
            raise WeightsError(f"{where} holds several networks ({', '.join(trail for trail, _ in found)}) and none "
                               f"under a usual key ({', '.join(_MODULE_KEYS)}); extract the one to use")
        found = preferred[:1]
    _, module = found[0]
    if not _is_module(module):
        return dict(module)
    while (module.name in _PARALLEL_WRAPPERS and set(module.state.get("_modules") or {}) == {"module"}
           and _is_module(module.state["_modules"]["module"])):
        module = module.state["_modules"]["module"]
    out: dict[str, torch.Tensor] = {}
    _walk(module, "", out, set(), where)
    if not out:
        raise WeightsError(f"{where}: the pickled module {module.name} holds no tensors")
    return out
