/* Names of the output enums, exactly the Avro symbols of
 * schemas/weekly_rollup.avsc and schemas/streak_change.avsc, which JSON
 * output writes as strings. */
#include "tokentally/rollup.h"

const char *tt_dim_str(tt_dim d) {
        switch (d) {
        case TT_DIM_TOTAL:
                return "TOTAL";
        case TT_DIM_ORIGIN:
                return "ORIGIN";
        case TT_DIM_MODEL:
                return "MODEL";
        }
        return "UNKNOWN";
}

const char *tt_status_str(tt_status s) {
        switch (s) {
        case TT_STATUS_PROVISIONAL:
                return "PROVISIONAL";
        case TT_STATUS_FINAL:
                return "FINAL";
        case TT_STATUS_REVISED:
                return "REVISED";
        }
        return "UNKNOWN";
}

const char *tt_streak_kind_str(tt_streak_kind k) {
        switch (k) {
        case TT_STREAK_STARTED:
                return "STARTED";
        case TT_STREAK_EXTENDED:
                return "EXTENDED";
        }
        return "UNKNOWN";
}
