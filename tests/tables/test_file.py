"""file: every column vs os.stat on a temp tree, glob semantics, limits, required-column error."""

from __future__ import annotations

import os
import stat
import time

import pytest

from collector.errors import QueryCancelled, QueryError
from collector.table import Limits
from tests.tables.fsutil import make_engine


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "a" / "one.txt").write_text("1")
    (tmp_path / "a" / "b" / "two.txt").write_text("22")
    (tmp_path / "a" / "b" / "c" / "three.conf").write_text("333")
    (tmp_path / "a" / ".hidden").write_text("h")
    (tmp_path / "a" / "x_y").write_text("")
    (tmp_path / "a" / "xzy").write_text("")
    os.symlink("one.txt", tmp_path / "a" / "link")
    os.symlink("missing", tmp_path / "a" / "dangling")
    os.symlink("..", tmp_path / "a" / "b" / "loop")  # a directory loop: must not be followed by %%
    os.mkfifo(tmp_path / "a" / "fifo")
    os.chmod(tmp_path / "a" / "one.txt", 0o4751)
    return tmp_path


def rows(sql, engine=None):
    r = (engine or make_engine()).query(sql)
    return r.dicts()


def test_every_column_matches_stat(tree):
    p = str(tree / "a" / "one.txt")
    (row,) = rows(f"SELECT * FROM file WHERE path = '{p}'")
    st = os.stat(p)
    assert row["path"] == p and row["directory"] == str(tree / "a") and row["filename"] == "one.txt"
    assert row["inode"] == st.st_ino and row["uid"] == st.st_uid and row["gid"] == st.st_gid
    assert row["mode"] == "4751"
    assert row["device"] == st.st_rdev and row["size"] == st.st_size == 1
    assert row["block_size"] == st.st_blksize and row["hard_links"] == st.st_nlink
    assert (row["atime"], row["mtime"], row["ctime"]) == (int(st.st_atime), int(st.st_mtime), int(st.st_ctime))
    assert row["symlink"] == 0 and row["type"] == "regular" and row["symlink_target_path"] is None
    assert row["btime"] == 0 or abs(row["btime"] - st.st_ctime) < 3600  # statx birth time, or osquery's 0
    assert "pid_with_namespace" not in row and "attributes" not in row  # hidden / other-platform


def test_types_and_symlinks(tree):
    a = tree / "a"
    got = {r["filename"]: r for r in rows(f"SELECT * FROM file WHERE directory = '{a}'")}
    assert set(got) == {"b", "one.txt", ".hidden", "x_y", "xzy", "link", "dangling", "fifo"}
    assert got["b"]["type"] == "directory" and got["fifo"]["type"] == "fifo"
    link = got["link"]  # stat follows the link, as osquery's does; symlink says it is one
    assert link["symlink"] == 1 and link["type"] == "regular" and link["inode"] == os.stat(a / "one.txt").st_ino
    assert link["symlink_target_path"] == "one.txt"
    assert got["dangling"]["symlink"] == 1 and got["dangling"]["type"] == "unknown"
    assert got["dangling"]["inode"] == os.lstat(a / "dangling").st_ino
    (dev,) = rows("SELECT type, device FROM file WHERE path = '/dev/null'")
    assert dev["type"] == "character" and dev["device"] == os.stat("/dev/null").st_rdev


def test_glob_one_level_vs_recursive(tree):
    a = str(tree / "a")
    one = {r["path"] for r in rows(f"SELECT path FROM file WHERE path LIKE '{a}/%'")}
    assert one == {os.path.join(a, n) for n in os.listdir(a)}
    rec = {r["path"] for r in rows(f"SELECT path FROM file WHERE path LIKE '{a}/%%'")}
    expected = set()
    for d, dirs, files in os.walk(a):  # os.walk does not follow symlinked directories either
        expected.update(os.path.join(d, n) for n in dirs + files)
    assert rec == expected and f"{a}/b/loop" in rec and f"{a}/b/loop/b" not in rec
    nested = {r["path"] for r in rows(f"SELECT path FROM file WHERE path LIKE '{a}/%/%.txt'")}
    assert nested == {f"{a}/b/two.txt"}
    under = {r["path"] for r in rows(f"SELECT path FROM file WHERE path LIKE '{a}/%%.conf'")}
    assert under == {f"{a}/b/c/three.conf"}
    single = {r["path"] for r in rows(f"SELECT path FROM file WHERE path LIKE '{a}/x_y'")}
    assert single == {f"{a}/x_y", f"{a}/xzy"}  # SQL's _ is one character


