"""Hot policy reload: a file change or SIGHUP swaps the network policy of a
running sandbox; an invalid edit changes nothing."""

import json
import os
import signal
import time

import world as W

LOOP = r"""
import os, sys, time, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler(
    {"http": os.environ["HTTP_PROXY"]}))
url = sys.argv[1]
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        code = opener.open(url, timeout=5).status
    except urllib.error.HTTPError as e:
        code = e.code
    except Exception as e:
        code = "ERR:" + type(e).__name__
    print(round(time.monotonic(), 3), code, flush=True)
    time.sleep(0.05)
print("done", flush=True)
"""


def replace_file(path, text):
    """What editors do: write a new file, then rename it over the old one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.rename(tmp, path)


def codes_after(handle, t):
    out = []
    for line in handle.stdout().splitlines():
        parts = line.split()
        if len(parts) == 2 and float(parts[0]) >= t:
            out.append(parts[1])
    return out


def wait_for_code(handle, code, since, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if code in codes_after(handle, since):
            return time.monotonic()
        time.sleep(0.02)
    return None


def reload_events(handle):
    return [e for e in handle.audit_lines() if e.get("class_uid") == 5002
            and "generation" in e]


def start_fetching_allowed(world):
    """A sandbox whose workload fetches plain.allowed.test for 25 s, allowed at first.
    Returns the handle, its policy file, the allowing and a denying policy text."""
    allow = world.policy_yaml([("plain.allowed.test", 80)])
    deny = world.policy_yaml([("api.allowed.test", 443)])
    h = world.start_sandbox(allow, ["/usr/bin/python3", "-c", LOOP,
                                    "http://plain.allowed.test/", "25"])
    assert h.wait_for_stdout(" 200", timeout=20), h.stderr()
    return h, h.run_dir / "policy.yaml", allow, deny


def test_reload_denies_then_allows_again(world):
    h, policy, allow, deny = start_fetching_allowed(world)

    t0 = time.monotonic()
    replace_file(policy, deny)
    denied_at = wait_for_code(h, "403", t0, 5)
    assert denied_at is not None, "the new policy was not applied: " + h.stderr()
    assert denied_at - t0 < 1.0 + 0.3  # 1 s bound plus the loop's own polling

    t1 = time.monotonic()
    replace_file(policy, allow)
    assert wait_for_code(h, "200", t1, 5) is not None, h.stderr()
    h.signal(signal.SIGTERM)
    h.wait(timeout=20)
    events = reload_events(h)
    assert [e["generation"] for e in events if e["status"] == "Success"][:2] == [1, 2]
    assert all(len(e["sha256"]) == 64 for e in events)


def test_in_place_edit_is_seen_when_the_writer_closes(world):
    """`cat > policy.yaml`, `sed -i`-less editors, config tools: the file is rewritten in
    place; the change applies once the writer closes it."""
    h, policy, _, deny = start_fetching_allowed(world)
    t0 = time.monotonic()
    with open(policy, "w") as f:  # truncate, write, close: same inode
        f.write(deny)
    assert wait_for_code(h, "403", t0, 5) is not None, "in-place edit not applied: " + h.stderr()
    h.signal(signal.SIGTERM)
    h.wait(timeout=20)
    assert [e["generation"] for e in reload_events(h) if e["status"] == "Success"][:1] == [1]


def test_invalid_edit_keeps_previous_policy(world):
    allow = world.policy_yaml([("plain.allowed.test", 80)])
    h = world.start_sandbox(allow, ["/usr/bin/python3", "-c", LOOP,
                                    "http://plain.allowed.test/", "6"])
    policy = h.run_dir / "policy.yaml"
    assert h.wait_for_stdout(" 200", timeout=20), h.stderr()
    bad = allow.replace('"port": 80', '"port": 70000')
    assert bad != allow
    t0 = time.monotonic()
    replace_file(policy, bad)
    time.sleep(1.0)
    r = h.wait(timeout=30)
    assert r.returncode == 0, str(r)
    after = codes_after(h, t0)
    assert after and all(c == "200" for c in after), after
    rejected = [e for e in reload_events(h) if e["status"] == "Failure"]
    assert rejected, r.audit_raw
    assert any(":" in m and "policy.yaml:" in m for m in rejected[0]["errors"])
    assert "policy.yaml:" in r.stderr and "port" in r.stderr


def test_sighup_reloads(world):
    allow = world.policy_yaml([("plain.allowed.test", 80)])
    deny = world.policy_yaml([("api.allowed.test", 443)])
    h = world.start_sandbox(allow, ["/usr/bin/python3", "-c", LOOP,
                                    "http://plain.allowed.test/", "20"])
    policy = h.run_dir / "policy.yaml"
    assert h.wait_for_stdout(" 200", timeout=20), h.stderr()
    # Write in place without a rename and with the watcher possibly racing:
    # SIGHUP must apply it either way.
    policy.write_text(deny)
    t0 = time.monotonic()
    h.signal(signal.SIGHUP)
    assert wait_for_code(h, "403", t0, 5) is not None, h.stderr()
    h.signal(signal.SIGTERM)
    r = h.wait(timeout=20)
    assert r.returncode in (143, 0), str(r)


def test_many_reloads_do_not_disturb_an_unaffected_host(world):
    base = world.policy_yaml([("plain.allowed.test", 80)])
    h = world.start_sandbox(base, ["/usr/bin/python3", "-c", LOOP,
                                   "http://plain.allowed.test/", "12"])
    policy = h.run_dir / "policy.yaml"
    assert h.wait_for_stdout(" 200", timeout=20), h.stderr()
    t0 = time.monotonic()
    for i in range(100):
        extra = world.policy_yaml([("plain.allowed.test", 80), ("api.allowed.test", 443 + i % 2)])
        replace_file(policy, extra if i % 2 else base)
        time.sleep(0.03)
    r = h.wait(timeout=40)
    assert r.returncode == 0, str(r)
    codes = codes_after(h, t0)
    assert len(codes) > 20
    assert all(c == "200" for c in codes), [c for c in codes if c != "200"][:5]
    ok = [e for e in reload_events(h) if e["status"] == "Success"]
    assert len(ok) >= 10, len(ok)


# ---- established tunnels across a reload -----------------------------------------------

# Inside the sandbox: one tunnel through $HTTPS_PROXY, kept busy (one small message
# echoed every 50 ms); prints "open T" once it works, "alive T" every ~0.25 s, and
# "closed T why" the moment the proxy ends it. mode "raw": CONNECT to the TCP echo,
# bytes as they are; mode "ws": TLS (trusting the sandbox CA) + WebSocket on /ws.
TUNNEL = r"""
import os, socket, ssl, sys, time
sys.path.insert(0, sys.argv[4])
import tls_client as T
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
def say(*a):
    print(round(time.monotonic(), 3), *a, flush=True)
