"""Where the raw images come from: scikit-image's photographs, a folder, a paired folder, a URL.

Every ``fetch_*`` function copies (or writes) the files *as found* into a destination folder and
returns a list of :class:`RawItem`; nothing is validated here (that is ``ingest``'s job), so a
non-image file in a folder is returned too, and the ingest report says why it was refused.
Downloading, the cache and archive extraction are :mod:`superres.data.download`'s.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from superres.data.download import default_cache_dir, download, extract_archive
from superres.data.imageio import IMAGE_SUFFIXES, write_png
from superres.errors import ConfigError, DownloadError

__all__ = [
    "EMBEDDED_GROUPS",
    "EMBEDDED_IMAGES",
    "KNOWN_ARCHIVES",
    "RawItem",
    "fetch_embedded",
    "fetch_folder",
    "fetch_paired_folder",
    "fetch_url",
    "hidden_reason",
]

logger = logging.getLogger(__name__)

# The natural photographs shipped inside scikit-image (no network needed). Not ``cell``: a nearly
# uniform microscope field, which bicubic already reconstructs at 55.6 dB PSNR-Y (x2). In the
# test split its one image outweighed the rest: a model 0.9 dB better than bicubic on camera and
# hubble_deep_field ranked below it for a 3 dB loss on an image with nothing to super-resolve.
EMBEDDED_IMAGES: tuple[str, ...] = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "motorcycle_left",
    "motorcycle_right",
    "page",
    "retina",
    "rocket",
    "text",
)

# Embedded photographs that show one scene: each group goes to one split as a whole (the two views
# of the stereo pair are nearly the same picture; one in train and one in val would measure memory).
EMBEDDED_GROUPS: dict[str, str] = {
    "motorcycle_left": "motorcycle",
    "motorcycle_right": "motorcycle",
}

KNOWN_ARCHIVES: dict[str, dict[str, str | None]] = {
    "div2k_train_hr": {"url": "https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip", "sha256": None},
    "div2k_valid_hr": {"url": "https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip", "sha256": None},
}

PAIRS_FILE = "pairs.csv"  # paired_folder: which LR file goes with which HR file, and the unpaired ones
SKIPPED_FILE = "skipped.csv"  # folder: the files found but not copied (hidden, broken links...), and why


@dataclass(frozen=True)
class RawItem:
    """One file found at the source: ``name`` is a unique output file name (``a__x.png`` for
    ``a/x.png``), ``path`` the copy in the destination folder, ``origin`` where it came from.
    ``rejected`` says why a file found was not fetched (a hidden file, a broken link, a link
    loop...); ``path`` is then where it was found, and ``ingest`` reports it as rejected."""

    name: str
    path: Path
    origin: str
    note: str = ""
    rejected: str = ""


# --- helpers -------------------------------------------------------------------------------


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def hidden_reason(relative: PurePosixPath) -> str:
    """Why a file at ``relative`` (to the source) is not used because it is hidden, or ""."""
    if _is_hidden(relative.name):
        return "hidden file (its name starts with '.'); rename it to use it"
    hidden = next((i for i, part in enumerate(relative.parts[:-1]) if _is_hidden(part)), None)
    if hidden is not None:
        folder = PurePosixPath(*relative.parts[: hidden + 1]).as_posix()
        return f"in the hidden folder {folder}/; move it out to use it"
    return ""


def _flat_name(relative: PurePosixPath) -> str:
    return "__".join(relative.parts)


def _unique(name: str, used: set[str]) -> str:
    """``name``, or ``stem-2.suffix``, ``stem-3.suffix``... whichever is not in ``used``
    (compared case-insensitively); the result is added to ``used``."""
    candidate = name
    stem, suffix = PurePosixPath(name).stem, PurePosixPath(name).suffix
    n = 1
    while candidate.casefold() in used:
        n += 1
        candidate = f"{stem}-{n}{suffix}"
    used.add(candidate.casefold())
    return candidate


def _unusable_reason(path: Path) -> str:
    """Why an entry that is neither a folder nor a regular file (following links) cannot be read."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if path.is_symlink():
            if exc.errno == errno.ELOOP:
                return f"symbolic link loop (it points to {os.readlink(path)}, which leads back to it); remove the link"
            return f"broken symbolic link (its target {os.readlink(path)} does not exist); fix or remove the link"
        return f"cannot be read ({exc.strerror}); check its permissions"
    kinds = {stat.S_ISFIFO: "a named pipe", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a device",
             stat.S_ISBLK: "a device"}
    kind = next((what for test, what in kinds.items() if test(mode)), "not a file")
    return f"not a regular file ({kind})"


