"""collector/shipping.build: the daemon's state folder reaches the shippers and the lanes."""

from __future__ import annotations

import stat

from collector.shipping import build


def test_state_dir_keeps_the_hec_channel_and_holds_spool_and_dead_letters(tmp_path):
    shippers = {"siem": {"type": "splunk_hec", "url": "http://127.0.0.1:9", "token": "t"}}
    first, errors = build(shippers, {}, {}, tmp_path)
    assert errors == [] and first is not None
    runner = first.runners["siem"]
    channel = runner.shipper.channel
    kept = tmp_path / "hec-channel-siem"
    assert kept.read_text().strip() == channel and runner.shipper.channel_source == str(kept)
    again, _ = build(shippers, {}, {}, tmp_path)  # a restart
    assert again is not None and again.runners["siem"].shipper.channel == channel
    assert runner.spool is not None and runner.spool.dir == tmp_path / "spool" / "siem"
    assert runner.deadletter.path == tmp_path / "deadletter" / "siem.jsonl"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640
