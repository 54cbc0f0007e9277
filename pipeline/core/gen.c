/* The april-2026 scenario (SPEC §9): ten ISO weeks, 2026-W05..2026-W14, of
 * per-request token events whose weekly origin totals reproduce the headline
 * exactly at any scale.
 *
 * How exactness and streaming fit together: every (week, model) gets an
 * integer token budget and a planned number of requests before the week
 * starts. The week's requests are then dealt out in time order; each slot
 * picks a model with probability proportional to its requests left (a
 * uniformly random interleaving) and draws a realistic size, nudged by the
 * model's remaining budget per remaining request and clamped so that the
 * rest can still be met (each later request >= 1 token and <= 10M). The last
 * request of a (week, model) takes exactly what is left. State is a few
 * counters per model: nothing grows with the number of events. */
#include "tokentally/gen.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokentally/err.h"
#include "tokentally/week.h"

#define HOUR_MS INT64_C(3600000)
#define NWEEKS 10
#define FIRST_WEEK "2026-W05"
#define W09 4 /* week indexes into the tables below */
#define W10 5
#define W13 8
#define W14 9

/* Out-of-order arrival: an event is at most this much older than the newest
 * one before it. Kept well under the engine's default 10 min grace and under
 * the 5 min the scenario promises. */
#define JITTER_MS INT64_C(240000)

/* Request sizes: log-normal prompt and completion, clamped. */
#define PROMPT_SIGMA 1.1
#define PROMPT_MIN 500.0
#define PROMPT_MAX 200000.0
#define COMPLETION_SIGMA 0.8
#define COMPLETION_MIN 16.0
#define COMPLETION_MAX 8000.0
#define CAP TT_MAX_TOKENS_PER_REQUEST
/* Every request has at least this many tokens, unless a whole (week, model)
 * budget is smaller; the budget correction stays under the soft maximum
 * unless the budget forces more. */
#define MIN_REQUEST INT64_C(516)
#define SOFT_MAX_REQUEST INT64_C(208000)

enum { CN, US, FR, DE, CA, KR, IL, IN, ZZ, NORIGINS };

/* Weekly volume by origin in billions of tokens at scale 1, W05..W14. The
 * W13 values of CN and US are derived from W14 and the headline growth, and
 * ZZ in W14 is whatever makes the platform total 27 T; both are 0 here. */
static const struct {
        const char *code;
        double gt[NWEEKS];
} origins[NORIGINS] = {
    [CN] = {"CN", {1600, 1900, 2200, 2500, 2800, 3400, 5100, 7300, 0, 12960}},
    [US] = {"US", {2700, 2750, 2850, 2900, 2950, 2970, 2980, 2990, 0, 3030}},
    [FR] = {"FR", {2100, 2180, 2310, 2390, 2500, 2580, 2720, 2790, 2910, 3000}},
    [DE] = {"DE", {610, 700, 790, 880, 960, 1010, 1060, 1110, 1170, 1200}},
    [CA] = {"CA", {1010, 1030, 1080, 1120, 1150, 1220, 1250, 1310, 1360, 1400}},
    [KR] = {"KR", {760, 810, 840, 890, 910, 960, 990, 1030, 1070, 1100}},
    [IL] = {"IL", {640, 650, 700, 710, 750, 790, 800, 850, 870, 900}},
    [IN] = {"IN", {420, 470, 510, 560, 600, 640, 690, 730, 770, 800}},
    [ZZ] = {"ZZ", {1850, 1900, 2010, 2080, 2190, 2250, 2360, 2420, 2530, 0}},
};
#define CN_W14_GT 12960.0
#define US_W14_GT 3030.0
#define TOTAL_W14_GT 27000.0
#define CN_GROWTH "31.48"
#define US_GROWTH "0.76"
#define CN_SHARE "48.00"

#define P(x) "openrouter/" x
/* Models: the author must map to the origin given here in
 * schemas/origins.json (thedrummer and cognitivecomputations are not in it,
 * so they are ZZ). weight: share within the origin in W14; trend: how much
 * that weight grew from W05 to W14 (weight(W05) = weight * (1 - trend)). */
