"""chrome_extensions: extensions of Chromium-based browsers, per user and profile.

Each browser folder under the home is a profile (Opera) or holds profiles (folders with Preferences or
Secure Preferences). Extensions come from <profile>/Extensions/<id>/<version>/manifest.json (referenced=0)
and from the extensions.settings paths of the preference files (referenced=1), as osquery does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table

SPEC = table(
    'chrome_extensions',
    'Chrome-based browser extensions.',
    columns=[
        col('browser_type', TEXT, 'The browser type (Valid values: chrome, chrome_beta, chrome_dev, chrome_canary, chromium, opera, yandex, brave, brave_beta, brave_nightly, edge, edge_beta, edge_dev, edge_canary, vivaldi, arc, dia, comet)'),
        col('uid', BIGINT, 'The local user that owns the extension', index=True, optimized=True),
        col('name', TEXT, 'Extension display name'),
        col('profile', TEXT, 'The name of the Chrome profile that contains this extension'),
        col('profile_path', TEXT, 'The profile path'),
        col('referenced_identifier', TEXT, 'Extension identifier, as specified by the preferences file. Empty if the extension is not in the profile.'),
        col('identifier', TEXT, 'Extension identifier, computed from its manifest. Empty in case of error.'),
        col('version', TEXT, 'Extension-supplied version', collate='version'),
        col('description', TEXT, 'Extension-optional description'),
        col('default_locale', TEXT, 'Default locale supported by extension'),
        col('current_locale', TEXT, 'Current locale supported by extension'),
        col('update_url', TEXT, 'Extension-supplied update URI'),
        col('author', TEXT, 'Optional extension author'),
        col('persistent', INTEGER, '1 If extension is persistent across all tabs else 0'),
        col('path', TEXT, 'Path to extension folder'),
        col('permissions', TEXT, 'The permissions required by the extension'),
        col('permissions_json', TEXT, 'The JSON-encoded permissions required by the extension', hidden=True),
        col('optional_permissions', TEXT, 'The permissions optionally required by the extensions'),
        col('optional_permissions_json', TEXT, 'The JSON-encoded permissions optionally required by the extensions', hidden=True),
        col('manifest_hash', TEXT, 'The SHA256 hash of the manifest.json file', collate='nocase'),
        col('referenced', BIGINT, '1 if this extension is referenced by the Preferences file of the profile'),
        col('from_webstore', TEXT, 'True if this extension was installed from the web store'),
        col('state', TEXT, '1 if this extension is enabled'),
        col('install_time', TEXT, 'Extension install time, in its original Webkit format'),
        col('install_timestamp', BIGINT, 'Extension install time, converted to unix time'),
        col('manifest_json', TEXT, 'The manifest file of the extension', hidden=True),
        col('key', TEXT, 'The extension key, from the manifest file', hidden=True),
    ],
    user_data=True,
    platforms=('darwin', 'linux', 'windows'),
    examples=('select * from users join chrome_extensions using (uid)',),
)

# Linux locations relative to the home directory (osquery's list plus the newer Brave/Edge channels).
BROWSERS = (
    ("chrome", ".config/google-chrome"),
    ("chrome_beta", ".config/google-chrome-beta"),
    ("chrome_dev", ".config/google-chrome-unstable"),
    ("brave", ".config/BraveSoftware/Brave-Browser"),
    ("brave_beta", ".config/BraveSoftware/Brave-Browser-Beta"),
    ("brave_nightly", ".config/BraveSoftware/Brave-Browser-Nightly"),
    ("chromium", ".config/chromium"),
    ("chromium", "snap/chromium/common/chromium"),
    ("yandex", ".config/yandex-browser-beta"),
    ("yandex", ".config/yandex-browser"),
    ("opera", ".config/opera"),
    ("edge", ".config/microsoft-edge"),
    ("edge_beta", ".config/microsoft-edge-beta"),
    ("edge_dev", ".config/microsoft-edge-dev"),
    ("vivaldi", ".config/vivaldi"),
)
_PREFS = ("Preferences", "Secure Preferences")
_WEBKIT_EPOCH_OFFSET = 11644473600  # seconds from 1601-01-01 to 1970-01-01


def _load_json(path: str) -> Any:
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None


def _is_profile(path: str) -> bool:
    return any(os.path.isfile(os.path.join(path, p)) for p in _PREFS)


def profiles(home: str) -> Iterator[tuple[str, str]]:
    seen: set[str] = set()
    for browser, suffix in BROWSERS:
        base = os.path.join(home, suffix)
        if not os.path.isdir(base):
            continue
        if _is_profile(base):
            candidates = [base]
        else:
            candidates = sorted(os.path.join(base, d) for d in os.listdir(base))
        for c in candidates:
            real = os.path.realpath(c)
            if real not in seen and os.path.isdir(c) and _is_profile(c):
                seen.add(real)
                yield browser, real


def _settings(prefs: Any) -> dict[str, Any]:
    ext = prefs.get("extensions") if isinstance(prefs, dict) else None
    if not isinstance(ext, dict):
        return {}
    s = ext.get("settings", ext.get("opsettings"))
    return s if isinstance(s, dict) else {}


def _ext_path(ctx: Context, profile: str, p: str) -> str:
    # Absolute paths (unpacked extensions) are host paths: read them under the host root.
    full = ctx.path(p) if os.path.isabs(p) else os.path.join(profile, "Extensions", p)
    return os.path.realpath(full)


def identifier_from_key(key: str) -> str:
    """Chrome's id: the first 128 bits of sha256(public key DER), hex digits 0-f written as a-p."""
    try:
        der = base64.b64decode(key, validate=False)
    except (binascii.Error, ValueError):
        return ""
    if not der:
        return ""
    return "".join(chr(ord("a") + int(c, 16)) for c in hashlib.sha256(der).hexdigest()[:32])


