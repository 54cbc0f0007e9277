/* ISO week names. The ISO week-year of a week is the Gregorian year of its
 * Thursday, and its number counts the Thursdays of that year so far. */
#include "tokentally/week.h"

#include <stdio.h>
#include <string.h>

/* Days since 1970-01-01 to (y, m, d), proleptic Gregorian (H. Hinnant). */
static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d) {
        z += 719468;
        int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        unsigned doe = (unsigned)(z - era * 146097);
        unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t yy = (int64_t)yoe + era * 400;
        unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        unsigned mp = (5 * doy + 2) / 153;
        *d = doy - (153 * mp + 2) / 5 + 1;
        *m = mp < 10 ? mp + 3 : mp - 9;
        *y = (int)(yy + (*m <= 2));
}

static int64_t days_from_civil(int y, unsigned m, unsigned d) {
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        unsigned yoe = (unsigned)(y - era * 400);
        unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t)doe - 719468;
}

size_t tt_week_name(int32_t w, char *out, size_t size) {
        /* Thursday of week w, in days since 1970-01-01. */
        int64_t thu = (tt_week_start(w) / TT_DAY_MS) + 3;
        int y;
        unsigned m, d;
        civil_from_days(thu, &y, &m, &d);
        int64_t jan1 = days_from_civil(y, 1, 1);
        int num = (int)((thu - jan1) / 7) + 1;
        int n = snprintf(out, size, "%04d-W%02d", y, num);
        return n < 0 ? 0 : (size_t)n;
}

int tt_week_parse(const char *s, int32_t *w) {
        int y, num, used = 0;
        if (strlen(s) != 8 || sscanf(s, "%4d-W%2d%n", &y, &num, &used) != 2 ||
            used != 8 || num < 1 || num > 53)
                return -1;
        /* Week 1 is the week holding January 4th. */
        int64_t jan4 = days_from_civil(y, 1, 4);
        int32_t w1 = tt_week_of(jan4 * TT_DAY_MS);
        int32_t cand = w1 + num - 1;
        char back[16];
        tt_week_name(cand, back, sizeof(back));
        if (strcmp(back, s))
                return -1;
        *w = cand;
        return 0;
}