/* clang-format off */
static const struct model_def {
        const char *slug;
        int origin;
        double weight, trend;
        double prompt_median, completion_median;
        const char *providers[4];
} models[] = {
    /* slug, origin, weight, trend, prompt and completion medians,
     * providers */
    {"deepseek/deepseek-chat-v3", CN, 26, -0.2, 16000, 450,
     {P("deepinfra"), P("novita"), P("fireworks"), P("chutes")}},
    {"qwen/qwen3-coder", CN, 21, 0.4, 52000, 700,
     {P("alibaba"), P("chutes"), P("cerebras")}},
    {"moonshotai/kimi-k2", CN, 17, 0.0, 36000, 600,
     {P("moonshotai"), P("groq"), P("together")}},
    {"z-ai/glm-4.6", CN, 16, 0.6, 40000, 800,
     {P("z-ai"), P("chutes")}},
    {"minimax/minimax-m2", CN, 12, 0.8, 45000, 900,
     {P("minimax")}},
    {"deepseek/deepseek-r1", CN, 5, -0.5, 9000, 2200,
     {P("deepinfra"), P("together")}},
    {"qwen/qwen3-235b-a22b", CN, 3, -0.2, 11000, 800,
     {P("alibaba"), P("deepinfra")}},
    {"anthropic/claude-sonnet-4.5", US, 30, 0.3, 60000, 900,
     {P("anthropic"), P("google-vertex"), P("amazon-bedrock")}},
    {"openai/gpt-5", US, 18, 0.1, 26000, 1800,
     {P("openai"), P("azure")}},
    {"google/gemini-2.5-pro", US, 14, -0.1, 45000, 1200,
     {P("google-vertex"), P("google-ai-studio")}},
    {"x-ai/grok-code-fast-1", US, 15, 0.5, 50000, 800,
     {P("xai")}},
    {"google/gemini-2.5-flash", US, 11, 0.0, 22000, 600,
     {P("google-vertex"), P("google-ai-studio")}},
    {"openai/gpt-oss-120b", US, 7, 0.3, 9000, 900,
     {P("groq"), P("cerebras"), P("deepinfra")}},
    {"meta-llama/llama-4-maverick", US, 5, -0.4, 11000, 500,
     {P("together"), P("groq"), P("deepinfra")}},
    {"mistralai/mistral-medium-3.1", FR, 35, 0.2, 18000, 600,
     {P("mistral")}},
    {"mistralai/devstral-medium", FR, 30, 0.4, 52000, 700,
     {P("mistral")}},
    {"mistralai/mistral-small-3.2-24b-instruct", FR, 20, 0.0, 9000, 400,
     {P("mistral"), P("deepinfra")}},
    {"mistralai/codestral-2508", FR, 15, 0.1, 15000, 300,
     {P("mistral")}},
    {"tngtech/deepseek-r1t2-chimera", DE, 1, 0.0, 15000, 1500,
     {P("chutes")}},
    {"cohere/command-a", CA, 70, 0.2, 15000, 500,
     {P("cohere")}},
    {"cohere/command-r-plus-08-2024", CA, 30, -0.3, 11000, 400,
     {P("cohere")}},
    {"upstage/solar-pro-2", KR, 1, 0.0, 13000, 600,
     {P("upstage")}},
    {"ai21/jamba-large-1.7", IL, 65, 0.0, 22000, 500,
     {P("ai21")}},
    {"ai21/jamba-mini-1.7", IL, 35, 0.0, 11000, 300,
     {P("ai21")}},
    {"sarvamai/sarvam-m", IN, 1, 0.0, 7500, 700,
     {P("chutes")}},
    {"thedrummer/cydonia-24b-v4.1", ZZ, 35, 0.1, 13000, 350,
     {P("mancer"), P("parasail")}},
    {"thedrummer/anubis-70b-v1.1", ZZ, 25, 0.0, 15000, 400,
     {P("parasail")}},
    {"cognitivecomputations/dolphin-mistral-24b-venice-edition",
     ZZ, 40, 0.0, 5500, 350, {P("venice")}},
};
/* clang-format on */
#undef P
#define NMODELS (sizeof(models) / sizeof(models[0]))

