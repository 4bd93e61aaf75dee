"""File shipper: osquery naming, ECS NDJSON, route override, rotation (.1 plain, .2.zst), mode 0640, disk errors,
config errors, and one run end to end through the Pipeline."""

from __future__ import annotations

import errno
import json
import os

import pytest
import zstandard

from collector.logfile import LogFileError
from collector.pipeline import Pipeline
from collector.pipeline.api import Delivered, Partial, Record, Rejected, Retry
from collector.pipeline.config import parse_settings, validate_shipper
from shippers.file import FileShipper, create
from shippers.file.shipper import file_mode
from tests.pipeline.fake import wait_for


def rec(i: int, kind: str = "result", route: dict[str, str] | None = None, name: str = "q") -> Record:
    payload = json.dumps({"name": name, "counter": i, "columns": {"pid": str(i)}}, separators=(",", ":")).encode()
    return Record(id=f"id-{i}", payload=payload, name=name, kind=kind, route=route or {})  # type: ignore[arg-type]


def lines(path) -> list[dict]:
    with open(path, "rb") as f:
        return [json.loads(x) for x in f.read().splitlines()]


async def ship(s: FileShipper, recs: list[Record]):
    return await s.send(s.encode(recs))


async def test_osquery_naming_per_kind(tmp_path):
    s = create("f", None, {"dir": str(tmp_path)})
    await s.open()
    assert (tmp_path / "osqueryd.results.log").exists()  # created at open, as osquery's setUp does
    out = await ship(s, [rec(0), rec(1, "snapshot"), rec(2, "status"), rec(3)])
    await s.close()
    assert out == Delivered()
    assert [x["counter"] for x in lines(tmp_path / "osqueryd.results.log")] == [0, 3]
    assert [x["counter"] for x in lines(tmp_path / "osqueryd.snapshots.log")] == [1]
    assert [x["counter"] for x in lines(tmp_path / "quarry.status.log")] == [2]
    for name in ("osqueryd.results.log", "osqueryd.snapshots.log", "quarry.status.log"):
        assert file_mode(tmp_path / name) == 0o640


async def test_ecs_ndjson_default_and_path(tmp_path):
    s = create("e", None, {"dir": str(tmp_path), "format": "ecs"})
    assert s.format == "ecs"
    assert await ship(s, [rec(i, k) for i, k in enumerate(("result", "snapshot", "status"))]) == Delivered()
    await s.close()
    assert [x["counter"] for x in lines(tmp_path / "quarry.ecs.ndjson")] == [0, 1, 2]
    p = tmp_path / "sub" / "ecs.json"
    s2 = create("e2", None, {"dir": str(tmp_path), "format": "ecs", "path": str(p)})
    assert await ship(s2, [rec(i) for i in range(100)]) == Delivered()
    await s2.close()
    assert [x["counter"] for x in lines(p)] == list(range(100))


async def test_route_file_override_and_unsafe_route(tmp_path):
    s = create("f", None, {"dir": str(tmp_path)})
    recs = [rec(0), rec(1, route={"file": "pack_a.log"}), rec(2, "snapshot", route={"file": "x/pack_b.log"}),
            rec(3, route={"file": "../escape.log"}), rec(4, route={"file": "/etc/passwd"})]
    out = await ship(s, recs)
    await s.close()
    assert isinstance(out, Partial) and out.retry == ()
    assert [i for i, _ in out.rejected] == [3, 4] and "relative" in out.rejected[0][1]
    assert [x["counter"] for x in lines(tmp_path / "pack_a.log")] == [1]
    assert [x["counter"] for x in lines(tmp_path / "x" / "pack_b.log")] == [2]
    assert not (tmp_path.parent / "escape.log").exists()
    assert await ship(s, [rec(5, route={"file": "../e"})]) == Rejected(
        f"route file '../e' must be relative to {tmp_path} without '..'")


