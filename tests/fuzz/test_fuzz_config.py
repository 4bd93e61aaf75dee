"""Fuzzing the config layer: the text dialect, conf.d merging, packs, flagfiles and command-line flags.

Properties:
- the dialect is transparent: any JSON object, written with `#`/`//` comment lines and backslash-newline
  continuations spliced in anywhere, reads back as the same value;
- mutated text either parses or raises ConfigError naming the file and a line:column inside the text;
- flag parsing (argv, flagfiles) never raises: every defect is a Diagnostic;
- load() never raises on any content (config, conf.d, pack files, flagfile, argv): every defect is a
  Diagnostic with a place naming a file; validate(), scheduled() and check-config --explain accept the result.
Each case has a hard time limit (a hang fails the case).
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.config import check_config, load, loads, validate
from collector.config.flagvalues import parse_argv, read_flagfile, resolve
from collector.errors import ConfigError
from tests.fuzz import gen
from tests.fuzz.conftest import cases, time_limit

seeds = st.randoms(use_true_random=True)


@pytest.fixture(scope="module")
def engine_fixed(fake_host):
    from collector.engine import Engine

    return Engine(root=str(fake_host))


@cases("dialect_roundtrip", 2000)
@given(seeds)
def test_dialect_reads_back_the_same_value(rng: random.Random) -> None:
    value = {gen.text(rng): gen.value(rng, 4) for _ in range(rng.randint(0, 6))}
    text = gen.dialect(rng, value)
    with time_limit(5):
        assert loads(text) == value, text


@cases("dialect_mutated", 2000)
@given(seeds)
def test_mutated_text_parses_or_names_the_place(rng: random.Random) -> None:
    text = gen.mutate(rng, gen.dialect(rng, gen.config(rng)), n=6)
    with time_limit(5):
        try:
            result = loads(text, "fuzz.conf")
        except ConfigError as e:
            assert e.file == "fuzz.conf", e
            if e.line is not None:
                assert 1 <= e.line <= text.count("\n") + 1, (e, text)
                assert e.column is not None and e.column >= 1, (e, text)
            return
    assert isinstance(result, dict)


@cases("flags", 1500)
@given(seeds)
def test_flags_from_argv_and_flagfiles_never_raise(tmp_path_factory, rng: random.Random) -> None:
    folder = tmp_path_factory.mktemp("flags", numbered=True)
    for name in ("self.flags", "other.flags"):
        (folder / name).write_text("\n".join(gen.flag_lines(rng)), encoding="utf-8", errors="surrogatepass")
    argv = gen.flag_lines(rng) + [rng.choice(gen.FLAG_VALUES) for _ in range(rng.randint(0, 2))]
    rng.shuffle(argv)
    with time_limit(5):
        cli, cli_diags = parse_argv(argv)
        file_items, file_diags = read_flagfile(folder / "self.flags")
        settings, _custom, diags = resolve(cli, file_items, [])
    for d in [*cli_diags, *file_diags, *diags]:
        assert d.severity in ("error", "warning") and d.place is not None and d.place.file, d
    for s in settings.values():
        assert isinstance(s.value, (bool, int, str)), s


@cases("load_files", 500)
@given(seeds)
def test_load_reports_every_defect_with_a_place(engine_fixed, rng: random.Random) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        main = base / "quarry.conf"
        main.write_bytes(gen.file_bytes(rng, gen.config(rng)))
        confd = base / "quarry.conf.d"
        confd.mkdir()
        for i in range(rng.randint(0, 2)):
            (confd / f"{i}.conf").write_bytes(gen.file_bytes(rng, gen.config(rng)))
        (base / "packs").mkdir()
        for i in range(rng.randint(0, 2)):
            target = base / ("pack0.conf" if i == 0 else f"packs/p{i}.conf")
            target.write_bytes(gen.file_bytes(rng, gen.pack(rng) if rng.random() < 0.8 else gen.value(rng)))
        flagfile = base / "self.flags"
        flagfile.write_text("\n".join(gen.flag_lines(rng)), encoding="utf-8", errors="surrogatepass")
        argv = gen.flag_lines(rng)[:3]
        with time_limit(10):
            loaded = load(main, flagfile=flagfile if rng.random() < 0.5 else None, cli_flags=argv)
            for d in loaded.diagnostics:
                assert d.severity in ("error", "warning"), d
                assert d.place is not None and d.place.file, d
            diagnostics = validate(loaded, engine_fixed)
            assert all(d.place is not None and d.place.file for d in diagnostics), diagnostics
            queries = loaded.config.scheduled("host", engine_fixed)
            assert all(q.interval > 0 for q in queries), queries
            code, out = check_config(["--config_path", str(main), "--explain"], engine=engine_fixed,
                                     hostname="h")
            assert code in (0, 1), out
