/* Standard base64 (RFC 4648 §4, with '=' padding) for the payload_base64 of
 * dead letters. Encode only: nothing in the pipeline reads base64 back. */
#include "tokentally/b64.h"

#include <stdint.h>

#include "tokentally/err.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int tt_b64_encode(tt_buf *out, const void *src, size_t len) {
        /* Reserve once up front so the loop writes without checks; the
         * length test keeps 4 * groups from overflowing size_t. */
        if (len > (SIZE_MAX / 4) * 3 - 2)
                return TT_ERR_LIMIT;
        size_t olen = (len + 2) / 3 * 4;
        int err = tt_buf_reserve(out, olen);
        if (err)
                return err;
        const uint8_t *p = src;
        char *o = (char *)out->data + out->len;
        size_t i = 0;
        for (; i + 3 <= len; i += 3) {
                uint32_t v =
                    (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
                *o++ = alphabet[v >> 18];
                *o++ = alphabet[(v >> 12) & 63];
                *o++ = alphabet[(v >> 6) & 63];
                *o++ = alphabet[v & 63];
        }
        if (len - i == 1) {
                uint32_t v = (uint32_t)p[i] << 16;
                *o++ = alphabet[v >> 18];
                *o++ = alphabet[(v >> 12) & 63];
                *o++ = '=';
                *o++ = '=';
        } else if (len - i == 2) {
                uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
                *o++ = alphabet[v >> 18];
                *o++ = alphabet[(v >> 12) & 63];
                *o++ = alphabet[(v >> 6) & 63];
                *o++ = '=';
        }
        out->len += olen;
        return TT_ERR_OK;
}