def test_directory_eq_and_like(tree):
    a = str(tree / "a")
    got = rows(f"SELECT path, directory FROM file WHERE directory = '{a}/'")
    assert {r["path"] for r in got} == {f"{a}/{n}" for n in os.listdir(a)}
    assert {r["directory"] for r in got} == {a + "/"}  # echoed as given, or SQLite would drop the rows
    got = rows(f"SELECT path FROM file WHERE directory LIKE '{a}/%'")
    assert {r["path"] for r in got} == {f"{a}/b/{n}" for n in os.listdir(f"{a}/b")}


def test_path_in_list_like_ossec_pack(tree):
    a = str(tree / "a")
    got = rows(f"SELECT path, filename, directory FROM file WHERE path IN ('{a}/one.txt', '{a}/nope', '{a}/b/')")
    assert {r["path"] for r in got} == {f"{a}/one.txt", f"{a}/b/"}
    trailing = next(r for r in got if r["path"].endswith("/"))
    assert trailing["directory"] == f"{a}/b"


def test_required_column_message():
    with pytest.raises(QueryError, match="Table file was queried without a required column in the WHERE clause"):
        make_engine().query("SELECT * FROM file")


def test_entry_and_depth_limits_are_reported(tree):
    a = str(tree / "a")
    e = make_engine(limits=Limits(max_entries=3))
    r = e.query(f"SELECT path FROM file WHERE path LIKE '{a}/%%'")
    assert len(r.rows) <= 3 and any("max_entries" in w for w in r.warnings)
    e = make_engine(limits=Limits(max_depth=1))
    r = e.query(f"SELECT path FROM file WHERE path LIKE '{a}/%%'")
    paths = {x[0] for x in r.rows}
    assert f"{a}/b" in paths and f"{a}/b/two.txt" not in paths
    assert any("max_depth" in w for w in r.warnings)


def test_recursive_walk_streams_and_can_be_cancelled(tmp_path):
    for i in range(30):
        d = tmp_path / f"d{i}"
        d.mkdir()
        for j in range(300):
            (d / f"f{j}").touch()
    e = make_engine()
    started = time.perf_counter()
    r = e.query(f"SELECT path FROM file WHERE path LIKE '{tmp_path}/%%' LIMIT 5")
    assert len(r.rows) == 5
    first = time.perf_counter() - started
    full = e.query(f"SELECT count(*) FROM file WHERE path LIKE '{tmp_path}/%%'")
    assert full.rows == [(30 * 301,)]
    assert first < full.elapsed  # LIMIT stops the walk: rows are generated lazily
    e._deadline = None
    with pytest.raises(QueryCancelled):
        e.query(f"SELECT count(*) FROM file a, file b WHERE a.path LIKE '{tmp_path}/%%' "
                f"AND b.path LIKE '{tmp_path}/%%'", timeout=0.3)


def test_pid_with_namespace_reads_through_proc_root(tree):
    p = str(tree / "a" / "one.txt")
    (row,) = rows(f"SELECT path, inode, pid_with_namespace, mount_namespace_id FROM file "
                  f"WHERE path = '{p}' AND pid_with_namespace = {os.getpid()}")
    assert row["inode"] == os.stat(p).st_ino and row["pid_with_namespace"] == os.getpid()
    assert row["mount_namespace_id"] == os.readlink(f"/proc/{os.getpid()}/ns/mnt")[5:-1]


def test_fixture_root_reports_host_paths(tree, engine_at):
    e = make_engine(root=str(tree))
    got = e.query("SELECT path, directory, size FROM file WHERE directory = '/a/b'").dicts()
    assert {r["path"] for r in got} == {"/a/b/c", "/a/b/two.txt", "/a/b/loop"}
    got = e.query("SELECT path FROM file WHERE path LIKE '/a/%%.conf'").dicts()
    assert [r["path"] for r in got] == ["/a/b/c/three.conf"]
    assert stat.S_ISREG(os.stat(tree / "a/b/c/three.conf").st_mode)
