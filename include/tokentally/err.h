/* One error enum for the whole project: 0 is OK, failures are negative.
 * Generated from one X-macro list so that tt_err2str() can never fall out of
 * step with the codes. The list only grows: append new codes at the end. */
#ifndef TT_ERR_H
#define TT_ERR_H

#define TT_ERR_MAP(X)                                                          \
        X(OK, 0, "success")                                                    \
        X(NOMEM, -1, "out of memory")                                          \
        X(INVAL, -2, "invalid argument")                                       \
        X(IO, -3, "input/output error")                                        \
        X(FORMAT, -4, "malformed input")                                       \
        X(LIMIT, -5, "limit exceeded")                                         \
        X(RETRY, -6, "backpressure: try again later")                          \
        X(EOF, -7, "end of input")                                             \
        X(UNSUPPORTED, -8, "unsupported")                                      \
        X(KAFKA, -9, "kafka error")                                            \
        X(STATE, -10, "invalid state")                                         \
        X(RANGE, -11, "count out of range")

typedef enum tt_err {
#define TT_ERR_ENUM(name, val, str) TT_ERR_##name = (val),
        TT_ERR_MAP(TT_ERR_ENUM)
#undef TT_ERR_ENUM
} tt_err;

/* Static string describing err; never NULL. */
const char *tt_err2str(int err);

#endif
