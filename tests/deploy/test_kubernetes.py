"""deploy/kubernetes: every manifest is valid against the Kubernetes schemas (kubernetes-validate, strict),
the kustomization renders them all, and the DaemonSet grants exactly what the matrix says the config's
tables need."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate as kv  # the test extra
import pytest
import yaml

from collector.identity import hardware_uuid
from tests.deploy.capsupport import DEPLOY, REPO, load_capmatrix

K8S = DEPLOY / "kubernetes"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
# The oldest and newest Kubernetes releases the bundled schemas cover that we claim to support.
VERSIONS = ("1.28.0", kv.latest_version())
QUARRY = Path(sys.executable).with_name("quarry")


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _kind(kind: str) -> dict:
    found = [d for p in MANIFESTS for d in _docs(p) if d["kind"] == kind]
    assert len(found) == 1, kind
    return found[0]


def _pod() -> dict:
    return _kind("DaemonSet")["spec"]["template"]["spec"]


def _container() -> dict:
    (c,) = _pod()["containers"]
    return c


def test_manifests_present():
    assert [p.name for p in MANIFESTS] == [
        "configmap.yaml", "daemonset.yaml", "namespace.yaml", "secret.yaml", "serviceaccount.yaml"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_is_valid(path, version):
    docs = _docs(path)
    assert docs, path
    for doc in docs:
        kv.validate(doc, version, strict=True)  # raises ValidationError naming the field


def test_validator_rejects_broken_manifests():
    """The validation above can fail: a wrong type, an unknown field (strict), a missing required field."""
    ds = _kind("DaemonSet")
    bad_type = copy.deepcopy(ds)
    bad_type["spec"]["template"]["spec"]["hostPID"] = "yes"
    unknown = copy.deepcopy(ds)
    unknown["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capability"] = {"add": ["ALL"]}
    no_image = copy.deepcopy(ds)
    del no_image["spec"]["template"]["spec"]["containers"][0]["name"]
    for doc in (bad_type, unknown, no_image):
        with pytest.raises(kv.ValidationError):
            kv.validate(doc, VERSIONS[-1], strict=True)


def test_kustomization_lists_every_manifest():
    k = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert k["kind"] == "Kustomization" and k["namespace"] == "quarry"
    assert sorted(k["resources"]) == [p.name for p in MANIFESTS]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kustomize_renders_valid_resources():
    out = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    kinds = ["ConfigMap", "DaemonSet", "Namespace", "Secret", "ServiceAccount"]
    assert sorted(d["kind"] for d in docs) == kinds
    for doc in docs:
        kv.validate(doc, VERSIONS[-1], strict=True)
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "quarry"


def test_daemonset_sees_the_host():
    pod, c = _pod(), _container()
    assert pod["hostPID"] is True and pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet" and pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == _kind("ServiceAccount")["metadata"]["name"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert volumes[mounts["/host"]["name"]]["hostPath"]["path"] == "/" and mounts["/host"]["readOnly"] is True
    assert volumes[mounts["/var/lib/quarry"]["name"]]["hostPath"]["path"] == "/var/lib/quarry"
    assert c["args"] == ["run", "--flagfile=/etc/quarry/quarry.flags"]
    flags = _flags()
    assert flags["--hostfs"] == "/host" and flags["--host_identifier"] == "uuid"
    assert flags["--config_path"] == "/etc/quarry/quarry.conf"
    assert flags["--database_path"].startswith("/var/lib/quarry/")
    # Every ConfigMap key is mounted, packs where quarry.conf looks for them.
    items = {i["key"]: i["path"] for i in volumes[mounts["/etc/quarry"]["name"]]["configMap"]["items"]}
    assert items == {"quarry.flags": "quarry.flags", "quarry.conf": "quarry.conf",
                     "pack-security.conf": "packs/security.conf",
                     "pack-inventory.conf": "packs/inventory.conf"}
    assert set(items) == set(_kind("ConfigMap")["data"])


def _flags() -> dict[str, str]:
    text = _kind("ConfigMap")["data"]["quarry.flags"]
    return dict(line.split("=", 1) for line in text.split())


def _config_dir(tmp_path: Path) -> Path:
    """The ConfigMap as the pod sees it under /etc/quarry."""
    data = _kind("ConfigMap")["data"]
    (tmp_path / "packs").mkdir()
    (tmp_path / "quarry.conf").write_text(data["quarry.conf"])
    for name in ("security", "inventory"):
        (tmp_path / "packs" / f"{name}.conf").write_text(data[f"pack-{name}.conf"])
    return tmp_path


def test_configmap_packs_are_the_repository_packs():
    data = _kind("ConfigMap")["data"]
    for name in ("security", "inventory"):
        assert data[f"pack-{name}.conf"] == (REPO / "config" / "packs" / f"{name}.conf").read_text(), name


def test_configmap_config_checks_clean(tmp_path):
    conf = _config_dir(tmp_path) / "quarry.conf"
    r = subprocess.run([str(QUARRY), "check-config", f"--config_path={conf}"], capture_output=True, text=True,
                       timeout=120, env={"QUARRY_HEC_TOKEN": "t", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 error(s), 0 warning(s); 16 queries (4 scheduled, 2 packs)" in r.stdout


def test_capabilities_are_the_matrix_for_the_configured_tables(tmp_path):
    cm = load_capmatrix()
    caps = cm.caps_for_tables(cm.config_tables(_config_dir(tmp_path) / "quarry.conf"))
    assert caps == ["CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE"]
    sc = _container()["securityContext"]
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc["capabilities"]["add"] == [c.removeprefix("CAP_") for c in caps]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False and sc["seccompProfile"] == {"type": "RuntimeDefault"}


def test_secret_reaches_the_shipper_through_env():
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in _container()["env"]}
    secret = _kind("Secret")
    conf = _kind("ConfigMap")["data"]["quarry.conf"]
    assert '"token_env": "QUARRY_HEC_TOKEN"' in conf and '"token":' not in conf
    ref = env["QUARRY_HEC_TOKEN"]
    assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]


def test_limits_match_the_systemd_unit_and_the_watchdog():
    unit = (DEPLOY / "systemd" / "quarry.service").read_text()
    memory_max = next(line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("MemoryMax="))
    limits = _container()["resources"]["limits"]
    assert limits["memory"] == memory_max.replace("M", "Mi")  # systemd's M is 1024-based, as Mi
    assert _flags()["--watchdog_memory_limit"] == "200"
    # SIGTERM grace above the daemon's 10 s scheduler stop + 10 s pipeline drain.
    assert _pod()["terminationGracePeriodSeconds"] > 20


def test_host_identity_reads_the_mounted_host(tmp_path):
    """--host_identifier=uuid with --hostfs=/host: the host's machine-id, not the container's."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    assert hardware_uuid(str(tmp_path)) == "01234567-89AB-CDEF-0123-456789ABCDEF"
    dmi = tmp_path / "sys" / "class" / "dmi" / "id"
    dmi.mkdir(parents=True)
    (dmi / "product_uuid").write_text("4c4c4544-0042-3510-8052-b7c04f4e4a32\n")
    assert hardware_uuid(str(tmp_path)) == "4C4C4544-0042-3510-8052-B7C04F4E4A32"  # DMI first, as osquery
