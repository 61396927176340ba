"""Measuring clients of `make bench`, run by scripts/bench.py INSIDE a namespace of the
bench world (the client namespace, or the container namespace for start-up and ssh).
Python 3.11 stdlib only. Every mode prints exactly one JSON object on stdout (the
`tunnels` mode prints a READY line first and then waits for stdin to close).

Modes (argv[1]):
  bulk      PROXY HOST PORT PATH        one GET (through a CONNECT tunnel unless PROXY
                                        is "-"), body read into a 4 MiB buffer and
                                        dropped: {"bytes", "seconds"}
  latency   PROXY HOST PORT PATH TLS N KEEP
                                        N sequential requests (concurrency 1). TLS=1:
                                        HTTPS (no certificate check: the path is what is
                                        measured). KEEP=1: one connection for all N.
                                        {"total_us": [...], "ttfb_us": [...], "errors"}
  tlsprobe  PROXY HOST PORT             TLS handshake through the proxy; the issuer of
                                        the certificate presented: {"issuer", "error"}
  tunnels   PROXY HOST PORT N           opens N idle CONNECT tunnels, prints
                                        "READY <ok> <failed>", holds them until stdin
                                        closes, then prints {"ok", "failed", "statuses"}
  reload    PROXY HOST PORT TIMEOUT_S SRC DST
                                        renames SRC over DST (the policy file), then polls
                                        CONNECT HOST:PORT every 1 ms until a 200 (or
                                        timeout): {"status", "seconds"} since the rename
  ws        PROXY HOST PORT PATH N     WebSocket over TLS (wss), n echo round trips of a
                                        32-byte text frame: {"rtt_us": [...]}
  startup   N BIN -- ARGV...            runs `unshare -n true` and `BIN ARGV` N times
                                        each, interleaved, 0.3 s apart: {"unshare_us", "sandbox_us",
                                        "sandbox_rc"}
  ssh       N SSHARGS_A_JSON SSHARGS_B_JSON   runs both ssh command lines N times each,
                                        interleaved: {"a_us", "b_us", "a_rc", "b_rc"}
"""

import json
import os
import resource
import selectors
import socket
import ssl
import subprocess
import sys
import threading
import time

BUF = 4 << 20
IO_TIMEOUT_S = 10
MAX_ERRORS_IN_A_ROW = 3
TUNNELS_DEADLINE_S = 60
STARTUP_GAP_S = 0.3
RUN_TIMEOUT_S = 30        # startup: quiet time before each timed run   # tunnels: stop opening (and count the rest as failed) after this   # latency: give up after this many consecutive failures


def world_hosts():
    """name -> address from the world's hosts file ($OSB_HOSTS): the clients run in the
    machine's mount namespace, whose /etc/hosts does not know the world."""
    table = {}
    path = os.environ.get("OSB_HOSTS")
    if path:
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.split("#", 1)[0].split()
                for name in parts[1:]:
                    table.setdefault(name.lower(), parts[0])
    return table


HOSTS = world_hosts()


def resolve(host):
    return HOSTS.get(host.lower(), host)


def split_proxy(proxy):
    if proxy == "-":
        return None
    host, _, port = proxy.rpartition(":")
    return host, int(port)


def read_head(sock, pending=b""):
    """Reads up to the end of an HTTP head; returns (status, headers, rest)."""
    data = pending
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the end of the response head")
        data += chunk
        if len(data) > 65536:
            raise ConnectionError("response head too large")
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


def open_path(proxy, host, port, marks=None):
    """A TCP connection to host:port, through a CONNECT tunnel when proxy is set.
    marks (a list), when given, gets perf_counter_ns() once the TCP connection is up
    and once the tunnel is (the same value when there is no proxy)."""
    p = split_proxy(proxy)
    s = socket.create_connection(p or (resolve(host), port), timeout=IO_TIMEOUT_S)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if marks is not None:
        marks.append(time.perf_counter_ns())
    if p is not None:
        target = "%s:%d" % (host, port)
        s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
        status, _, rest = read_head(s)
        if status != 200:
            s.close()
            raise ConnectionError("CONNECT %s -> %d" % (target, status))
        if rest:
            s.close()
            raise ConnectionError("bytes after the CONNECT reply")
    if marks is not None:
        marks.append(time.perf_counter_ns())
    return s


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def request_bytes(host, port, path, keep):
    conn = "keep-alive" if keep else "close"
    return ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: osbench\r\nConnection: %s\r\n\r\n"
            % (path, host, port, conn)).encode()


def mode_bulk(proxy, host, port, path):
    t0 = time.perf_counter()
    s = open_path(proxy, host, int(port))
    s.sendall(request_bytes(host, int(port), path, False))
    status, headers, rest = read_head(s)
    if status != 200:
        raise ConnectionError("GET %s -> %d" % (path, status))
    want = int(headers["content-length"])
    got = len(rest)
    buf = bytearray(BUF)
    view = memoryview(buf)
    while got < want:
        n = s.recv_into(view)
        if n == 0:
            break
        got += n
    dt = time.perf_counter() - t0
    s.close()
    return {"bytes": got, "want": want, "seconds": dt}


