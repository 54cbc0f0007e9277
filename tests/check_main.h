/* The one way every Check test executable runs its suite and turns the
 * result into the exit status ctest reads. */
#ifndef TT_TEST_CHECK_MAIN_H
#define TT_TEST_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

static inline int tt_check_run(Suite *s) {
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
