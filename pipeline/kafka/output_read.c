/* The output topics read back; see output_read.h. */
#include "tokentally/output_read.h"

#include <stdint.h>
#include <stdio.h>

#include "tokentally/kafka_out.h"

tt_out_kind tt_output_decode(const void *value, size_t len, tt_buf *scratch,
                             tt_rollup *r, tt_streak_change *s) {
        const uint8_t *v = value;
        if (!v || !len)
                return TT_OUT_UNKNOWN;
        if (v[0] == 0 && len >= 5) {
                uint32_t id = (uint32_t)v[1] << 24 | (uint32_t)v[2] << 16 |
                              (uint32_t)v[3] << 8 | v[4];
                const uint8_t *body = v + 5;
                if (id == TT_SCHEMA_ID_WEEKLY_ROLLUP)
                        return tt_avro_decode_rollup(body, len - 5, r)
                                   ? TT_OUT_UNKNOWN
                                   : TT_OUT_ROLLUP;
                if (id == TT_SCHEMA_ID_STREAK_CHANGE)
                        return tt_avro_decode_streak(body, len - 5, s)
                                   ? TT_OUT_UNKNOWN
                                   : TT_OUT_STREAK;
                /* Another id (a schema registry's): the one schema that
                 * reads the whole body, if exactly one does. */
                bool rok = !tt_avro_decode_rollup(body, len - 5, r);
                bool sok = !tt_avro_decode_streak(body, len - 5, s);
                if (rok != sok)
                        return rok ? TT_OUT_ROLLUP : TT_OUT_STREAK;
                return TT_OUT_UNKNOWN;
        }
        tt_out_kind k;
        if (tt_json_decode_output((const char *)v, len, scratch, &k, r, s))
                return TT_OUT_UNKNOWN;
        return k;
}

bool tt_output_read_fatal(rd_kafka_resp_err_t err) {
        return err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
               err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
               err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
               err == RD_KAFKA_RESP_ERR__FATAL;
}

int tt_output_add_partitions(rd_kafka_t *rk, const char *topic, int64_t offset,
                             int timeout_ms,
                             rd_kafka_topic_partition_list_t *parts,
                             char *errstr, size_t errsize) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err =
            rkt ? rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms)
                : RD_KAFKA_RESP_ERR__INVALID_ARG;
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        if (!err && md && md->topic_cnt == 1)
                err = md->topics[0].err;
        if (err || !md || md->topic_cnt != 1 ||
            md->topics[0].partition_cnt == 0) {
                snprintf(errstr, errsize, "topic %s: %s", topic,
                         err ? rd_kafka_err2str(err) : "no partitions");
                if (md)
                        rd_kafka_metadata_destroy(md);
                return -1;
        }
        for (int i = 0; i < md->topics[0].partition_cnt; i++)
                rd_kafka_topic_partition_list_add(
                    parts, topic, md->topics[0].partitions[i].id)
                    ->offset = offset;
        rd_kafka_metadata_destroy(md);
        return 0;
}