ph, pp = os.environ["HTTPS_PROXY"].split("//", 1)[1].rstrip("/").rsplit(":", 1)
s = socket.create_connection((ph, int(pp)), timeout=10)
s.sendall(("CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (host, port, host, port)).encode())
c = T.Conn(s)
line = c.head().split("\r\n")[0]
if " 200 " not in line + " ":
    say("refused", line)
    sys.exit(1)
if mode == "ws":
    ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    s = ctx.wrap_socket(s, server_hostname=host)
    c = T.Conn(s)
    s.sendall(("GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: RylUQAh3p5cysfOlexgubw==\r\nSec-WebSocket-Version: 13"
               "\r\n\r\n" % host).encode())
    assert " 101 " in c.head().split("\r\n")[0] + " "
    assert T.ws_read(c) == (1, b"hello")
def exchange(i):
    msg = b"m%d" % i
    if mode == "ws":
        s.sendall(T.ws_frame(1, msg))
        return T.ws_read(c) == (1, msg)
    s.sendall(msg)
    return c.exact(len(msg)) == msg
deadline = time.monotonic() + float(sys.argv[5])
i, last = 0, 0.0
try:
    while time.monotonic() < deadline:
        if not exchange(i):
            raise RuntimeError("echo mismatch")
        if i == 0:
            say("open")
        if time.monotonic() - last > 0.25:
            last = time.monotonic()
            say("alive")
        i += 1
        time.sleep(0.05)
except Exception as e:
    say("closed", type(e).__name__)
    sys.exit(0)
say("done")
"""

HERE = os.path.dirname(os.path.abspath(__file__))


def tunnel_argv(mode, host, port, secs):
    return ["/usr/bin/python3", "-c", TUNNEL, mode, host, str(port), HERE, str(secs)]


def stdout_after(handle, word, t):
    """Timestamps of the workload's `word` lines at or after t."""
    out = []
    for line in handle.stdout().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] == word and float(parts[0]) >= t:
            out.append(float(parts[0]))
    return out


def wait_reloads(handle, n, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len([e for e in reload_events(handle) if e["status"] == "Success"]) >= n:
            return True
        time.sleep(0.02)
    return False


def check_tunnel_across_reloads(world, h, keep, remove):
    policy = h.run_dir / "policy.yaml"
    assert h.wait_for_stdout(" open", timeout=20), h.stdout() + h.stderr()
    # A reload that keeps the destination: the tunnel carries on.
    replace_file(policy, keep)
    assert wait_reloads(h, 1), h.stderr()
    t1 = time.monotonic()
    time.sleep(1.0)
    assert not stdout_after(h, "closed", 0), h.stdout() + h.stderr()
    assert len(stdout_after(h, "alive", t1)) >= 2, h.stdout() + h.stderr()
    # A reload that removes it: the proxy ends the tunnel within 1 s.
    t2 = time.monotonic()
    replace_file(policy, remove)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not stdout_after(h, "closed", 0):
        time.sleep(0.02)
    closed = stdout_after(h, "closed", 0)
    assert closed, "tunnel survived the reload: " + h.stdout() + h.stderr()
    assert closed[0] - t2 < 1.0 + 0.3, (closed[0] - t2, h.stdout())
    r = h.wait(timeout=30)
    assert r.returncode == 0, str(r)
    return r


def test_raw_tunnel_closed_when_reload_removes_its_host(world):
    a = ("api.allowed.test", W.ECHO_PORT)
    b = ("other.allowed.test", W.ECHO_PORT)
    start = world.policy_yaml([a])
    keep = world.policy_yaml([a, b])
    remove = world.policy_yaml([b])
    h = world.start_sandbox(start, tunnel_argv("raw", a[0], a[1], 20))
    r = check_tunnel_across_reloads(world, h, keep, remove)
    assert any("no longer allowed" in json.dumps(e) for e in r.audit_lines), r.audit_raw


def test_upgraded_websocket_closed_when_reload_removes_its_host(world):
    def ep(host):
        return world.endpoint(host, 443, protocol="rest", enforcement="enforce", access="full")
    start = world.policy_yaml([ep("api.allowed.test")])
    keep = world.policy_yaml([ep("api.allowed.test"), ep("other.allowed.test")])
    remove = world.policy_yaml([ep("other.allowed.test")])
    h = world.start_sandbox(start, tunnel_argv("ws", "api.allowed.test", 443, 20),
                            extra_args=["--upstream-ca", world.ca_cert, "--log-level", "info"])
    r = check_tunnel_across_reloads(world, h, keep, remove)
    assert "no longer allowed" in r.stderr, str(r)



def test_reload_refuses_a_policy_file_others_can_write(world):
    allow = world.policy_yaml([("plain.allowed.test", 80)])
    deny = world.policy_yaml([("api.allowed.test", 443)])
    h = world.start_sandbox(allow, ["/usr/bin/python3", "-c", LOOP,
                                    "http://plain.allowed.test/", "5"])
    policy = h.run_dir / "policy.yaml"
    assert h.wait_for_stdout(" 200", timeout=20), h.stderr()
    tmp = policy.with_name(policy.name + ".tmp")
    tmp.write_text(deny)
    os.chmod(tmp, 0o666)  # writable by anyone: e.g. the agent
    t0 = time.monotonic()
    os.rename(tmp, policy)
    r = h.wait(timeout=30)
    assert r.returncode == 0, str(r)
    after = codes_after(h, t0)
    assert after and all(c == "200" for c in after), after
    assert "writable by no one else" in r.stderr, r.stderr
