"""Bypass audit (issue 9, item 4): every packet the sandbox's fence rejects becomes a
rate-limited audit event naming the destination, the protocol, the sending socket's uid
and, where the socket can still be found, the process and its binary, with a hint of what
would allow such traffic. Each test fails without the feature: without it the audit log
holds no `"type": "bypass"` line at all."""

import os
import secrets
import signal

import world as W

# The real path of the interpreter: /proc/<pid>/exe names it, not the symlink.
PYTHON_EXE = os.path.realpath(W.PYTHON)
AGENT_UID = 1500  # world.policy_yaml's default run_as
CAPTURE_TCP_PORT = 15001  # proxy/proxy.h PROXY_CAPTURE_TCP_PORT
RATE_PER_WINDOW = 10  # supervisor/sup.h SUP_BYPASS_PER_WINDOW
BURST = 200

# Sends datagrams from one socket, prints its port, then keeps the socket open for a
# moment: the supervisor names the sender by finding this socket.
UDP_SENDER = r'''
import json, socket, sys, time
host, port, count, payload = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0))
errors = set()
for _ in range(count):
    try:
        s.sendto(payload.encode(), (host, port))
    except OSError as e:
        errors.add(type(e).__name__)
print(json.dumps({"port": s.getsockname()[1], "errors": sorted(errors)}), flush=True)
time.sleep(2)
'''

# Direct TCP connect; prints the error it met and the local port it used.
TCP_CONNECT = r'''
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("0.0.0.0", 0))
s.settimeout(5)
t = time.monotonic()
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    err = None
except OSError as e:
    err = type(e).__name__
print(json.dumps({"error": err, "port": s.getsockname()[1],
                  "elapsed": time.monotonic() - t}), flush=True)
'''


def policy(world):
    # 198.51.100.10 is api.allowed.test: allowed on 443 (through the proxy), so only the
    # fence stops what these tests send.
    return world.policy_yaml([("api.allowed.test", 443)])


def bypass_events(r):
    return [x for x in r.audit_lines if x.get("type") == "bypass"]


def summaries(r):
    return [x for x in r.audit_lines if x.get("type") == "bypass_suppressed"]


def proto(x):
    return (x.get("connection_info") or {}).get("protocol_name")


def dst(x):
    d = x.get("dst_endpoint") or {}
    return d.get("ip"), d.get("port")


def test_udp_bypass_names_the_binary(world):
    payload = "bypass-udp-" + secrets.token_hex(4)
    mark = world.udp_mark()
    r = world.run_sandbox(policy(world),
                          [W.PYTHON, "-c", UDP_SENDER, "198.51.100.10", "9999", "1", payload],
                          extra_args=["--log-level", "info"])
    assert r.returncode == 0, str(r)
    sent = r.json_stdout()
    assert not [x for x in r.audit_lines if "_unparsable" in x], r.audit_raw
    events = [x for x in bypass_events(r) if dst(x) == ("198.51.100.10", 9999)]
    assert len(events) == 1, "want one bypass event for 198.51.100.10:9999\n%s" % r
    ev = events[0]
    assert proto(ev) == "udp", ev
    assert ev["connection_info"]["protocol_ver_id"] == 4, ev
    assert ev["class_uid"] == 4001 and ev["action"] == "deny", ev
    assert ev["path"] == "fence", ev
    assert ev["src_endpoint"]["port"] == sent["port"], (ev, sent)
    assert ev["process"]["path"] == PYTHON_EXE, ev
    assert isinstance(ev["process"]["pid"], int) and ev["process"]["pid"] > 1, ev
    assert ev["process"]["uid"] == AGENT_UID, ev
    assert "UDP is not proxied" in ev["hint"], ev
    assert PYTHON_EXE in ev["message"] and "198.51.100.10:9999" in ev["message"], ev
    # the human line at INFO says the same
    assert "bypass: udp to 198.51.100.10:9999 from %s" % PYTHON_EXE in r.stderr, r.stderr
    # and the datagram itself never reached the world
    got = [d for d in world.udp_datagrams(mark)
           if bytes.fromhex(d["data_hex"]) == payload.encode()]
    assert got == [], got



