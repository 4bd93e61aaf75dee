"""Every registered table matches osquery's tables.json: names, order, types and flags."""

from __future__ import annotations

import json

import pytest

from collector.registry import all_tables
from tests.conftest import shared_path

FLAGS = ("index", "required", "hidden", "additional", "optimized")

# Wave 1 of issue 2: the tables Quarry must have (the 41 the packs use, and 44 more).
WAVE1 = """
acpi_tables apt_sources arp_cache block_devices chrome_extensions cpuid crontab deb_packages disk_encryption
etc_hosts file firefox_addons hardware_events hash iptables kernel_info kernel_modules last listening_ports
logged_in_users mounts os_version osquery_events osquery_info osquery_schedule pci_devices portage_packages
process_envs process_memory_map process_open_files process_open_sockets processes python_packages
rpm_packages shell_history smbios_tables suid_bin system_controls time usb_devices users
system_info uptime groups user_groups interface_addresses interface_details interface_ipv6 routes
etc_services etc_protocols authorized_keys known_hosts sudoers shadow systemd_units startup_items
load_average memory_info cpu_time cpu_info dns_resolvers process_namespaces process_open_pipes ulimit_info
npm_packages yum_sources selinux_settings apparmor_profiles platform_info ssh_configs user_ssh_keys
memory_map kernel_keys shared_memory deb_package_files rpm_package_files osquery_flags osquery_packs
osquery_registry osquery_extensions certificates magic curl curl_certificate
""".split()


@pytest.fixture(scope="module")
def reference() -> dict[str, dict]:
    data = json.loads(shared_path("osquery", "tables.json").read_text())
    return {t["name"]: t for t in data["tables"]}


def test_wave1_is_85_tables():
    assert len(set(WAVE1)) == 85


@pytest.mark.parametrize("name", sorted(WAVE1))
def test_wave1_table_registered(name):
    assert name in all_tables(), f"table {name} is not implemented"


@pytest.mark.parametrize("name", sorted(all_tables()))
def test_table_matches_osquery(name, reference):
    spec = all_tables()[name].spec
    if spec.quarry_only:  # Quarry's own (osquery_shippers): it must not shadow or pretend to be osquery's
        assert name not in reference, f"{name} is an osquery table: declare it as osquery does"
        assert spec.columns and "Quarry" in spec.description, f"{name}: say in the description it is Quarry's"
        return
    assert name in reference, f"{name} is not an osquery table"
    ref = reference[name]
    assert "linux" in ref["platforms"], f"{name} is not a Linux table in osquery"
    ours = [(c.name, c.type) for c in spec.columns]
    theirs = [(c["name"], c["type"]) for c in ref["columns"]]
    linux_theirs = [x for x, c in zip(theirs, ref["columns"]) if not c.get("platforms") or "linux" in c["platforms"]]
    linux_ours = [(c.name, c.type) for c in spec.columns if not c.platforms or "linux" in c.platforms]
    assert linux_ours == linux_theirs, f"{name}: Linux columns differ from osquery"
    assert ours == theirs, f"{name}: declared columns (incl. other platforms' hidden ones) differ"
    for c, rc in zip(spec.columns, ref["columns"]):
        for flag in FLAGS:
            assert getattr(c, flag) == bool(rc.get(flag)), f"{name}.{c.name}: flag {flag} differs"
        assert (c.collate or None) == rc.get("collate"), f"{name}.{c.name}: collate differs"
    for attr in ("evented", "user_data", "utility", "cacheable"):
        assert getattr(spec, attr) == bool(ref.get(attr)), f"{name}: attribute {attr} differs"


def test_hidden_columns_not_in_select_star(engine):
    cols = engine.columns("SELECT * FROM processes")
    assert "elevated_token" not in cols and "cgroup_path" in cols and cols[0] == "pid"
