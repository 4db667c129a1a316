"""Downloads into a cache, checksums and archive extraction: the project's small download library.

The data sources (``data.source: url``), the benchmark sets and the perceptual loss's VGG19
checkpoint all fetch files through :func:`download`, which keeps them in a cache folder
(:func:`default_cache_dir`) between runs, writes under a temporary name and renames only a
complete file whose SHA-256 matches. :func:`extract_archive` unpacks zip and tar archives after
checking every member (no absolute paths, no ``..``, no links or special files).

Errors a user can cause raise :class:`~superres.errors.DownloadError` (network, checksum, archive)
or :class:`~superres.errors.ConfigError` (a URL or digest that cannot be used), naming the URL or
the file and what to do.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shutil
import stat
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from superres import __version__
from superres.errors import ConfigError, DownloadError

__all__ = ["default_cache_dir", "download", "extract_archive", "file_sha256"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


# --- downloads -------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """Where downloaded archives are kept between runs: ``$XDG_CACHE_HOME/superres``, else
    ``~/.cache/superres``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "superres"


def _normalise_sha256(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    value = str(sha256).strip().lower()
    if not _SHA256_RE.match(value):
        raise ConfigError(f"data.sha256: {sha256!r} is not a SHA-256 digest (64 hexadecimal characters)")
    return value


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 digest of the file at ``path``, as 64 lowercase hexadecimal characters (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _filename_from_url(url: str) -> str:
    name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    if not name or name in {".", ".."}:
        raise ConfigError(f"data.path: cannot tell a file name from the URL {url}; "
                          "give one that ends with the file name")
    return name


def download(
    url: str,
    dest_dir: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    filename: str | None = None,
    timeout: float = 60,
) -> Path:
    """Download ``url`` to ``dest_dir/<filename>`` (default: the last part of the URL's path).

    The data goes to ``<filename>.part`` first, is checked against ``sha256`` when given, and is
    then renamed. A file already there is kept (no request made) when its checksum matches, or,
    with no checksum given, when it is not empty. ``timeout`` is in seconds, per network operation.

    Raises ConfigError for a URL that is not http(s), a ``sha256`` that is not 64 hexadecimal
    characters or a ``filename`` that is not a plain name; DownloadError when the server cannot be
    reached, answers with an error, sends less than it announced, or the checksum differs (no file
    is left behind then).
    """
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in {"http", "https"}:
        raise ConfigError(f"data.path: {url!r} is not an http(s) URL; give an http:// or https:// URL")
    expected = _normalise_sha256(sha256)
    name = filename if filename is not None else _filename_from_url(url)
    if not name or "/" in name or "\\" in name or name in {".", ".."}:
        raise ConfigError(f"download filename {name!r} must be a plain file name")
    dest_dir = Path(dest_dir)
    final = dest_dir / name
    part = dest_dir / f"{name}.part"

    if final.is_file():
        if expected is None and final.stat().st_size > 0:
            logger.info("%s already downloaded (no checksum to verify); skipping the download", final)
            return final
        if expected is not None:
            actual = file_sha256(final)
            if actual == expected:
                logger.info("%s already downloaded and its sha256 matches; skipping the download", final)
                return final
            logger.warning("%s exists but its sha256 is %s, not %s; downloading again", final, actual, expected)

    dest_dir.mkdir(parents=True, exist_ok=True)
    advice = f"check the URL and your network connection, or download the file manually to {final}"
    request = urllib.request.Request(url, headers={"User-Agent": f"superres/{__version__}"})
    digest = hashlib.sha256()
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(part, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name, disable=None, leave=False
            ) as bar:
                for block in iter(lambda: response.read(_CHUNK), b""):
                    out.write(block)
                    digest.update(block)
                    received += len(block)
                    bar.update(len(block))
        if total is not None and received != total:
            raise DownloadError(f"download of {url} stopped after {received} of {total} bytes; {advice}")
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the response (and its socket) open
        part.unlink(missing_ok=True)
        raise DownloadError(f"could not download {url}: HTTP {exc.code} {exc.reason}; {advice}") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"could not download {url}: {reason}; {advice}") from exc
    except BaseException:
        part.unlink(missing_ok=True)
        raise

    actual = digest.hexdigest()
    if expected is not None and actual != expected:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"checksum mismatch for {url}: expected sha256 {expected}, got {actual}; the download is corrupt or "
            "the file changed upstream: retry, or check data.sha256"
        )
    os.replace(part, final)
    logger.info("downloaded %s to %s (%d bytes, sha256 %s)", url, final, received, actual)
    return final


# --- archives --------------------------------------------------------------------------------


def _safe_member(archive: Path, name: str) -> PurePosixPath | None:
    """The member's relative path, ``None`` for the archive's root; raises on path traversal."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        raise DownloadError(f"{archive}: member {name!r} has an absolute path; refusing to extract this archive")
    parts = [p for p in posix.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DownloadError(f"{archive}: member {name!r} points outside the archive ('..'); refusing to extract it")
    return PurePosixPath(*parts) if parts else None


def _archive_kind(archive: Path) -> str:
    if zipfile.is_zipfile(archive):
        return "zip"
    try:
        if tarfile.is_tarfile(archive):
            return "tar"
    except (OSError, tarfile.TarError, EOFError, zlib.error):
        pass
    raise DownloadError(
        f"{archive} is not a zip or tar archive (.zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz); "
        "delete it and download it again, or extract it yourself and use data.source: folder"
    )


def _extract_zip(archive: Path, dest: Path) -> list[Path]:
    with zipfile.ZipFile(archive) as zf:
        plan = []
        for info in zf.infolist():
            rel = _safe_member(archive, info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise DownloadError(f"{archive}: member {info.filename!r} is a symbolic link; refusing to extract it")
            if rel is not None and not info.is_dir():
                plan.append((info, rel))
        extracted = []
        for info, rel in plan:
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
            extracted.append(target)
    return extracted


def _extract_tar(archive: Path, dest: Path) -> list[Path]:
    with tarfile.open(archive, "r:*") as tf:
        plan = []
        for member in tf.getmembers():
            rel = _safe_member(archive, member.name)
            if member.issym() or member.islnk():
                raise DownloadError(f"{archive}: member {member.name!r} is a link; refusing to extract this archive")
            if member.isdir():
                continue
            if not member.isfile():
                raise DownloadError(f"{archive}: member {member.name!r} is a special file; refusing to extract it")
            if rel is not None:
                plan.append((member, rel))
        extracted = []
        for member, rel in plan:
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(member)
            if src is None:  # cannot happen for a regular file
                continue
            with src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
            extracted.append(target)
    return extracted


def extract_archive(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> list[Path]:
    """Extract a zip or tar (plain, gz, bz2, xz) archive into ``dest``; returns the extracted
    regular files, sorted. Every member is checked before anything is written: absolute paths,
    ``..`` and links are refused with ``DownloadError``."""
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise DownloadError(f"archive {archive} does not exist; download it first")
    kind = _archive_kind(archive)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        files = _extract_zip(archive, dest) if kind == "zip" else _extract_tar(archive, dest)
    except DownloadError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DownloadError(f"{archive} is corrupt ({exc}); delete it and download it again") from exc
    logger.info("extracted %d files from %s to %s", len(files), archive, dest)
    return sorted(files)
