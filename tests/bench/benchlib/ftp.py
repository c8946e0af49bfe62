"""A raw FTP control client for the benchmark: replies, logins (plain or explicit AUTH TLS),
passive data connections (EPSV, TLS with the control connection's session reused).

It only talks to 127.0.0.1. It never retries: a wrong reply raises, so a broken server
shows up as a failed repetition and not as a slow one.
"""

import ftplib
import socket
import ssl

HOST = "127.0.0.1"
SOCK_TIMEOUT = 60


def read_reply(f):
    """One FTP reply (multi-line aware) from a binary file object: (code, first line)."""
    line = f.readline()
    if not line:
        raise EOFError("connection closed by server")
    code = line[:3]
    if line[3:4] == b"-":
        for _ in range(10_000):
            more = f.readline()
            if not more:
                raise EOFError("connection closed inside a multi-line reply")
            if more[:3] == code and more[3:4] == b" ":
                break
        else:
            raise RuntimeError("multi-line reply longer than 10,000 lines")
    try:
        return int(code), line.decode("latin-1").rstrip()
    except ValueError:
        raise RuntimeError(f"bad reply line {line!r}") from None


def expect(f, want, what):
    code, line = read_reply(f)
    if code != want:
        raise RuntimeError(f"{what}: expected {want}, got {line!r}")
    return line


def raw_login(srv, timeout=SOCK_TIMEOUT):
    """Connect, greeting, USER, PASS. Returns (socket, file)."""
    s = socket.create_connection((HOST, srv["port"]), timeout=timeout)
    try:
        f = s.makefile("rb")
        expect(f, 220, "greeting")
        s.sendall(f"USER {srv['user']}\r\n".encode())
        expect(f, 331, "USER")
        s.sendall(f"PASS {srv['password']}\r\n".encode())
        expect(f, 230, "PASS")
        return s, f
    except BaseException:
        s.close()
        raise


def ftp_login(srv):
    """An ftplib session, logged in, passive."""
    ftp = ftplib.FTP()
    ftp.connect(HOST, srv["port"], timeout=SOCK_TIMEOUT)
    ftp.login(srv["user"], srv["password"])
    ftp.set_pasv(True)
    return ftp


def tls_context():
    """A client context for the throw-away certificate (no verification: loopback only)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Session:
    """One logged-in control connection; `tls` = AUTH TLS, PBSZ 0, PROT P before USER."""

    def __init__(self, srv, tls=False, timeout=SOCK_TIMEOUT):
        self.tls = tls
        self.ctx = tls_context() if tls else None
        self.sock = socket.create_connection((HOST, srv["port"]), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.f = self.sock.makefile("rb")
            expect(self.f, 220, "greeting")
            if tls:
                self.command("AUTH TLS", 234)
                self.f.close()
                self.sock = self.ctx.wrap_socket(self.sock, server_hostname=None)
                self.f = self.sock.makefile("rb")
            self.command(f"USER {srv['user']}", 331)
            self.command(f"PASS {srv['password']}", 230)
            if tls:
                self.command("PBSZ 0", 200)
                self.command("PROT P", 200)
            self.command("TYPE I", 200)
        except BaseException:
            self.sock.close()
            raise

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def command(self, line, want):
        self.send(line)
        return expect(self.f, want, line.split(" ")[0])

    def open_data(self):
        """EPSV and connect; the TLS handshake happens in `wrap_data` after the 150."""
        reply = self.command("EPSV", 229)
        try:
            port = int(reply.split("(", 1)[1].split("|")[3])
        except (IndexError, ValueError):
            raise RuntimeError(f"EPSV: cannot parse {reply!r}") from None
        data = socket.create_connection((HOST, port), timeout=SOCK_TIMEOUT)
        data.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return data

    def wrap_data(self, data):
        """TLS on the data connection, resuming the control connection's session (vsftpd's
        require_ssl_reuse, on by default, refuses a data connection without it)."""
        if not self.tls:
            return data
        return self.ctx.wrap_socket(data, server_hostname=None, session=self.sock.session)

    def quit(self):
        try:
            self.command("QUIT", 221)
        finally:
            self.close()

    def close(self):
        try:
            self.f.close()
        finally:
            self.sock.close()
