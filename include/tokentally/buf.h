/* A growable byte buffer with a hard cap (curl's dynbuf idea): every buffer
 * that grows with input has a ceiling, so one huge record cannot take the
 * process down. Buffers are reused across records; they never shrink. */
#ifndef TT_BUF_H
#define TT_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
int tt_buf_append_slow(tt_buf *b, const void *p, size_t n);

/* The appends are inline: an encoder calls them a dozen times a record, and
 * with room in the buffer (nearly always: buffers are reused) they are a
 * compare and a copy. cap never exceeds max, so room below cap is within
 * the cap. */
static inline int tt_buf_append(tt_buf *b, const void *p, size_t n) {
        if (n <= b->cap - b->len) {
                if (n)
                        memcpy(b->data + b->len, p, n);
                b->len += n;
                return 0;
        }
        return tt_buf_append_slow(b, p, n);
}

static inline int tt_buf_putc(tt_buf *b, char c) {
        if (b->len < b->cap) {
                b->data[b->len++] = (uint8_t)c;
                return 0;
        }
        return tt_buf_append_slow(b, &c, 1);
}
/* printf-style append; TT_ERR_LIMIT if it would pass max. */
int tt_buf_printf(tt_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void tt_buf_reset(tt_buf *b) {
        b->len = 0;
}

#endif