/* xoshiro256** seeded through splitmix64: small, fast, and the same on
 * every platform, which rand() is not. */
typedef struct rng {
        uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x) {
        uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
        z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
        return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed) {
        for (int i = 0; i < 4; i++)
                r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) {
        return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng *r) {
        uint64_t *s = r->s;
        uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return out;
}

/* Uniform in [0, 1). */
static double rng_unit(rng *r) {
        return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n), n <= 2^53. */
static int64_t rng_below(rng *r, int64_t n) {
        int64_t v = (int64_t)(rng_unit(r) * (double)n);
        return v < n ? v : n - 1; /* the product can round up to n */
}

/* Two independent standard normals (Box-Muller). */
static void rng_normal2(rng *r, double *a, double *b) {
        double u = 1.0 - rng_unit(r), v = rng_unit(r);
        double m = sqrt(-2.0 * log(u));
        *a = m * cos(2.0 * M_PI * v);
        *b = m * sin(2.0 * M_PI * v);
}

static double clampd(double x, double lo, double hi) {
        return x < lo ? lo : x > hi ? hi : x;
}

static int64_t clampi(int64_t x, int64_t lo, int64_t hi) {
        return x < lo ? lo : x > hi ? hi : x;
}

/* Invalid records, dealt round-robin so that every kind appears. The first
 * ones are expressible in Avro; the RAW_* ones only as JSON text. */
enum inv_kind {
        INV_NEG_PROMPT,
        INV_NEG_COMPLETION,
        INV_TOO_LARGE,
        INV_TIME_BEFORE_2000,
        INV_TIME_2100,
        INV_MODEL_EMPTY,
        INV_MODEL_NO_SLASH,
        INV_MODEL_TOO_LONG,
        INV_MODEL_BAD_UTF8, /* raw JSON bytes when text_output */
        INV_BAD_ORIGIN,
        INV_RAW_NOT_JSON,
        INV_RAW_TRUNCATED,
        INV_RAW_WRONG_TYPE,
        INV_RAW_MISSING_MODEL,
};
#define INV_AVRO_KINDS INV_RAW_NOT_JSON
#define INV_ALL_KINDS (INV_RAW_MISSING_MODEL + 1)

typedef struct model_state {
        int64_t tokens_left;
        int64_t requests_left;
} model_state;

typedef struct gen {
        const tt_gen_conf *conf;
        const tt_gen_sink *sink;
        void *opaque;
        rng main;    /* valid events */
        rng invalid; /* invalid records, so they never perturb the valid */
        int64_t origin_tokens[NWEEKS][NORIGINS];
        int64_t budget[NWEEKS][NMODELS];
        double mean_size[NMODELS]; /* expected tokens of one request */
        model_state st[NMODELS];
        double cdf[169]; /* event-time distribution over a week's hours */
        uint64_t ninvalid;
        int32_t first_week;
        char week_name[NWEEKS][16];
        char id[64];
        char bad_id[64];
        char long_model[320];
        char raw[768];
} gen;

/* Of the candidates around cur / (1 + pct/100), the previous-week value
 * whose growth is closest to pct; 0 if none rounds to it at two decimals. */
static int64_t prev_for_growth(int64_t cur, const char *pct) {
        double target = strtod(pct, NULL);
        int64_t c = llround((double)cur / (1.0 + target / 100.0));
        int64_t best = 0;
        double best_err = INFINITY;
        for (int64_t p = c - 3; p <= c + 3; p++) {
                if (p <= 0)
                        continue;
                double g = (double)(cur - p) / (double)p * 100.0;
                char s[32];
                snprintf(s, sizeof(s), "%.2f", g);
                if (strcmp(s, pct) == 0 && fabs(g - target) < best_err) {
                        best = p;
                        best_err = fabs(g - target);
                }
        }
        return best;
}

