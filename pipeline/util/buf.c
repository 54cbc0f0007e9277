/* Capped growable buffer; see buf.h. */
#include "tokentally/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tokentally/err.h"
#include "tokentally/mem.h"

void tt_buf_init(tt_buf *b, size_t max) {
        b->data = NULL;
        b->len = b->cap = 0;
        b->max = max;
}

void tt_buf_free(tt_buf *b) {
        tt_free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
}

int tt_buf_reserve(tt_buf *b, size_t extra) {
        if (extra > b->max || b->len > b->max - extra)
                return TT_ERR_LIMIT;
        size_t need = b->len + extra;
        if (need <= b->cap)
                return TT_ERR_OK;
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < need)
                ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
        if (ncap > b->max)
                ncap = b->max;
        uint8_t *p = tt_realloc(b->data, ncap);
        if (!p)
                return TT_ERR_NOMEM;
        b->data = p;
        b->cap = ncap;
        return TT_ERR_OK;
}

int tt_buf_append_slow(tt_buf *b, const void *p, size_t n) {
        int err = tt_buf_reserve(b, n);
        if (err)
                return err;
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        return TT_ERR_OK;
}

int tt_buf_printf(tt_buf *b, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char small[256];
        int n = vsnprintf(small, sizeof(small), fmt, ap);
        va_end(ap);
        if (n < 0)
                return TT_ERR_INVAL;
        if ((size_t)n < sizeof(small))
                return tt_buf_append(b, small, (size_t)n);
        int err = tt_buf_reserve(b, (size_t)n + 1);
        if (err)
                return err;
        va_start(ap, fmt);
        vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
        return TT_ERR_OK;
}