def read_response(s, pending):
    """Reads one Content-Length response; returns the bytes after it."""
    status, headers, rest = read_head(s, pending)
    want = int(headers.get("content-length", "0"))
    while len(rest) < want:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-body")
        rest += chunk
    if status != 200:
        raise ConnectionError("status %d" % status)
    return rest[want:]


def recv_first(s):
    chunk = s.recv(65536)
    if not chunk:
        raise ConnectionError("closed before the response")
    return chunk


def mode_latency(proxy, host, port, path, use_tls, n, keep):
    port, n, use_tls, keep = int(port), int(n), use_tls == "1", keep == "1"
    ctx = tls_context() if use_tls else None
    req = request_bytes(host, port, path, keep)
    total, ttfb, errors, last_error, in_a_row = [], [], 0, None, 0
    # Where a new connection's time goes: TCP connect, CONNECT round trip (0 without
    # a proxy), TLS handshake, request to last byte.
    phases = {"tcp_us": [], "tunnel_us": [], "tls_us": [], "request_us": []}
    s = None
    for _ in range(n):
        if in_a_row >= MAX_ERRORS_IN_A_ROW:
            errors += 1
            continue
        try:
            t0 = time.perf_counter_ns()
            marks = None
            if s is None:
                marks = []
                s = open_path(proxy, host, port, marks)
                if ctx is not None:
                    s = ctx.wrap_socket(s, server_hostname=host)
                marks.append(time.perf_counter_ns())
            s.sendall(req)
            first = recv_first(s)
            t1 = time.perf_counter_ns()
            leftover = read_response(s, first)
            t2 = time.perf_counter_ns()
            if leftover:
                raise ConnectionError("unexpected bytes after the response")
            total.append((t2 - t0) / 1000.0)
            ttfb.append((t1 - t0) / 1000.0)
            if marks is not None:
                edges = [t0] + marks + [t2]
                for k, key in enumerate(("tcp_us", "tunnel_us", "tls_us", "request_us")):
                    phases[key].append((edges[k + 1] - edges[k]) / 1000.0)
            in_a_row = 0
            if not keep:
                s.close()
                s = None
        except (OSError, ValueError, ConnectionError) as e:
            errors += 1
            in_a_row += 1
            last_error = "%s: %s" % (type(e).__name__, e)
            if s is not None:
                s.close()
            s = None
    if s is not None:
        s.close()
    return {"total_us": total, "ttfb_us": ttfb, "errors": errors, "last_error": last_error,
            **phases}


def mode_tlsprobe(proxy, host, port):
    try:
        s = open_path(proxy, host, int(port))
        ctx = tls_context()
        t = ctx.wrap_socket(s, server_hostname=host)
        der = t.getpeercert(binary_form=True)
        t.close()
    except (OSError, ValueError, ConnectionError) as e:
        return {"issuer": None, "error": "%s: %s" % (type(e).__name__, e)}
    # The stdlib decodes certificates only when verified; shell out to openssl for the issuer.
    p = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-issuer"], input=der,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    return {"issuer": p.stdout.decode().strip(), "error": None}