async def test_rotation_plain_then_zstd_mode_0640(tmp_path):
    s = create("f", None, {"dir": str(tmp_path), "rotate_size": 1024, "max_files": 3})
    recs = [rec(i) for i in range(200)]  # ~45 bytes each: about 9 files' worth
    for k in range(0, 200, 10):
        assert await ship(s, recs[k:k + 10]) == Delivered()
    await s.close()
    live = tmp_path / "osqueryd.results.log"
    one, two, three = (tmp_path / f"osqueryd.results.log.{n}" for n in (1, 2, 3))
    two, three = two.with_name(two.name + ".zst"), three.with_name(three.name + ".zst")
    assert live.exists() and one.exists() and two.exists() and three.exists()
    assert not list(tmp_path.glob("osqueryd.results.log.4*"))  # max_files 3: older ones deleted
    for p in (live, one, two, three):
        assert file_mode(p) == 0o640
    d = zstandard.ZstdDecompressor()
    parts = [d.decompressobj().decompress(p.read_bytes()) for p in (three, two)] + [one.read_bytes(),
                                                                                     live.read_bytes()]
    got = [json.loads(x)["counter"] for part in parts for x in part.splitlines()]
    assert got == list(range(got[0], 200))  # the newest events in order, nothing lost in the kept files
    assert os.path.getsize(one) >= 1024


async def test_disk_errors_are_retry_not_crash(tmp_path, monkeypatch):
    s = create("f", None, {"dir": str(tmp_path)})
    await s.open()
    f = s._files[tmp_path / "osqueryd.results.log"]

    def full(lines):
        raise LogFileError(f"{f.path}: cannot write: No space left on device") from OSError(errno.ENOSPC, "x")

    monkeypatch.setattr(f, "write", full)
    out = await ship(s, [rec(0)])
    assert isinstance(out, Retry) and out.reason.startswith("disk full:")

    def eio(lines):
        raise LogFileError(f"{f.path}: cannot write: Input/output error") from OSError(errno.EIO, "x")

    monkeypatch.setattr(f, "write", eio)
    out = await ship(s, [rec(0)])
    assert isinstance(out, Retry) and out.reason.startswith("I/O error:")
    assert s.stats["write_errors"] == 2
    monkeypatch.undo()
    assert await ship(s, [rec(1)]) == Delivered()
    await s.close()
    assert [x["counter"] for x in lines(tmp_path / "osqueryd.results.log")] == [1]


async def test_a_lasting_write_error_is_logged_once_per_streak(tmp_path, monkeypatch, caplog):
    s = create("f", None, {"dir": str(tmp_path)})
    await s.open()
    f = s._files[tmp_path / "osqueryd.results.log"]
    real = f.write

    def full(lines):
        raise LogFileError(f"{f.path}: cannot write: No space left on device") from OSError(errno.ENOSPC, "x")

    caplog.set_level("INFO", logger="quarry.shippers.file")
    monkeypatch.setattr(f, "write", full)
    for _ in range(5):  # the pipeline retries; the operator reads about it once
        assert isinstance(await ship(s, [rec(0)]), Retry)
    warned = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "disk full" in warned[0].getMessage()
    monkeypatch.setattr(f, "write", real)
    assert await ship(s, [rec(1)]) == Delivered()
    assert any("writing again" in r.getMessage() for r in caplog.records)
    monkeypatch.setattr(f, "write", full)
    assert isinstance(await ship(s, [rec(2)]), Retry)  # a new streak is logged again
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 2
    monkeypatch.undo()
    await s.close()


async def test_unwritable_dir_is_retry(tmp_path):
    (tmp_path / "blocker").write_text("a file where the directory should be")
    s = create("f", None, {"dir": str(tmp_path / "blocker" / "logs")})
    await s.open()  # logged, not raised
    assert not (await s.healthcheck()).ok
    out = await ship(s, [rec(0)])
    assert isinstance(out, Retry) and "cannot create the log directory" in out.reason


