/* The HTTP/1.1 server of the metrics page and probes; see http_server.h
 * for the rules it keeps against slow and hostile clients. One thread,
 * non-blocking sockets, poll(2) over at most max_conns + 2 descriptors. */
#include "tokentally/http_server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tokentally/err.h"
#include "tokentally/mem.h"

#define HEADER_MAX 8192
/* Stop reading a pipelining client while this much is unsent. */
#define OUT_HIGH (1u << 20)

typedef struct conn {
        int fd; /* -1: free slot */
        uint8_t peer[16];
        socklen_t peerlen;
        bool idle;        /* keep-alive, nothing received since the answer */
        bool closing;     /* close once out is sent */
        int64_t since;    /* start of the current wait (eviction order) */
        int64_t deadline; /* close when passed */
        size_t inlen;
        char in[HEADER_MAX];
        tt_buf out;
        size_t outpos;
} conn;

struct tt_http_server {
        tt_http_conf conf;
        tt_http_handler handler;
        tt_http_handler_ex handler_ex; /* instead of handler when set */
        void *opaque;
        int lfd, wake[2], port;
        pthread_t thread;
        conn *c;
        struct pollfd *pfd;
};

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tt_http_conf_defaults(tt_http_conf *c) {
        c->header_timeout_ms = 5000;
        c->idle_timeout_ms = 10000;
        c->write_timeout_ms = 10000;
        c->max_conns = 256;
        c->per_client = 16;
        c->body_max = 16u << 20;
}

static void conn_close(conn *c) {
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
        tt_buf_free(&c->out);
}

