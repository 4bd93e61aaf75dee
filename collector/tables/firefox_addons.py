"""firefox_addons: add-ons of every Firefox profile (~/.mozilla/firefox/<profile>/extensions.json)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table

SPEC = table(
    'firefox_addons',
    'Firefox browser extensions, webapps, and addons.',
    columns=[
        col('uid', BIGINT, 'The local user that owns the addon', additional=True, optimized=True),
        col('name', TEXT, 'Addon display name'),
        col('identifier', TEXT, 'Addon identifier', index=True),
        col('creator', TEXT, 'Addon-supported creator string'),
        col('type', TEXT, 'Extension, addon, webapp'),
        col('version', TEXT, 'Addon-supplied version string', collate='version'),
        col('description', TEXT, 'Addon-supplied description string'),
        col('source_url', TEXT, 'URL that installed the addon'),
        col('visible', INTEGER, '1 If the addon is shown in browser else 0'),
        col('active', INTEGER, '1 If the addon is active else 0'),
        col('disabled', INTEGER, '1 If the addon is application-disabled else 0'),
        col('autoupdate', INTEGER, '1 If the addon applies background updates else 0'),
        col('location', TEXT, 'Global, profile location'),
        col('path', TEXT, 'Path to plugin bundle'),
    ],
    user_data=True,
    platforms=('darwin', 'linux', 'windows'),
    examples=('SELECT * FROM users CROSS JOIN firefox_addons USING (uid)',),
)

# Firefox profile roots under a home: the classic one and the snap/flatpak packagings.
ROOTS = (".mozilla/firefox", "snap/firefox/common/.mozilla/firefox", ".var/app/org.mozilla.firefox/.mozilla/firefox")


def _text(v: Any) -> str | None:
    return None if v is None else str(v)


def _flag(v: Any) -> int | None:
    if v is None:
        return None
    return 1 if v is True or v == 1 or str(v).lower() == "true" else 0


def addon_rows(data: Any) -> Iterator[Row]:
    addons = data.get("addons") if isinstance(data, dict) else None
    for a in addons if isinstance(addons, list) else ():
        if not isinstance(a, dict):
            continue
        loc = a.get("defaultLocale") if isinstance(a.get("defaultLocale"), dict) else {}
        bg = a.get("applyBackgroundUpdates")
        yield {
            "name": _text(loc.get("name")),
            "identifier": _text(a.get("id")),
            "creator": _text(loc.get("creator")),
            "type": _text(a.get("type")),
            "version": _text(a.get("version")),
            "description": _text(loc.get("description")),
            "source_url": _text(a.get("sourceURI")),
            "visible": _flag(a.get("visible")),
            "active": _flag(a.get("active")),
            # osquery counts any of the three ways Firefox disables an add-on.
            "disabled": 1 if any(a.get(k) is True for k in ("softDisabled", "appDisabled", "userDisabled")) else 0,
            # applyBackgroundUpdates: 0 off, 1 follow the global default (on), 2 on.
            "autoupdate": None if bg is None else (0 if bg in (0, False) else 1),
            "location": _text(a.get("location")),
            "path": _text(a.get("path")),
        }


def generate(ctx: Context) -> Iterator[Row]:
    ids = ctx.eq("identifier")
    for user in ctx.users():
        for rel in ROOTS:
            base = os.path.join(ctx.path(user.pw_dir), rel)
            try:
                names = sorted(os.listdir(base))
            except OSError:
                continue
            for name in names:
                path = os.path.join(base, name, "extensions.json")
                try:
                    with open(path, "rb") as f:
                        data = json.loads(f.read().decode("utf-8", "replace"))
                except FileNotFoundError:
                    continue
                except (OSError, ValueError) as e:
                    ctx.note(f"cannot parse {ctx.host_path(path)}: {e}")
                    continue
                for row in addon_rows(data):
                    if ids is not None and row["identifier"] not in ids:
                        continue
                    row["uid"] = user.pw_uid
                    yield row
