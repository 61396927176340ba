"""The servers of the integration test world.

Runs as ONE process inside the world network namespace (started by world.py as
`nsenter --net=/run/netns/osw-<id> /usr/bin/python3 world_servers.py CONFIG`).
Python 3.11 stdlib only. Everything is bound inside the world namespace, so
nothing here can be reached from (or reach) the machine's own network.

Servers (all TCP ones dual-stack on [::], so every world address answers):
  HTTP      :80, :8080   body "hello from <name>\n" + method/path/host echo
  HTTPS     :443, :8443  same body, leaf cert signed by the per-run world CA
  echo      :7           TCP echo until EOF
  UDP sink  :9999        records every datagram, never answers
  DNS       <dns_ip>:53  UDP, A records for *.<dns_zone>, logs every query

Logs (one JSON object per line, appended, flushed per line) in the world dir:
  http.jsonl  {"name","local_ip","port","scheme","method","path","host","peer"}
  dns.jsonl   {"name","qtype","peer"}
  udp.jsonl   {"local_ip","port","peer","data_hex"}
  icmp.jsonl  {"src","dst","type"}  every ICMP echo request reaching the world
The process prints READY on stdout once every socket is bound.

Extra paths of the HTTP(S) servers (TLS interception tests):
  /ws            WebSocket echo (RFC 6455): sends a text frame "hello" together with the
                 101, then echoes every text/binary message with the same opcode, answers
                 pings, closes on close; no idle timeout
  /bytes/N       N deterministic bytes (i % 251), Content-Length, streamed
  /sha256        reads the whole request body (Content-Length or chunked), answers
                 "sha256=<hex>\nbytes=<n>\n"
  /repo.git/...  git smart HTTP (`git http-backend`) for the bare repo made at start
                 (one commit, file README with "hello from git\n"), if git is installed
  /delay/MS/...  the usual echo after MS milliseconds (at most 5000): keeps connections
                 that start together open together
"""

import hashlib
import base64
import http.server
import os
import subprocess
import ipaddress
import json
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time

HANDLER_TIMEOUT_S = 15
MAX_BODY_BYTES = 1 << 20
MAX_DELAY_MS = 5000


def plain_ip(addr):
    """'::ffff:198.51.100.10' -> '198.51.100.10'; other addresses unchanged."""
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


class JsonLog:
    def __init__(self, path):
        self._f = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, obj):
        line = json.dumps(obj, sort_keys=True) + "\n"
        with self._lock:
            self._f.write(line)
            self._f.flush()


class DualStackMixin:
    address_family = socket.AF_INET6
    allow_reuse_address = True
    daemon_threads = True
    # socketserver's default of 5 drops the SYNs of a burst of parallel clients
    # (each retried a second later by the kernel)
    request_queue_size = 128

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        socketserver.TCPServer.server_bind(self)

    def handle_error(self, request, client_address):
        # Clients that hang up mid-request (proxies probing, denied tunnels) are normal.
        pass


class WorldHTTPServer(DualStackMixin, http.server.ThreadingHTTPServer):
    def __init__(self, port, scheme, names, log, tls_ctx=None):
        self.scheme = scheme
        self.names = names
        self.log = log
        self.tls_ctx = tls_ctx
        self.git_root = None
        super().__init__(("::", port), WorldHandler)

    def get_request(self):
        sock, addr = super().get_request()
        if self.tls_ctx is not None:
            # Handshake lazily in the handler thread so a stuck client can't block accept().
            sock = self.tls_ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def server_name(self, local_ip):
        return self.names.get(local_ip, "unknown-" + local_ip)


class WorldHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = HANDLER_TIMEOUT_S
    server_version = "osworld/1"

    def log_message(self, fmt, *args):
        pass

    def _respond(self):
        route = self.path.split("?", 1)[0]
        if route == "/ws" and self.headers.get("Upgrade", "").lower() == "websocket":
            return self._websocket()
        if route.startswith("/bytes/"):
            return self._bytes(route)
        if route.startswith("/eof/"):
            return self._until_eof(route)
        if route == "/sha256":
            return self._sha256()
        if route == "/trailing-response":
            return self._trailing_response()
        if route.startswith("/repo.git/") and self.server.git_root:
            return self._git()
        if route.startswith("/delay/"):
            ms = route[len("/delay/"):].split("/", 1)[0]
            time.sleep(min(int(ms), MAX_DELAY_MS) / 1000.0 if ms.isdigit() else 0)
        local_ip = plain_ip(self.connection.getsockname()[0])
        port = self.connection.getsockname()[1]
        peer = plain_ip(self.client_address[0])
        name = self.server.server_name(local_ip)
        host = self.headers.get("Host", "")
        length = int(self.headers.get("Content-Length", "0") or "0")
        body_in = self.rfile.read(min(length, MAX_BODY_BYTES)) if length > 0 else b""
        self.server.log.write({
            "name": name, "local_ip": local_ip, "port": port, "scheme": self.server.scheme,
            "method": self.command, "path": self.path, "host": host, "peer": peer,
            "peer_port": self.client_address[1],
            "tls_resumed": getattr(self.connection, "session_reused", None),
        })
        status = 200
        if self.path.startswith("/status/"):
            try:
                status = int(self.path[len("/status/"):].split("?", 1)[0])
            except ValueError:
                status = 400
        lines = [
            "hello from %s" % name,
            "method=%s" % self.command,
            "path=%s" % self.path,
            "host=%s" % host,
            "scheme=%s" % self.server.scheme,
            "port=%d" % port,
            "peer=%s" % peer,
            "body-bytes=%d" % len(body_in),
        ]
        lines += ["header %s: %s" % (k, v) for k, v in self.headers.items()]
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-World-Server", name)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _trailing_response(self):
        """A complete response, then, 200 ms later and unasked, a second one on the same
        connection: what a desynchronised or hostile server sends."""
        self._log_request()
        body = b"first\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        time.sleep(0.2)
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nsmuggled\n")
        self.wfile.flush()

    # ---- TLS interception test paths -------------------------------------------------
    def _log_request(self):
        local_ip = plain_ip(self.connection.getsockname()[0])
        self.server.log.write({
            "name": self.server.server_name(local_ip), "local_ip": local_ip,
            "port": self.connection.getsockname()[1], "scheme": self.server.scheme,
            "method": self.command, "path": self.path, "host": self.headers.get("Host", ""),
            "peer": plain_ip(self.client_address[0]), "peer_port": self.client_address[1],
        })

    def _bytes(self, route):
        self._log_request()
        try:
            n = int(route[len("/bytes/"):])
        except ValueError:
            n = 0
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        if self.command == "HEAD":
            return
        block = bytes(i % 251 for i in range(251 * 256))
        sent = 0
        while sent < n:
            k = min(len(block), n - sent)
            self.wfile.write(block[:k])
            sent += k

    def _until_eof(self, route):
        """A body with no length, ended by closing TCP without a TLS close_notify
        (a truncation looks exactly like this): /eof/N sends N bytes."""
        self._log_request()
        n = int(route[len("/eof/"):]) if route[len("/eof/"):].isdigit() else 0
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"x" * n)
        self.wfile.flush()
        self.close_connection = True
        # shutdown() of an SSLSocket drops the TLS layer: TCP FIN, no close_notify.
        self.connection.shutdown(socket.SHUT_RDWR)

    def _read_body(self, sink):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                left = size
                while left:
                    b = self.rfile.read(min(left, 1 << 16))
                    if not b:
                        raise ConnectionError("short chunk")
                    sink(b)
                    left -= len(b)
                self.rfile.readline()
        left = int(self.headers.get("Content-Length", "0") or "0")
        while left:
            b = self.rfile.read(min(left, 1 << 16))
            if not b:
                raise ConnectionError("short body")
            sink(b)
            left -= len(b)

    def _sha256(self):
        self._log_request()
        self.connection.settimeout(120)
        h = hashlib.sha256()
        count = [0]

        def sink(b):
            h.update(b)
            count[0] += len(b)
        self._read_body(sink)
        body = ("sha256=%s\nbytes=%d\n" % (h.hexdigest(), count[0])).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _git(self):
        self._log_request()
        chunks = []
        self._read_body(chunks.append)
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": self.server.git_root, "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "REMOTE_ADDR": plain_ip(self.client_address[0]),
        }
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        p = subprocess.run(["git", "http-backend"], input=b"".join(chunks), env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60)
        head, _, body = p.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, body = p.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            elif k:
                headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _websocket(self):
        self._log_request()
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        head = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % accept)
        # The greeting travels in the same write as the 101 (the overflow case).
        self.wfile.write(head.encode() + ws_frame(0x1, b"hello"))
        self.wfile.flush()
        self.connection.settimeout(None)  # idle WebSockets stay open
        self.close_connection = True
        while True:
            frame = ws_read_frame(self.rfile)
            if frame is None:
                return
            opcode, payload = frame
            if opcode == 0x8:
                self.wfile.write(ws_frame(0x8, payload[:2]))
                self.wfile.flush()
                return
            if opcode == 0x9:
                self.wfile.write(ws_frame(0xA, payload))
            elif opcode in (0x1, 0x2):
                self.wfile.write(ws_frame(opcode, payload))
            self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _respond


