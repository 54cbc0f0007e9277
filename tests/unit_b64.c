/* Base64 for dead-letter payloads: the RFC 4648 §10 test vectors, binary
 * bytes, appending to a non-empty buffer, and the buffer cap. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "tokentally/b64.h"
#include "tokentally/err.h"

static const struct {
        const char *in;
        size_t len;
        const char *out;
} vectors[] = {
    {"", 0, ""},
    {"f", 1, "Zg=="},
    {"fo", 2, "Zm8="},
    {"foo", 3, "Zm9v"},
    {"foob", 4, "Zm9vYg=="},
    {"fooba", 5, "Zm9vYmE="},
    {"foobar", 6, "Zm9vYmFy"},
    {"\x00\xff\xfe\x3e\x3f", 5, "AP/+Pj8="},
    {"\xfb\xff", 2, "+/8="},
};

START_TEST(rfc4648_vectors) {
        tt_buf b;
        tt_buf_init(&b, 1024);
        /* Appends after what is already there. */
        ck_assert_int_eq(tt_buf_append(&b, "x:", 2), TT_ERR_OK);
        ck_assert_int_eq(tt_b64_encode(&b, vectors[_i].in, vectors[_i].len),
                         TT_ERR_OK);
        ck_assert_int_eq(tt_buf_putc(&b, '\0'), TT_ERR_OK);
        ck_assert_str_eq((char *)b.data + 2, vectors[_i].out);
        ck_assert_mem_eq(b.data, "x:", 2);
        tt_buf_free(&b);
}
END_TEST

START_TEST(cap_respected) {
        tt_buf b;
        tt_buf_init(&b, 7);
        ck_assert_int_eq(tt_b64_encode(&b, "foobar", 6), TT_ERR_LIMIT);
        ck_assert_uint_eq(b.len, 0);
        ck_assert_int_eq(tt_b64_encode(&b, "foo", 3), TT_ERR_OK);
        ck_assert_uint_eq(b.len, 4);
        tt_buf_free(&b);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("b64");
        TCase *tc = tcase_create("core");
        tcase_add_loop_test(tc, rfc4648_vectors, 0,
                            sizeof(vectors) / sizeof(vectors[0]));
        tcase_add_test(tc, cap_respected);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tt_check_run(suite());
}
