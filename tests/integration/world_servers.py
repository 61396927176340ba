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
"""

import http.server
import ipaddress
import json
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading

HANDLER_TIMEOUT_S = 15
MAX_BODY_BYTES = 1 << 20


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

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _respond


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
