/* serve's HTTP side on loopback, without a broker: the exact bytes of a
 * 200 with its ETag, the 304 for If-None-Match (no body, no length), the
 * ETag changing with the view, the query reaching the API, JSON 404s,
 * HEAD, the probes, the page at /, and a report page with its data
 * inlined (every '<' of the data escaped). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_main.h"
#include "tokentally/serve_api.h"
#include "tokentally/serve_http.h"
#include "tokentally/serve_view.h"

static int dial(int port) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        return fd;
}

/* One request with Connection: close; the whole answer (caller frees). */
static char *ask(int port, const char *req) {
        int fd = dial(port);
        ck_assert_int_eq(send(fd, req, strlen(req), MSG_NOSIGNAL),
                         (ssize_t)strlen(req));
        size_t cap = 1 << 20, len = 0;
        char *out = malloc(cap + 1);
        ssize_t k;
        while ((k = recv(fd, out + len, cap - len, 0)) > 0)
                len += (size_t)k;
        out[len] = '\0';
        close(fd);
        return out;
}

static void add_row(tt_sview *v, const char *week, tt_dim dim, const char *key,
                    int64_t tokens) {
        tt_rollup r = {.dimension = dim,
                       .key = {key, strlen(key)},
                       .tokens = tokens,
                       .share_pct = 100,
                       .rank = 1,
                       .status = TT_STATUS_FINAL,
                       .week_start_ms = 1774828800000};
        snprintf(r.week, sizeof(r.week), "%s", week);
        ck_assert_int_eq(tt_sview_rollup(v, &r), 0);
}

