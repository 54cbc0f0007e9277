/* Confluent Schema Registry wire format: magic byte 0x00, 4-byte big-endian
 * schema id, then the Avro binary body. */
#ifndef TT_FRAMING_H
#define TT_FRAMING_H

#include <stddef.h>
#include <stdint.h>

#define TT_CONFLUENT_HEADER_LEN 5

/* Splits msg into schema id and body. TT_ERR_FORMAT (with a detail) when the
 * message is shorter than the header or the magic byte is not 0. The body
 * points into msg. */
int tt_confluent_parse(const uint8_t *msg, size_t len, int32_t *schema_id,
                       const uint8_t **body, size_t *body_len, char *detail,
                       size_t detail_size);
/* Writes the 5-byte header into out. */
void tt_confluent_header(uint8_t out[TT_CONFLUENT_HEADER_LEN],
                         int32_t schema_id);

#endif
