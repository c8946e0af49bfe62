/* The fast transfer client in C (OpenSSL): one RETR or STOR of a big file, in its own process,
 * doing what benchlib/fastclient.py does, with less CPU per byte than Python's ssl module, so
 * that the TLS rows measure the server and not the client.
 *
 *     FTP_PASSWORD=... fastclient PORT USER RETR|STOR REMOTE LOCAL SIZE TLS(0|1)
 *
 * Login: 220, (TLS: AUTH TLS -> 234, handshake) USER -> 331, PASS -> 230, (TLS: PBSZ 0, PROT P)
 * TYPE I, EPSV -> 229, connect. The clock (and the CPU count, getrusage RUSAGE_SELF) runs from
 * sending RETR/STOR to the 221 of QUIT. TLS data connections resume the control connection's
 * session (vsftpd's require_ssl_reuse); whether it did (SSL_session_reused) is in the output:
 * pure-ftpd 1.0.50 answers it with a full handshake, which it allows. RETR reads with 1 MiB SSL_read / recv buffers and never writes what it
 * receives anywhere; TLS STOR SSL_writes 1 MiB chunks read from LOCAL, plain STOR sendfile()s;
 * TLS data connections end with close_notify (SSL_shutdown, then the peer's, as Python's
 * unwrap()). Talks to 127.0.0.1 only; the password comes from the environment, not argv.
 *
 * Prints one JSON object as fastclient.py does: {"seconds": s, "bytes": n, "cpu": s, ...}
 * (plus the data connection's TLS version, cipher and "reused"), or {"error": "..."} and
 * exits 1.
 *
 * Build: gcc -O2 -Wall -o fastclient fastclient.c -lssl -lcrypto (tests/bench/run.sh does). */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1 << 20)
#define TIMEOUT_S 60

static void fail(const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    unsigned long e = ERR_get_error();
    char ssl[160] = "";
    if (e)
        ERR_error_string_n(e, ssl, sizeof ssl);
    printf("{\"error\": \"");
    for (const char *p = msg; *p; p++)
        if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
            putchar(*p);
    if (*ssl) {
        printf(" (openssl: ");
        for (const char *p = ssl; *p; p++)
            if (*p != '"' && *p != '\\')
                putchar(*p);
        putchar(')');
    }
    printf("\"}\n");
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_seconds(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec +
           r.ru_stime.tv_usec / 1e6;
}

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fail("socket: %s", strerror(errno));
    struct timeval tv = {TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        fail("connect 127.0.0.1:%d: %s", port, strerror(errno));
    return fd;
}

/* The control connection: plain until AUTH TLS, then through `ssl`. */
struct control {
    int fd;
    SSL *ssl;
    char buf[4096];
    size_t have;
};

static void ctl_write(struct control *c, const char *line) {
    char out[600];
    int n = snprintf(out, sizeof out, "%s\r\n", line);
    if (n < 0 || (size_t)n >= sizeof out)
        fail("command too long");
    if (c->ssl) {
        if (SSL_write(c->ssl, out, n) != n)
            fail("control SSL_write failed");
    } else if (send(c->fd, out, n, MSG_NOSIGNAL) != n) {
        fail("control send: %s", strerror(errno));
    }
}

/* One line (without CRLF) into `line`. */
static void ctl_line(struct control *c, char *line, size_t size) {
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->have);
        if (nl) {
            size_t len = nl - c->buf + 1;
            size_t copy = len < size ? len : size - 1;
            memcpy(line, c->buf, copy);
            line[copy] = 0;
            line[strcspn(line, "\r\n")] = 0;
            memmove(c->buf, c->buf + len, c->have - len);
            c->have -= len;
            return;
        }
        if (c->have == sizeof c->buf)
            fail("reply line longer than %zu bytes", sizeof c->buf);
        int n;
        if (c->ssl)
            n = SSL_read(c->ssl, c->buf + c->have, sizeof c->buf - c->have);
        else
            n = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
        if (n <= 0)
            fail("control connection closed by server");
        c->have += n;
    }
}

/* One reply (multi-line aware): its code; its first line in `first`. */
static int ctl_reply(struct control *c, char *first, size_t size) {
    ctl_line(c, first, size);
    if (strlen(first) < 3 || first[0] < '1' || first[0] > '5')
        fail("bad reply line %.80s", first);
    if (first[3] == '-') {
        char more[4096];
        for (int i = 0; i < 10000; i++) {
            ctl_line(c, more, sizeof more);
            if (strncmp(more, first, 3) == 0 && more[3] == ' ')
                return atoi(first);
        }
        fail("multi-line reply longer than 10,000 lines");
    }
    return atoi(first);
}

static void expect(struct control *c, int want, const char *what) {
    char line[4096];
    int code = ctl_reply(c, line, sizeof line);
    if (code != want)
        fail("%s: expected %d, got %.200s", what, want, line);
}

static void command(struct control *c, const char *cmd, int want) {
    ctl_write(c, cmd);
    char verb[16];
    snprintf(verb, sizeof verb, "%.*s", (int)strcspn(cmd, " "), cmd);
    expect(c, want, verb);
}

static SSL *tls_connect(SSL_CTX *ctx, int fd, SSL_SESSION *resume) {
    SSL *ssl = SSL_new(ctx);
    if (!ssl || !SSL_set_fd(ssl, fd))
        fail("SSL_new");
    if (resume && !SSL_set_session(ssl, resume))
        fail("SSL_set_session");
    if (SSL_connect(ssl) != 1)
        fail("TLS handshake failed");
    return ssl;
}

/* close_notify, then wait for the peer's, as Python's SSLSocket.unwrap(); errors ignored
 * (a peer may close without one). */