static int plan_origins(gen *g, char *errstr, size_t errsize) {
        double s = g->conf->scale;
        for (int w = 0; w < NWEEKS; w++)
                for (int o = 0; o < NORIGINS; o++)
                        g->origin_tokens[w][o] =
                            llround(origins[o].gt[w] * 1e9 * s);
        int64_t(*t)[NORIGINS] = g->origin_tokens;
        t[W14][CN] = llround(CN_W14_GT * 1e9 * s);
        t[W14][US] = llround(US_W14_GT * 1e9 * s);
        int64_t total = llround(TOTAL_W14_GT * 1e9 * s), rest = 0;
        for (int o = 0; o < NORIGINS; o++)
                if (o != ZZ)
                        rest += t[W14][o];
        t[W14][ZZ] = total - rest;
        t[W13][CN] = prev_for_growth(t[W14][CN], CN_GROWTH);
        t[W13][US] = prev_for_growth(t[W14][US], US_GROWTH);

        /* The headline is the point of the scenario: check it rather than
         * trust the arithmetic at every scale. */
        char share[32];
        snprintf(share, sizeof(share), "%.2f",
                 (double)t[W14][CN] / (double)total * 100.0);
        bool ok = t[W13][CN] > 0 && t[W13][US] > 0 && t[W14][ZZ] > 0 &&
                  strcmp(share, CN_SHARE) == 0 && t[W09][US] >= t[W09][CN];
        for (int w = W10; w <= W14; w++)
                ok = ok && t[w][CN] > t[w][US];
        for (int o = 0; o < NORIGINS; o++)
                ok = ok && (o == CN || t[W14][o] < t[W14][CN]);
        if (!ok) {
                snprintf(errstr, errsize,
                         "scale %g is too small to reproduce the april-2026 "
                         "headline exactly",
                         s);
                return TT_ERR_INVAL;
        }
        return TT_ERR_OK;
}

static double normal_cdf(double x) {
        return 0.5 * erfc(-x / M_SQRT2);
}

/* E[min(max(L, lo), hi)] for L = median * exp(sigma * Z). Planning with the
 * true mean keeps the budget correction in draw_request() near 1, so sizes
 * do not drift within a week. */
static double clamped_lognormal_mean(double median, double sigma, double lo,
                                     double hi) {
        double a = log(lo / median) / sigma, b = log(hi / median) / sigma;
        return lo * normal_cdf(a) + hi * (1.0 - normal_cdf(b)) +
               median * exp(sigma * sigma / 2) *
                   (normal_cdf(b - sigma) - normal_cdf(a - sigma));
}

/* Splits each origin's weekly total over its models by weight, with the
 * largest-remainder method so that the parts add up exactly. */
static void plan_models(gen *g) {
        for (int w = 0; w < NWEEKS; w++) {
                for (int o = 0; o < NORIGINS; o++) {
                        double wt[NMODELS], sum = 0, frac[NMODELS];
                        for (size_t m = 0; m < NMODELS; m++) {
                                const struct model_def *d = &models[m];
                                double f = 1.0 - d->trend * (W14 - w) / 9.0;
                                wt[m] = d->origin == o
                                            ? d->weight * (f < 0.05 ? 0.05 : f)
                                            : 0;
                                sum += wt[m];
                        }
                        int64_t total = g->origin_tokens[w][o], given = 0;
                        for (size_t m = 0; m < NMODELS; m++) {
                                if (wt[m] == 0)
                                        continue;
                                double q = (double)total * (wt[m] / sum);
                                g->budget[w][m] = (int64_t)floor(q);
                                frac[m] = q - floor(q);
                                given += g->budget[w][m];
                        }
                        /* Hand out the remainder one token at a time,
                         * largest fraction first (ties: table order). */
                        while (given < total) {
                                size_t best = NMODELS;
                                for (size_t m = 0; m < NMODELS; m++)
                                        if (wt[m] != 0 &&
                                            (best == NMODELS ||
                                             frac[m] > frac[best]))
                                                best = m;
                                g->budget[w][best]++;
                                frac[best] = -1;
                                given++;
                        }
                }
        }
        for (size_t m = 0; m < NMODELS; m++)
                g->mean_size[m] =
                    clamped_lognormal_mean(models[m].prompt_median,
                                           PROMPT_SIGMA, PROMPT_MIN,
                                           PROMPT_MAX) +
                    clamped_lognormal_mean(models[m].completion_median,
                                           COMPLETION_SIGMA, COMPLETION_MIN,
                                           COMPLETION_MAX);
}

