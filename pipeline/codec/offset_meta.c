/* Parsers of the committed offsets' metadata; see offset_meta.h. The
 * values steer the stage (a watermark closes weeks, a week skips
 * re-read events), so every byte is checked rather than handed to
 * strtoll. */
#include "tokentally/offset_meta.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tokentally/err.h"
#include "tokentally/event.h"
#include "tokentally/week.h"

/* The value after prefix, or TT_ERR_EOF when meta does not start with it. */
static int value_of(const void *meta, size_t len, const char *prefix,
                    const char **v, size_t *vlen) {
        size_t n = strlen(prefix);
        if (!meta || len < n || memcmp(meta, prefix, n))
                return TT_ERR_EOF;
        *v = (const char *)meta + n;
        *vlen = len - n;
        return TT_ERR_OK;
}

int tt_offset_meta_wm(const void *meta, size_t len, int64_t *wm, char *errstr,
                      size_t errsize) {
        const char *v;
        size_t n;
        if (value_of(meta, len, TT_OFFSET_META_WM_PREFIX, &v, &n))
                return TT_ERR_EOF;
        /* 13 digits cover the valid range; more cannot be a valid time and
         * would risk overflow. No sign: valid times are positive. */
        int64_t x = 0;
        bool ok = n > 0 && n <= 13;
        for (size_t i = 0; ok && i < n; i++) {
                if (v[i] < '0' || v[i] > '9')
                        ok = false;
                else
                        x = x * 10 + (v[i] - '0');
        }
        if (!ok || x < TT_MIN_EVENT_TIME_MS || x >= TT_MAX_EVENT_TIME_MS) {
                snprintf(errstr, errsize,
                         "offset metadata: watermark \"%.*s\" is not a time "
                         "in [2000-01-01, 2100-01-01)",
                         (int)(n > 40 ? 40 : n), v);
                return TT_ERR_FORMAT;
        }
        *wm = x;
        return TT_ERR_OK;
}
