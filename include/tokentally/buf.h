/* A growable byte buffer with a hard cap (curl's dynbuf idea): every buffer
 * that grows with input has a ceiling, so one huge record cannot take the
 * process down. Buffers are reused across records; they never shrink. */
#ifndef TT_BUF_H
#define TT_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct tt_buf {
        uint8_t *data;
        size_t len;
        size_t cap;
        size_t max; /* cap never grows past this */
} tt_buf;

void tt_buf_init(tt_buf *b, size_t max);
void tt_buf_free(tt_buf *b);
/* Ensure room for len + extra bytes. TT_ERR_LIMIT past max, TT_ERR_NOMEM. */
int tt_buf_reserve(tt_buf *b, size_t extra);
int tt_buf_append(tt_buf *b, const void *p, size_t n);
int tt_buf_putc(tt_buf *b, char c);
/* printf-style append; TT_ERR_LIMIT if it would pass max. */
int tt_buf_printf(tt_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void tt_buf_reset(tt_buf *b) {
        b->len = 0;
}

#endif
