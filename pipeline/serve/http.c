/* The HTTP handler of `serve` and the page (see serve_http.h). */
#include "tokentally/serve_http.h"

#include <stdio.h>
#include <string.h>

#include "tokentally/err.h"
#include "tokentally/serve_api.h"

#define LIT(b, s) tt_buf_append((b), (s), sizeof(s) - 1)

/* pipeline/serve/page.html, compiled in by CMake (serve_page_gen.c). */
extern const unsigned char tt_serve_page_html[];
extern const size_t tt_serve_page_html_len;

static const char marker[] = "/*TT_DATA*/null";

int tt_serve_page(tt_buf *out, const char *json, size_t len) {
        const char *page = (const char *)tt_serve_page_html;
        size_t plen = tt_serve_page_html_len;
        if (!json)
                return tt_buf_append(out, page, plen);
        const char *at = memmem(page, plen, marker, sizeof(marker) - 1);
        if (!at)
                return TT_ERR_STATE;
        int err = tt_buf_append(out, page, (size_t)(at - page));
        /* In a <script>, "</script>" or "<!--" inside a string would end
         * or bend the script: every '<' (only ever inside JSON strings) is
         * written as its escape. */
        for (size_t i = 0; !err && i < len; i++)
                err = json[i] == '<' ? LIT(out, "\\u003c")
                                     : tt_buf_putc(out, json[i]);
        size_t rest = (size_t)(at - page) + sizeof(marker) - 1;
        return err ? err : tt_buf_append(out, page + rest, plen - rest);
}

static const char json_type[] = "application/json";

/* The same error object as the API's. */
static unsigned not_found(tt_http_resp *resp) {
        resp->ctype = json_type;
        LIT(resp->body, "{\"error\":{\"status\":404,\"code\":\"not_found\","
                        "\"message\":\"no such page; the page is at /, the "
                        "API under /api/v1/\"}}\n");
        return 404;
}

unsigned tt_serve_handle(void *opaque, const tt_http_req *req,
                         tt_http_resp *resp) {
        tt_serve_ctx *c = opaque;
        const char *p = req->path;
        if (!strcmp(p, "/healthz")) {
                LIT(resp->body, "ok\n");
                return 200;
        }
        if (!strcmp(p, "/readyz")) {
                if (!c->follow || tt_follow_ready(c->follow)) {
                        LIT(resp->body, "ready\n");
                        return 200;
                }
                LIT(resp->body, "catching up with the output topics\n");
                return 503;
        }
        if (!strcmp(p, "/") || !strcmp(p, "/index.html")) {
                resp->ctype = "text/html; charset=utf-8";
                snprintf(resp->headers, sizeof(resp->headers),
                         "Cache-Control: no-cache\r\n");
                return tt_serve_page(resp->body, NULL, 0) ? 500 : 200;
        }
        if (strncmp(p, "/api/", 5))
                return not_found(resp);
        resp->ctype = json_type;
        pthread_mutex_lock(c->lock);
        char etag[64];
        snprintf(etag, sizeof(etag), "\"%llx-%llu\"",
                 (unsigned long long)c->nonce,
                 (unsigned long long)tt_sview_version(c->view));
        /* A poller that has this version gets 304 and no body. */
        if (req->if_none_match && (strstr(req->if_none_match, etag) ||
                                   !strcmp(req->if_none_match, "*"))) {
                pthread_mutex_unlock(c->lock);
                snprintf(resp->headers, sizeof(resp->headers),
                         "ETag: %s\r\nCache-Control: no-cache\r\n", etag);
                return 304;
        }
        unsigned st = tt_serve_api(c->view, p, req->query, resp->body);
        pthread_mutex_unlock(c->lock);
        if (st == 200)
                snprintf(resp->headers, sizeof(resp->headers),
                         "ETag: %s\r\nCache-Control: no-cache\r\n", etag);
        return st;
}
