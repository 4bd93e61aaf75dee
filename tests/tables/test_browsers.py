"""chrome_extensions and firefox_addons on fixture homes (no browsers on this host)."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest



@pytest.fixture
def at(engine_at, fixtures):
    def make(name: str):
        return engine_at(fixtures / name)
    return make


def _chrome_id(key_b64: str) -> str:
    digest = hashlib.sha256(base64.b64decode(key_b64)).hexdigest()[:32]
    return digest.translate(str.maketrans("0123456789abcdef", "abcdefghijklmnop"))


def test_chrome_current_user_profile(at, fixtures):
    r = at("chrome_extensions").query("SELECT * FROM chrome_extensions ORDER BY name")
    rows = {x["name"]: x for x in r.dicts()}
    assert set(rows) == {"Quarry Test Extension", "Orphan"}  # root only; 'missing…' has no manifest
    ext = rows["Quarry Test Extension"]
    assert ext["browser_type"] == "chrome" and ext["uid"] == 0 and ext["profile"] == "Person 1"
    assert ext["profile_path"] == "/root/.config/google-chrome/Default"
    assert ext["path"] == "/root/.config/google-chrome/Default/Extensions/aaaabbbbccccddddeeeeffffgggghhhh/1.2.3_0"
    assert ext["description"] == "Localized description"  # __MSG_APPDESC__ matched case-insensitively
    assert ext["referenced"] == 1 and ext["referenced_identifier"] == "aaaabbbbccccddddeeeeffffgggghhhh"
    assert ext["state"] == "1" and ext["from_webstore"] == "true" and ext["install_time"] == "13340000000000000"
    assert ext["install_timestamp"] == 13340000000000000 // 1_000_000 - 11644473600
    assert ext["permissions"] == "tabs, storage, https://*/*" and ext["optional_permissions"] == "downloads"
    assert ext["persistent"] == 1 and ext["author"] == "dev@example.com" and ext["default_locale"] == "en"
    manifest = fixtures / "chrome_extensions" / ext["path"].lstrip("/") / "manifest.json"
    assert ext["manifest_hash"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    import json
    key = json.loads(manifest.read_text())["key"]
    assert ext["identifier"] == _chrome_id(key)
    orphan = rows["Orphan"]
    assert orphan["referenced"] == 0 and orphan["referenced_identifier"] == "" and orphan["identifier"] == ""
    assert orphan["state"] == "" and orphan["install_timestamp"] == 0 and orphan["persistent"] == 0


def test_chrome_join_users_and_unpacked(at):
    e = at("chrome_extensions")
    rows = e.query("SELECT uid, browser_type, profile, name, path, state, from_webstore, install_timestamp "
                   "FROM chrome_extensions WHERE uid = 1000").rows
    assert rows == [(1000, "brave", "Work", "Unpacked", "/home/alice/dev/unpacked", "1", "false", 0)]
    hidden = e.query("SELECT manifest_json, permissions_json FROM chrome_extensions WHERE name = 'Orphan'").rows
    assert '"name":"Orphan"' in hidden[0][0] and hidden[0][1] == "{}"
    assert "permissions_json" not in e.columns("SELECT * FROM chrome_extensions")


def test_chrome_live_host_has_no_profiles(engine):
    home = os.path.expanduser("~")
    if any(os.path.isdir(os.path.join(home, p)) for p in (".config/google-chrome", ".config/chromium")):
        pytest.skip("this host has a Chrome profile")
    assert engine.query("SELECT * FROM chrome_extensions").rows == []


def test_firefox_addons_fixture(at):
    e = at("firefox_addons")
    rows = {r["identifier"]: r for r in e.query("SELECT * FROM firefox_addons").dicts()}
    assert set(rows) == {"uBlock0@raymondhill.net", "langpack-fr@firefox.mozilla.org"}
    u = rows["uBlock0@raymondhill.net"]
    assert (u["name"], u["creator"], u["type"], u["version"]) == ("uBlock Origin", "Raymond Hill", "extension",
                                                                 "1.55.0")
    assert (u["visible"], u["active"], u["disabled"], u["autoupdate"], u["uid"]) == (1, 1, 0, 1, 0)
    assert u["location"] == "app-profile" and u["source_url"].endswith("ublock.xpi")
    lp = rows["langpack-fr@firefox.mozilla.org"]
    assert (lp["visible"], lp["active"], lp["disabled"], lp["autoupdate"]) == (0, 0, 1, 0)
    alice = e.query("SELECT name, disabled, autoupdate FROM firefox_addons WHERE uid = 1000").rows
    assert alice == [("Alice Addon", 1, 1)]
    assert e.query("SELECT name FROM firefox_addons WHERE identifier = 'uBlock0@raymondhill.net'").rows == [
        ("uBlock Origin",)]
