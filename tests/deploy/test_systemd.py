"""deploy/systemd: the unit verifies with systemd-analyze, is hardened, grants the matrix's capabilities."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.capsupport import DEPLOY, REPO, example_caps

SYSTEMD = DEPLOY / "systemd"
UNIT = SYSTEMD / "quarry.service"
QUARRY = Path(sys.executable).with_name("quarry")  # the venv's console script: a real ExecStart binary

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze not installed")


def _directives(text: str) -> dict[str, list[str]]:
    """"Section.Key" -> values in order (systemd units repeat keys; configparser cannot keep them)."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a setting: {raw!r}"
        out.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return out


def _settings() -> dict[str, list[str]]:
    return _directives(UNIT.read_text())


def _one(name: str) -> str:
    values = _settings()[name]
    assert len(values) == 1, f"{name} set {len(values)} times"
    return values[0]


def _verify(unit_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "SYSTEMD_UNIT_PATH": f"{unit_dir}:", "SYSTEMD_LOG_COLOR": "0"}
    return subprocess.run(["systemd-analyze", "verify", "--man=no", "quarry.service"], cwd=unit_dir, env=env,
                          capture_output=True, text=True, timeout=60)


def _install(tmp_path: Path, unit_text: str) -> Path:
    """The unit and its drop-in in a private unit path, ExecStart pointing at the real quarry binary."""
    unit_dir = tmp_path / "units"
    (unit_dir / "quarry.service.d").mkdir(parents=True)
    (unit_dir / "quarry.service").write_text(unit_text.replace("/usr/local/bin/quarry", str(QUARRY)))
    shutil.copy(SYSTEMD / "quarry.service.d" / "quarry.conf", unit_dir / "quarry.service.d" / "quarry.conf")
    return unit_dir


def test_systemd_analyze_verify_is_clean(tmp_path):
    assert QUARRY.exists(), f"{QUARRY}: install the project (pip install -e .) so the console script exists"
    r = _verify(_install(tmp_path, UNIT.read_text()))
    assert r.returncode == 0 and r.stderr == "", r.stderr  # verify exits 0 on ignored settings: stderr tells


def test_verify_catches_a_broken_unit(tmp_path):
    """The check above can fail: a bad value, an unknown directive, a missing binary each produce output."""
    for bad in ("ProtectSystem=stricter", "ProtectEverything=yes", "MemoryMax=lots"):
        broken = UNIT.read_text().replace("[Install]", bad + "\n[Install]")
        r = _verify(_install(tmp_path / bad.split("=")[0], broken))
        assert r.stderr, bad
    nobin = UNIT.read_text().replace("/usr/local/bin/quarry", "/nonexistent/q")
    r = _verify(_install(tmp_path / "nobin", nobin))
    assert r.returncode != 0 and "/nonexistent/q" in r.stderr