def test_tcp_bypass_of_the_capture_port(world):
    """Since transparent capture, a direct IPv4 TCP connect to the world is redirected to
    the proxy and decided there (its own audit line, path "transparent"); the TCP the
    fence itself refuses is e.g. a direct dial of the capture listener. It must fail at
    once and be audited. The kernel resets such a socket before the supervisor can look
    it up, so only the uid (from the kernel) is certain here, not the binary."""
    r = world.run_sandbox(policy(world), [W.PYTHON, "-c", TCP_CONNECT, "127.0.0.1",
                                          str(CAPTURE_TCP_PORT)])
    assert r.returncode == 0, str(r)
    o = r.json_stdout()
    assert o["error"] == "ConnectionRefusedError", o
    events = [x for x in bypass_events(r) if dst(x) == ("127.0.0.1", CAPTURE_TCP_PORT)]
    assert len(events) == 1, "want one bypass event for the capture port\n%s" % r
    ev = events[0]
    assert proto(ev) == "tcp", ev
    assert ev["src_endpoint"]["port"] == o["port"], (ev, o)
    assert ev["process"]["uid"] == AGENT_UID, ev
    assert "capture listener" in ev["hint"], ev


def test_icmp_bypass_as_root_in_the_sandbox_netns(world):
    """ICMP: the unprivileged agent may not even open an ICMP socket, so root inside the
    sandbox's namespace pings; the fence rejects and audits it, uid 0, no port."""
    W.require_ping()
    ready = "bypass-icmp-ready"
    h = world.start_sandbox(policy(world), ["/bin/sh", "-c", "echo %s; exec sleep 30" % ready])
    try:
        assert h.wait_for_stdout(ready), str(h.wait(timeout=1))
        p = world.run_in_sandbox_netns(h, ["ping", "-n", "-c1", "-W1", "198.51.100.10"])
        assert p.returncode != 0, str(p)
    finally:
        h.signal(signal.SIGTERM)
        r = h.wait(timeout=15)
    events = [x for x in bypass_events(r) if dst(x) == ("198.51.100.10", None)]
    assert len(events) == 1, "want one ICMP bypass event\n%s" % r
    ev = events[0]
    assert proto(ev) == "icmp", ev
    assert ev["process"]["uid"] == 0, ev
    assert ev["src_endpoint"]["port"] is None, ev
    assert "ICMP is not allowed" in ev["hint"], ev


def test_bypass_flood_is_rate_limited(world):
    """200 datagrams do not make 200 audit lines: the fence's kernel limit passes a burst,
    the supervisor writes at most SUP_BYPASS_PER_WINDOW per window and one summary line
    for the rest."""
    r = world.run_sandbox(policy(world), [W.PYTHON, "-c", UDP_SENDER, "198.51.100.10", "9999",
                                          str(BURST), "flood"])
    assert r.returncode == 0, str(r)
    events = [x for x in bypass_events(r) if dst(x) == ("198.51.100.10", 9999)]
    sums = summaries(r)
    assert 1 <= len(events) <= 2 * RATE_PER_WINDOW, "%d bypass events\n%s" % (len(events), r)
    assert sums, "no suppressed-events summary\n%s" % r.audit_raw
    suppressed = sum(x["suppressed"] for x in sums)
    assert suppressed >= 1, sums
    assert len(events) + suppressed + sum(x["lost"] for x in sums) <= BURST, sums
    for x in sums:
        assert x["class_uid"] == 4001 and x["action"] == "deny", x
        assert x["limit"] == RATE_PER_WINDOW, x
        assert "suppressed %d events" % x["suppressed"] in x["message"], x
    # every written event still names the sender
    assert all(x["process"]["path"] == PYTHON_EXE for x in events), events
