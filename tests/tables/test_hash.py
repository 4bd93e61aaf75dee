"""hash: digests vs hashlib, JOIN pushdown hashes only the joined paths, read_max/budget reported."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from collector.errors import QueryError
from collector.table import Limits
from collector.tables import hash as hash_table
from tests.tables.fsutil import make_engine


@pytest.fixture
def files(tmp_path):
    d = tmp_path / "many"
    d.mkdir()
    for i in range(200):
        (d / f"f{i:03}").write_bytes(os.urandom(100 + i))
    (tmp_path / "big").write_bytes(b"x" * (3 << 20))  # several read chunks
    (d / "sub").mkdir()
    return tmp_path


def test_digests_match_hashlib(files):
    p = files / "big"
    (row,) = make_engine().query(f"SELECT * FROM hash WHERE path = '{p}'").dicts()
    data = p.read_bytes()
    assert row["md5"] == hashlib.md5(data).hexdigest()
    assert row["sha1"] == hashlib.sha1(data).hexdigest()
    assert row["sha256"] == hashlib.sha256(data).hexdigest()
    assert row["directory"] == str(files)


def test_directory_lists_regular_files_only(files):
    got = make_engine().query(f"SELECT path, sha256 FROM hash WHERE directory = '{files}/many'").rows
    assert len(got) == 200  # the subdirectory is not a regular file
    for path, digest in got[:20]:
        assert digest == hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_only_used_digests_are_computed(files, monkeypatch):
    seen = []
    real_new = hashlib.new
    monkeypatch.setattr(hash_table.hashlib, "new", lambda name, **kw: seen.append(name) or real_new(name, **kw))
    make_engine().query(f"SELECT sha1 FROM hash WHERE path = '{files}/big'")
    assert seen == ["sha1"]


def test_join_hashes_only_the_joined_paths(files, monkeypatch):
    calls = []
    real = hash_table._hash_into
    monkeypatch.setattr(hash_table, "_hash_into", lambda ctx, row, *a: calls.append(row["path"]) or real(ctx, row, *a))
    many = f"{files}/many"
    r = make_engine().query(
        f"SELECT file.path, hash.md5 FROM file JOIN hash USING (path) "
        f"WHERE file.path IN ('{many}/f001', '{many}/f002', '{many}/f150')")
    assert sorted(calls) == [f"{many}/f001", f"{many}/f002", f"{many}/f150"]
    assert all(md5 == hashlib.md5(Path(p).read_bytes()).hexdigest() for p, md5 in r.rows)
    calls.clear()
    r = make_engine().query(f"SELECT count(md5) FROM file JOIN hash USING (path) WHERE file.path LIKE '{many}/f00%'")
    assert r.rows == [(10,)] and len(calls) == 10
    calls.clear()
    make_engine().query(f"SELECT count(*) FROM file JOIN hash USING (path) WHERE file.path LIKE '{many}/f00%'")
    assert calls == []  # no digest column read: no file is read


def test_read_max_skips_and_reports(files):
    e = make_engine(limits=Limits(read_max=1 << 20))
    (row,) = e.query(f"SELECT md5 FROM hash WHERE path = '{files}/big'").dicts()
    r = e.query(f"SELECT md5 FROM hash WHERE path = '{files}/big'")
    assert row["md5"] is None and any("read_max" in w and "big" in w for w in r.warnings)


def test_hash_budget_is_per_query_across_join_calls(files):
    e = make_engine(limits=Limits(hash_bytes=1000))
    many = f"{files}/many"
    r = e.query(f"SELECT hash.md5 FROM file JOIN hash USING (path) WHERE file.directory = '{many}'")
    hashed = [x for (x,) in r.rows if x is not None]
    assert 0 < len(hashed) < 10 and any("hash_bytes" in w for w in r.warnings)


def test_required_column():
    with pytest.raises(QueryError, match="Table hash was queried without a required column"):
        make_engine().query("SELECT * FROM hash")
