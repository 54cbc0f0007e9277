/* Options -> engine configuration, shared by the commands. */
#include "tokentally/setup.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tokentally/streak.h"

int tt_setup_engine(tt_setup *su, const tt_opts *o, unsigned cmd, char *errstr,
                    size_t errsize) {
        memset(su, 0, sizeof(*su));
        tt_engine_conf_defaults(&su->conf);
        su->conf.grace_ms = tt_opts_duration_ms(o, "grace");
        su->conf.late_dlq = !strcmp(tt_opts_str(o, "late"), "dlq");
        su->conf.retain_weeks = (int32_t)tt_opts_int(o, "retain-weeks");
        su->conf.max_models = (uint32_t)tt_opts_int(o, "max-keys");
        if (cmd & (TT_CMD_RUN | TT_CMD_DEMO)) {
                su->conf.idle_timeout_ms =
                    tt_opts_duration_ms(o, "idle-timeout");
                su->conf.max_future_ms = tt_opts_duration_ms(o, "max-future");
        }
        const char *map = tt_opts_str(o, "origin-map");
        su->origins = map ? tt_origin_map_load(map, errstr, errsize)
                          : tt_origin_map_parse(tt_default_origins_json,
                                                strlen(tt_default_origins_json),
                                                errstr, errsize);
        if (!su->origins)
                return -1;
        su->conf.origins = su->origins;
        size_t n;
        const char *const *rules = tt_opts_list(o, "streak", &n);
        if (n > sizeof(su->rules) / sizeof(su->rules[0])) {
                snprintf(errstr, errsize, "at most 64 --streak rules");
                return -1;
        }
        for (size_t i = 0; i < n; i++) {
                tt_streak_rule r;
                if (tt_streak_rule_parse(rules[i], &r, errstr, errsize))
                        return -1;
                tt_streak_rule_free(&r);
                su->rules[i] = rules[i];
        }
        su->conf.rules = n ? su->rules : NULL;
        su->conf.nrules = n;
        int64_t w = tt_opts_int(o, "workers");
        if (w <= 0) {
                long nproc = sysconf(_SC_NPROCESSORS_ONLN);
                w = nproc > 0 ? nproc : 1;
        }
        su->workers = (int)w;
        su->conf.nshards = (uint32_t)w;
        return 0;
}

void tt_setup_free(tt_setup *su) {
        tt_origin_map_destroy(su->origins);
        su->origins = NULL;
}
