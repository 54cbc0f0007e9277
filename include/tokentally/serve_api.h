/* The JSON API of `serve` (docs/serve.md), over a materialized view. Pure:
 * a request's path and query in, a status and a JSON body out; the HTTP
 * side (ETag, 304, the page) is cmd_serve.c's. */
#ifndef TT_SERVE_API_H
#define TT_SERVE_API_H

#include "tokentally/buf.h"
#include "tokentally/serve_view.h"

/* Models per week in /api/v1/page (and so in the page's table). */
#define TT_API_PAGE_MODELS 10

/* Answers GET path?query for a path under /api/ (query NULL or "" when
 * none): appends the JSON body to body and returns the HTTP status: 200;
 * 400 for a bad parameter; 404 for an unknown path, week or key; 500 when
 * out of memory (body then holds the error object if it fits). Every error
 * body is {"error":{"status":N,"code":"...","message":"..."}}. */
unsigned tt_serve_api(const tt_sview *v, const char *path, const char *query,
                      tt_buf *body);

/* The page's data (GET /api/v1/page): every week with its status, the
 * series of every origin, and for every week its origins, top models,
 * total and streaks. 0 or a tt_err. */
int tt_serve_page_json(const tt_sview *v, tt_buf *body);

#endif
