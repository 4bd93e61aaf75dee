"""RotatingFile (collector.logfile): osquery's --logger_rotate naming, compression, limits and modes."""

from __future__ import annotations

import os
import stat

import pytest
import zstandard

from collector.logfile import LogFileError, RotatingFile


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def read_any(path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".zst"):
        return zstandard.ZstdDecompressor().stream_reader(data).read()
    return data


def line(i: int) -> bytes:
    return b'{"n":%04d,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}' % i  # 50 bytes + newline


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_creates_file_and_directory_with_modes(tmp_path, umask):
    os.umask(0o077)
    f = RotatingFile(tmp_path / "logs" / "osqueryd.results.log")
    assert (tmp_path / "logs" / "osqueryd.results.log").read_bytes() == b""  # created empty, up front
    assert mode_of(tmp_path / "logs" / "osqueryd.results.log") == 0o640
    assert mode_of(tmp_path / "logs") == 0o700 & 0o750  # mkdir honours the umask; never wider than 0750
    f.close()
    os.umask(0o000)
    g = RotatingFile(tmp_path / "wide" / "x.log", mode=0o600)
    assert mode_of(tmp_path / "wide" / "x.log") == 0o600 and mode_of(tmp_path / "wide") == 0o750
    g.close()


def test_appends_one_line_per_item(tmp_path):
    f = RotatingFile(tmp_path / "r.log")
    assert f.write([b"a", b"b"]) == 4
    assert f.write([]) == 0
    f.write([b"c"])
    f.flush()
    f.close()
    assert (tmp_path / "r.log").read_bytes() == b"a\nb\nc\n"
    g = RotatingFile(tmp_path / "r.log")  # reopening appends
    g.write([b"d"])
    g.close()
    assert (tmp_path / "r.log").read_bytes() == b"a\nb\nc\nd\n"


def test_no_rotation_by_default(tmp_path):
    f = RotatingFile(tmp_path / "r.log", rotate_size=100)
    f.write([line(i) for i in range(20)])
    f.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.log"]


def test_rotation_names_compression_and_order(tmp_path, umask):
    path = tmp_path / "osqueryd.results.log"
    f = RotatingFile(path, rotate=True, rotate_size=200, max_files=25)  # 4 lines of 51 bytes per file
    lines = [line(i) for i in range(20)]
    for x in lines:
        f.write([x])
    f.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "osqueryd.results.log.1" in names and "osqueryd.results.log.2.zst" in names
    assert "osqueryd.results.log.2" not in names
    assert not (tmp_path / "osqueryd.results.log.1").read_bytes().startswith(b"\x28\xb5\x2f\xfd")  # plain
    # oldest first: .N.zst ... .2.zst, .1, then the live file, give back every line in order
    rotated = sorted((p for p in tmp_path.iterdir() if p.name != path.name),
                     key=lambda p: -int(p.name.split(".")[3]))
    content = b"".join(read_any(p) for p in rotated) + path.read_bytes()
    assert content == b"".join(x + b"\n" for x in lines)
    for p in tmp_path.iterdir():
        assert mode_of(p) == 0o640, p.name  # rotated archives are not world-readable (osquery#8103)
    # rotation happens before a write once size >= limit, so a file holds the line that crossed the limit
    assert all(len(read_any(p)) == 204 for p in rotated)


def test_max_files_honoured(tmp_path):
    path = tmp_path / "s.log"
    f = RotatingFile(path, rotate=True, rotate_size=51, max_files=3)
    for i in range(10):
        f.write([line(i)])
    f.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.log", "s.log.1", "s.log.2.zst", "s.log.3.zst"]
    assert path.read_bytes() == line(9) + b"\n"
    assert read_any(tmp_path / "s.log.1") == line(8) + b"\n"
    assert read_any(tmp_path / "s.log.2.zst") == line(7) + b"\n"
    assert read_any(tmp_path / "s.log.3.zst") == line(6) + b"\n"


def test_max_files_one_keeps_only_the_plain_file(tmp_path):
    f = RotatingFile(tmp_path / "s.log", rotate=True, rotate_size=51, max_files=1)
    for i in range(5):
        f.write([line(i)])
    f.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.log", "s.log.1"]
    assert (tmp_path / "s.log.1").read_bytes() == line(3) + b"\n"


def test_a_batch_is_split_across_files_at_the_limit(tmp_path):
    f = RotatingFile(tmp_path / "b.log", rotate=True, rotate_size=102)
    f.write([line(i) for i in range(5)])
    f.close()
    assert (tmp_path / "b.log.2.zst").exists()
    assert read_any(tmp_path / "b.log.2.zst") == line(0) + b"\n" + line(1) + b"\n"
    assert (tmp_path / "b.log").read_bytes() == line(4) + b"\n"


def test_uncompressed_rotation(tmp_path):
    f = RotatingFile(tmp_path / "u.log", rotate=True, rotate_size=51, compress=False)
    for i in range(3):
        f.write([line(i)])
    f.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u.log", "u.log.1", "u.log.2"]
    assert (tmp_path / "u.log.2").read_bytes() == line(0) + b"\n"


def test_external_move_is_followed(tmp_path):
    path = tmp_path / "r.log"
    f = RotatingFile(path)
    f.write([b"one"])
    os.rename(path, tmp_path / "r.log.old")  # logrotate's default move
    f.write([b"two"])
    path.unlink()
    f.write([b"three"])
    f.close()
    assert (tmp_path / "r.log.old").read_bytes() == b"one\n"
    assert path.read_bytes() == b"three\n"


def test_unwritable_path_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LogFileError, match="file"):
        RotatingFile(blocker / "r.log")
    path = tmp_path / "r.log"
    f = RotatingFile(path)
    path.unlink()
    path.mkdir()  # something else took the name
    with pytest.raises(LogFileError, match="r.log"):
        f.write([b"x"])
    f.close()


def test_bad_limits_are_refused(tmp_path):
    with pytest.raises(ValueError):
        RotatingFile(tmp_path / "r.log", rotate=True, max_files=0)
