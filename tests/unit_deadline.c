/* tt_deadline: a stop that overruns ends the process with status 1 after
 * its callback named the phase; one that ends in time (or never started)
 * leaves the process alone. Each case runs in Check's forked child, so the
 * _exit is the test's exit status. */
#include <check.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "tokentally/deadline.h"

static char seen_phase[64];
static int64_t seen_ms;

static void expired(void *opaque, const char *phase, int64_t ms) {
        (void)opaque;
        strncpy(seen_phase, phase, sizeof(seen_phase) - 1);
        seen_ms = ms;
        /* The exit status tells the parent what the callback saw. */
        if (strcmp(phase, "committing offsets") || ms != 150)
                _exit(3);
}

static void sleep_ms(long ms) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts))
                ;
}

/* Armed and never destroyed: exit 1 after the callback (checked by the
 * exit status 1, not 3, and by the test's own end never being reached). */
START_TEST(test_overrun_exits_1) {
        tt_deadline *d = tt_deadline_new(150, expired, NULL);
        ck_assert_ptr_nonnull(d);
        tt_deadline_phase(d, "committing offsets");
        tt_deadline_arm(d);
        sleep_ms(5000);
        ck_abort_msg("still running 5 s after a 150 ms deadline");
}
END_TEST

/* Armed from a signal handler, as run does on SIGTERM. */
static tt_deadline *volatile from_signal;
static void on_term(int sig) {
        (void)sig;
        tt_deadline_arm(from_signal);
}

START_TEST(test_armed_by_signal) {
        from_signal = tt_deadline_new(150, expired, NULL);
        ck_assert_ptr_nonnull(from_signal);
        tt_deadline_phase(from_signal, "committing offsets");
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_term;
        sigaction(SIGTERM, &sa, NULL);
        kill(getpid(), SIGTERM);
        kill(getpid(), SIGTERM); /* a second signal changes nothing */
        sleep_ms(5000);
        ck_abort_msg("still running 5 s after a 150 ms deadline");
}
END_TEST

/* Destroyed in time: no exit, the thread is gone. */
START_TEST(test_in_time) {
        tt_deadline *d = tt_deadline_new(300, expired, NULL);
        ck_assert_ptr_nonnull(d);
        tt_deadline_arm(d);
        sleep_ms(100);
        tt_deadline_destroy(d);
        sleep_ms(400);
        ck_assert_str_eq(seen_phase, "");
}
END_TEST

/* Never armed (no signal): destroy returns at once. */
START_TEST(test_never_armed) {
        tt_deadline *d = tt_deadline_new(100, expired, NULL);
        ck_assert_ptr_nonnull(d);
        sleep_ms(300);
        tt_deadline_destroy(d);
        ck_assert_str_eq(seen_phase, "");
        /* 0: no deadline, arm and phase are no-ops. */
        d = tt_deadline_new(0, expired, NULL);
        ck_assert_ptr_nonnull(d);
        tt_deadline_arm(d);
        tt_deadline_phase(d, "x");
        sleep_ms(200);
        tt_deadline_destroy(d);
        tt_deadline_arm(NULL);
        tt_deadline_phase(NULL, "x");
        tt_deadline_destroy(NULL);
        ck_assert_str_eq(seen_phase, "");
        ck_assert_int_eq(seen_ms, 0);
}
END_TEST

int main(void) {
        Suite *s = suite_create("deadline");
        TCase *tc = tcase_create("deadline");
        tcase_set_timeout(tc, 20);
        tcase_add_exit_test(tc, test_overrun_exits_1, 1);
        tcase_add_exit_test(tc, test_armed_by_signal, 1);
        tcase_add_test(tc, test_in_time);
        tcase_add_test(tc, test_never_armed);
        suite_add_tcase(s, tc);
        return tt_check_run(s);
}