/* The client address without the port. */
static void peer_of(const struct sockaddr_storage *ss, uint8_t *out,
                    socklen_t *len) {
        if (ss->ss_family == AF_INET6) {
                memcpy(out, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
                *len = 16;
        } else {
                memcpy(out, &((const struct sockaddr_in *)ss)->sin_addr, 4);
                *len = 4;
        }
}

/* Eviction order: waiting for a request first, then idle, then busy
 * writing; within a class the oldest. Lower is evicted first. */
static int evict_class(const conn *c) {
        if (c->out.len > c->outpos)
                return 2;
        return c->idle ? 1 : 0;
}

/* The connection to replace among those of peer (all when peer NULL). */
static conn *victim(tt_http_server *s, const uint8_t *peer, socklen_t plen) {
        conn *best = NULL;
        for (int i = 0; i < s->conf.max_conns; i++) {
                conn *c = &s->c[i];
                if (c->fd < 0)
                        continue;
                if (peer && (c->peerlen != plen || memcmp(c->peer, peer, plen)))
                        continue;
                if (!best || evict_class(c) < evict_class(best) ||
                    (evict_class(c) == evict_class(best) &&
                     c->since < best->since))
                        best = c;
        }
        return best;
}

static void accept_all(tt_http_server *s, int64_t now) {
        for (;;) {
                struct sockaddr_storage ss;
                socklen_t sl = sizeof(ss);
                int fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                        return; /* EAGAIN, or a transient error: next poll */
                uint8_t peer[16];
                socklen_t plen;
                peer_of(&ss, peer, &plen);
                int mine = 0;
                conn *slot = NULL;
                for (int i = 0; i < s->conf.max_conns; i++) {
                        conn *c = &s->c[i];
                        if (c->fd < 0) {
                                if (!slot)
                                        slot = c;
                        } else if (c->peerlen == plen &&
                                   !memcmp(c->peer, peer, plen)) {
                                mine++;
                        }
                }
                if (mine >= s->conf.per_client) {
                        slot = victim(s, peer, plen);
                        conn_close(slot);
                } else if (!slot) {
                        slot = victim(s, NULL, 0);
                        conn_close(slot);
                }
                memset(slot, 0, offsetof(conn, in));
                slot->fd = fd;
                memcpy(slot->peer, peer, plen);
                slot->peerlen = plen;
                slot->since = now;
                slot->deadline = now + s->conf.header_timeout_ms;
                tt_buf_init(&slot->out, s->conf.body_max + 1024);
        }
}

static int reply_ex(tt_buf *out, unsigned status, const char *ctype,
                    const void *body, size_t len, bool head, bool close_after,
                    const char *extra) {
        const char *text = status == 200   ? "OK"
                           : status == 304 ? "Not Modified"
                           : status == 400 ? "Bad Request"
                           : status == 404 ? "Not Found"
                           : status == 405 ? "Method Not Allowed"
                           : status == 413 ? "Content Too Large"
                           : status == 431 ? "Request Header Fields Too Large"
                           : status == 503 ? "Service Unavailable"
                           : status == 505 ? "HTTP Version Not Supported"
                                           : "Internal Server Error";
        if (status == 304) /* no body, and no length of one */
                return tt_buf_printf(
                    out, "HTTP/1.1 304 %s\r\n%s%s\r\n", text, extra,
                    close_after ? "Connection: close\r\n" : "");
        int err = tt_buf_printf(out,
                                "HTTP/1.1 %u %s\r\nContent-Type: %s\r\n"
                                "Content-Length: %zu\r\n%s%s\r\n",
                                status, text, ctype, len, extra,
                                close_after ? "Connection: close\r\n" : "");
        return err || head ? err : tt_buf_append(out, body, len);
}

static int reply(tt_buf *out, unsigned status, const char *ctype,
                 const void *body, size_t len, bool head, bool close_after) {
        return reply_ex(out, status, ctype, body, len, head, close_after, "");
}

static const char text_plain[] = "text/plain; charset=utf-8";

/* A header's value, or NULL: name is matched case-insensitively. */
static const char *header(const char *h, const char *end, const char *name,
                          size_t *vlen) {
        size_t n = strlen(name);
        for (const char *p = h; p < end;) {
                const char *eol = memchr(p, '\n', (size_t)(end - p));
                const char *le = eol ? eol : end;
                if ((size_t)(le - p) > n && p[n] == ':' &&
                    !strncasecmp(p, name, n)) {
                        const char *v = p + n + 1;
                        while (v < le && (*v == ' ' || *v == '\t'))
                                v++;
                        const char *ve = le;
                        while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' ||
                                          ve[-1] == '\t'))
                                ve--;
                        *vlen = (size_t)(ve - v);
                        return v;
                }
                p = eol ? eol + 1 : end;
        }
        return NULL;
}

static bool has_token(const char *v, size_t n, const char *tok) {
        size_t t = strlen(tok);
        for (size_t i = 0; v && i + t <= n; i++)
                if (!strncasecmp(v + i, tok, t) &&
                    (i == 0 || v[i - 1] == ',' || v[i - 1] == ' ') &&
                    (i + t == n || v[i + t] == ',' || v[i + t] == ' '))
                        return true;
        return false;
}