def _localize(value: Any, messages: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("__MSG_") and value.endswith("__"):
        entry = messages.get(value[6:-2].lower())
        if isinstance(entry, dict) and isinstance(entry.get("message"), str):
            return entry["message"]
    return value


def _messages(path: str, locale: str) -> dict[str, Any]:
    data = _load_json(os.path.join(path, "_locales", locale, "messages.json"))
    # Chrome matches message names case-insensitively.
    return {str(k).lower(): v for k, v in data.items()} if isinstance(data, dict) else {}


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def extension_row(path: str, raw: bytes, want_localize: bool) -> Row | None:
    try:
        manifest = json.loads(raw.decode("utf-8-sig", "replace"))
    except ValueError:
        return None
    if not isinstance(manifest, dict):
        return None
    default_locale = _text(manifest.get("default_locale"))
    current_locale = _text(manifest.get("current_locale"))
    props = {k: manifest.get(k) for k in ("name", "description", "author", "update_url", "version")}
    if want_localize and any(isinstance(v, str) and v.startswith("__MSG_") for v in props.values()):
        msgs = _messages(path, default_locale or current_locale or "en")
        props = {k: _localize(v, msgs) for k, v in props.items()}
    author = props["author"]
    if isinstance(author, dict):  # {"email": ...} form
        author = author.get("email", "")
    bg = manifest.get("background")
    perms = manifest.get("permissions")
    opt = manifest.get("optional_permissions")
    key = manifest.get("key")
    return {
        "name": _text(props["name"]),
        "version": _text(props["version"]),
        "description": _text(props["description"]),
        "author": _text(author),
        "update_url": _text(props["update_url"]),
        "default_locale": default_locale,
        "current_locale": current_locale,
        "persistent": 1 if isinstance(bg, dict) and str(bg.get("persistent")).lower() == "true" else 0,
        "path": path,
        "permissions": ", ".join(_text(p) for p in perms if not isinstance(p, (dict, list)))
        if isinstance(perms, list) else "",
        "permissions_json": json.dumps(perms, separators=(",", ":")) if perms is not None else "{}",
        "optional_permissions": ", ".join(_text(p) for p in opt if not isinstance(p, (dict, list)))
        if isinstance(opt, list) else "",
        "optional_permissions_json": json.dumps(opt, separators=(",", ":")) if opt is not None else "{}",
        "manifest_hash": hashlib.sha256(raw).hexdigest(),
        "manifest_json": json.dumps(manifest, separators=(",", ":")),
        "key": _text(key),
        "identifier": identifier_from_key(key) if isinstance(key, str) else "",
    }


def _read(path: str) -> bytes | None:
    try:
        with open(os.path.join(path, "manifest.json"), "rb") as f:
            return f.read()
    except OSError:
        return None


def profile_rows(ctx: Context, profile: str, want_localize: bool) -> tuple[str, list[Row]]:
    prefs = [p for p in (_load_json(os.path.join(profile, n)) for n in _PREFS) if isinstance(p, dict)]
    name = ""
    for p in prefs:
        prof = p.get("profile")
        if isinstance(prof, dict) and prof.get("name"):
            name = str(prof["name"])
            break
    referenced: dict[str, tuple[str, dict[str, Any]]] = {}
    for p in prefs:
        for ext_id, entry in _settings(p).items():
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                referenced.setdefault(_ext_path(ctx, profile, entry["path"]), (ext_id, entry))
    on_disk: list[str] = []
    ext_root = os.path.join(profile, "Extensions")
    if os.path.isdir(ext_root):
        for ext_id in sorted(os.listdir(ext_root)):
            d = os.path.join(ext_root, ext_id)
            if os.path.isdir(d):
                on_disk += [os.path.realpath(os.path.join(d, v)) for v in sorted(os.listdir(d))
                            if os.path.isdir(os.path.join(d, v))]
    rows: list[Row] = []
    for path in dict.fromkeys(on_disk + sorted(referenced)):
        raw = _read(path)
        if raw is None:
            continue
        row = extension_row(path, raw, want_localize)
        if row is None:
            continue
        ref = referenced.get(path)
        row["referenced"] = 1 if ref else 0
        ext_id, entry = ref if ref else ("", {})
        row["referenced_identifier"] = ext_id
        row["from_webstore"] = _text(entry.get("from_webstore"))
        row["state"] = _text(entry.get("state"))
        row["install_time"] = _text(entry.get("install_time"))
        ts = 0  # osquery reports 0 when the install time is absent or unparsable
        try:
            ts = max(int(row["install_time"]) // 1_000_000 - _WEBKIT_EPOCH_OFFSET, 0)
        except ValueError:
            pass
        row["install_timestamp"] = ts
        rows.append(row)
    return name, rows


def generate(ctx: Context) -> Iterator[Row]:
    want_localize = any(ctx.used(c) for c in ("name", "description", "author", "update_url", "version"))
    for user in ctx.users():
        home = ctx.path(user.pw_dir)
        for browser, profile in profiles(home):
            ctx.check()
            name, rows = profile_rows(ctx, profile, want_localize)
            for row in rows:
                row.update(browser_type=browser, uid=user.pw_uid, profile=name,
                           profile_path=ctx.host_path(profile), path=ctx.host_path(row["path"]))
                yield row