def ws_frame(opcode, payload):
    """An unmasked, final server frame."""
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        hdr = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        hdr = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return hdr + payload


def ws_read_frame(f):
    """(opcode, unmasked payload) of one whole message (fragments joined), or None."""
    data, opcode = b"", None
    while True:
        h = f.read(2)
        if len(h) < 2:
            return None
        fin, op = h[0] & 0x80, h[0] & 0x0F
        masked, n = h[1] & 0x80, h[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", f.read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", f.read(8))[0]
        mask = f.read(4) if masked else b"\0\0\0\0"
        payload = f.read(n)
        if len(payload) < n:
            return None
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if op >= 0x8:
            return op, payload
        if op != 0:
            opcode = op
        data += payload
        if fin:
            return opcode, data


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(HANDLER_TIMEOUT_S)
        try:
            while True:
                data = self.request.recv(65536)
                if not data:
                    return
                self.request.sendall(data)
        except OSError:
            return


class EchoServer(DualStackMixin, socketserver.ThreadingTCPServer):
    pass


def udp_sink(sock, log):
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    port = sock.getsockname()[1]
    while True:
        data, anc, _flags, peer = sock.recvmsg(65536, 256)
        local_ip = "?"
        for level, kind, blob in anc:
            if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(blob) >= 16:
                local_ip = plain_ip(socket.inet_ntop(socket.AF_INET6, blob[:16]))
        log.write({"local_ip": local_ip, "port": port,
                   "peer": plain_ip(peer[0]), "data_hex": data.hex()})


def icmp_logger(sock, log):
    """Raw ICMP socket: sees a copy of every ICMP packet reaching the world; logs echo requests."""
    while True:
        pkt, peer = sock.recvfrom(65536)
        ihl = (pkt[0] & 0x0F) * 4 if pkt else 0
        if len(pkt) < ihl + 8 or pkt[ihl] != 8:  # type 8 = echo request
            continue
        log.write({"src": socket.inet_ntoa(pkt[12:16]), "dst": socket.inet_ntoa(pkt[16:20]),
                   "type": "echo-request"})


# ---- DNS: a minimal authoritative A-record responder --------------------------------

QTYPE_A = 1
QTYPE_NAMES = {1: "A", 28: "AAAA", 5: "CNAME", 15: "MX", 16: "TXT", 33: "SRV", 65: "HTTPS"}


def parse_dns_query(pkt):
    """Returns (id, flags, qname, qtype, question_end) or None for anything odd."""
    if len(pkt) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", pkt[:6])
    if qdcount != 1 or flags & 0x8000:
        return None
    labels, pos = [], 12
    while True:
        if pos >= len(pkt):
            return None
        n = pkt[pos]
        pos += 1
        if n == 0:
            break
        if n > 63 or pos + n > len(pkt):
            return None
        labels.append(pkt[pos:pos + n].decode("ascii", "replace"))
        pos += n
    if pos + 4 > len(pkt):
        return None
    qtype, _qclass = struct.unpack("!HH", pkt[pos:pos + 4])
    return qid, flags, ".".join(labels).lower(), qtype, pos + 4


