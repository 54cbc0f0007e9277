/* `tokentally report`: the page of `serve` as one self-contained HTML file,
 * the data inlined, from a replay's output folder (--in) or from the output
 * topics (--brokers, read to the end offsets they have at start). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tokentally/avro_read.h"
#include "tokentally/cli.h"
#include "tokentally/log.h"
#include "tokentally/options.h"
#include "tokentally/serve_api.h"
#include "tokentally/serve_follow.h"
#include "tokentally/serve_http.h"
#include "tokentally/serve_view.h"

static const char usage[] =
    "tokentally report (--in DIR | --brokers B [--rollups-topic T "
    "--streaks-topic T]) --out FILE.html";

/* Feeds one JSON Lines output file of replay into the view. */
static int read_jsonl(tt_sview *v, const char *dir, const char *name,
                      char *errstr, size_t errsize) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        FILE *fp = fopen(path, "r");
        if (!fp) {
                snprintf(errstr, errsize, "%s: %s", path, strerror(errno));
                return -1;
        }
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        unsigned long lineno = 0;
        int rc = 0;
        tt_buf scratch;
        tt_buf_init(&scratch, (size_t)64 << 20);
        while (!rc && (n = getline(&line, &cap, fp)) >= 0) {
                lineno++;
                while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                        n--;
                if (!n)
                        continue;
                tt_out_kind k;
                tt_rollup r;
                tt_streak_change s;
                if (tt_json_decode_output(line, (size_t)n, &scratch, &k, &r,
                                          &s)) {
                        snprintf(errstr, errsize,
                                 "%s:%lu: not a WeeklyRollup or StreakChange",
                                 path, lineno);
                        rc = -1;
                } else if (k == TT_OUT_ROLLUP ? tt_sview_rollup(v, &r)
                                              : tt_sview_streak(v, &s)) {
                        snprintf(errstr, errsize, "out of memory");
                        rc = -1;
                }
        }
        if (!rc && ferror(fp)) {
                snprintf(errstr, errsize, "%s: %s", path, strerror(errno));
                rc = -1;
        }
        free(line);
        tt_buf_free(&scratch);
        fclose(fp);
        return rc;
}

/* Writes the file next to its final name, then renames: a reader never
 * sees half a report. */
static int write_out(const char *out, const tt_buf *html, char *errstr,
                     size_t errsize) {
        if (!strcmp(out, "-"))
                return fwrite(html->data, 1, html->len, stdout) == html->len &&
                               !fflush(stdout)
                           ? 0
                           : -1;
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp.%d", out, (int)getpid());
        FILE *fp = fopen(tmp, "w");
        bool ok = fp && fwrite(html->data, 1, html->len, fp) == html->len;
        ok = fp && !fclose(fp) && ok;
        if (!ok || rename(tmp, out)) {
                snprintf(errstr, errsize, "writing %s: %s", out,
                         strerror(errno));
                unlink(tmp);
                return -1;
        }
        return 0;
}

int tt_cmd_report(int argc, char **argv) {
        char errstr[512];
        bool help;
        tt_opts *o = tt_opts_parse(TT_CMD_REPORT, argc, argv, &help, errstr,
                                   sizeof(errstr));
        if (!o) {
                fprintf(stderr, "tokentally report: %s\n", errstr);
                return 2;
        }
        if (help) {
                tt_opts_help(stdout, TT_CMD_REPORT, usage);
                tt_opts_destroy(o);
                return 0;
        }
        const char *in = tt_opts_str(o, "in");
        const char *brokers = tt_opts_str(o, "brokers");
        const char *out = tt_opts_str(o, "out");
        char why[256] = "";
        if (tt_opts_npos(o))
                snprintf(why, sizeof(why),
                         "unexpected argument '%s' (report takes options "
                         "only)",
                         tt_opts_pos(o, 0));
        else if (!out)
                snprintf(why, sizeof(why), "--out is required");
        else if (!in == !brokers)
                snprintf(why, sizeof(why),
                         "give exactly one of --in DIR and --brokers B");
        if (why[0]) {
                fprintf(stderr, "tokentally report: %s\n", why);
                tt_opts_destroy(o);
                return 2;
        }
        tt_log_set_level(
            (tt_log_level)tt_log_parse_level(tt_opts_str(o, "log-level")));
        int rc = 1;
        pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
        tt_sview *view = tt_sview_new();
        tt_buf json, html;
        tt_buf_init(&json, (size_t)1 << 30);
        tt_buf_init(&html, (size_t)1 << 30);
        if (!view) {
                fprintf(stderr, "tokentally report: out of memory\n");
                goto done;
        }
        if (in) {
                if (read_jsonl(view, in, "rollups.jsonl", errstr,
                               sizeof(errstr)) ||
                    read_jsonl(view, in, "streaks.jsonl", errstr,
                               sizeof(errstr))) {
                        fprintf(stderr, "tokentally report: %s\n", errstr);
                        goto done;
                }
        } else {
                size_t nprops;
                const char *const *props = tt_opts_list(o, "X", &nprops);
                tt_follow_conf fc = {
                    .brokers = brokers,
                    .rollups_topic = tt_opts_str(o, "rollups-topic"),
                    .streaks_topic = tt_opts_str(o, "streaks-topic"),
                    .props = props,
                    .nprops = nprops,
                    .connect_timeout_ms =
                        tt_opts_duration_ms(o, "connect-timeout"),
                    .client_id = "tokentally-report",
                };
                tt_follow *f =
                    tt_follow_new(&fc, view, &lock, errstr, sizeof(errstr));
                int err =
                    f ? tt_follow_run(f, NULL, true, errstr, sizeof(errstr))
                      : -1;
                tt_follow_destroy(f);
                if (err) {
                        fprintf(stderr, "tokentally report: %s\n", errstr);
                        goto done;
                }
        }
        if (tt_serve_page_json(view, &json) ||
            tt_serve_page(&html, (const char *)json.data, json.len)) {
                fprintf(stderr, "tokentally report: out of memory\n");
                goto done;
        }
        if (write_out(out, &html, errstr, sizeof(errstr))) {
                fprintf(stderr, "tokentally report: %s\n", errstr);
                goto done;
        }
        uint64_t nr, ns;
        tt_sview_counts(view, &nr, &ns);
        size_t nw = tt_sview_nweeks(view);
        fprintf(stderr,
                "report: %llu WeeklyRollup and %llu StreakChange records, "
                "%zu weeks (newest %s), %zu bytes written to %s\n",
                (unsigned long long)nr, (unsigned long long)ns, nw,
                nw ? tt_sview_week(view, nw - 1) : "none", html.len, out);
        rc = 0;
done:
        tt_buf_free(&json);
        tt_buf_free(&html);
        tt_sview_destroy(view);
        tt_opts_destroy(o);
        return rc;
}
