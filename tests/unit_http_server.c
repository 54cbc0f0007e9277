/* The metrics/probe HTTP server against slow and hostile clients, on
 * loopback only, with bounded loops: 100 connections trickling one header
 * byte at a time for 10 s while /healthz is probed (before, 70 such
 * clients held all 64 connections and the probe was refused), 50
 * pipelined requests answered in order (before: one answer), the header
 * deadline, and the 4xx answers. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "tokentally/http_server.h"

static unsigned handler(void *opaque, const char *path, tt_buf *body,
                        const char **ctype) {
        (void)opaque;
        (void)ctype;
        if (!strcmp(path, "/healthz")) {
                tt_buf_printf(body, "ok\n");
                return 200;
        }
        tt_buf_printf(body, "nope\n");
        return 404;
}

static int64_t mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A blocking loopback connection with a receive timeout. */
static int dial(int port, int rcv_timeout_ms) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        struct timeval tv = {rcv_timeout_ms / 1000,
                             (rcv_timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        return fd;
}

static void send_all(int fd, const char *p, size_t n) {
        while (n) {
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
                ck_assert_int_gt(k, 0);
                p += k;
                n -= (size_t)k;
        }
}

/* Reads until EOF, the timeout, or cap bytes; returns the length. */
static size_t read_all(int fd, char *buf, size_t cap) {
        size_t n = 0;
        while (n < cap - 1) {
                ssize_t k = recv(fd, buf + n, cap - 1 - n, 0);
                if (k <= 0)
                        break;
                n += (size_t)k;
        }
        buf[n] = '\0';
        return n;
}

static tt_http_server *start(const tt_http_conf *c) {
        char why[256];
        tt_http_server *s = tt_http_server_new("127.0.0.1:0", c, handler, NULL,
                                               why, sizeof(why));
        ck_assert_msg(s != NULL, "%s", why);
        return s;
}

/* One probe: a whole answer "ok" within 1 s (the receive timeout), the
 * time it took in *ms. */
static bool probe(int port, int64_t *ms) {
        int64_t t0 = mono_ms();
        int fd = dial(port, 1000);
        static const char req[] =
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        send_all(fd, req, sizeof(req) - 1);
        char buf[512];
        read_all(fd, buf, sizeof(buf));
        close(fd);
        *ms = mono_ms() - t0;
        return !strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) &&
               strstr(buf, "\r\n\r\nok\n") != NULL;
}

#define SLOW 100

START_TEST(test_slow_clients_do_not_starve_probes) {
        tt_http_server *s = start(NULL); /* the metrics server's settings */
        int port = tt_http_server_port(s);
        int fds[SLOW];
        size_t sent[SLOW];
        static const char slow_req[] = "GET /healthz HTTP/1.1\r\nX-Slow: ";
        for (int i = 0; i < SLOW; i++) {
                fds[i] = dial(port, 1000);
                fcntl(fds[i], F_SETFL, O_NONBLOCK);
                sent[i] = 0;
        }
        int probes = 0, answered = 0, reconnects = 0;
        int64_t worst = 0, t_end = mono_ms() + 10000, next_probe = 0;
        while (mono_ms() < t_end) {
                /* One byte per slow connection per 100 ms; a connection
                 * the server dropped is replaced, so 100 stay open. */
                for (int i = 0; i < SLOW; i++) {
                        char c = sent[i] < sizeof(slow_req) - 1
                                     ? slow_req[sent[i]]
                                     : 'a';
                        char sink[64];
                        ssize_t r = recv(fds[i], sink, sizeof(sink), 0);
                        bool dead = r == 0 || (r < 0 && errno != EAGAIN);
                        if (!dead && send(fds[i], &c, 1, MSG_NOSIGNAL) == 1) {
                                sent[i]++;
                                continue;
                        }
                        close(fds[i]);
                        fds[i] = dial(port, 1000);
                        fcntl(fds[i], F_SETFL, O_NONBLOCK);
                        sent[i] = 0;
                        reconnects++;
                }
                if (mono_ms() >= next_probe) {
                        int64_t ms;
                        probes++;
                        answered += probe(port, &ms);
                        if (ms > worst)
                                worst = ms;
                        next_probe = mono_ms() + 200;
                }
                poll(NULL, 0, 100);
        }
        fprintf(stderr,
                "slow clients: %d probes, %d answered, slowest %lld ms, "
                "%d slow connections replaced\n",
                probes, answered, (long long)worst, reconnects);
        ck_assert_int_ge(probes, 20);
        ck_assert_int_eq(answered, probes);
        for (int i = 0; i < SLOW; i++)
                close(fds[i]);
        tt_http_server_destroy(s);
}
END_TEST

