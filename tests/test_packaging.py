"""The wheel carries what the code loads at run time: a `pip install quarry` must work outside the checkout.

Built once per session with pip (build isolation: setuptools from PyPI, as a user's build would), then imported
from the unpacked wheel with the checkout out of the path, so a file read relative to the source tree fails.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import sys, collector, shippers
from pathlib import Path
where = Path(sys.argv[1])
assert Path(collector.__file__).is_relative_to(where), collector.__file__
assert Path(shippers.__file__).is_relative_to(where), shippers.__file__
from collector.ecs_mapping import load_mapping
version, plans = load_mapping()
assert "processes" in plans, sorted(plans)[:5]
from shippers.elasticsearch.template import load_template
assert load_template("elasticsearch")["index_patterns"] == ["logs-osquery.*-*"]
from collector.engine import Engine
rows = Engine().query("SELECT pid FROM processes WHERE pid = 1").rows
assert rows == [(1,)] or rows == [("1",)], rows
print("ok", version)
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Build from a copy of the tracked files: setuptools leaves build/ behind, and a stale build/lib in the
    # checkout would put files in the wheel that the configuration does not.
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)],
                   check=True, capture_output=True, timeout=300)
    (whl,) = out.glob("quarry-*.whl")
    return whl


def test_wheel_lists_the_run_time_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for data in ("schemas/ecs/mapping.json", "schemas/ecs/document.schema.json",
                 "schemas/elasticsearch/index_template.json", "collector/py.typed"):
        assert data in names, f"{data} is not in {wheel.name}"
    assert not any(n.startswith(("tests/", "bench/", "deploy/")) for n in names)


def test_installed_wheel_runs_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # -P: no script directory or cwd on the path; PYTHONPATH first, so the unpacked wheel shadows the editable
    # install of the checkout that this venv has.
    proc = subprocess.run([sys.executable, "-P", "-c", PROBE, str(site)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok ")
