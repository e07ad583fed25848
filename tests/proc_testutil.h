/* proc_testutil.h — for the suites that run a daemon as a child process
 * (test_kvd, test_sup_run): rewriting its configuration file and reaping
 * it, both in the one way that cannot hang or mislead a test.
 */
#ifndef TR_PROC_TESTUTIL_H
#define TR_PROC_TESTUTIL_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "testutil.h"

/* Writes text to path through a rename, so that a daemon reloading the
 * file never reads half of it. */
static inline void tr_test_write_file(const char *path, const char *text) {
    char tmp[256];
    ck_assert_int_lt(snprintf(tmp, sizeof tmp, "%s.tmp", path), (int)sizeof tmp);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(fputs(text, f), 0);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(rename(tmp, path), 0);
}

/* Waits for pid to exit until deadline (tr_now's clock) and returns its
 * wait status; at the deadline it is killed (SIGKILL), reaped, and -1
 * returned.  waitpid has no timeout, hence the short polls. */
static inline int tr_test_waitpid(pid_t pid, int64_t deadline) {
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        ck_assert_msg(r == 0 || errno == EINTR, "waitpid: %s", strerror(errno));
        if (tr_now() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        poll(NULL, 0, 5);
    }
}

#endif