static void tls_close(SSL *ssl) {
    if (SSL_shutdown(ssl) == 0)
        SSL_shutdown(ssl);
    ERR_clear_error();
}

int main(int argc, char **argv) {
    if (argc != 8)
        fail("usage: FTP_PASSWORD=... fastclient PORT USER RETR|STOR REMOTE LOCAL SIZE TLS");
    int port = atoi(argv[1]);
    const char *user = argv[2], *direction = argv[3], *remote = argv[4], *local = argv[5];
    long long size = atoll(argv[6]);
    int tls = atoi(argv[7]);
    const char *password = getenv("FTP_PASSWORD");
    int retr = strcmp(direction, "RETR") == 0;
    if (!password || (!retr && strcmp(direction, "STOR") != 0) || port <= 0 || size < 0)
        fail("bad arguments (FTP_PASSWORD set? RETR or STOR?)");
    signal(SIGPIPE, SIG_IGN);

    SSL_CTX *ctx = NULL;
    if (tls) {
        ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx)
            fail("SSL_CTX_new");
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* throw-away cert, loopback only */
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
    }

    char line[4096], cmd[600];
    struct control c = {.fd = connect_to(port)};
    expect(&c, 220, "greeting");
    if (tls) {
        command(&c, "AUTH TLS", 234);
        if (c.have)
            fail("bytes after the 234 before the TLS handshake");
        c.ssl = tls_connect(ctx, c.fd, NULL);
    }
    snprintf(cmd, sizeof cmd, "USER %s", user);
    command(&c, cmd, 331);
    snprintf(cmd, sizeof cmd, "PASS %s", password);
    command(&c, cmd, 230);
    if (tls) {
        command(&c, "PBSZ 0", 200);
        command(&c, "PROT P", 200);
    }
    command(&c, "TYPE I", 200);

    ctl_write(&c, "EPSV");
    if (ctl_reply(&c, line, sizeof line) != 229)
        fail("EPSV: expected 229, got %.200s", line);
    char *p = strstr(line, "(|||");
    int dport = p ? atoi(p + 4) : 0;
    if (dport <= 0)
        fail("EPSV: cannot parse %.200s", line);
    int dfd = connect_to(dport);
    /* The latest session of the control connection (TLS 1.3 tickets arrive after the
     * handshake, read with the replies above). */
    SSL_SESSION *session = tls ? SSL_get1_session(c.ssl) : NULL;
    if (tls && !session)
        fail("the control connection has no TLS session to resume");

    static char buf[CHUNK];
    double cpu0 = cpu_seconds(), t0 = now();
    snprintf(cmd, sizeof cmd, "%s %s", direction, remote);
    ctl_write(&c, cmd);
    SSL *data = NULL;
    if (tls) {
        data = tls_connect(ctx, dfd, session);
    }
    int code = ctl_reply(&c, line, sizeof line);
    if (code != 125 && code != 150)
        fail("%s: expected 150, got %.200s", direction, line);

    long long moved = 0;
    if (retr) {
        while (moved <= size) {
            int n;
            if (data) {
                n = SSL_read(data, buf, CHUNK);
                if (n <= 0) {
                    int e = SSL_get_error(data, n);
                    if (e == SSL_ERROR_ZERO_RETURN)
                        break; /* close_notify */
                    /* A peer that closes without close_notify: EOF, as fastclient.py. */
                    if (e == SSL_ERROR_SYSCALL && errno == 0)
                        break;
                    if (e == SSL_ERROR_SSL &&
                        ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
                        ERR_clear_error();
                        break;
                    }
                    fail("SSL_read: error %d (errno %s)", e, strerror(errno));
                }
            } else {
                n = recv(dfd, buf, CHUNK, 0);
                if (n < 0)
                    fail("recv: %s", strerror(errno));
                if (n == 0)
                    break;
            }
            moved += n;
        }
    } else {
        int fd = open(local, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            fail("open %s: %s", local, strerror(errno));
        if (data) {
            for (;;) {
                ssize_t n = read(fd, buf, CHUNK);
                if (n < 0)
                    fail("read %s: %s", local, strerror(errno));
                if (n == 0)
                    break;
                if (SSL_write(data, buf, (int)n) != n)
                    fail("SSL_write failed after %lld bytes", moved);
                moved += n;
            }
        } else {
            struct stat st;
            if (fstat(fd, &st) < 0)
                fail("fstat: %s", strerror(errno));
            while (moved < st.st_size) {
                ssize_t n = sendfile(dfd, fd, NULL, st.st_size - moved);
                if (n < 0)
                    fail("sendfile: %s", strerror(errno));
                if (n == 0)
                    break;
                moved += n;
            }
            shutdown(dfd, SHUT_WR);
        }
        close(fd);
    }
    const char *version = data ? SSL_get_version(data) : "";
    const char *cipher = data ? SSL_get_cipher_name(data) : "";
    char tls_info[200] = "";
    if (data)
        snprintf(tls_info, sizeof tls_info,
                 ", \"version\": \"%s\", \"cipher\": \"%s\", \"reused\": %s", version, cipher,
                 SSL_session_reused(data) ? "true" : "false");
    if (data) {
        tls_close(data);
        SSL_free(data);
    }
    close(dfd);
    code = ctl_reply(&c, line, sizeof line);
    if (code != 226)
        fail("%s: expected 226, got %.200s", direction, line);
    command(&c, "QUIT", 221);
    double t1 = now(), cpu1 = cpu_seconds();

    if (c.ssl) {
        SSL_shutdown(c.ssl);
        SSL_free(c.ssl);
    }
    close(c.fd);
    if (session)
        SSL_SESSION_free(session);
    printf("{\"seconds\": %.6f, \"bytes\": %lld, \"cpu\": %.6f%s}\n", t1 - t0, moved, cpu1 - cpu0,
           tls_info);
    return 0;
}
