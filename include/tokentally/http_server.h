/* A small HTTP/1.1 server for the metrics page and the health probes, one
 * thread with poll(2), built to stay answerable while hostile or broken
 * clients hold connections:
 *
 * - a request's header must arrive whole within header_timeout_ms of its
 *   first byte (or of the accept): trickling one byte at a time does not
 *   keep a connection, as it would under an inactivity timeout;
 * - an idle keep-alive connection is closed after idle_timeout_ms, and a
 *   response not taken by the client within write_timeout_ms;
 * - at most per_client connections per client address and max_conns in
 *   all; a new connection past either cap replaces the oldest connection
 *   (of that client, or of all) that is waiting for its request (idle
 *   ones next), so a probe that sends its request at once is answered
 *   while slow clients come and go;
 * - pipelined requests are answered in order on the connection
 *   (HTTP/1.1 §9.3.2); HTTP/1.0 and "Connection: close" close after the
 *   answer; a request with a body, a header over 8 KiB or a malformed
 *   request line gets its 4xx and the connection closes.
 * Only GET and HEAD reach the handler (405 otherwise). */
#ifndef TT_HTTP_SERVER_H
#define TT_HTTP_SERVER_H

#include <stddef.h>

#include "tokentally/buf.h"

typedef struct tt_http_server tt_http_server;

/* Appends the body for path (without its query) to body and returns the
 * status; *ctype is a static string. Runs on the server thread. */
typedef unsigned (*tt_http_handler)(void *opaque, const char *path,
                                    tt_buf *body, const char **ctype);

typedef struct tt_http_conf {
        int header_timeout_ms; /* default 5000 */
        int idle_timeout_ms;   /* default 10000 */
        int write_timeout_ms;  /* default 10000 */
        int max_conns;         /* default 256 */
        int per_client;        /* default 16 */
        size_t body_max;       /* handler's body cap, default 16 MiB */
} tt_http_conf;

void tt_http_conf_defaults(tt_http_conf *c);

/* Listens on addr ("HOST:PORT", "[v6]:PORT"; port 0 picks a free one)
 * and serves with handler(opaque, ...) until destroyed. conf NULL: the
 * defaults. NULL with a reason (bad address, port in use). */
tt_http_server *tt_http_server_new(const char *addr, const tt_http_conf *conf,
                                   tt_http_handler handler, void *opaque,
                                   char *errstr, size_t errsize);
/* The handler of `serve`: also the query and If-None-Match of the
 * request, and extra header lines for the response (ETag). A 304 answer is
 * sent without a body. */
typedef struct tt_http_req {
        const char *path;
        const char *query;         /* after '?', "" when none */
        const char *if_none_match; /* NULL when absent */
} tt_http_req;
typedef struct tt_http_resp {
        tt_buf *body;
        const char *ctype; /* static */
        char headers[256]; /* "Name: value\r\n" lines, "" by default */
} tt_http_resp;
typedef unsigned (*tt_http_handler_ex)(void *opaque, const tt_http_req *req,
                                       tt_http_resp *resp);
tt_http_server *tt_http_server_new_ex(const char *addr,
                                      const tt_http_conf *conf,
                                      tt_http_handler_ex handler, void *opaque,
                                      char *errstr, size_t errsize);
int tt_http_server_port(const tt_http_server *s);
/* Stops the thread, closes every connection and frees; NULL is fine. */
void tt_http_server_destroy(tt_http_server *s);

#endif