Skipped = list[tuple[PurePosixPath, str]]  # (path relative to the source, why it is not used)


def _walk_files(root: Path, exclude: Path | None = None) -> tuple[list[PurePosixPath], Skipped]:
    """Every file under ``root``, recursively, as paths relative to it: ``(usable, skipped)``.

    ``usable`` are the regular files, sorted; ``skipped`` are ``(path, reason)`` for everything
    else found: hidden files and the files of hidden folders, broken links, link loops, special
    files, folders that cannot be listed. Links to folders are followed, except one that leads
    back to a folder it is in (a loop, skipped with its reason). ``exclude`` (a folder that may
    be inside ``root``, the destination of a copy) is left out entirely.
    """
    excluded = exclude.resolve() if exclude is not None else None
    usable: list[PurePosixPath] = []
    skipped: Skipped = []

    def visit(folder: Path, relative: PurePosixPath, ancestors: tuple[Path, ...]) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as exc:
            skipped.append((relative, f"folder cannot be listed ({exc.strerror}); check its permissions"))
            return
        for entry in entries:
            path, rel = Path(entry.path), relative / entry.name
            try:
                is_dir = entry.is_dir()  # follows links
                is_file = not is_dir and entry.is_file()
            except OSError:  # a link loop, a permission: _unusable_reason says which
                is_dir = is_file = False
            if is_dir:
                real = path.resolve()
                if real == excluded:
                    continue
                if real in ancestors:
                    target = os.readlink(path) if path.is_symlink() else real
                    skipped.append((rel, f"symbolic link loop (it leads to {target}, a folder that holds it); "
                                         "remove the link"))
                    continue
                visit(path, rel, (*ancestors, real))
            elif is_file:
                hidden = hidden_reason(rel)
                if hidden:
                    skipped.append((rel, hidden))
                else:
                    usable.append(rel)
            else:
                skipped.append((rel, _unusable_reason(path)))

    visit(root, PurePosixPath(), (root.resolve(),))
    for rel, reason in skipped:
        logger.warning("skipping %s: %s", root / rel, reason)
    return sorted(usable, key=PurePosixPath.as_posix), sorted(skipped, key=lambda entry: entry[0].as_posix())


def _require_folder(folder: Path, parameter: str = "data.path") -> Path:
    if not folder.exists():
        raise ConfigError(f"{parameter}: folder {folder} does not exist; check the path or create it")
    if not folder.is_dir():
        raise ConfigError(f"{parameter}: {folder} is not a folder; give a folder of images")
    return folder


# --- scikit-image ---------------------------------------------------------------------------


def fetch_embedded(dest: str | os.PathLike[str], names: Iterable[str] | None = None) -> list[RawItem]:
    """Write scikit-image's photographs (all of ``EMBEDDED_IMAGES``, or ``names``) to
    ``dest/<name>.png``, lossless, gray ones as 8-bit gray."""
    if names is None:
        selected = list(EMBEDDED_IMAGES)
    else:
        if isinstance(names, str):
            names = [names]
        selected = list(dict.fromkeys(names))
        unknown = [n for n in selected if n not in EMBEDDED_IMAGES]
        if unknown:
            raise ConfigError(
                f"data.names: unknown embedded image(s) {', '.join(map(repr, unknown))}; "
                f"valid names: {', '.join(EMBEDDED_IMAGES)}"
            )
        if not selected:
            raise ConfigError(f"data.names is empty; list some of {', '.join(EMBEDDED_IMAGES)} or use null for all")

    import skimage.data  # imported here: it is slow to import and only this source needs it

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    stereo = None
    items = []
    for name in selected:
        if name.startswith("motorcycle_"):
            if stereo is None:
                stereo = skimage.data.stereo_motorcycle()
            side = name.removeprefix("motorcycle_")
            array = stereo[0] if side == "left" else stereo[1]
            origin = f"skimage.data.stereo_motorcycle() ({side} view)"
        else:
            array = getattr(skimage.data, name)()
            origin = f"skimage.data.{name}()"
        path = dest / f"{name}.png"
        write_png(path, array)
        items.append(RawItem(name=path.name, path=path, origin=origin))
    logger.info("wrote %d scikit-image photographs to %s", len(items), dest)
    return items


