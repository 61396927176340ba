"""The sidecar topology (seed RFC "move the L7 proxy out of the container"):
one supervisor in --mode network serves the proxy from the container namespace,
another in --mode process runs the agent in a namespace whose only route is to
that proxy. They meet through a shared TLS directory and its .ready file."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from world import IP

PROXY_IP = "10.251.0.1"
AGENT_IP = "10.251.0.2"

AGENT_SCRIPT = r"""
echo "== allowed"
curl -sS --max-time 10 http://plain.allowed.test/ | head -1
echo "== denied"
curl -sS --max-time 10 http://denied.test/
echo
echo "== no proxy"
(unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY;
 curl -sS --max-time 3 http://plain.allowed.test/ >/dev/null 2>&1; echo "direct-exit=$?")
echo "== git ssh"
git clone -q git@git.allowed.test:repo.git /tmp/never-cloned-$$ 2>&1 | head -3
echo "== env"
echo "proxy=$HTTP_PROXY"
"""


@pytest.fixture
def agent_ns(world):
    """A namespace joined only to the container namespace, with no default route."""
    name = "osa-" + world.id
    c_if, a_if = "osa%s-c" % world.id, "osa%s-a" % world.id
    subprocess.run([IP, "netns", "add", name], check=True)
    try:
        subprocess.run([IP, "-n", world.container_ns, "link", "add", c_if, "type", "veth",
                        "peer", "name", a_if, "netns", name], check=True)
        for ns, ifname, addr in ((world.container_ns, c_if, PROXY_IP),
                                 (name, a_if, AGENT_IP)):
            subprocess.run([IP, "-n", ns, "addr", "add", addr + "/30", "dev", ifname], check=True)
            subprocess.run([IP, "-n", ns, "link", "set", ifname, "up"], check=True)
        subprocess.run([IP, "-n", name, "link", "set", "lo", "up"], check=True)
        yield world.netns_path(name)
    finally:
        subprocess.run([IP, "-n", world.container_ns, "link", "del", c_if],
                       stderr=subprocess.DEVNULL)
        subprocess.run([IP, "netns", "del", name], check=False)


@pytest.fixture
def tls_dir():
    d = tempfile.mkdtemp(prefix="osh-tls-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def network_sidecar(world, tls_dir, policy):
    return world.start_sandbox(policy, [], extra_args=[
        "--mode", "network", "--proxy-listen", "%s:3128" % PROXY_IP, "--tls-dir", tls_dir])


def test_sidecar_pair_enforces_policy(world, agent_ns, tls_dir):
    policy = world.policy_yaml([("plain.allowed.test", 80)])
    net = network_sidecar(world, tls_dir, policy)
    agent = world.run_sandbox(policy, ["/bin/sh", "-c", AGENT_SCRIPT], timeout=60,
                              netns=agent_ns, extra_args=[
                                  "--mode", "process", "--proxy-url",
                                  "http://%s:3128" % PROXY_IP, "--tls-dir", tls_dir])
    out = agent.stdout
    assert agent.returncode == 0, str(agent)
    sections = dict(part.split("\n", 1) for part in out.split("== ")[1:])
    assert "hello from plain.allowed.test" in sections["allowed"]
    denied = json.loads(sections["denied"].strip())
    assert denied["error"] == "policy_denied" and denied["host"] == "denied.test"
    assert "direct-exit=0" not in sections["no proxy"]
    assert "SSH disabled" in sections["git ssh"]
    assert sections["env"].strip() == "proxy=http://%s:3128" % PROXY_IP
    # the decisions were the network sidecar's
    actions = {(e.get("action"), e.get("dst_endpoint", {}).get("hostname"))
               for e in net.audit_lines()}
    assert ("allow", "plain.allowed.test") in actions
    assert ("deny", "denied.test") in actions

    assert os.path.exists(os.path.join(tls_dir, ".ready"))
    net.signal(signal.SIGTERM)
    r = net.wait(timeout=20)
    assert r.returncode == 0, str(r)
    assert not os.path.exists(os.path.join(tls_dir, ".ready"))


def test_process_mode_waits_for_ready_and_gives_up(world, tls_dir):
    policy = world.policy_yaml([])
    t0 = time.monotonic()
    r = world.run_sandbox(policy, ["/bin/true"], extra_args=[
        "--mode", "process", "--proxy-url", "http://%s:3128" % PROXY_IP, "--tls-dir", tls_dir,
        "--ready-timeout", "1"])
    assert r.returncode == 1, str(r)
    assert ".ready" in r.stderr
    assert time.monotonic() - t0 < 20


RACE = r"""
import os, socket, sys, time
path, host = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + 20
while not os.path.exists(path):
    if time.monotonic() > deadline:
        print("no-ready"); sys.exit(1)
    time.sleep(0.0005)
s = socket.create_connection((host, 3128), timeout=5)
s.close()
print("connected")
"""


@pytest.mark.parametrize("attempt", range(3))
def test_ready_never_precedes_the_listener(world, agent_ns, tls_dir, attempt):
    # The racing client starts first and connects the instant .ready appears.
    racer = subprocess.Popen(world.container_argv(
        ["/usr/bin/python3", "-c", RACE, os.path.join(tls_dir, ".ready"), PROXY_IP]),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.2)
        net = network_sidecar(world, tls_dir, world.policy_yaml([]))
        out, err = racer.communicate(timeout=30)
    finally:
        if racer.poll() is None:
            racer.kill()
            racer.wait()
    assert racer.returncode == 0 and "connected" in out, (out, err)
    net.signal(signal.SIGTERM)
    assert net.wait(timeout=20).returncode == 0


def test_mode_flag_errors(world):
    r = world.run_sandbox(None, ["/bin/true"], extra_args=["--mode", "network,bogus"])
    assert r.returncode == 2 and "unknown mode" in r.stderr
    r = world.run_sandbox(None, ["/bin/true"], extra_args=["--mode", "process"])
    assert r.returncode == 1 and "--proxy-url" in r.stderr
    r = world.run_sandbox(None, ["/bin/true"], extra_args=[
        "--mode", "process", "--proxy-url", "ftp://x:1"])
    assert r.returncode == 1 and "--proxy-url" in r.stderr


def test_sidecar_process_mode_serves_ssh(world, agent_ns, tls_dir):
    """The process-only supervisor runs the SSH server; its sessions get the
    sidecar proxy environment and are decided by the network sidecar."""
    if not (os.access("/usr/bin/ssh", os.X_OK) and os.access("/usr/bin/socat", os.X_OK)):
        pytest.skip("openssh-client and socat are needed (scripts/deps.sh installs them)")
    policy = world.policy_yaml([("plain.allowed.test", 80)])
    net = network_sidecar(world, tls_dir, policy)
    sock = str(world.dir / ("sidecar-ssh-" + world.id) / "ssh.sock")
    agent = world.start_sandbox(policy, ["/bin/sh", "-c", "echo ready; exec sleep 600"],
                                netns=agent_ns, extra_args=[
                                    "--mode", "process", "--proxy-url",
                                    "http://%s:3128" % PROXY_IP, "--tls-dir", tls_dir,
                                    "--ssh-socket-path", sock])
    try:
        assert agent.wait_for_stdout("ready", timeout=30), agent.stderr()
        r = subprocess.run(
            ["/usr/bin/ssh", "-F", "/dev/null", "-o", "ProxyCommand=socat - UNIX-CONNECT:" + sock,
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "sandbox",
             "id -u; echo proxy=$HTTP_PROXY; curl -sS --max-time 10 http://denied.test/"],
            capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r
        lines = r.stdout.splitlines()
        assert lines[0] == "1500", r.stdout
        assert lines[1] == "proxy=http://%s:3128" % PROXY_IP, r.stdout
        assert json.loads(lines[2])["error"] == "policy_denied", r.stdout
    finally:
        agent.signal(signal.SIGTERM)
        agent.wait(timeout=30)
        net.signal(signal.SIGTERM)
        net.wait(timeout=20)
