/* Model author -> origin country (SPEC §2): "deepseek" -> CN. Loaded once
 * from a flat JSON object; read-only afterwards, so threads share it. */
#ifndef TT_ORIGIN_MAP_H
#define TT_ORIGIN_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct tt_origin_map tt_origin_map;

/* An origin code packed in 16 bits: the two upper-case letters. 0 = none. */
typedef uint16_t tt_origin;
#define TT_ORIGIN(a, b) ((tt_origin)(((unsigned)(a) << 8) | (unsigned)(b)))
#define TT_ORIGIN_UNKNOWN TT_ORIGIN('Z', 'Z')

/* The compiled-in schemas/origins.json. */
extern const char tt_default_origins_json[];

/* Parses a JSON object {"author": "CC", ...}. NULL with a reason (syntax,
 * a value that is not two upper-case letters) in errstr. */
tt_origin_map *tt_origin_map_parse(const char *json, size_t len, char *errstr,
                                   size_t errsize);
/* Reads and parses a file. */
tt_origin_map *tt_origin_map_load(const char *path, char *errstr,
                                  size_t errsize);
void tt_origin_map_destroy(tt_origin_map *m);
/* The origin of author[0..len), or TT_ORIGIN_UNKNOWN ("ZZ"). */
tt_origin tt_origin_map_lookup(const tt_origin_map *m, const char *author,
                               size_t len);
size_t tt_origin_map_size(const tt_origin_map *m);

/* The origin of a model slug: the author is the part before the first '/'. */
tt_origin tt_origin_of_model(const tt_origin_map *m, const char *model,
                             size_t len);

/* The code as a string with static storage (valid forever). o must be two
 * upper-case letters. */
#include "tokentally/event.h"
tt_str tt_origin_str(tt_origin o);

static inline void tt_origin_chars(tt_origin o, char out[2]) {
        out[0] = (char)(o >> 8);
        out[1] = (char)(o & 0xff);
}

#endif
