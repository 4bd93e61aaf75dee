"""osquery's config text dialect and the key-position scanner: errors point at the user's line and column."""

from __future__ import annotations

import pytest

from collector.config import text
from collector.config.positions import parse_document, read_document
from collector.errors import ConfigError
from collector.model import Place


def test_comment_lines_keep_line_numbers_for_json_errors():
    src = '{\n# one\n  // two\n#three\n  "a": 1,,\n}\n'
    with pytest.raises(ConfigError) as e:
        text.loads(src, "c.conf")
    assert (e.value.file, e.value.line, e.value.column) == ("c.conf", 5, 10)
    assert str(e.value).startswith("c.conf:5:10: invalid JSON")


def test_error_column_counts_the_users_indentation():
    src = '{\n        "a": tru\n}'
    with pytest.raises(ConfigError) as e:
        text.loads(src, "c.conf")
    assert (e.value.line, e.value.column) == (2, 14)


def test_continuation_joins_like_osquery_and_later_errors_stay_on_their_line():
    src = '{"q": "select * \\\n    from x \\\n    where y",\n "b": [1 2]}'
    with pytest.raises(ConfigError) as e:
        text.loads(src, "c.conf")
    assert (e.value.line, e.value.column) == (4, 10)
    value = text.loads('{"q": "select * \\\n    from x"}')
    # osquery removes backslash-newline only: the next line's indentation stays in the string.
    assert value["q"] == "select *     from x"


def test_error_inside_a_continued_line_maps_back_to_the_piece():
    src = '{"q": "a \\\n  b" 3}'
    with pytest.raises(ConfigError) as e:
        text.loads(src)
    assert (e.value.line, e.value.column) == (2, 6)


def test_comment_line_inside_object_and_crlf_file():
    value = text.loads('{\r\n  # c\r\n  "a": "x \\\r\n y"\r\n}\r\n')
    assert value == {"a": "x  y"}


def test_size_and_depth_limits():
    big = '{"a": "' + "x" * (4 * 1024 * 1024) + '"}'
    with pytest.raises(ConfigError, match="larger than"):
        text.loads(big)
    # Comment lines do not count against the limit (osquery measures after stripping).
    assert text.loads("#" + "c" * (4 * 1024 * 1024) + '\n{"a": 1}') == {"a": 1}
    deep = '{"a": ' + "[" * 40 + "]" * 40 + "}"
    with pytest.raises(ConfigError, match="nested deeper"):
        text.loads(deep)


def test_top_level_must_be_object():
    with pytest.raises(ConfigError, match="top level"):
        text.loads("[1, 2]")


def test_not_utf8_names_the_line(tmp_path):
    p = tmp_path / "bad.conf"
    p.write_bytes(b'{\n"a": "\xff"}')
    with pytest.raises(ConfigError) as e:
        text.load_file(p)
    assert e.value.line == 2 and "UTF-8" in str(e.value)


def test_positions_of_keys_and_array_items():
    src = '{\n  # c\n  "schedule": {\n    "q1": {"query": "x", "interval": "60"}\n  },\n  "d": {"load": ["a", "b"]}\n}'
    doc = parse_document(src, "f.conf")
    assert doc.place("schedule") == Place("f.conf", 3, 3)
    assert doc.place("schedule", "q1") == Place("f.conf", 4, 5)
    assert doc.place("schedule", "q1", "interval") == Place("f.conf", 4, 26)
    assert doc.place("d", "load", 1) == Place("f.conf", 6, 23)
    # Unknown paths fall back to the nearest ancestor that exists.
    assert doc.place("schedule", "q1", "nope") == Place("f.conf", 4, 5)


def test_positions_after_a_continuation():
    src = '{"q": "a \\\n  b", "interval": 5,\n "x": 1}'
    doc = parse_document(src, "f.conf")
    assert doc.place("interval") == Place("f.conf", 2, 7)
    assert doc.place("x") == Place("f.conf", 3, 2)


def test_duplicate_keys_first_wins_and_are_listed():
    doc = parse_document('{"a": 1,\n "a": 2}', "f.conf")
    assert doc.value == {"a": 1}
    [(path, kept, ignored)] = doc.duplicates()
    assert path == ("a",) and kept == Place("f.conf", 1, 2) and ignored == Place("f.conf", 2, 2)


def test_read_document_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_document(tmp_path / "nope.conf")