/* Answers one request c->in[0..hlen) (header end included). */
static void serve(tt_http_server *s, conn *c, size_t hlen) {
        const char *p = c->in, *end = c->in + hlen;
        const char *eol = memchr(p, '\n', hlen);
        char method[8], target[1024], version[16];
        int n = 0;
        char line[1100];
        size_t ll = (size_t)(eol - p);
        bool ok = ll < sizeof(line);
        if (ok) {
                memcpy(line, p, ll);
                line[ll] = '\0';
                if (ll && line[ll - 1] == '\r')
                        line[ll - 1] = '\0';
                ok = sscanf(line, "%7s %1023s %15s%n", method, target, version,
                            &n) == 3 &&
                     line[n] == '\0';
        }
        if (!ok || strncmp(version, "HTTP/1.", 7) || !version[7] ||
            version[8]) {
                c->closing = true;
                reply(&c->out, ok ? 505 : 400, text_plain, "bad request\n", 12,
                      false, true);
                return;
        }
        const char *h = eol + 1;
        size_t vl = 0;
        const char *conn_h = header(h, end, "Connection", &vl);
        bool keep = version[7] == '1' ? !has_token(conn_h, vl, "close")
                                      : has_token(conn_h, vl, "keep-alive");
        size_t cl_len = 0;
        const char *cl = header(h, end, "Content-Length", &cl_len);
        if (header(h, end, "Transfer-Encoding", &vl) ||
            (cl && !(cl_len == 1 && cl[0] == '0'))) {
                /* Its body would be read as the next request. */
                c->closing = true;
                reply(&c->out, 413, text_plain, "no request body accepted\n",
                      25, false, true);
                return;
        }
        bool head = !strcmp(method, "HEAD");
        if (!head && strcmp(method, "GET")) {
                c->closing = !keep;
                reply(&c->out, 405, text_plain, "GET only\n", 9, false, !keep);
                return;
        }
        char *q = strchr(target, '?');
        if (q)
                *q = '\0';
        tt_buf body;
        tt_buf_init(&body, s->conf.body_max);
        tt_http_resp resp = {&body, text_plain, ""};
        unsigned status;
        if (s->handler_ex) {
                char inm[128];
                const char *v = header(h, end, "If-None-Match", &vl);
                if (v)
                        snprintf(inm, sizeof(inm), "%.*s",
                                 (int)(vl < sizeof(inm) ? vl : 0), v);
                tt_http_req req = {target, q ? q + 1 : "", v ? inm : NULL};
                status = s->handler_ex(s->opaque, &req, &resp);
        } else {
                status = s->handler(s->opaque, target, &body, &resp.ctype);
        }
        c->closing = !keep;
        if (reply_ex(&c->out, status, resp.ctype,
                     body.data ? (void *)body.data : "", body.len, head, !keep,
                     resp.headers)) {
                c->closing = true; /* out of room: drop the connection */
                c->outpos = c->out.len = 0;
        }
        tt_buf_free(&body);
}

/* End of the first request header in c->in, or 0. */
static size_t header_end(const conn *c) {
        for (size_t i = 0; i + 1 < c->inlen; i++) {
                if (c->in[i] != '\n')
                        continue;
                if (c->in[i + 1] == '\n')
                        return i + 2;
                if (i + 2 < c->inlen && c->in[i + 1] == '\r' &&
                    c->in[i + 2] == '\n')
                        return i + 3;
        }
        return 0;
}

/* Answers every complete request in the buffer, in order. */
static void serve_all(tt_http_server *s, conn *c, int64_t now) {
        while (!c->closing && c->out.len - c->outpos < OUT_HIGH) {
                size_t hl = header_end(c);
                if (!hl) {
                        if (c->inlen == HEADER_MAX) {
                                c->closing = true;
                                reply(&c->out, 431, text_plain,
                                      "header over 8 KiB\n", 18, false, true);
                        }
                        break;
                }
                serve(s, c, hl);
                memmove(c->in, c->in + hl, c->inlen - hl);
                c->inlen -= hl;
                /* The next request's clock starts now. */
                c->since = now;
                c->idle = c->inlen == 0;
                c->deadline = now + (c->idle ? s->conf.idle_timeout_ms
                                             : s->conf.header_timeout_ms);
        }
        if (c->out.len > c->outpos)
                c->deadline = now + s->conf.write_timeout_ms;
}

static void on_read(tt_http_server *s, conn *c, int64_t now) {
        ssize_t k = recv(c->fd, c->in + c->inlen, HEADER_MAX - c->inlen, 0);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
                conn_close(c);
                return;
        }
        if (k < 0)
                return;
        if (c->idle) {
                /* The first byte of a new request: its header deadline. */
                c->idle = false;
                c->since = now;
                c->deadline = now + s->conf.header_timeout_ms;
        }
        c->inlen += (size_t)k;
        serve_all(s, c, now);
}

