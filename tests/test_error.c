/* test_error.c — every code has a name and a description, errno twins too. */
#include <string.h>

#include "testutil.h"

START_TEST(test_codes_named) {
    int codes[] = {TR_OK,     TR_EINVAL,   TR_ENOMEM, TR_ETIMEDOUT, TR_ECANCELED,
                   TR_EDEADLK, TR_EAGAIN,  TR_EPERM,  TR_EBUSY, TR_EEXIST,     TR_ECLOSED,
                   TR_EFULL,  TR_EEMPTY,   TR_ELAGGED, TR_EDOWN,    TR_ESHUTDOWN};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        ck_assert_str_ne(tr_strerror_name(codes[i]), "TR_E?");
        ck_assert_str_ne(tr_strerror(codes[i]), "unknown error");
        for (size_t j = 0; j < i; j++)
            ck_assert_int_ne(codes[i], codes[j]);
    }
    ck_assert_str_eq(tr_strerror(TR_ECLOSED), "channel closed");
    ck_assert_str_eq(tr_strerror_name(TR_ELAGGED), "TR_ELAGGED");
}
END_TEST

START_TEST(test_errno_twins) {
    ck_assert_int_eq(TR_ETIMEDOUT, -ETIMEDOUT);
    ck_assert_str_eq(tr_strerror(-ECONNREFUSED), strerror(ECONNREFUSED));
    ck_assert_str_eq(tr_strerror(-99999), "unknown error");
    ck_assert_str_eq(tr_strerror(12345), "unknown error");
}
END_TEST

START_TEST(test_time_helpers) {
    int64_t a = tr_now();
    int64_t d = tr_after_ms(5);
    ck_assert_int_ge(d - a, 5000000);
    ck_assert_int_eq(tr_after_ms(INT64_MAX), TR_NEVER);
    ck_assert_int_eq(tr_after_us(INT64_MAX / 2), TR_NEVER);
    ck_assert_int_le(tr_after_ns(-5), tr_now());
    ck_assert_int_ge(tr_now(), a);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("error");
    TCase *tc = tr_tcase("codes");
    tcase_add_test(tc, test_codes_named);
    tcase_add_test(tc, test_errno_twins);
    tcase_add_test(tc, test_time_helpers);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(suite)
