/* Confluent Schema Registry wire format (magic 0x00, big-endian schema id,
 * Avro body), the framing of every Avro message on Kafka. */
#include "tokentally/framing.h"

#include <stdio.h>

#include "tokentally/err.h"

int tt_confluent_parse(const uint8_t *msg, size_t len, int32_t *schema_id,
                       const uint8_t **body, size_t *body_len, char *detail,
                       size_t detail_size) {
        if (len < TT_CONFLUENT_HEADER_LEN) {
                snprintf(detail, detail_size,
                         "message of %zu bytes is shorter than the 5-byte "
                         "Confluent header",
                         len);
                return TT_ERR_FORMAT;
        }
        if (msg[0] != 0) {
                snprintf(detail, detail_size,
                         "Confluent magic byte is 0x%02x, expected 0x00",
                         msg[0]);
                return TT_ERR_FORMAT;
        }
        uint32_t id = (uint32_t)msg[1] << 24 | (uint32_t)msg[2] << 16 |
                      (uint32_t)msg[3] << 8 | msg[4];
        *schema_id = (int32_t)id;
        *body = msg + TT_CONFLUENT_HEADER_LEN;
        *body_len = len - TT_CONFLUENT_HEADER_LEN;
        if (detail_size)
                detail[0] = '\0';
        return TT_ERR_OK;
}

void tt_confluent_header(uint8_t out[TT_CONFLUENT_HEADER_LEN],
                         int32_t schema_id) {
        uint32_t id = (uint32_t)schema_id;
        out[0] = 0;
        out[1] = (uint8_t)(id >> 24);
        out[2] = (uint8_t)(id >> 16);
        out[3] = (uint8_t)(id >> 8);
        out[4] = (uint8_t)id;
}
