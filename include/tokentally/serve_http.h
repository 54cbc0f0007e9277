/* The HTTP side of `serve`: the page at /, the JSON API under /api/v1/
 * with an ETag (the view's version) and 304 for If-None-Match, /healthz
 * and /readyz. The handler runs on the HTTP server's thread and reads the
 * view under the lock the follower writes it under. */
#ifndef TT_SERVE_HTTP_H
#define TT_SERVE_HTTP_H

#include <pthread.h>
#include <stdint.h>

#include "tokentally/buf.h"
#include "tokentally/http_server.h"
#include "tokentally/serve_follow.h"
#include "tokentally/serve_view.h"

typedef struct tt_serve_ctx {
        tt_sview *view;
        pthread_mutex_t *lock;
        tt_follow *follow; /* readiness; NULL: always ready */
        uint64_t nonce;    /* in every ETag: another process, another tag */
} tt_serve_ctx;

/* tt_http_handler_ex over a tt_serve_ctx. */
unsigned tt_serve_handle(void *ctx, const tt_http_req *req, tt_http_resp *resp);

/* The page; with json (the page data, tt_serve_page_json) inlined, for a
 * file that needs no server (`report`), else one that polls
 * /api/v1/page. 0 or a tt_err. */
int tt_serve_page(tt_buf *out, const char *json, size_t len);

#endif
