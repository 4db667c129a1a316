"""Tests of the download library: the cache, checksums, errors a user can meet, safe archive extraction.

Downloads run against a real HTTP server on 127.0.0.1 serving a folder of tmp_path.
"""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import zipfile
from pathlib import Path

import pytest
from conftest import Server

from superres.data.download import download, extract_archive, file_sha256
from superres.errors import ConfigError, DownloadError

PAYLOAD = {"photos/a.png": b"\x89PNG a", "photos/sub/b.png": b"\x89PNG b"}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def make_tar(path: Path, members: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_download_with_checksum(server: Server, tmp_path: Path) -> None:
    archive = make_zip(server.root / "images.zip", PAYLOAD)
    digest = sha256_of(archive)
    cache = tmp_path / "cache"
    path = download(server.url("images.zip"), cache, sha256=digest.upper())
    assert path == cache / "images.zip"
    assert path.read_bytes() == archive.read_bytes()
    assert sorted(p.name for p in cache.iterdir()) == ["images.zip"]  # no .part left
    assert server.requests["/images.zip"] == 1
    # Present with the right checksum: no request.
    assert download(server.url("images.zip"), cache, sha256=digest) == path
    assert server.requests["/images.zip"] == 1
    # Present, no checksum to check: no request either.
    assert download(server.url("images.zip"), cache) == path
    assert server.requests["/images.zip"] == 1


def test_download_replaces_a_corrupt_cached_file(server: Server, tmp_path: Path) -> None:
    archive = make_zip(server.root / "images.zip", PAYLOAD)
    (tmp_path / "images.zip").write_bytes(b"half a download")
    path = download(server.url("images.zip"), tmp_path, sha256=sha256_of(archive))
    assert path.read_bytes() == archive.read_bytes()
    assert server.requests["/images.zip"] == 1


def test_download_of_an_empty_cached_file_repeats(server: Server, tmp_path: Path) -> None:
    archive = make_zip(server.root / "images.zip", PAYLOAD)
    (tmp_path / "images.zip").touch()
    assert download(server.url("images.zip"), tmp_path).read_bytes() == archive.read_bytes()
    assert server.requests["/images.zip"] == 1


def test_download_checksum_mismatch(server: Server, tmp_path: Path) -> None:
    archive = make_zip(server.root / "images.zip", PAYLOAD)
    wrong = "0" * 64
    with pytest.raises(DownloadError) as info:
        download(server.url("images.zip"), tmp_path / "cache", sha256=wrong)
    message = str(info.value)
    assert wrong in message and sha256_of(archive) in message
    assert server.url("images.zip") in message
    assert list((tmp_path / "cache").iterdir()) == []  # neither the final file nor the .part


def test_download_404(server: Server, tmp_path: Path) -> None:
    refused = r"could not download http://127\.0\.0\.1:\d+/missing.zip: HTTP 404"
    with pytest.raises(DownloadError, match=refused) as info:
        download(server.url("missing.zip"), tmp_path)
    assert f"download the file manually to {tmp_path / 'missing.zip'}" in str(info.value)
    assert not (tmp_path / "missing.zip").exists()
    assert not (tmp_path / "missing.zip.part").exists()


def test_download_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError, match=f"could not download http://127.0.0.1:{port}/x.zip.*network"):
        download(f"http://127.0.0.1:{port}/x.zip", tmp_path, timeout=5)


def test_download_explicit_filename_and_bad_arguments(server: Server, tmp_path: Path) -> None:
    (server.root / "data").write_bytes(b"payload")
    assert download(server.url("data"), tmp_path, filename="renamed.bin").read_bytes() == b"payload"
    with pytest.raises(ConfigError, match="data.sha256"):
        download(server.url("data"), tmp_path, sha256="abc")
    with pytest.raises(ConfigError, match="not an http"):
        download("ftp://example.invalid/x.zip", tmp_path)
    with pytest.raises(ConfigError, match="plain file name"):
        download(server.url("data"), tmp_path, filename="../escape")


def test_file_sha256_reads_large_files_in_blocks(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(range(256)) * 9000)  # over one 1 MiB block
    assert file_sha256(path) == sha256_of(path)
    assert file_sha256(str(path)) == sha256_of(path)


# --- archives --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "mode"),
    [("a.tar", "w"), ("a.tgz", "w:gz"), ("a.tar.bz2", "w:bz2"), ("a.tar.xz", "w:xz")],
)
def test_extract_tar_variants(tmp_path: Path, filename: str, mode: str) -> None:
    archive = make_tar(tmp_path / filename, {"x/1.png": b"one", "2.png": b"two"}, mode)
    files = extract_archive(archive, tmp_path / "out")
    assert files == [tmp_path / "out" / "2.png", tmp_path / "out" / "x" / "1.png"]
    assert files[1].read_bytes() == b"one"


@pytest.mark.parametrize("name", ["../evil.png", "ok/../../evil.png", "/tmp/evil.png", "C:/evil.png", "..\\evil.png"])
@pytest.mark.parametrize("maker", [make_zip, make_tar])
def test_extract_refuses_path_traversal(tmp_path: Path, name: str, maker) -> None:
    archive = maker(tmp_path / ("bad.zip" if maker is make_zip else "bad.tar.gz"), {"good.png": b"ok", name: b"evil"})
    out = tmp_path / "a" / "b" / "out"
    with pytest.raises(DownloadError, match="refusing to extract"):
        extract_archive(archive, out)
    assert not (out / "good.png").exists()  # checked before anything is written
    assert not list(tmp_path.rglob("evil.png"))


def test_extract_refuses_tar_links(tmp_path: Path) -> None:
    archive = tmp_path / "links.tar"
    with tarfile.open(archive, "w") as tf:
        link = tarfile.TarInfo("passwd.png")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)
    with pytest.raises(DownloadError, match="is a link"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "passwd.png").exists()


def test_extract_refuses_zip_symlinks(tmp_path: Path) -> None:
    archive = tmp_path / "links.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("link.png")
        info.external_attr = (0o120777 << 16)  # a symbolic link, as Info-ZIP stores it
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DownloadError, match="symbolic link"):
        extract_archive(archive, tmp_path / "out")


def test_extract_not_an_archive_and_corrupt(tmp_path: Path) -> None:
    text = tmp_path / "notes.zip"
    text.write_text("not an archive")
    with pytest.raises(DownloadError, match="is not a zip or tar archive"):
        extract_archive(text, tmp_path / "out")
    whole = make_tar(tmp_path / "whole.tar.gz", {f"{i}.png": bytes(range(256)) * 64 for i in range(20)})
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(DownloadError, match="cut.tar.gz"):
        extract_archive(cut, tmp_path / "out")