/* Requests planned for a budget: about budget / mean size, but enough that
 * none must exceed CAP, and few enough that each gets MIN_REQUEST tokens
 * (a budget below that is one small request). */
static int64_t plan_requests(int64_t budget, double mean) {
        if (budget <= 0)
                return 0;
        int64_t n = llround((double)budget / mean);
        int64_t most = budget / MIN_REQUEST;
        if (n > most)
                n = most;
        int64_t need = budget / CAP + (budget % CAP != 0);
        return n < need ? need : n < 1 ? 1 : n;
}

/* Hourly weights of a week: a weekday/weekend pattern times a daily curve
 * with its peak in the European afternoon / American morning and a smaller
 * one in the Asian working day. */
static void plan_week_shape(gen *g) {
        static const double day[7] = {1.0, 1.03, 1.04, 1.02, 0.96, 0.74, 0.78};
        g->cdf[0] = 0;
        for (int h = 0; h < 168; h++) {
                double hh = h % 24;
                double f =
                    day[h / 24] * (1.0 + 0.35 * cos(2 * M_PI * (hh - 15) / 24) +
                                   0.15 * cos(2 * M_PI * (hh - 4) / 24));
                g->cdf[h + 1] = g->cdf[h] + f;
        }
        for (int h = 1; h <= 168; h++)
                g->cdf[h] /= g->cdf[168];
        g->cdf[168] = 1.0;
}

/* Writes prefix and the decimal n into out. */
static void fmt_id(char *out, size_t size, const char *prefix, int64_t n) {
        size_t len = strlen(prefix);
        memcpy(out, prefix, len);
        char tmp[24];
        int k = 0;
        do {
                tmp[k++] = (char)('0' + n % 10);
                n /= 10;
        } while (n && k < (int)sizeof(tmp));
        while (k && len + 1 < size)
                out[len++] = tmp[--k];
        out[len] = '\0';
}

static int emit_raw(gen *g, int n) {
        if (n < 0 || (size_t)n >= sizeof(g->raw))
                n = (int)strlen(g->raw);
        return g->sink->raw(g->opaque, (const uint8_t *)g->raw, (size_t)n);
}

/* One invalid record derived from the valid event ev (whose time is the
 * current position in the stream), carrying the next defect in turn. */
