/* Durations as text, both ways (util/duration.c). */
#ifndef TT_DURATION_H
#define TT_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* Parses a duration ("10m") into ms. 0 on success, -1 otherwise. */
int tt_duration_parse(const char *s, int64_t *ms);
/* ms as the shortest exact duration text: "0", "500ms", "30s", "28d". */
void tt_duration_format(double ms, char *out, size_t size);

#endif
