"""osquery's selectors for packs and queries: platform (substring rule), version, shard."""

from __future__ import annotations

import hashlib
import sys


def build_platform() -> str:
    return {"linux": "linux", "darwin": "darwin", "win32": "windows"}.get(sys.platform, sys.platform)


def check_platform(platform: str | None, build: str | None = None) -> bool:
    """osquery's checkPlatform: a substring test, so "windows,darwin" works and "gentoo" fails on Linux."""
    build = build or build_platform()
    if platform is None or platform == "" or platform == "null":
        return True
    if "any" in platform or "all" in platform:
        return True
    if build == "linux" and ("linux" in platform or "ubuntu" in platform or "centos" in platform):
        return True
    if "posix" in platform and build in ("linux", "darwin", "freebsd"):
        return True
    return build in platform


def machine_shard(hostname: str) -> int:
    """0..100 from the first byte of sha1(hostname), as osquery's getMachineShard."""
    first = int(hashlib.sha1(hostname.encode(), usedforsecurity=False).hexdigest()[:2], 16)
    return first * 100 // 255


def version_at_least(required: str | None, have: str) -> bool:
    if not required or required == "null":
        return True

    def parts(v: str) -> list[int]:
        out = []
        for p in v.split("-")[0].split("."):
            digits = "".join(ch for ch in p if ch.isdigit())
            out.append(int(digits) if digits else 0)
        return out

    a, b = parts(have), parts(required)
    n = max(len(a), len(b))
    return a + [0] * (n - len(a)) >= b + [0] * (n - len(b))
