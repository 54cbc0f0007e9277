/* Durations as the options and the messages write them ("500ms", "30s",
 * "10m", "2d"; a bare number is seconds). Here rather than in
 * cli/options.c because the Kafka layer formats durations in its messages
 * too (kafka_conf.c), and a layer only calls the ones below it. */
#include "tokentally/duration.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000.0

int tt_duration_parse(const char *s, int64_t *ms) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s || errno || v < 0 || !isfinite(v))
                return -1;
        double mul;
        if (!*end || !strcmp(end, "s"))
                mul = 1000;
        else if (!strcmp(end, "ms"))
                mul = 1;
        else if (!strcmp(end, "m"))
                mul = 60e3;
        else if (!strcmp(end, "h"))
                mul = 3600e3;
        else if (!strcmp(end, "d"))
                mul = 86400e3;
        else
                return -1;
        if (v * mul > 9.2e18)
                return -1;
        *ms = (int64_t)llround(v * mul);
        return 0;
}

void tt_duration_format(double ms, char *out, size_t size) {
        static const struct {
                double ms;
                const char *unit;
        } units[] = {{DAY_MS, "d"}, {3600e3, "h"}, {60e3, "m"}, {1e3, "s"}};
        if (ms == 0) {
                snprintf(out, size, "0");
                return;
        }
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                if (fmod(ms, units[i].ms) == 0) {
                        snprintf(out, size, "%.0f%s", ms / units[i].ms,
                                 units[i].unit);
                        return;
                }
        snprintf(out, size, "%.0fms", ms);
}