async def test_newline_in_payload_is_rejected(tmp_path):
    s = create("f", None, {"dir": str(tmp_path)})
    bad = Record(id="x", payload=b'{\n"a":1}', name="q")
    out = await ship(s, [rec(0), bad])
    await s.close()
    assert out == Partial(rejected=((1, "payload contains a newline"),))
    assert len(lines(tmp_path / "osqueryd.results.log")) == 1


def test_config_errors_name_shipper_and_field():
    errs = validate_shipper("logs", {"type": "file", "rotate_size": 10, "mode": 640, "compress": "yes",
                                     "results_file": "../r.log", "nope": 1})
    assert "shippers.logs.nope: unknown key for a file shipper" in errs
    assert any(e.startswith("shippers.logs: rotate_size: expected an integer of at least 1024") for e in errs)
    assert any(e.startswith("shippers.logs: mode: expected an octal string") for e in errs)
    assert any(e.startswith("shippers.logs: compress: expected true or false") for e in errs)
    assert any(e.startswith("shippers.logs: results_file:") for e in errs)
    assert validate_shipper("logs", {"type": "file", "dir": "/tmp/x", "mode": "0600"}) == []
    settings, errors = parse_settings("logs", {"type": "file"})
    assert errors == [] and not settings.spool_enabled and settings.batch.max_events == 5000


async def test_end_to_end_through_pipeline(tmp_path):
    raw = {"type": "file", "dir": str(tmp_path / "out"), "batch": {"linger_ms": 5}}
    settings, errors = parse_settings("files", raw)
    assert errors == []
    from collector.pipeline.config import create_shipper

    shipper = create_shipper("files", settings, raw)
    p = Pipeline([shipper], {"files": settings}, tmp_path / "state")
    await p.start()
    for k in range(0, 20_000, 1000):
        await p.submit_many([rec(i, "snapshot" if i % 10 == 0 else "result") for i in range(k, k + 1000)])
    await wait_for(lambda: p.snapshot()["files"]["acked"] == 20_000)
    await p.stop(5)
    res = [x["counter"] for x in lines(tmp_path / "out" / "osqueryd.results.log")]
    snap = [x["counter"] for x in lines(tmp_path / "out" / "osqueryd.snapshots.log")]
    assert sorted(res) == [i for i in range(20_000) if i % 10] and len(res) == 18_000
    assert sorted(snap) == list(range(0, 20_000, 10))
    assert not (tmp_path / "state" / "spool").exists()  # no spool for the file shipper by default


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_chunked_writes_rotate_exactly_like_rotatingfile(tmp_path, seed):
    """write_lines() must cut files at the same lines as RotatingFile.write's per-line check."""
    import random

    from collector.logfile import RotatingFile
    from shippers.file.shipper import write_lines

    rng = random.Random(seed)
    batches = [[b"x" * rng.randint(1, 300) + str(i).encode() for i in range(rng.randint(1, 60))]
               for _ in range(40)]
    a = RotatingFile(tmp_path / "a" / "r.log", rotate=True, rotate_size=2048, max_files=100, compress=False)
    b = RotatingFile(tmp_path / "b" / "r.log", rotate=True, rotate_size=2048, max_files=100, compress=False)
    for lines in batches:
        assert write_lines(a, lines) == b.write(lines)
    a.close(), b.close()
    names = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == names and len(names) > 5
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_sample_conf_validates_and_readme_quotes_it():
    from pathlib import Path

    from collector.config.text import loads
    from shippers.file.config import KEYS

    pkg = Path(__file__).resolve().parents[3] / "shippers" / "file"
    text = (pkg / "sample.conf").read_text()
    (name, body), = loads(text, "sample.conf")["shippers"].items()
    assert validate_shipper(name, body) == []
    readme = (pkg / "README.md").read_text()
    assert text.strip() in readme
    for key in KEYS:
        assert f"| `{key}` |" in readme, key


def test_is_a_shipper(tmp_path):
    from collector.pipeline.api import Shipper

    s = create("x", None, {"dir": str(tmp_path)})
    assert isinstance(s, Shipper) and s.type == "file" and s.name == "x"
