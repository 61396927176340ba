"""The container image: the Dockerfile must build the binary the Makefile builds
and ship every shared library it links; scripts/docker-e2e.sh's own logic runs
against a fake docker client (no engine on this machine)."""

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / "build" / "openshell-sandbox"


def dockerfile():
    return (REPO / "Dockerfile").read_text()


def run_lines(stage_text):
    # join continuation lines, keep RUN instructions
    text = re.sub(r"\\\n\s*", " ", stage_text)
    return [l[4:].strip() for l in text.splitlines() if l.startswith("RUN ")]


def stages():
    parts = re.split(r"^FROM ", dockerfile(), flags=re.M)[1:]
    return {p.split()[2] if " AS " in p.split("\n")[0] else "runtime": p for p in parts}


def test_build_stage_uses_the_projects_own_steps():
    build = stages()["build"]
    runs = run_lines(build)
    assert "bash scripts/deps.sh" in runs
    assert any(r.startswith("make") and "all" in r.split() for r in runs)
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^all:", makefile, re.M)
    assert re.search(r"^BIN := \$\(BUILD\)/openshell-sandbox", makefile, re.M)
    assert "COPY --from=build /src/build/openshell-sandbox /opt/openshell/bin/openshell-sandbox" \
        in dockerfile()
    assert 'ENTRYPOINT ["/opt/openshell/bin/openshell-sandbox"]' in dockerfile()


def test_runtime_stage_ships_every_linked_library():
    if not BIN.exists():
        pytest.skip("build/openshell-sandbox is not built")
    runtime = stages()["runtime"]
    installed = set(" ".join(run_lines(runtime)).split())
    # Direct dependencies (DT_NEEDED); apt brings their own dependencies.
    dyn = subprocess.run(["objdump", "-p", str(BIN)], capture_output=True, text=True,
                         check=True).stdout
    needed = set(re.findall(r"^\s*NEEDED\s+(\S+)", dyn, re.M))
    assert needed, "no NEEDED entries found"
    ldd = subprocess.run(["ldd", str(BIN)], capture_output=True, text=True, check=True).stdout
    missing = []
    for line in ldd.splitlines():
        m = re.search(r"=> (/\S+)", line)
        if not m or line.split()[0] not in needed:
            continue
        path = os.path.realpath(m.group(1))
        owner = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
        if owner.returncode != 0:
            owner = subprocess.run(["dpkg", "-S", m.group(1)], capture_output=True, text=True)
        pkg = owner.stdout.split(":")[0]
        if pkg in ("libc6", "libgcc-s1") or not pkg:
            continue  # in every Debian base image
        if pkg not in installed:
            missing.append((m.group(1), pkg))
    assert not missing, "runtime stage lacks: %s" % missing


def test_docker_e2e_script_against_a_fake_engine(tmp_path):
    log = tmp_path / "docker.log"
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho \"$*\" >> %s\nexit 0\n" % log)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    r = subprocess.run(["bash", str(REPO / "scripts" / "docker-e2e.sh")],
                       env={**os.environ, "DOCKER": str(fake)}, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == "info"
    assert calls[1].startswith("build --target build -t openshell-sandbox:e2e")
    run = calls[2]
    assert run.startswith("run --rm")
    for cap in ("NET_ADMIN", "SYS_ADMIN"):
        assert "--cap-add " + cap in run
    assert run.endswith("openshell-sandbox:e2e make check")


def test_docker_e2e_script_without_an_engine_says_so(tmp_path):
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    r = subprocess.run(["bash", str(REPO / "scripts" / "docker-e2e.sh")],
                       env={**os.environ, "DOCKER": str(fake)}, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2
    assert "no Docker engine" in r.stderr


def test_docker_e2e_dry_run_prints_the_commands():
    r = subprocess.run(["bash", str(REPO / "scripts" / "docker-e2e.sh")],
                       env={**os.environ, "DRY_RUN": "1"}, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "+ docker build --target build" in r.stdout
    assert "make check" in r.stdout
