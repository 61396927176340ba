"""Raw-socket client for the TLS/L7/WebSocket tests, run INSIDE the sandbox.

usage: tls_client.py HOST PORT CAFILE ACTIONS_JSON
  CAFILE: "env" = trust $SSL_CERT_FILE (the sandbox bundle), "-" = no TLS, else a PEM file
  ACTIONS: list of
    ["req", METHOD, PATH, {headers}?]  one request on the same connection; event
                                       ["resp", status, head, body]
    ["ws_upgrade", PATH]               WebSocket handshake; event ["ws_101", status_line]
    ["ws_expect_text", TEXT, SECS]     a server text frame TEXT within SECS
    ["ws_echo", N]                     N random bytes as a binary frame, echoed byte-exact
    ["ws_echo_text", TEXT]
    ["sleep", SECS]
    ["get_to_eof", PATH]                GET PATH (Connection: close), read until the end;
                                       event ["eof", "clean"|"ragged", body bytes]: ragged =
                                       TCP ended without a TLS close_notify
Prints one JSON line: {"events": [...], "error"?: "..."}; every action uses the one
connection, so a later action succeeding proves the tunnel survived the earlier ones.
Python 3.11 standard library only.
"""
import json
import os
import socket
import ssl
import struct
import sys
import time


class Conn:
    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def fill(self):
        d = self.s.recv(1 << 20)
        if not d:
            raise EOFError("connection closed (buffered %d bytes)" % len(self.buf))
        self.buf += d

    def head(self):
        while b"\r\n\r\n" not in self.buf:
            self.fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        return head.decode("latin-1")

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def content_length(head):
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            return int(v.strip())
    return 0


def ws_frame(op, payload):
    n = len(payload)
    mask = os.urandom(4)
    if n < 126:
        hdr = struct.pack("!BB", 0x80 | op, 0x80 | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", 0x80 | op, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", 0x80 | op, 0x80 | 127, n)
    m = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big") \
        if n else b""
    return hdr + mask + masked


def ws_read(c):
    h = c.exact(2)
    n = h[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", c.exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", c.exact(8))[0]
    return h[0] & 0x0F, c.exact(n)


def main():
    host, port, cafile, actions = sys.argv[1], int(sys.argv[2]), sys.argv[3], \
        json.loads(sys.argv[4])
    out = {"events": []}
    try:
        proxy = os.environ["HTTPS_PROXY"].split("//", 1)[1].rstrip("/")
        ph, pp = proxy.rsplit(":", 1)
        sock = socket.create_connection((ph, int(pp)), timeout=20)
        sock.sendall(("CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" %
                      (host, port, host, port)).encode())
        c = Conn(sock)
        out["events"].append(["connect", c.head().split("\r\n")[0]])
        if cafile != "-":
            ctx = ssl.create_default_context(
                cafile=os.environ["SSL_CERT_FILE"] if cafile == "env" else cafile)
            ctx.set_alpn_protocols(["http/1.1"])
            ragged_matters = "get_to_eof" in sys.argv[4]
            if ragged_matters:  # Python's default context ignores a missing close_notify
                ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
            sock = ctx.wrap_socket(sock, server_hostname=host,
                                   suppress_ragged_eofs=not ragged_matters)
            c = Conn(sock)
        for a in actions:
            kind = a[0]
            if kind == "req":
                hdrs = {"Host": host if port in (80, 443) else "%s:%d" % (host, port)}
                if len(a) > 3:
                    hdrs.update(a[3])
                req = "%s %s HTTP/1.1\r\n" % (a[1], a[2]) + "".join(
                    "%s: %s\r\n" % kv for kv in hdrs.items()) + "\r\n"
                sock.sendall(req.encode())
                head = c.head()
                body = c.exact(content_length(head)) if a[1] != "HEAD" else b""
                out["events"].append(["resp", int(head.split()[1]), head,
                                      body.decode("utf-8", "replace")])
            elif kind == "ws_upgrade":
                sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: RylUQAh3p5cysfOlexgubw==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n" % (a[1], host)).encode())
                head = c.head()
                out["events"].append(["ws_101", head.split("\r\n")[0]])
                if " 101 " not in head.split("\r\n")[0] + " ":
                    raise RuntimeError("no 101: " + head)
            elif kind == "ws_expect_text":
                sock.settimeout(a[2])
                op, p = ws_read(c)
                sock.settimeout(20)
                if op != 1 or p.decode() != a[1]:
                    raise RuntimeError("unexpected frame %d %r" % (op, p[:50]))
                out["events"].append(["ws_text", p.decode()])
            elif kind in ("ws_echo", "ws_echo_text"):
                payload = os.urandom(a[1]) if kind == "ws_echo" else a[1].encode()
                op_out = 2 if kind == "ws_echo" else 1
                t0 = time.monotonic()
                sock.sendall(ws_frame(op_out, payload))
                op, p = ws_read(c)
                if op != op_out or p != payload:
                    raise RuntimeError("echo mismatch: op %d, %d bytes back for %d" %
                                       (op, len(p), len(payload)))
                out["events"].append(["ws_echo_ok", len(payload),
                                      round(time.monotonic() - t0, 3)])
            elif kind == "get_to_eof":
                sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" %
                              (a[1], host)).encode())
                data, end = b"", "clean"
                try:
                    while True:
                        d = sock.recv(1 << 16)
                        if not d:
                            break
                        data += d
                except ssl.SSLError as e:  # SSLEOFError, or this reason under OpenSSL 3
                    if not isinstance(e, ssl.SSLEOFError) and \
                            getattr(e, "reason", "") != "UNEXPECTED_EOF_WHILE_READING":
                        raise
                    end = "ragged"
                body = data.partition(b"\r\n\r\n")[2]
                out["events"].append(["eof", end, len(body)])
            elif kind == "sleep":
                time.sleep(a[1])
                out["events"].append(["slept", a[1]])
    except Exception as e:  # reported, not raised: the test decides
        out["error"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
