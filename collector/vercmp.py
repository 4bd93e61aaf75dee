"""Package version ordering: Debian (dpkg), RPM (rpmvercmp), Arch (pacman's vercmp) and a generic one.

Each comparator returns -1, 0 or 1 and is a total order over strings, so it can back a SQLite collation
(`ORDER BY version COLLATE VERSION_DPKG`) as well as `version_compare()`. The algorithms follow the
distributions' documented rules, not osquery's simplified delimiter walk (see docs in sqlfunc).
"""

from __future__ import annotations

from collections.abc import Callable


def _sign(n: int) -> int:
    return (n > 0) - (n < 0)


# --- Debian -----------------------------------------------------------------------------------------
def _dpkg_order(c: str) -> int:
    # Debian policy 5.6.12: letters sort before non-letters, '~' before everything, even the end.
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    if c == "~":
        return -1
    return ord(c) + 256


def _dpkg_part(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _dpkg_order(a[i]) if i < len(a) else 0
            bc = _dpkg_order(b[j]) if j < len(b) else 0
            if ac != bc:
                return _sign(ac - bc)
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return _sign(first_diff)
    return 0


def _dpkg_split(v: str) -> tuple[int, str, str]:
    v = v.strip()
    epoch = 0
    if ":" in v:
        head, rest = v.split(":", 1)
        if head.isdigit():
            epoch, v = int(head), rest
    upstream, _, revision = v.rpartition("-")
    if not upstream:  # no hyphen: the whole string is upstream, revision empty (equal to "0")
        upstream, revision = revision, ""
    return epoch, upstream, revision


def dpkg_compare(a: str, b: str) -> int:
    ea, ua, ra = _dpkg_split(a)
    eb, ub, rb = _dpkg_split(b)
    if ea != eb:
        return _sign(ea - eb)
    return _dpkg_part(ua, ub) or _dpkg_part(ra, rb)


# --- RPM --------------------------------------------------------------------------------------------
def _segment(s: str, i: int) -> tuple[str, int, bool]:
    """The maximal run of digits (numeric) or of ASCII letters starting at i."""
    j = i
    if s[i].isdigit():
        while j < len(s) and s[j].isdigit():
            j += 1
        return s[i:j], j, True
    while j < len(s) and s[j].isascii() and s[j].isalpha():
        j += 1
    return s[i:j], j, False


def _alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _cmp_segments(x: str, y: str, numeric: bool) -> int:
    if numeric:
        x, y = x.lstrip("0"), y.lstrip("0")
        if len(x) != len(y):
            return 1 if len(x) > len(y) else -1
    return (x > y) - (x < y)


def rpmvercmp(a: str, b: str) -> int:
    """rpm's rpmvercmp: alnum segments, '~' sorts before anything, '^' after the end but before more."""
    if a == b:
        return 0
    i = j = 0
    while i < len(a) or j < len(b):
        while i < len(a) and not _alnum(a[i]) and a[i] not in "~^":
            i += 1
        while j < len(b) and not _alnum(b[j]) and b[j] not in "~^":
            j += 1
        ca = a[i] if i < len(a) else ""
        cb = b[j] if j < len(b) else ""
        if ca == "~" or cb == "~":
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i, j = i + 1, j + 1
            continue
        if ca == "^" or cb == "^":
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "^":
                return 1
            if cb != "^":
                return -1
            i, j = i + 1, j + 1
            continue
        if not (ca and cb):
            break
        sa, i2, numeric = _segment(a, i)
        if numeric:
            k = j
            while k < len(b) and b[k].isdigit():
                k += 1
        else:
            k = j
            while k < len(b) and b[k].isascii() and b[k].isalpha():
                k += 1
        sb = b[j:k]
        if not sb:  # numeric beats alpha
            return 1 if numeric else -1
        rc = _cmp_segments(sa, sb, numeric)
        if rc:
            return rc
        i, j = i2, k
    if i >= len(a) and j >= len(b):
        return 0
    return -1 if i >= len(a) else 1


def _evr(v: str) -> tuple[str, str, str | None]:
    v = v.strip()
    epoch = "0"
    if ":" in v:
        head, rest = v.split(":", 1)
        if head.isdigit():
            epoch, v = head or "0", rest
    if "-" in v:
        version, release = v.rsplit("-", 1)
        return epoch, version, release
    return epoch, v, None


def rpm_compare(a: str, b: str) -> int:
    """epoch:version-release as rpm orders it; a missing release sorts before any release."""
    ea, va, ra = _evr(a)
    eb, vb, rb = _evr(b)
    if int(ea) != int(eb):
        return 1 if int(ea) > int(eb) else -1
    return rpmvercmp(va, vb) or rpmvercmp(ra or "", rb or "")


# --- Arch (pacman's alpm_pkg_vercmp) -----------------------------------------------------------------
def _pacman_rpmvercmp(a: str, b: str) -> int:
    if a == b:
        return 0
    i = j = 0
    while i < len(a) and j < len(b):
        p1, p2 = i, j
        while i < len(a) and not _alnum(a[i]):
            i += 1
        while j < len(b) and not _alnum(b[j]):
            j += 1
        if i >= len(a) or j >= len(b):
            break
        # More separators win: 1.0.1 vs 1.0a? pacman compares separator run lengths first.
        if (i - p1) != (j - p2):
            return -1 if (i - p1) < (j - p2) else 1
        sa, i2, numeric = _segment(a, i)
        k = j
        while k < len(b) and (b[k].isdigit() if numeric else (b[k].isascii() and b[k].isalpha())):
            k += 1
        sb = b[j:k]
        if not sb:
            return 1 if numeric else -1
        rc = _cmp_segments(sa, sb, numeric)
        if rc:
            return rc
        i, j = i2, k
    ra, rb = a[i:], b[j:]
    if not ra and not rb:
        return 0
    # A trailing alpha part is a pre-release (1.0a < 1.0); anything else left over makes it newer.
    if (not ra and not (rb[:1].isascii() and rb[:1].isalpha())) or (ra[:1].isascii() and ra[:1].isalpha()):
        return -1
    return 1


def arch_compare(a: str, b: str) -> int:
    """pacman's vercmp: epoch, pkgver, and pkgrel only when both sides have one."""
    if a == b:
        return 0
    ea, va, ra = _evr(a)
    eb, vb, rb = _evr(b)
    rc = _pacman_rpmvercmp(ea, eb) or _pacman_rpmvercmp(va, vb)
    if rc == 0 and ra is not None and rb is not None:
        rc = _pacman_rpmvercmp(ra, rb)
    return rc


# --- generic ----------------------------------------------------------------------------------------
def generic_compare(a: str, b: str) -> int:
    """Semantic-ish: runs of digits compare as numbers, runs of letters as text, separators only split.

    A numeric run sorts after a letter run (1.0.1 > 1.0.beta); a longer version with an equal prefix is
    greater (1.2.1 > 1.2). Ties on the parsed form fall back to plain text so the order stays total.
    """
    ka, kb = _generic_key(a), _generic_key(b)
    if ka != kb:
        return 1 if ka > kb else -1
    return (a > b) - (a < b)


def _generic_key(v: str) -> list[tuple[int, int, str]]:
    key: list[tuple[int, int, str]] = []
    i = 0
    while i < len(v):
        if not _alnum(v[i]):
            i += 1
            continue
        seg, i, numeric = _segment(v, i)
        key.append((1, int(seg), "") if numeric else (0, 0, seg))
    return key


FLAVOURS: dict[str, Callable[[str, str], int]] = {
    "": generic_compare,
    "ARCH": arch_compare,
    "DPKG": dpkg_compare,
    "RHEL": rpm_compare,
}