static int emit_invalid(gen *g, const tt_event *ev, int64_t now_ms, int wk) {
        int nkinds = g->conf->text_output ? INV_ALL_KINDS : INV_AVRO_KINDS;
        enum inv_kind kind = (enum inv_kind)(g->ninvalid % (uint64_t)nkinds);
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "bad-%s-", g->week_name[wk]);
        fmt_id(g->bad_id, sizeof(g->bad_id), prefix, (int64_t)g->ninvalid);
        g->ninvalid++;

        tt_event bad = *ev;
        bad.request_id = (tt_str){g->bad_id, strlen(g->bad_id)};
        /* In-range defects keep a time that never runs ahead of the valid
         * stream, so they cannot move a watermark even if counted. */
        bad.event_time_ms = now_ms;
        bad.origin = TT_STR_NULL;
        long long t = (long long)now_ms;
        const char *id = g->bad_id;
        switch (kind) {
        case INV_NEG_PROMPT:
                bad.prompt_tokens = -1 - rng_below(&g->invalid, 5000);
                break;
        case INV_NEG_COMPLETION:
                bad.completion_tokens = -1;
                break;
        case INV_TOO_LARGE:
                bad.prompt_tokens = CAP - 400 + rng_below(&g->invalid, 1000);
                bad.completion_tokens = 401 + rng_below(&g->invalid, 1000);
                break;
        case INV_TIME_BEFORE_2000:
                bad.event_time_ms = TT_MIN_EVENT_TIME_MS - 1;
                break;
        case INV_TIME_2100:
                bad.event_time_ms = TT_MAX_EVENT_TIME_MS;
                break;
        case INV_MODEL_EMPTY:
                bad.model = (tt_str){"", 0};
                break;
        case INV_MODEL_NO_SLASH:
                bad.model = TT_STR_LIT("deepseek-chat-v3");
                break;
        case INV_MODEL_TOO_LONG: {
                size_t n = TT_MAX_MODEL_LEN + 1 + rng_below(&g->invalid, 40);
                memcpy(g->long_model, "deepseek/", 9);
                memset(g->long_model + 9, 'x', n - 9);
                bad.model = (tt_str){g->long_model, n};
                break;
        }
        case INV_MODEL_BAD_UTF8:
                if (g->conf->text_output) {
                        /* A JSON encoder could not carry these bytes, so
                         * they go out raw: not UTF-8, hence not JSON. */
                        int n = snprintf(
                            g->raw, sizeof(g->raw),
                            "{\"request_id\":\"%s\",\"event_time\":%lld,"
                            "\"model\":\"qwen/qwen3-\xff\xfe-coder\","
                            "\"origin\":null,\"prompt_tokens\":1200,"
                            "\"completion_tokens\":300,\"provider\":null}",
                            id, t);
                        return emit_raw(g, n);
                }
                bad.model = TT_STR_LIT("qwen/qwen3-\xff\xfe-coder");
                break;
        case INV_BAD_ORIGIN:
                bad.origin = TT_STR_LIT("china");
                break;
        case INV_RAW_NOT_JSON:
                return emit_raw(g, snprintf(g->raw, sizeof(g->raw),
                                            "request %s at %lld: 1200 "
                                            "prompt tokens, not json",
                                            id, t));
        case INV_RAW_TRUNCATED:
                return emit_raw(g, snprintf(g->raw, sizeof(g->raw),
                                            "{\"request_id\":\"%s\","
                                            "\"event_time\":%lld,"
                                            "\"model\":\"deepseek/deeps",
                                            id, t));
        case INV_RAW_WRONG_TYPE:
                return emit_raw(
                    g, snprintf(g->raw, sizeof(g->raw),
                                "{\"request_id\":\"%s\",\"event_time\":%lld,"
                                "\"model\":\"openai/gpt-5\",\"origin\":null,"
                                "\"prompt_tokens\":\"1200\","
                                "\"completion_tokens\":300,"
                                "\"provider\":null}",
                                id, t));
        case INV_RAW_MISSING_MODEL:
                return emit_raw(
                    g, snprintf(g->raw, sizeof(g->raw),
                                "{\"request_id\":\"%s\",\"event_time\":%lld,"
                                "\"origin\":null,\"prompt_tokens\":1200,"
                                "\"completion_tokens\":300,"
                                "\"provider\":null}",
                                id, t));
        }
        return g->sink->event(g->opaque, &bad);
}

