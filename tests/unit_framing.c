/* Confluent wire format: header round trip (including ids with the top bit
 * set) and the exact reasons for short messages and a wrong magic byte. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "tokentally/err.h"
#include "tokentally/framing.h"

static const int32_t ids[] = {0, 1, 258, 0x01020304, INT32_MAX, -1, INT32_MIN};

START_TEST(round_trip) {
        uint8_t msg[8];
        tt_confluent_header(msg, ids[_i]);
        ck_assert_uint_eq(msg[0], 0);
        memcpy(msg + 5, "abc", 3);
        int32_t id = 12345;
        const uint8_t *body = NULL;
        size_t body_len = 99;
        char detail[128];
        ck_assert_int_eq(tt_confluent_parse(msg, sizeof(msg), &id, &body,
                                            &body_len, detail, sizeof(detail)),
                         TT_ERR_OK);
        ck_assert_int_eq(id, ids[_i]);
        ck_assert_ptr_eq(body, msg + 5);
        ck_assert_uint_eq(body_len, 3);
}
END_TEST

START_TEST(big_endian_id) {
        uint8_t msg[5];
        tt_confluent_header(msg, 0x01020304);
        ck_assert_mem_eq(msg, "\x00\x01\x02\x03\x04", 5);
        int32_t id;
        const uint8_t *body;
        size_t body_len;
        char detail[128];
        /* A header with an empty body is still a valid frame. */
        ck_assert_int_eq(tt_confluent_parse(msg, 5, &id, &body, &body_len,
                                            detail, sizeof(detail)),
                         TT_ERR_OK);
        ck_assert_uint_eq(body_len, 0);
}
END_TEST

START_TEST(errors) {
        int32_t id;
        const uint8_t *body;
        size_t body_len;
        char detail[128];
        const uint8_t short_msg[] = {0, 0, 0, 1};
        ck_assert_int_eq(tt_confluent_parse(short_msg, sizeof(short_msg), &id,
                                            &body, &body_len, detail,
                                            sizeof(detail)),
                         TT_ERR_FORMAT);
        ck_assert_str_eq(detail, "message of 4 bytes is shorter than the "
                                 "5-byte Confluent header");
        const uint8_t bad_magic[] = {'{', '"', 'a', '"', ':', '1', '}'};
        ck_assert_int_eq(tt_confluent_parse(bad_magic, sizeof(bad_magic), &id,
                                            &body, &body_len, detail,
                                            sizeof(detail)),
                         TT_ERR_FORMAT);
        ck_assert_str_eq(detail, "Confluent magic byte is 0x7b, expected 0x00");
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("framing");
        TCase *tc = tcase_create("core");
        tcase_add_loop_test(tc, round_trip, 0, sizeof(ids) / sizeof(ids[0]));
        tcase_add_test(tc, big_endian_id);
        tcase_add_test(tc, errors);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tt_check_run(suite());
}