static void on_write(tt_http_server *s, conn *c, int64_t now) {
        ssize_t k = send(c->fd, c->out.data + c->outpos, c->out.len - c->outpos,
                         MSG_NOSIGNAL);
        if (k < 0 && errno != EAGAIN && errno != EINTR) {
                conn_close(c);
                return;
        }
        if (k > 0)
                c->outpos += (size_t)k;
        if (c->outpos < c->out.len)
                return;
        c->outpos = 0;
        tt_buf_reset(&c->out);
        if (c->closing) {
                conn_close(c);
                return;
        }
        /* Requests held back while the output was full. */
        serve_all(s, c, now);
        if (c->out.len == 0)
                c->deadline = now + (c->idle ? s->conf.idle_timeout_ms
                                             : s->conf.header_timeout_ms);
}

static void *server_main(void *arg) {
        tt_http_server *s = arg;
        int max = s->conf.max_conns;
        for (;;) {
                int64_t now = now_ms();
                int timeout = 1000;
                s->pfd[0] = (struct pollfd){s->wake[0], POLLIN, 0};
                s->pfd[1] = (struct pollfd){s->lfd, POLLIN, 0};
                for (int i = 0; i < max; i++) {
                        conn *c = &s->c[i];
                        s->pfd[i + 2] = (struct pollfd){-1, 0, 0};
                        if (c->fd < 0)
                                continue;
                        if (now >= c->deadline) {
                                conn_close(c); /* too slow: its time is up */
                                continue;
                        }
                        bool pending = c->out.len > c->outpos;
                        short ev = pending ? POLLOUT : 0;
                        if (!c->closing && c->out.len - c->outpos < OUT_HIGH &&
                            c->inlen < HEADER_MAX)
                                ev |= POLLIN;
                        s->pfd[i + 2] = (struct pollfd){c->fd, ev, 0};
                        if (c->deadline - now < timeout)
                                timeout = (int)(c->deadline - now);
                }
                int r = poll(s->pfd, (nfds_t)max + 2, timeout);
                if (r < 0 && errno != EINTR)
                        break;
                if (r <= 0)
                        continue;
                if (s->pfd[0].revents)
                        break; /* destroy */
                now = now_ms();
                for (int i = 0; i < max; i++) {
                        conn *c = &s->c[i];
                        short re = s->pfd[i + 2].revents;
                        if (c->fd < 0 || s->pfd[i + 2].fd != c->fd || !re)
                                continue;
                        if (re & POLLOUT)
                                on_write(s, c, now);
                        if (c->fd >= 0 && (re & (POLLIN | POLLHUP | POLLERR)))
                                on_read(s, c, now);
                }
                /* After the reads: a probe that connected together with a
                 * flood is served before the flood can replace it. */
                if (s->pfd[1].revents)
                        accept_all(s, now);
        }
        return NULL;
}

static int listen_on(const char *addr, int *port, char *errstr,
                     size_t errsize) {
        char host[256];
        const char *colon = strrchr(addr, ':');
        if (!colon || colon == addr || !colon[1] ||
            (size_t)(colon - addr) >= sizeof(host)) {
                snprintf(errstr, errsize, "'%s': expected HOST:PORT", addr);
                return -1;
        }
        /* getaddrinfo takes "99999" and "-5" for ports (the first as a
         * random one): only 0..65535 in digits. */
        char *pend;
        long port_num = strtol(colon + 1, &pend, 10);
        if (*pend || !isdigit((unsigned char)colon[1]) || port_num > 65535) {
                snprintf(errstr, errsize,
                         "'%s': the port must be a number from 0 to 65535",
                         addr);
                return -1;
        }
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        if (host[0] == '[' && host[strlen(host) - 1] == ']') {
                memmove(host, host + 1, strlen(host));
                host[strlen(host) - 1] = '\0';
        }
        struct addrinfo hints, *ai = NULL;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        int gerr = getaddrinfo(host, colon + 1, &hints, &ai);
        if (gerr) {
                snprintf(errstr, errsize, "'%s': %s", addr, gai_strerror(gerr));
                return -1;
        }
        int fd = socket(ai->ai_family,
                        SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 128)) {
                snprintf(errstr, errsize, "'%s': cannot listen: %s", addr,
                         strerror(errno));
                if (fd >= 0)
                        close(fd);
                freeaddrinfo(ai);
                return -1;
        }
        freeaddrinfo(ai);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        *port = 0;
        if (!getsockname(fd, (struct sockaddr *)&ss, &sl))
                *port = ntohs(ss.ss_family == AF_INET6
                                  ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                  : ((struct sockaddr_in *)&ss)->sin_port);
        return fd;
}