def dns_answer(pkt, zone, answer_ip):
    q = parse_dns_query(pkt)
    if q is None:
        return None, None, None
    qid, flags, qname, qtype, qend = q
    in_zone = qname == zone or qname.endswith("." + zone)
    rcode = 0 if in_zone else 3  # NXDOMAIN outside the zone
    answers = b""
    ancount = 0
    if in_zone and qtype == QTYPE_A:
        answers = struct.pack("!HHHIH", 0xC00C, QTYPE_A, 1, 5, 4) + socket.inet_aton(answer_ip)
        ancount = 1
    rflags = 0x8000 | (flags & 0x7900) | 0x0400 | rcode  # QR, opcode+RD copied, AA
    header = struct.pack("!HHHHHH", qid, rflags, 1, ancount, 0, 0)
    return header + pkt[12:qend] + answers, qname, QTYPE_NAMES.get(qtype, str(qtype))


def dns_server(sock, zone, answer_ip, log):
    while True:
        pkt, peer = sock.recvfrom(4096)
        reply, qname, qtype = dns_answer(pkt, zone, answer_ip)
        if reply is None:
            continue
        log.write({"name": qname, "qtype": qtype, "peer": plain_ip(peer[0])})
        try:
            sock.sendto(reply, peer)
        except OSError:
            pass


def udp_socket(ip, port):
    fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((ip, port))
    return s


def start_thread(target, *args):
    t = threading.Thread(target=target, args=args, daemon=True)
    t.start()
    return t


def make_git_repo(world_dir):
    """A bare repo <world_dir>/git/repo.git with one commit; None without git."""
    root = os.path.join(world_dir, "git")
    work = os.path.join(world_dir, "git-work")
    try:
        os.makedirs(work, exist_ok=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": world_dir,
               "GIT_AUTHOR_NAME": "world", "GIT_AUTHOR_EMAIL": "world@world.test",
               "GIT_COMMITTER_NAME": "world", "GIT_COMMITTER_EMAIL": "world@world.test",
               "GIT_CONFIG_NOSYSTEM": "1"}
        with open(os.path.join(work, "README"), "w") as f:
            f.write("hello from git\n")
        for argv in (["git", "init", "-q", "-b", "main", work],
                     ["git", "-C", work, "add", "README"],
                     ["git", "-C", work, "commit", "-q", "-m", "world"],
                     ["git", "clone", "-q", "--bare", work, os.path.join(root, "repo.git")]):
            subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
        return root
    except (OSError, subprocess.SubprocessError):
        return None


def main(config_path):
    with open(config_path, encoding="utf-8") as f:
        cfg = json.load(f)
    names = cfg["names_by_ip"]
    d = cfg["dir"]
    http_log = JsonLog(d + "/http.jsonl")
    tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls_ctx.load_cert_chain(cfg["cert"], cfg["key"])

    servers = [WorldHTTPServer(p, "http", names, http_log) for p in cfg["http_ports"]]
    servers += [WorldHTTPServer(p, "https", names, http_log, tls_ctx) for p in cfg["https_ports"]]
    git_root = make_git_repo(d)
    for srv in servers:
        srv.git_root = git_root
    servers.append(EchoServer(("::", cfg["echo_port"]), EchoHandler))
    for srv in servers:
        start_thread(srv.serve_forever)

    start_thread(udp_sink, udp_socket("::", cfg["udp_port"]), JsonLog(d + "/udp.jsonl"))
    start_thread(icmp_logger, socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
                 JsonLog(d + "/icmp.jsonl"))
    start_thread(dns_server, udp_socket(cfg["dns_ip"], 53), cfg["dns_zone"],
                 cfg["dns_answer_ip"], JsonLog(d + "/dns.jsonl"))

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("READY", flush=True)
    while not stop.wait(1.0):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