# --- folders ---------------------------------------------------------------------------------


def _copy_tree(src: Path, dest: Path, files: Iterable[PurePosixPath], used: set[str]) -> list[RawItem]:
    items = []
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, target)
        flat = _flat_name(rel)
        name = _unique(flat, used)
        note = f"renamed from {flat} (name collision)" if name != flat else ""
        items.append(RawItem(name=name, path=target, origin=str(src / rel), note=note))
    return items


def fetch_folder(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> list[RawItem]:
    """Copy every regular, non-hidden file under ``src`` (recursively) to ``dest``, keeping the
    relative paths. Item names are the relative paths with ``/`` replaced by ``__``. Every other
    file found (hidden, a broken link, a link loop...) is an item too, with its ``rejected``
    reason and nothing copied. Items are sorted by origin."""
    src, dest = _require_folder(Path(src)), Path(dest)
    files, skipped = _walk_files(src, exclude=dest)
    if not files:
        also = f" ({len(skipped)} skipped: hidden files, broken links...)" if skipped else ""
        raise ConfigError(f"data.path: folder {src} has no files{also}; put images in it or choose another data.source")
    dest.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    items = _copy_tree(src, dest, files, used)
    for rel, reason in skipped:
        items.append(RawItem(name=_unique(_flat_name(rel), used), path=src / rel, origin=str(src / rel),
                             rejected=reason))
    items.sort(key=lambda item: item.origin)
    logger.info("copied %d files from %s (%d skipped)", len(files), src, len(skipped))
    return items


_LR_SCALE_SUFFIX = re.compile(r"^(?P<base>.+?)[_-]?x\d+$", re.IGNORECASE)


def _index_by_stem(root: Path, kind: str, unmatched: list[tuple[Path, str]]) -> dict[str, PurePosixPath]:
    """``{relative path without suffix: relative path}`` of the files under ``root``; files that
    share that key (``x.png`` and ``x.jpg``) cannot be paired and go to ``unmatched``."""
    groups: dict[str, list[PurePosixPath]] = {}
    files, skipped = _walk_files(root)
    unmatched += [(root / rel, reason) for rel, reason in skipped]
    for rel in files:
        groups.setdefault(rel.with_suffix("").as_posix(), []).append(rel)
    index = {}
    for key, rels in groups.items():
        if len(rels) == 1:
            index[key] = rels[0]
            continue
        for rel in rels:
            others = ", ".join(r.name for r in rels if r != rel)
            unmatched.append(
                (root / rel, f"another {kind} file has the stem '{key}' ({others}); rename or remove one of them")
            )
    return index


def fetch_paired_folder(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    hr_dir: str = "high_res",
    lr_dir: str = "low_res",
) -> tuple[list[tuple[RawItem, RawItem]], list[tuple[Path, str]]]:
    """Pair the files of ``<src>/<hr_dir>`` and ``<src>/<lr_dir>`` (or of ``<src>/train/...``) by
    relative path without suffix, copying them to ``dest/hr`` and ``dest/lr``.

    A low-resolution stem with a scale suffix (``0001x4``, ``0001_x4``) also matches the
    high-resolution ``0001``. Returns ``(pairs, unmatched)``: ``(hr item, lr item)`` pairs and
    ``(source path, reason)`` for every file without a partner.
    """
    src, dest = _require_folder(Path(src)), Path(dest)
    for base in (src, src / "train"):
        if (base / hr_dir).is_dir() and (base / lr_dir).is_dir():
            break
    else:
        raise ConfigError(
            f"data.path: {src} has no {hr_dir}/ and {lr_dir}/ folders (nor train/{hr_dir}/ and train/{lr_dir}/); "
            "put the high-resolution images in one and the low-resolution ones in the other"
        )
    hr_root, lr_root = base / hr_dir, base / lr_dir
    unmatched: list[tuple[Path, str]] = []
    hr_index = _index_by_stem(hr_root, "high-resolution", unmatched)
    lr_index = _index_by_stem(lr_root, "low-resolution", unmatched)
    if not hr_index and not lr_index and not unmatched:
        raise ConfigError(f"data.path: {hr_root} and {lr_root} have no files; put image pairs in them")

    lr_by_hr_key: dict[str, str] = {}
    for lr_key in lr_index:
        if lr_key in hr_index:
            lr_by_hr_key.setdefault(lr_key, lr_key)
    for lr_key in lr_index:
        match = _LR_SCALE_SUFFIX.match(lr_key)
        if lr_key not in hr_index and match and match["base"] in hr_index:
            lr_by_hr_key.setdefault(match["base"], lr_key)
    paired_lr = set(lr_by_hr_key.values())

    hr_used: set[str] = set()
    lr_used: set[str] = set()
    pairs = []
    for hr_key in sorted(hr_index):
        hr_rel = hr_index[hr_key]
        lr_key = lr_by_hr_key.get(hr_key)
        if lr_key is None:
            unmatched.append((hr_root / hr_rel, f"no low-resolution file with stem '{hr_key}'"))
            continue
        (hr_item,) = _copy_tree(hr_root, dest / "hr", [hr_rel], hr_used)
        (lr_item,) = _copy_tree(lr_root, dest / "lr", [lr_index[lr_key]], lr_used)
        pairs.append((hr_item, lr_item))
    for lr_key in sorted(lr_index):
        if lr_key not in paired_lr:
            unmatched.append((lr_root / lr_index[lr_key], f"no high-resolution file with stem '{lr_key}'"))
    unmatched.sort(key=lambda entry: str(entry[0]))

    if not pairs:
        raise ConfigError(
            f"data.path: no file of {hr_root} has a partner in {lr_root} (files are paired by name without "
            f"suffix, e.g. {hr_dir}/0001.png with {lr_dir}/0001.png or {lr_dir}/0001x4.png); rename them to match"
        )
    for path, reason in unmatched:
        logger.warning("unpaired %s: %s", path, reason)
    logger.info("paired %d files from %s (%d unpaired)", len(pairs), base, len(unmatched))
    return pairs, unmatched


# --- URLs ------------------------------------------------------------------------------------


def fetch_url(
    url_or_known_name: str,
    dest: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None,
    sha256: str | None = None,
) -> list[RawItem]:
    """Download an archive (a URL or a name of ``KNOWN_ARCHIVES``) into ``cache_dir`` (kept
    between runs, so a re-run downloads nothing; ``None``: :func:`default_cache_dir`) and extract
    it into ``dest``. A URL of a single image file is copied into ``dest`` as is. Items are named
    as by :func:`fetch_folder`."""
    source = str(url_or_known_name).strip()
    if source in KNOWN_ARCHIVES:
        url = str(KNOWN_ARCHIVES[source]["url"])
        sha256 = sha256 if sha256 is not None else KNOWN_ARCHIVES[source]["sha256"]
    elif "://" in source:
        url = source
    else:
        raise ConfigError(
            f"data.path: {source!r} is neither a URL nor a known archive name ({', '.join(KNOWN_ARCHIVES)})"
        )
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    archive = download(url, cache, sha256=sha256)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if archive.suffix.lower() in IMAGE_SUFFIXES:
        target = dest / archive.name
        shutil.copy2(archive, target)
        return [RawItem(name=archive.name, path=target, origin=url)]
    extracted = sorted(PurePosixPath(path.relative_to(dest).as_posix()) for path in extract_archive(archive, dest))
    if not any(not hidden_reason(rel) for rel in extracted):  # .DS_Store, __MACOSX/._x.png... only
        raise DownloadError(f"archive {archive} (from {url}) has no files; check the URL")
    used: set[str] = set()
    items = []
    for rel in extracted:
        flat = _flat_name(rel)
        name = _unique(flat, used)
        note = f"renamed from {flat} (name collision)" if name != flat else ""
        items.append(RawItem(name=name, path=dest / rel, origin=f"{url}#{rel}", note=note,
                             rejected=hidden_reason(rel)))
    logger.info("fetched %d files from %s", len(items), url)
    return items