/* Draws one request of model m and takes it from the model's budget. */
static void draw_request(gen *g, size_t m, int64_t *prompt,
                         int64_t *completion) {
        model_state *st = &g->st[m];
        const struct model_def *d = &models[m];
        double z1, z2;
        rng_normal2(&g->main, &z1, &z2);
        double p = clampd(d->prompt_median * exp(PROMPT_SIGMA * z1), PROMPT_MIN,
                          PROMPT_MAX);
        double c = clampd(d->completion_median * exp(COMPLETION_SIGMA * z2),
                          COMPLETION_MIN, COMPLETION_MAX);
        int64_t r = st->tokens_left, n = st->requests_left, s;
        if (n <= 1) {
                s = r;
        } else {
                /* Invariant: n * MIN_REQUEST <= r <= n * CAP, so whatever
                 * this request takes within [lo, hi], the other n - 1 can
                 * still be met. Within that, a soft ceiling keeps the
                 * budget correction from making outsized requests. */
                int64_t lo =
                    (n - 1) > r / CAP ? MIN_REQUEST : r - (n - 1) * CAP;
                int64_t hi = r - (n - 1) * MIN_REQUEST;
                if (lo < MIN_REQUEST)
                        lo = MIN_REQUEST;
                if (hi > SOFT_MAX_REQUEST)
                        hi = lo > SOFT_MAX_REQUEST ? lo : SOFT_MAX_REQUEST;
                double avg = (double)r / (double)n;
                double want = (p + c) * avg / g->mean_size[m];
                /* Near the end one heavy-tailed draw could eat what the
                 * last few requests need; keep those near the average. */
                if (n <= 16)
                        want = clampd(want, 0.6 * avg, 1.6 * avg);
                s = clampi(llround(want), lo, hi);
        }
        /* The budget correction goes to the prompt: completions keep their
         * drawn size, and never take more than half of a small request. */
        int64_t comp = clampi(llround(c), 0, s / 2);
        *completion = comp;
        *prompt = s - comp;
        st->tokens_left -= s;
        st->requests_left--;
}

static int run_week(gen *g, int wk, int32_t week_index) {
        int64_t nreq = 0;
        for (size_t m = 0; m < NMODELS; m++) {
                g->st[m].tokens_left = g->budget[wk][m];
                g->st[m].requests_left =
                    plan_requests(g->budget[wk][m], g->mean_size[m]);
                nreq += g->st[m].requests_left;
        }
        int64_t start = tt_week_start(week_index);
        int64_t end = tt_week_start(week_index + 1);
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "req-%s-", g->week_name[wk]);
        double inv_rate = g->conf->invalid_rate;
        int hour = 0;
        for (int64_t k = 0; k < nreq; k++) {
                /* Which model: probability proportional to requests left. */
                int64_t u = rng_below(&g->main, nreq - k);
                size_t m = 0;
                while (u >= g->st[m].requests_left) {
                        u -= g->st[m].requests_left;
                        m++;
                }
                int64_t prompt, completion;
                draw_request(g, m, &prompt, &completion);

                /* When: the k-th of nreq quantiles of the week's shape, then
                 * a jitter that keeps the stream within JITTER_MS of order
                 * and never moves an event into another week. */
                double q = ((double)k + 0.5) / (double)nreq;
                while (hour < 167 && q >= g->cdf[hour + 1])
                        hour++;
                double f =
                    (q - g->cdf[hour]) / (g->cdf[hour + 1] - g->cdf[hour]);
                int64_t mono = start + hour * HOUR_MS +
                               clampi((int64_t)(f * HOUR_MS), 0, HOUR_MS - 1);
                int64_t jitter = rng_unit(&g->main) < 0.2
                                     ? rng_below(&g->main, JITTER_MS)
                                     : rng_below(&g->main, 3000);
                int64_t t = mono + jitter < end ? mono + jitter : end - 1;

                const struct model_def *d = &models[m];
                tt_event ev;
                memset(&ev, 0, sizeof(ev));
                fmt_id(g->id, sizeof(g->id), prefix, k);
                ev.request_id = (tt_str){g->id, strlen(g->id)};
                ev.event_time_ms = t;
                ev.model = (tt_str){d->slug, strlen(d->slug)};
                /* A tenth of the producers state the origin themselves;
                 * nobody would state ZZ. */
                ev.origin = TT_STR_NULL;
                if (rng_unit(&g->main) < 0.1 && d->origin != ZZ)
                        ev.origin = (tt_str){origins[d->origin].code, 2};
                ev.prompt_tokens = prompt;
                ev.completion_tokens = completion;
                ev.provider = TT_STR_NULL;
                size_t np = 0;
                while (np < 4 && d->providers[np])
                        np++;
                if (np && rng_unit(&g->main) >= 0.25) {
                        const char *pv =
                            d->providers[rng_below(&g->main, (int64_t)np)];
                        ev.provider = (tt_str){pv, strlen(pv)};
                }
                ev.present = TT_F_REQUIRED | TT_F_ORIGIN | TT_F_PROVIDER;
                int err = g->sink->event(g->opaque, &ev);
                if (err)
                        return err;
                if (inv_rate > 0 && rng_unit(&g->invalid) < inv_rate &&
                    (err = emit_invalid(g, &ev, mono, wk)))
                        return err;
        }
        return TT_ERR_OK;
}

