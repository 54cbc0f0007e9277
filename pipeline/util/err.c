/* Error code to string, from the single list in err.h. */
#include "tokentally/err.h"

const char *tt_err2str(int err) {
        switch (err) {
#define TT_ERR_CASE(name, val, str)                                            \
        case (val):                                                            \
                return (str);
                TT_ERR_MAP(TT_ERR_CASE)
#undef TT_ERR_CASE
        }
        return "unknown error";
}
