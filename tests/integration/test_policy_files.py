"""Policy files through `openshell-sandbox policy check FILE...`.

The CLI prints `ok FILE` per valid file on stdout, one `file:line:col: msg`
line per problem on stderr, and exits 0 only when every file is valid.
"""
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("OPENSHELL_SANDBOX_BIN", REPO / "build" / "openshell-sandbox"))
REAL = REPO.parent / "shared" / "policies" / "real"


def real_files():
    if not REAL.is_dir():
        return []
    return sorted(p for p in REAL.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))


def check(*files):
    return subprocess.run([str(BIN), "policy", "check", *map(str, files)],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def cli():
    if not BIN.exists():
        pytest.skip(f"{BIN} is not built (make build/openshell-sandbox)")
    probe = subprocess.run([str(BIN), "policy", "check", "/nonexistent.yaml"],
                           capture_output=True, text=True, timeout=30)
    if "/nonexistent.yaml" not in probe.stderr:
        pytest.skip("this build has no `policy check` command yet")
    return BIN


@pytest.fixture(scope="module")
def real_dir():
    if not REAL.is_dir():
        pytest.skip(f"real policy corpus not found at {REAL}")
    return REAL


@pytest.mark.parametrize("path", real_files(), ids=lambda p: p.name)
def test_real_policy_loads(cli, path):
    r = check(path)
    assert r.returncode == 0, r.stderr
    assert f"ok {path}" in r.stdout
    assert r.stderr.strip() == ""


def test_real_corpus_present(cli, real_dir):
    files = real_files()
    assert len(files) >= 10
    r = check(*files)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("ok ") == len(files)


def test_legacy_nemoclaw_loads(cli, real_dir):
    files = sorted((real_dir / "legacy").glob("*nemoclaw*"))
    if not files:
        pytest.skip("no legacy nemoclaw policy in the corpus")
    for f in files:
        r = check(f)
        assert r.returncode == 0, r.stderr


def test_legacy_openclaw_inference_rejected(cli, real_dir):
    files = sorted((real_dir / "legacy").glob("*openclaw*at-b53684f*"))
    if not files:
        pytest.skip("no legacy openclaw policy in the corpus")
    path = files[0]
    lines = path.read_text().splitlines()
    line = next(i for i, l in enumerate(lines, 1) if l.startswith("inference:"))
    r = check(path)
    assert r.returncode == 1
    assert f"{path}:{line}:1: " in r.stderr
    assert "inference" in r.stderr


EP = ("version: 1\nnetwork_policies:\n  r:\n    endpoints:\n"
      "      - host: svc.example.net\n")

# (id, yaml, "line:col") -- the negative table of policy.md §17.
NEGATIVE = [
    ("inference", "version: 1\ninference: {allowed_routes: [local]}\n", "2:1"),
    ("rest_without_allow_set", EP + "        port: 443\n        protocol: rest\n", "7:19"),
    ("access_and_rules", EP + "        port: 443\n        protocol: rest\n        access: full\n"
     "        rules: [{allow: {method: GET, path: /a}}]\n", "9:9"),
    ("empty_rules", EP + "        port: 443\n        protocol: rest\n        access: read-only\n"
     "        rules: []\n", "9:16"),
    ("tld_wildcard", "version: 1\nnetwork_policies:\n  r:\n    endpoints:\n"
     "      - { host: \"*.com\", port: 443 }\n", "5:17"),
    ("bare_wildcard", "version: 1\nnetwork_policies:\n  r:\n    endpoints:\n"
     "      - { host: \"*\", port: 443 }\n", "5:17"),
    ("partial_middle_wildcard", "version: 1\nnetwork_policies:\n  r:\n    endpoints:\n"
     "      - { host: \"a.b*.example.com\", port: 443 }\n", "5:17"),
    ("tcp_ip_literal", "version: 1\nnetwork_policies:\n  r:\n    endpoints:\n"
     "      - host: 10.1.2.3\n        port: 5432\n        protocol: tcp\n", "5:15"),
    ("tcp_enforcement", EP + "        port: 5432\n        protocol: tcp\n"
     "        enforcement: enforce\n", "8:9"),
    ("port_and_ports", EP + "        port: 443\n        ports: [443, 8443]\n", "7:9"),
    ("quoted_port", EP + "        port: \"443\"\n", "6:15"),
    ("json_rpc_glob", EP + "        port: 443\n        protocol: json-rpc\n"
     "        rules: [{allow: {method: \"reports.*\"}}]\n", "8:34"),
    ("mcp_access", EP + "        port: 443\n        protocol: mcp\n        access: full\n", "8:9"),
    ("sql_enforce", EP + "        port: 5432\n        protocol: sql\n        enforcement: enforce\n"
     "        access: read-only\n", "8:22"),
    ("allowed_ips_all", EP + "        port: 443\n        allowed_ips: [\"0.0.0.0/0\"]\n", "7:23"),
    ("sigv4_without_service", EP + "        port: 443\n        protocol: rest\n"
     "        access: full\n        credential_signing: sigv4\n", "9:9"),
    ("read_write_root", "version: 1\nfilesystem_policy:\n  read_write: [/]\n", "3:16"),
    ("relative_path", "version: 1\nfilesystem_policy:\n  read_only: [usr]\n", "3:15"),
    ("dotdot_path", "version: 1\nfilesystem_policy:\n  read_only: [/a/../b]\n", "3:15"),
    ("run_as_root", "version: 1\nprocess:\n  run_as_user: \"0\"\n", "3:16"),
    ("run_as_name", "version: 1\nprocess:\n  run_as_user: root\n", "3:16"),
    ("middleware_same_order", "version: 1\nnetwork_middlewares:\n"
     "  a: {middleware: m1, order: 7, endpoints: {include: [a.example.com]}}\n"
     "  b: {middleware: m2, order: 7, endpoints: {include: [b.example.com]}}\n", "4:30"),
]


@pytest.mark.parametrize("name,yaml,pos", NEGATIVE, ids=[n[0] for n in NEGATIVE])
def test_negative_vector(cli, tmp_path, name, yaml, pos):
    f = tmp_path / f"{name}.yaml"
    f.write_text(yaml)
    r = check(f)
    assert r.returncode == 1, r.stdout
    assert f"{f}:{pos}: " in r.stderr, r.stderr
    assert f"ok {f}" not in r.stdout
    for line in r.stderr.splitlines():
        assert re.match(rf"^{re.escape(str(f))}(:\d+:\d+)?: ", line), line


def test_mixed_files_exit_nonzero(cli, tmp_path):
    good = tmp_path / "good.yaml"
    bad = tmp_path / "bad.yaml"
    good.write_text("version: 1\n")
    bad.write_text("version: 1\nbogus: true\n")
    r = check(good, bad)
    assert r.returncode == 1
    assert f"ok {good}" in r.stdout
    assert f"{bad}:2:1: " in r.stderr


def test_missing_file(cli, tmp_path):
    r = check(tmp_path / "absent.yaml")
    assert r.returncode == 1
    assert str(tmp_path / "absent.yaml") in r.stderr
