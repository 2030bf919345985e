"""The shell runner's tar extractor against hostile archives.

hm builds a step's archive from the project itself (``hm/run/archive.py``), so no
project can hand the runner a ``..`` entry or a device node through ``hm run``.
The extractor must still never write outside the workspace: the runner may run
with more rights than whoever wrote the project, and another host may serve any
bytes. These tests run ``sh_extract_archive`` exactly as the plugin runs it, but
on crafted archives: ``tests/c/tar_extract_driver.c`` links every source of
``plugins/shell`` with a fake host table that serves the archive through
``archive_read`` (built with AddressSanitizer and UBSan when the compiler has them).

Each case checks the outcome a user would see (the step's PluginError) and the
filesystem: nothing appears outside the workspace, and a file outside it keeps
its content and its link count.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from tar_fuzz import C_TESTS, compile_with_shell_sources


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tar-driver") / "tar_extract_driver"
    compile_with_shell_sources(C_TESTS / "tar_extract_driver.c", out)
    return out


@dataclass
class Extracted:
    line: str  # "ok", "stopped" or "error CODE: MESSAGE"
    stderr: str
    workspace: Path


@dataclass
class Sandbox:
    """A workspace, and a sibling folder with a secret the archive must not reach."""

    driver: Path
    root: Path

    @property
    def workspace(self) -> Path:
        return self.root / "ws"

    @property
    def outside(self) -> Path:
        return self.root / "outside"

    @property
    def secret(self) -> Path:
        return self.outside / "secret.txt"

    def extract(self, archive: bytes, *, max_read: int = 0) -> Extracted:
        path = self.root / "archive.tar"
        path.write_bytes(archive)
        done = subprocess.run(
            [str(self.driver), str(path), str(self.workspace), str(max_read)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode in (0, 1, 2), f"the extractor crashed ({done.returncode}):\n{done.stderr}"
        assert "Sanitizer" not in done.stderr and "runtime error" not in done.stderr, done.stderr
        return Extracted(done.stdout.strip(), done.stderr, self.workspace)

    def untouched(self) -> None:
        """The world outside the workspace is as it was."""
        assert sorted(p.name for p in self.outside.iterdir()) == ["secret.txt"]
        assert self.secret.read_text() == "secret"
        assert self.secret.stat().st_nlink == 1
        assert sorted(p.name for p in self.root.iterdir()) == ["archive.tar", "outside", "ws"]


@pytest.fixture
def box(driver: Path, tmp_path: Path) -> Sandbox:
    sandbox = Sandbox(driver, tmp_path)
    sandbox.workspace.mkdir()
    sandbox.outside.mkdir()
    sandbox.secret.write_text("secret")
    return sandbox


# -- building archives ------------------------------------------------------------------


def tar(*members: tuple[tarfile.TarInfo, bytes | None], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def file(name: str, data: bytes = b"x", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def directory(name: str, mode: int = 0o755) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    return info, None


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def node(name: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = kind, 1, 3
    return info, None


def raw_header(name: bytes, typeflag: bytes, size_field: bytes, *, magic: bytes = b"ustar\x0000") -> bytes:
    """A 512-byte header with a hand-written size field (octal text or base-256 bytes)."""
    h = bytearray(512)
    h[0 : len(name)] = name
    h[100:108] = b"0000644\x00"
    h[108:116] = h[116:124] = b"0000000\x00"
    h[124:136] = size_field.ljust(12, b"\x00")
    h[136:148] = b"00000000000\x00"
    h[156:157] = typeflag
    h[257:265] = magic
    h[148:156] = b" " * 8
    h[148:156] = f"{sum(h):06o}\x00 ".encode()
    return bytes(h)


def base256(value: int) -> bytes:
    return b"\x80" + value.to_bytes(11, "big")


END = b"\x00" * 1024


# -- the baseline: a normal archive is extracted whole ----------------------------------


@pytest.mark.parametrize("max_read", [0, 1, 511, 513, 4096])
def test_a_normal_archive_is_extracted_at_any_read_size(box: Sandbox, max_read: int) -> None:
    archive = tar(
        directory("src", 0o755),
        file("src/main.c", b"int main(void) { return 0; }\n"),
        file("src/run.sh", b"#!/bin/sh\n", 0o755),
        file("a" * 150 + "/" + "b" * 150, b"long name"),  # PAX path
        link("src/main.link", "main.c"),
        link("src/hard", "src/main.c", tarfile.LNKTYPE),
        directory("ro", 0o555),
        file("ro/inside", b"filled before ro became read-only"),
    )
    result = box.extract(archive, max_read=max_read)
    assert result.line == "ok", result.stderr
    ws = box.workspace
    assert (ws / "src" / "main.c").read_text() == "int main(void) { return 0; }\n"
    assert os.access(ws / "src" / "run.sh", os.X_OK)
    assert (ws / ("a" * 150) / ("b" * 150)).read_text() == "long name"
    assert os.readlink(ws / "src" / "main.link") == "main.c"
    assert (ws / "src" / "hard").stat().st_ino == (ws / "src" / "main.c").stat().st_ino
    assert (ws / "ro" / "inside").is_file() and (ws / "ro").stat().st_mode & 0o777 == 0o555
    box.untouched()
    (ws / "ro").chmod(0o755)  # let pytest clean up


# -- names that leave the workspace -----------------------------------------------------


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (tar(file("../outside/pwned")), "entry '../outside/pwned' has a '..' component"),
        (tar(file("a/../../outside/pwned")), "has a '..' component and could escape the workspace"),
        (tar(directory("../outside/newdir")), "has a '..' component"),
        (tar(link("../outside/l", "x")), "has a '..' component"),
        (tar(file("ok"), file("sub/..")), "entry 'sub/..' has a '..' component"),
    ],
    ids=["file", "middle", "dir", "symlink", "trailing"],
)
def test_dot_dot_is_refused(box: Sandbox, archive: bytes, message: str) -> None:
    result = box.extract(archive)
    assert result.line.startswith("error bad_archive: refusing to extract the workspace archive")
    assert message in result.line
    box.untouched()


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_an_absolute_name_is_refused_in_every_format(box: Sandbox, fmt: int) -> None:
    # Long enough that PAX and GNU store it in an extended header, not in the ustar field.
    target = str(box.outside / ("deep" * 30 if fmt != tarfile.USTAR_FORMAT else "") / "pwned")
    result = box.extract(tar(file(target), fmt=fmt))
    assert result.line == (
        f"error bad_archive: refusing to extract the workspace archive: entry '{target}' is an absolute path"
    )
    box.untouched()


# -- symbolic links ---------------------------------------------------------------------


@pytest.mark.parametrize("target", ["absolute", "../outside"])
def test_writing_through_a_symlink_the_archive_made_is_refused(box: Sandbox, target: str) -> None:
    to = str(box.outside) if target == "absolute" else target
    result = box.extract(tar(link("link", to), file("link/pwned", b"gotcha")))
    assert result.line.startswith("error bad_archive:")
    assert "entry 'link/pwned' lies under 'link', which the archive made a symbolic link" in result.line
    box.untouched()


def test_a_directory_under_a_symlink_is_refused(box: Sandbox) -> None:
    result = box.extract(tar(link("link", str(box.outside)), directory("link/sub")))
    assert "lies under 'link', which the archive made a symbolic link" in result.line
    box.untouched()


def test_a_symlink_to_the_parent_inside_a_directory_is_not_followed(box: Sandbox) -> None:
    result = box.extract(tar(directory("d"), link("d/up", ".."), link("d/up2", "../.."), file("d/up2/outside/x")))
    assert "entry 'd/up2/outside/x' lies under 'd/up2'" in result.line
    box.untouched()


def test_a_file_replacing_a_symlink_replaces_the_link_not_its_target(box: Sandbox) -> None:
    result = box.extract(tar(link("link", str(box.secret)), file("link", b"new")))
    assert result.line == "ok", result.stderr
    assert not (box.workspace / "link").is_symlink()
    assert (box.workspace / "link").read_text() == "new"
    box.untouched()


def test_a_directory_replacing_a_symlink_replaces_the_link(box: Sandbox) -> None:
    result = box.extract(tar(link("d", str(box.outside)), directory("d"), file("d/inside")))
    assert result.line == "ok", result.stderr
    assert (box.workspace / "d").is_dir() and not (box.workspace / "d").is_symlink()
    assert (box.workspace / "d" / "inside").is_file()
    box.untouched()


def test_a_symlink_is_stored_as_written_and_never_followed(box: Sandbox) -> None:
    result = box.extract(tar(link("escape", str(box.secret))))
    assert result.line == "ok"
    assert os.readlink(box.workspace / "escape") == str(box.secret)
    box.untouched()


# -- hard links -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("ABSOLUTE", "hard link target '{secret}' is an absolute path"),
        ("../outside/secret.txt", "hard link target '../outside/secret.txt' has a '..' component"),
        ("nothere", "hard link 'h' to 'nothere', which is not an earlier entry of the archive"),
    ],
    ids=["absolute", "dot-dot", "not-an-entry"],
)
def test_a_hard_link_out_of_the_workspace_is_refused(box: Sandbox, target: str, message: str) -> None:
    target = str(box.secret) if target == "ABSOLUTE" else target
    result = box.extract(tar(link("h", target, tarfile.LNKTYPE)))
    assert result.line.startswith("error bad_archive:")
    assert message.format(secret=box.secret) in result.line
    assert not (box.workspace / "h").exists()
    box.untouched()


def test_a_hard_link_through_a_symlink_is_refused(box: Sandbox) -> None:
    result = box.extract(tar(link("l", str(box.outside)), link("h", "l/secret.txt", tarfile.LNKTYPE)))
    assert "entry 'l/secret.txt' lies under 'l', which the archive made a symbolic link" in result.line
    assert not (box.workspace / "h").exists()
    box.untouched()


def test_a_hard_link_to_a_symlink_links_the_symlink_not_its_target(box: Sandbox) -> None:
    result = box.extract(tar(link("s", str(box.secret)), link("h", "s", tarfile.LNKTYPE)))
    assert result.line == "ok", result.stderr
    assert (box.workspace / "h").is_symlink()
    box.untouched()


def test_a_hard_link_to_a_directory_is_refused(box: Sandbox) -> None:
    result = box.extract(tar(directory("d"), link("h", "d", tarfile.LNKTYPE)))
    assert "hard link 'h' to the directory 'd'" in result.line


def test_rewriting_a_hard_linked_name_does_not_write_through_the_link(box: Sandbox) -> None:
    result = box.extract(tar(file("a", b"first"), link("b", "a", tarfile.LNKTYPE), file("b", b"second")))
    assert result.line == "ok"
    assert (box.workspace / "a").read_text() == "first"
    assert (box.workspace / "b").read_text() == "second"


# -- device nodes -----------------------------------------------------------------------


def test_device_nodes_and_fifos_are_skipped_with_a_warning(box: Sandbox) -> None:
    archive = tar(
        node("dev/null2", tarfile.CHRTYPE),
        node("dev/disk", tarfile.BLKTYPE),
        node("fifo", tarfile.FIFOTYPE),
        file("after", b"extraction went on"),
    )
    result = box.extract(archive)
    assert result.line == "ok", result.stderr
    for name in ("dev/null2", "dev/disk", "fifo"):
        assert f"not extracting '{name}' from the workspace archive: device nodes and FIFOs are skipped" in (
            result.stderr
        )
        assert not (box.workspace / name).exists()
    assert (box.workspace / "after").read_text() == "extraction went on"


# -- huge and truncated headers ---------------------------------------------------------


def test_an_extended_header_over_the_limit_is_refused_before_it_is_read(box: Sandbox) -> None:
    for typeflag in (b"x", b"L", b"K"):
        result = box.extract(raw_header(b"././@PaxHeader", typeflag, b"%011o" % (2 << 20)) + END)
        assert result.line == (
            "error bad_archive: the workspace archive has a 2097152-byte extended header at byte 512 "
            "(more than the 1048576 bytes accepted)"
        ), typeflag


def test_a_name_longer_than_4096_bytes_is_refused(box: Sandbox) -> None:
    result = box.extract(tar(file("d/" * 2500 + "f")))
    assert "is longer than 4096 bytes" in result.line
    assert list(box.workspace.iterdir()) == []


def test_a_component_longer_than_a_file_name_can_be_is_the_archives_fault(box: Sandbox) -> None:
    # Not "cannot inspect …: File name too long; check free disk space and permissions".
    result = box.extract(tar(file("d/" + "n" * 256)))
    assert result.line.startswith("error bad_archive: the workspace archive has entry 'd/nnn")
    assert "with a name component longer than 255 bytes" in result.line
    assert box.extract(tar(file("n" * 255))).line == "ok"


def test_a_file_claiming_exabytes_ends_as_truncated(box: Sandbox) -> None:
    result = box.extract(raw_header(b"big", b"0", base256(1 << 60)) + b"data" * 10)
    assert result.line.startswith("error bad_archive: the workspace archive is truncated")


@pytest.mark.parametrize("typeflag", [b"g", b"D"])
def test_a_skipped_entry_whose_size_wraps_around_is_truncated_not_skipped_over(box: Sandbox, typeflag: bytes) -> None:
    # size + padding would wrap to 0 in 64 bits: the entry hidden "inside" it must not be extracted.
    hidden = tar(file("smuggled", b"hidden in the data of another entry"))
    archive = raw_header(b"meta/", typeflag, base256((1 << 64) - 1)) + hidden
    result = box.extract(archive)
    assert result.line.startswith("error bad_archive: the workspace archive is truncated"), result.line
    assert not (box.workspace / "smuggled").exists()


def test_a_truncated_archive_is_reported_with_where_it_ends(box: Sandbox) -> None:
    archive = tar(file("one", b"1" * 600), file("two", b"2" * 600))
    for cut in (700, 1024 + 512 + 100, 1024 + 256):
        result = box.extract(archive[:cut])
        assert result.line.startswith("error bad_archive: the workspace archive is truncated: it ends at byte"), cut
        assert f"(archive size {cut})" in result.line


def test_a_bad_checksum_and_garbage_are_not_tar(box: Sandbox) -> None:
    good = bytearray(tar(file("f")))
    good[0] ^= 1
    assert box.extract(bytes(good)).line == (
        "error bad_archive: the workspace archive is not a tar archive or is corrupt: bad header checksum at byte 0"
    )
    assert "bad header checksum" in box.extract(os.urandom(4096)).line


def test_an_empty_or_zero_archive_gives_an_empty_workspace(box: Sandbox) -> None:
    assert box.extract(b"").line == "ok"
    assert box.extract(END).line == "ok"
    assert list(box.workspace.iterdir()) == []


def test_the_driver_is_the_plugins_code(driver: Path) -> None:
    # The corpus means something only if it ran the real extractor, not a copy.
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm is not installed")
    symbols = subprocess.run([nm, str(driver)], capture_output=True, text=True, check=True).stdout
    assert " T sh_extract_archive" in symbols and " T hm_load_plugin" in symbols