static tt_http_server *server_new(const char *addr, const tt_http_conf *conf,
                                  tt_http_handler handler,
                                  tt_http_handler_ex handler_ex, void *opaque,
                                  char *errstr, size_t errsize) {
        tt_http_server *s = tt_calloc(1, sizeof(*s));
        if (!s) {
                snprintf(errstr, errsize, "out of memory");
                return NULL;
        }
        if (conf)
                s->conf = *conf;
        else
                tt_http_conf_defaults(&s->conf);
        if (s->conf.max_conns < 1)
                s->conf.max_conns = 1;
        if (s->conf.per_client < 1)
                s->conf.per_client = 1;
        s->handler = handler;
        s->handler_ex = handler_ex;
        s->opaque = opaque;
        s->wake[0] = s->wake[1] = -1;
        s->lfd = listen_on(addr, &s->port, errstr, errsize);
        s->c = tt_calloc((size_t)s->conf.max_conns, sizeof(*s->c));
        s->pfd = tt_calloc((size_t)s->conf.max_conns + 2, sizeof(*s->pfd));
        if (s->lfd < 0 || !s->c || !s->pfd ||
            pipe2(s->wake, O_CLOEXEC | O_NONBLOCK)) {
                if (s->lfd >= 0)
                        snprintf(errstr, errsize, "out of memory");
                goto fail;
        }
        for (int i = 0; i < s->conf.max_conns; i++)
                s->c[i].fd = -1;
        if (pthread_create(&s->thread, NULL, server_main, s)) {
                snprintf(errstr, errsize, "cannot start the server thread");
                goto fail;
        }
        return s;
fail:
        if (s->wake[0] >= 0) {
                close(s->wake[0]);
                close(s->wake[1]);
        }
        if (s->lfd >= 0)
                close(s->lfd);
        tt_free(s->c);
        tt_free(s->pfd);
        tt_free(s);
        return NULL;
}

tt_http_server *tt_http_server_new_ex(const char *addr,
                                      const tt_http_conf *conf,
                                      tt_http_handler_ex handler, void *opaque,
                                      char *errstr, size_t errsize) {
        return server_new(addr, conf, NULL, handler, opaque, errstr, errsize);
}

tt_http_server *tt_http_server_new(const char *addr, const tt_http_conf *conf,
                                   tt_http_handler handler, void *opaque,
                                   char *errstr, size_t errsize) {
        return server_new(addr, conf, handler, NULL, opaque, errstr, errsize);
}

int tt_http_server_port(const tt_http_server *s) {
        return s ? s->port : 0;
}

void tt_http_server_destroy(tt_http_server *s) {
        if (!s)
                return;
        char x = 1;
        while (write(s->wake[1], &x, 1) < 0 && errno == EINTR)
                ;
        pthread_join(s->thread, NULL);
        for (int i = 0; i < s->conf.max_conns; i++)
                conn_close(&s->c[i]);
        close(s->lfd);
        close(s->wake[0]);
        close(s->wake[1]);
        tt_free(s->c);
        tt_free(s->pfd);
        tt_free(s);
}