def mode_tunnels(proxy, host, port, n):
    """Opens n idle tunnels with a bounded number of handshakes in flight."""
    n, port = int(n), int(port)
    phost, pport = split_proxy(proxy)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 1024)), hard))
    target = "%s:%d" % (host, port)
    req = ("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode()
    sel = selectors.DefaultSelector()
    held, statuses, failed, started, in_flight = [], {}, 0, 0, 0
    deadline = time.monotonic() + TUNNELS_DEADLINE_S
    while (started < n or in_flight) and time.monotonic() < deadline:
        while started < n and in_flight < 256:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex((phost, pport))
            sel.register(s, selectors.EVENT_WRITE, [b"", False])
            started += 1
            in_flight += 1
        for key, ev in sel.select(timeout=1.0):
            s, st = key.fileobj, key.data
            try:
                if ev & selectors.EVENT_WRITE and not st[1]:
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise OSError(err, os.strerror(err))
                    s.send(req)
                    st[1] = True
                    sel.modify(s, selectors.EVENT_READ, st)
                    continue
                chunk = s.recv(4096)
                if not chunk:
                    raise ConnectionError("closed")
                st[0] += chunk
                if b"\r\n\r\n" not in st[0]:
                    continue
                code = int(st[0].split(b" ", 2)[1])
                statuses[code] = statuses.get(code, 0) + 1
                sel.unregister(s)
                in_flight -= 1
                if code == 200:
                    held.append(s)
                else:
                    failed += 1
                    s.close()
            except (OSError, ValueError, IndexError, ConnectionError):
                sel.unregister(s)
                s.close()
                in_flight -= 1
                failed += 1
                statuses["error"] = statuses.get("error", 0) + 1
    print("READY %d %d" % (len(held), failed + in_flight), flush=True)
    sys.stdin.read()  # the harness measures, then closes our stdin
    for s in held:
        s.close()
    return {"ok": len(held), "failed": failed + in_flight,
            "statuses": {str(k): v for k, v in statuses.items()}}


def try_connect(phost, pport, req):
    s = socket.create_connection((phost, pport), timeout=5)
    try:
        s.sendall(req)
        status, _, _ = read_head(s)
        return status
    finally:
        s.close()


def mode_reload(proxy, host, port, timeout_s, src, dst):
    phost, pport = split_proxy(proxy)
    target = "%s:%s" % (host, port)
    req = ("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode()
    t0 = time.perf_counter()
    os.replace(src, dst)  # the policy change: atomic, like an editor or a ConfigMap update
    deadline = t0 + float(timeout_s)
    status = None
    while time.perf_counter() < deadline:
        try:
            status = try_connect(phost, pport, req)
        except (OSError, ValueError, ConnectionError):
            status = None
        if status == 200:
            break
        time.sleep(0.001)
    return {"status": status, "seconds": time.perf_counter() - t0}


def ws_client_frame(opcode, payload):
    """A masked, final client frame (payload < 126 bytes)."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


def ws_read(s, buf):
    """(opcode, payload, rest) of one unmasked server frame (payload < 126 bytes)."""
    while len(buf) < 2 or len(buf) < 2 + (buf[1] & 0x7F):
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-frame")
        buf += chunk
    n = buf[1] & 0x7F
    if n >= 126 or buf[1] & 0x80:
        raise ConnectionError("unexpected frame header %r" % buf[:2])
    return buf[0] & 0x0F, buf[2:2 + n], buf[2 + n:]


def mode_ws(proxy, host, port, path, n):
    """WebSocket over TLS: upgrade, then n echo round trips of a 32-byte text frame."""
    n, port = int(n), int(port)
    s = open_path(proxy, host, port)
    s = tls_context().wrap_socket(s, server_hostname=host)
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
               % (path, host, key)).encode())
    status, _, rest = read_head(s)
    if status != 101:
        raise ConnectionError("upgrade answered %d" % status)
    _, greeting, rest = ws_read(s, rest)   # the server's "hello" (sent with the 101)
    msg = b"x" * 32
    rtt = []
    for _ in range(n):
        frame = ws_client_frame(0x1, msg)
        t0 = time.perf_counter_ns()
        s.sendall(frame)
        op, payload, rest = ws_read(s, rest)
        rtt.append((time.perf_counter_ns() - t0) / 1000.0)
        if op != 0x1 or payload != msg:
            raise ConnectionError("bad echo")
    s.close()
    return {"rtt_us": rtt, "greeting": greeting.decode(errors="replace")}


def timed_run(argv):
    """Runs argv to its end; returns (microseconds, exit status). A blocking wait: a
    wait with a timeout (subprocess.run(timeout=...)) polls with sleeps of up to 50 ms
    and would add them to the measurement. A timer kills a run stuck for 30 s."""
    t0 = time.perf_counter_ns()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    guard = threading.Timer(RUN_TIMEOUT_S, p.kill)
    guard.start()
    try:
        rc = p.wait()
    finally:
        guard.cancel()
    return (time.perf_counter_ns() - t0) / 1000.0, rc


def mode_startup(n, binary, *rest):
    argv = list(rest[1:]) if rest and rest[0] == "--" else list(rest)
    a, b, rcs = [], [], []
    for _ in range(int(n)):
        # A pause first: the kernel tears the previous run's namespace down
        # asynchronously (holding the rtnl lock), which would slow the next start.
        time.sleep(STARTUP_GAP_S)
        us, _ = timed_run(["/usr/bin/unshare", "-n", "/bin/true"])
        a.append(us)
        time.sleep(STARTUP_GAP_S)
        us, rc = timed_run([binary, *argv])
        b.append(us)
        rcs.append(rc)
    return {"unshare_us": a, "sandbox_us": b, "sandbox_rc": sorted(set(rcs))}


def mode_ssh(n, argv_a, argv_b):
    a_argv, b_argv = json.loads(argv_a), json.loads(argv_b)
    a, b, arc, brc = [], [], set(), set()
    for _ in range(int(n)):
        us, rc = timed_run(a_argv)
        a.append(us)
        arc.add(rc)
        us, rc = timed_run(b_argv)
        b.append(us)
        brc.add(rc)
    return {"a_us": a, "b_us": b, "a_rc": sorted(arc), "b_rc": sorted(brc)}


MODES = {"bulk": mode_bulk, "latency": mode_latency, "tlsprobe": mode_tlsprobe,
         "tunnels": mode_tunnels, "reload": mode_reload, "startup": mode_startup,
         "ssh": mode_ssh, "ws": mode_ws}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in MODES:
        print("usage: bench_clients.py %s ..." % "|".join(MODES), file=sys.stderr)
        return 2
    try:
        out = MODES[sys.argv[1]](*sys.argv[2:])
    except (OSError, ValueError, ConnectionError) as e:
        out = {"error": "%s: %s" % (type(e).__name__, e)}
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
