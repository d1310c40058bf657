# SPDX-License-Identifier: GPL-2.0-or-later
"""A counting HTTPS proxy in front of the reference portal: what the portal
would see of a client. It terminates TLS with the portal's own
certificate and key (so the client checks it exactly as it checks the
portal), forwards each HTTP/1.1 request to the portal over TLS, and
records every exchange and every connection:

  exchanges: (time, method, target, status, request bytes, answer bytes)
             with HTTP bytes as sent (head and body)
  connections: bytes on the wire in each direction, TLS included

Threads only, 127.0.0.1 only; close() stops it."""

import socket
import ssl
import threading
import time
import urllib.parse


class Exchange:
    def __init__(self, t, method, target, status, req_bytes, rsp_bytes, conn):
        self.t = t
        self.method = method
        self.target = target
        self.status = status
        self.req_bytes = req_bytes
        self.rsp_bytes = rsp_bytes
        self.conn = conn

    @property
    def certs(self):
        query = urllib.parse.urlsplit(self.target).query
        return [v for k, v in urllib.parse.parse_qsl(query) if k == "cert"]


class Connection:
    def __init__(self, t):
        self.t = t
        self.wire_in = 0  # client -> portal, TLS records and handshake
        self.wire_out = 0


class TlsServerSide:
    """A TLS server over a plain socket through memory BIOs, counting the
    bytes that cross the wire."""

    def __init__(self, sock, ctx, conn):
        self.sock = sock
        self.conn = conn
        self.inbio, self.outbio = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inbio, self.outbio, server_side=True)
        self._call(self.tls.do_handshake)

    def _flush(self):
        data = self.outbio.read()
        if data:
            self.conn.wire_out += len(data)
            self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.conn.wire_in += len(data)
        self.inbio.write(data)

    def _call(self, fn, *args):
        while True:
            try:
                result = fn(*args)
                self._flush()
                return result
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()

    def recv(self):
        return self._call(self.tls.read, 65536)

    def send(self, data):
        self._call(self.tls.write, data)


def read_message(recv, buf):
    """One HTTP/1.1 message (head and Content-Length body) from recv();
    returns (head bytes, body bytes, rest of buf)."""
    while b"\r\n\r\n" not in buf:
        data = recv()
        if not data:
            raise EOFError
        buf += data
    head, _, buf = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(buf) < length:
        data = recv()
        if not data:
            raise EOFError
        buf += data
    return head + b"\r\n\r\n", buf[:length], buf[length:]


class PortalProxy:
    def __init__(self, portal):
        self.upstream = ("127.0.0.1", portal.port)
        self.server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_ctx.load_cert_chain(portal.dir / "tls.pem", portal.dir / "tls.key")
        self.client_ctx = ssl.create_default_context(cafile=str(portal.bundle))
        self.exchanges = []
        self.connections = []
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.closing = False
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.closing:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, sock):
        conn = Connection(time.monotonic())
        with self.lock:
            self.connections.append(conn)
        up = None
        try:
            client = TlsServerSide(sock, self.server_ctx, conn)
            up = self.client_ctx.wrap_socket(socket.create_connection(self.upstream), server_hostname="127.0.0.1")
            cbuf, ubuf = b"", b""
            while True:
                head, body, cbuf = read_message(client.recv, cbuf)
                t = time.monotonic()
                request_line = head.split(b"\r\n", 1)[0].decode()
                method, target = request_line.split(" ")[:2]
                up.sendall(head + body)
                rhead, rbody, ubuf = read_message(lambda: up.recv(65536), ubuf)
                status = int(rhead.split(b" ", 2)[1])
                client.send(rhead + rbody)
                with self.lock:
                    self.exchanges.append(Exchange(t, method, target, status, len(head) + len(body),
                                                   len(rhead) + len(rbody), conn))
        except (EOFError, OSError, ssl.SSLError, ValueError):
            pass
        finally:
            sock.close()
            if up:
                up.close()

    def snapshot(self):
        with self.lock:
            return list(self.exchanges), list(self.connections)

    def close(self):
        self.closing = True
        self.listener.close()