START_TEST(test_pipelined_requests_answered_in_order) {
        tt_http_server *s = start(NULL);
        int fd = dial(tt_http_server_port(s), 5000);
        char req[8192];
        size_t n = 0;
        for (int i = 0; i < 50; i++)
                n += (size_t)snprintf(req + n, sizeof(req) - n,
                                      "GET /%s HTTP/1.1\r\nHost: x\r\n%s\r\n",
                                      i % 5 == 4 ? "other" : "healthz",
                                      i == 49 ? "Connection: close\r\n" : "");
        send_all(fd, req, n);
        static char buf[1 << 16];
        read_all(fd, buf, sizeof(buf));
        close(fd);
        /* 50 answers, in request order: every fifth is the 404. */
        int count = 0;
        for (const char *p = buf; (p = strstr(p, "HTTP/1.1 ")); p++) {
                char code[4] = {p[9], p[10], p[11], 0};
                ck_assert_str_eq(code, count % 5 == 4 ? "404" : "200");
                count++;
        }
        ck_assert_int_eq(count, 50);
        tt_http_server_destroy(s);
}
END_TEST

START_TEST(test_header_deadline) {
        tt_http_conf c;
        tt_http_conf_defaults(&c);
        c.header_timeout_ms = 300;
        tt_http_server *s = start(&c);
        int fd = dial(tt_http_server_port(s), 100);
        /* A byte every 50 ms keeps an inactivity timer happy forever; the
         * header deadline closes the connection all the same. */
        bool closed = false;
        for (int i = 0; i < 100 && !closed; i++) {
                if (send(fd, "G", 1, MSG_NOSIGNAL) != 1)
                        closed = true;
                char b[16];
                if (recv(fd, b, sizeof(b), 0) == 0)
                        closed = true;
        }
        ck_assert(closed);
        close(fd);
        tt_http_server_destroy(s);
}
END_TEST

static const struct {
        const char *req;
        const char *status_line;
        bool body; /* "ok\n" follows the header */
} answers[] = {
    {"GET /healthz HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK", true},
    {"GET /healthz?x=1 HTTP/1.1\r\nConnection: close\r\n\r\n",
     "HTTP/1.1 200 OK", true},
    {"HEAD /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", "HTTP/1.1 200 OK",
     false},
    {"POST /healthz HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", "HTTP/1.1 413 ",
     false},
    {"DELETE /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", "HTTP/1.1 405 ",
     false},
    {"GET /healthz HTTP/2.0\r\n\r\n", "HTTP/1.1 505 ", false},
    {"garbage\r\n\r\n", "HTTP/1.1 400 ", false},
};

START_TEST(test_answers) {
        tt_http_server *s = start(NULL);
        int fd = dial(tt_http_server_port(s), 5000);
        send_all(fd, answers[_i].req, strlen(answers[_i].req));
        char buf[1024];
        read_all(fd, buf, sizeof(buf));
        close(fd);
        ck_assert_msg(!strncmp(buf, answers[_i].status_line,
                               strlen(answers[_i].status_line)),
                      "%s", buf);
        const char *body = strstr(buf, "\r\n\r\n");
        ck_assert_ptr_nonnull(body);
        if (answers[_i].body)
                ck_assert_str_eq(body + 4, "ok\n");
        else if (!strncmp(answers[_i].req, "HEAD", 4))
                ck_assert_str_eq(body + 4, "");
        tt_http_server_destroy(s);
}
END_TEST

int main(void) {
        Suite *s = suite_create("http_server");
        TCase *tc = tcase_create("core");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_slow_clients_do_not_starve_probes);
        tcase_add_test(tc, test_pipelined_requests_answered_in_order);
        tcase_add_test(tc, test_header_deadline);
        tcase_add_loop_test(tc, test_answers, 0,
                            sizeof(answers) / sizeof(answers[0]));
        suite_add_tcase(s, tc);
        return tt_check_run(s);
}