START_TEST(etag_and_304) {
        pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
        tt_sview *v = tt_sview_new();
        add_row(v, "2026-W14", TT_DIM_TOTAL, "*", 7);
        tt_serve_ctx ctx = {v, &lock, NULL, 0xabc};
        char err[256];
        tt_http_server *s = tt_http_server_new_ex(
            "127.0.0.1:0", NULL, tt_serve_handle, &ctx, err, sizeof(err));
        ck_assert_ptr_nonnull(s);
        int port = tt_http_server_port(s);
        const char *body = "{\"api\":\"v1\",\"newest\":\"2026-W14\",\"weeks\":"
                           "[{\"week\":\"2026-W14\",\"week_start\":"
                           "1774828800000,\"status\":\"FINAL\",\"revision\":"
                           "0,\"tokens\":7,\"requests\":0,\"prev_tokens\":"
                           "null,\"wow_growth_pct\":null}]}\n";
        char want[1024];
        snprintf(want, sizeof(want),
                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\nETag: \"abc-1\"\r\n"
                 "Cache-Control: no-cache\r\nConnection: close\r\n\r\n%s",
                 strlen(body), body);
        char *got = ask(port, "GET /api/v1/weeks HTTP/1.1\r\nHost: x\r\n"
                              "Connection: close\r\n\r\n");
        ck_assert_str_eq(got, want);
        free(got);
        got =
            ask(port, "GET /api/v1/weeks HTTP/1.1\r\nHost: x\r\n"
                      "If-None-Match: \"abc-1\"\r\nConnection: close\r\n\r\n");
        ck_assert_str_eq(got, "HTTP/1.1 304 Not Modified\r\nETag: \"abc-1\"\r\n"
                              "Cache-Control: no-cache\r\n"
                              "Connection: close\r\n\r\n");
        free(got);
        /* A record applied: the old tag no longer matches. */
        pthread_mutex_lock(&lock);
        add_row(v, "2026-W14", TT_DIM_ORIGIN, "CN", 7);
        pthread_mutex_unlock(&lock);
        got =
            ask(port, "GET /api/v1/weeks HTTP/1.1\r\nHost: x\r\n"
                      "If-None-Match: \"abc-1\"\r\nConnection: close\r\n\r\n");
        ck_assert_ptr_nonnull(strstr(got, "HTTP/1.1 200 OK\r\n"));
        ck_assert_ptr_nonnull(strstr(got, "ETag: \"abc-2\"\r\n"));
        free(got);
        /* The query reaches the API; errors are JSON without an ETag. */
        got = ask(port, "GET /api/v1/weeks/2026-W14?dimension=x HTTP/1.1\r\n"
                        "Connection: close\r\n\r\n");
        ck_assert_str_eq(
            got, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json"
                 "\r\nContent-Length: 105\r\nConnection: close\r\n\r\n"
                 "{\"error\":{\"status\":400,\"code\":\"bad_parameter\","
                 "\"message\":\"dimension: expected origin or model, got "
                 "'x'\"}}\n");
        free(got);
        got = ask(port, "GET /x HTTP/1.1\r\nConnection: close\r\n\r\n");
        ck_assert_ptr_nonnull(strstr(got, "HTTP/1.1 404 Not Found\r\n"));
        ck_assert_ptr_nonnull(strstr(got, "\r\n\r\n{\"error\":{\"status\":404,"
                                          "\"code\":\"not_found\","));
        free(got);
        got = ask(port, "HEAD /api/v1/weeks HTTP/1.1\r\nConnection: close\r\n"
                        "\r\n");
        ck_assert_ptr_nonnull(strstr(got, "ETag: \"abc-2\"\r\n"));
        ck_assert_ptr_nonnull(strstr(got, "\r\n\r\n"));
        ck_assert_str_eq(strstr(got, "\r\n\r\n"), "\r\n\r\n"); /* no body */
        free(got);
        got = ask(port, "GET /readyz HTTP/1.0\r\n\r\n");
        ck_assert_ptr_nonnull(strstr(got, "\r\n\r\nready\n"));
        free(got);
        got = ask(port, "GET /healthz HTTP/1.0\r\n\r\n");
        ck_assert_ptr_nonnull(strstr(got, "\r\n\r\nok\n"));
        free(got);
        got = ask(port, "GET / HTTP/1.0\r\n\r\n");
        ck_assert_ptr_nonnull(
            strstr(got, "Content-Type: text/html; charset=utf-8\r\n"));
        ck_assert_ptr_nonnull(strstr(got, "\r\n\r\n<!DOCTYPE html>"));
        ck_assert_ptr_nonnull(strstr(got, "var INLINE = /*TT_DATA*/null;"));
        free(got);
        tt_http_server_destroy(s);
        tt_sview_destroy(v);
}
END_TEST

START_TEST(report_page_inlines_data) {
        tt_sview *v = tt_sview_new();
        add_row(v, "2026-W14", TT_DIM_MODEL, "evil/</script><!--", 7);
        tt_buf json, html;
        tt_buf_init(&json, 1 << 20);
        tt_buf_init(&html, 1 << 22);
        ck_assert_int_eq(tt_serve_page_json(v, &json), 0);
        ck_assert_int_eq(
            tt_serve_page(&html, (const char *)json.data, json.len), 0);
        char *page = strndup((const char *)html.data, html.len);
        ck_assert_ptr_null(strstr(page, "/*TT_DATA*/"));
        ck_assert_ptr_nonnull(strstr(page, "var INLINE = {\"api\":\"v1\","));
        ck_assert_ptr_nonnull(
            strstr(page, "\"key\":\"evil/\\u003c/script>\\u003c!--\""));
        /* The page's own closing tag is the only one left. */
        char *first = strstr(page, "</script>");
        ck_assert_ptr_nonnull(first);
        ck_assert_ptr_null(strstr(first + 1, "</script>"));
        free(page);
        tt_buf_free(&json);
        tt_buf_free(&html);
        tt_sview_destroy(v);
}
END_TEST

int main(void) {
        Suite *s = suite_create("serve_http");
        TCase *tc = tcase_create("http");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, etag_and_304);
        tcase_add_test(tc, report_page_inlines_data);
        suite_add_tcase(s, tc);
        return tt_check_run(s);
}