/* Validates conf and plans the weekly origin totals into g. */
static int check_conf(const tt_gen_conf *conf, gen *g, char *errstr,
                      size_t errsize) {
        if (errsize)
                errstr[0] = '\0';
        if (!conf) {
                snprintf(errstr, errsize, "gen: no configuration");
                return TT_ERR_INVAL;
        }
        const char *scenario = conf->scenario ? conf->scenario : "april-2026";
        if (strcmp(scenario, "april-2026") != 0) {
                snprintf(errstr, errsize,
                         "unknown scenario '%s' (known: april-2026)", scenario);
                return TT_ERR_INVAL;
        }
        if (!(conf->scale >= 1e-9 && conf->scale <= 1)) {
                snprintf(errstr, errsize,
                         "scale %g is outside [1e-9, 1] (1 = the real "
                         "27 trillion tokens a week)",
                         conf->scale);
                return TT_ERR_INVAL;
        }
        if (!(conf->invalid_rate >= 0 && conf->invalid_rate <= 1)) {
                snprintf(errstr, errsize, "invalid rate %g is outside [0, 1]",
                         conf->invalid_rate);
                return TT_ERR_INVAL;
        }
        int32_t first;
        if (tt_week_parse(FIRST_WEEK, &first) != 0) {
                snprintf(errstr, errsize, "gen: bad first week");
                return TT_ERR_STATE;
        }
        g->conf = conf;
        g->first_week = first;
        for (int w = 0; w < NWEEKS; w++)
                tt_week_name(first + w, g->week_name[w],
                             sizeof(g->week_name[w]));
        return plan_origins(g, errstr, errsize);
}

int tt_gen_check(const tt_gen_conf *conf, char *errstr, size_t errsize) {
        static const gen zero;
        gen g = zero;
        return check_conf(conf, &g, errstr, errsize);
}

int tt_gen_run(const tt_gen_conf *conf, const tt_gen_sink *sink, void *opaque,
               char *errstr, size_t errsize) {
        static const gen zero;
        gen g = zero;
        int err = check_conf(conf, &g, errstr, errsize);
        if (err)
                return err;
        if (!sink || !sink->event ||
            (conf->invalid_rate > 0 && conf->text_output && !sink->raw)) {
                snprintf(errstr, errsize,
                         "gen: no sink (text output with invalid records "
                         "also needs a raw one)");
                return TT_ERR_INVAL;
        }
        g.sink = sink;
        g.opaque = opaque;
        rng_seed(&g.main, conf->seed);
        rng_seed(&g.invalid, conf->seed ^ UINT64_C(0x5DEECE66DA3B1F07));
        plan_models(&g);
        plan_week_shape(&g);
        for (int w = 0; w < NWEEKS; w++) {
                if ((err = run_week(&g, w, g.first_week + w))) {
                        snprintf(errstr, errsize, "gen: output failed: %s",
                                 tt_err2str(err));
                        return err;
                }
        }
        return TT_ERR_OK;
}

int tt_gen_weeks(const char *scenario, int32_t *first, int *nweeks) {
        if (!scenario || strcmp(scenario, "april-2026") ||
            tt_week_parse(FIRST_WEEK, first))
                return TT_ERR_INVAL;
        *nweeks = NWEEKS;
        return TT_ERR_OK;
}
