/* Standard base64 (RFC 4648, with padding), for dead-letter payloads. */
#ifndef TT_B64_H
#define TT_B64_H

#include <stddef.h>

#include "tokentally/buf.h"

/* Appends the base64 of src[0..len) to out. TT_ERR_LIMIT/NOMEM on failure. */
int tt_b64_encode(tt_buf *out, const void *src, size_t len);

#endif