def test_security_exposure_is_low(tmp_path):
    """systemd-analyze security (offline) scores the unit's sandbox; 0 = locked down, 10 = unprotected."""
    unit_dir = _install(tmp_path, UNIT.read_text())
    env = {"PATH": os.environ["PATH"], "SYSTEMD_UNIT_PATH": f"{unit_dir}:"}
    cmd = ["systemd-analyze", "security", "--offline=yes", "--no-pager", "quarry.service"]
    r = subprocess.run([*cmd, "--threshold=30"], cwd=unit_dir, env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout[-2000:]
    m = re.search(r"Overall exposure level for quarry.service: (\d+\.\d)", r.stdout)
    assert m and float(m[1]) <= 3.0, r.stdout[-500:]  # 2.8 with systemd 252


def test_capabilities_are_the_matrix_for_the_example_config():
    caps = example_caps()
    assert caps == ["CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE"]
    assert sorted(_one("Service.CapabilityBoundingSet").split()) == caps
    assert sorted(_one("Service.AmbientCapabilities").split()) == caps
    assert _one("Service.User") == "quarry" and _one("Service.NoNewPrivileges") == "yes"


def test_hardening_and_lifecycle():
    s = _settings()
    expect = {
        "Service.ProtectSystem": "strict", "Service.ProtectHome": "read-only", "Service.PrivateTmp": "yes",
        "Service.RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "Service.ReadWritePaths": "/var/lib/quarry /var/log/quarry", "Service.Restart": "on-failure",
        "Service.KillSignal": "SIGTERM", "Service.ExecReload": "/bin/kill -HUP $MAINPID",
        "Service.ExecStart": "/usr/local/bin/quarry run --flagfile=/etc/quarry/quarry.flags",
    }
    for key, value in expect.items():
        assert s[key] == [value], key
    for absent in ("PrivateDevices", "ProtectProc", "PrivateNetwork"):
        assert f"Service.{absent}" not in s, absent
    # Above the 10 s scheduler stop plus the 10 s pipeline drain of Daemon.shutdown().
    assert _seconds(_one("Service.TimeoutStopSec")) > 20


def _seconds(v: str) -> int:
    return int(v.removesuffix("s"))


def _mb(v: str) -> int:
    return int(v.removesuffix("M"))


def test_memory_limits_sit_above_the_watchdog():
    flags = dict(line.split("=", 1) for line in (SYSTEMD / "quarry.flags").read_text().split())
    watchdog = int(flags["--watchdog_memory_limit"])
    assert watchdog == 200
    # The watchdog limits growth over the start size (40-50 MB measured; 100 allowed): it acts first.
    assert watchdog + 100 <= _mb(_one("Service.MemoryHigh")) < _mb(_one("Service.MemoryMax"))


def test_flagfile_and_example_config_check(tmp_path):
    """quarry.flags as installed, paths moved under tmp: check-config accepts it; a flag typo is an error."""
    text = (SYSTEMD / "quarry.flags").read_text()
    text = text.replace("/etc/quarry/quarry.conf", str(REPO / "config" / "quarry.conf"))
    text = text.replace("/var/lib/quarry", str(tmp_path / "state"))
    text = text.replace("/var/log/quarry", str(tmp_path / "log"))
    flagfile = tmp_path / "quarry.flags"
    flagfile.write_text(text)
    r = _check_config(flagfile)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 error(s), 0 warning(s); 16 queries" in r.stdout
    flagfile.write_text(text + "--watchdog_memory_limt=200\n")
    r = _check_config(flagfile)
    assert r.returncode == 1 and "unknown flag --watchdog_memory_limt" in r.stdout + r.stderr


def _check_config(flagfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(QUARRY), "check-config", f"--flagfile={flagfile}"], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None or shutil.which("systemd-tmpfiles") is None,
                    reason="systemd-sysusers/systemd-tmpfiles not installed")
def test_sysusers_and_tmpfiles_create_the_user_and_directories(tmp_path):
    root = tmp_path / "root"
    (root / "usr/lib/sysusers.d").mkdir(parents=True)
    (root / "usr/lib/tmpfiles.d").mkdir(parents=True)
    (root / "etc").mkdir()
    shutil.copy(SYSTEMD / "quarry.sysusers", root / "usr/lib/sysusers.d/quarry.conf")
    shutil.copy(SYSTEMD / "quarry.tmpfiles", root / "usr/lib/tmpfiles.d/quarry.conf")
    subprocess.run(["systemd-sysusers", f"--root={root}"], check=True, capture_output=True, timeout=60)
    passwd = (root / "etc/passwd").read_text().splitlines()
    entry = next(line for line in passwd if line.startswith("quarry:"))
    _, _, uid, gid, _, home, shell = entry.split(":")
    assert home == "/var/lib/quarry" and shell.endswith("nologin") and int(uid) < 1000
    subprocess.run(["systemd-tmpfiles", "--create", f"--root={root}"], check=True, capture_output=True,
                   timeout=60)
    for path, owner in (("var/lib/quarry", int(uid)), ("var/log/quarry", int(uid)), ("etc/quarry", 0)):
        st = (root / path).stat()
        assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o750, owner, int(gid)), path
