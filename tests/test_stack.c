/* test_stack.c — stacks: overflow is reported by name, impossible stacks
 * are an error return, deep use is survivable and the stack is reused. */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static int depth_sink;

/* Recursing without end is the point here. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Winfinite-recursion"
#endif

static int recurse(int n) {
    volatile char pad[512];
    pad[0] = (char)n;
    depth_sink += pad[0];
    return recurse(n + 1) + pad[0];
}

static void *overflow(void *arg) {
    (void)arg;
    return (void *)(intptr_t)recurse(0);
}

START_TEST(test_overflow_reported) {
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        tr_runtime *rt = tr_test_runtime(1);
        tr_spawn_opts o = {.name = "deep-diver", .stack_size = 64 * 1024};
        tr_task *t;
        if (tr_spawn_ex(rt, &o, &t, overflow, NULL) == 0)
            tr_task_join(t, NULL);
        _exit(0); /* not reached if the overflow is caught */
    }
    close(fds[1]);
    char buf[4096] = {0};
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf - 1 && (n = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    close(fds[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                  "child should abort, status %d; stderr: %s", status, buf);
    ck_assert_msg(strstr(buf, "stack overflow in task") != NULL, "stderr: %s", buf);
    ck_assert_msg(strstr(buf, "deep-diver") != NULL, "stderr: %s", buf);
}
END_TEST

static void *ret_arg(void *arg) { return arg; }

static void *impossible_stack(void *arg) {
    (void)arg;
    tr_spawn_opts o = {.stack_size = (size_t)1 << 50}; /* a petabyte */
    tr_task *t = (tr_task *)1;
    ck_assert_tr_err(tr_spawn_ex(NULL, &o, &t, ret_arg, NULL), TR_ENOMEM);
    ck_assert_ptr_null(t);
    /* and the runtime is fine afterwards */
    ck_assert_tr_ok(tr_spawn(&t, ret_arg, NULL));
    ck_assert_tr_ok(tr_task_join(t, NULL));
    return NULL;
}

START_TEST(test_enomem_not_crash) {
    tr_runtime *rt = tr_test_runtime(1);
    ck_assert_tr_ok(tr_runtime_block_on(rt, impossible_stack, NULL, NULL));
    tr_spawn_opts o = {.stack_size = (size_t)1 << 50};
    ck_assert_tr_err(tr_spawn_ex(rt, &o, NULL, ret_arg, NULL), TR_ENOMEM); /* plain thread */
    tr_runtime_free(&rt);
}
END_TEST

/* Uses most of a 256 KiB stack, then returns: the pool trims it. */
static void *deep_use(void *arg) {
    volatile char big[200 * 1024];
    memset((char *)big, 0x5a, sizeof big);
    return (void *)(intptr_t)big[(intptr_t)arg];
}

static void *deep_then_shallow(void *arg) {
    (void)arg;
    for (int i = 0; i < 50; i++) {
        tr_task *t;
        void *r;
        ck_assert_tr_ok(tr_spawn(&t, deep_use, (void *)(intptr_t)i));
        ck_assert_tr_ok(tr_task_join(t, &r));
        ck_assert_int_eq((int)(intptr_t)r, 0x5a);
    }
    return NULL;
}

START_TEST(test_deep_use_reused) {
    tr_runtime *rt = tr_test_runtime(2);
    ck_assert_tr_ok(tr_runtime_block_on(rt, deep_then_shallow, NULL, NULL));
    tr_runtime_free(&rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("stack");
    TCase *tc = tr_tcase("stack");
    tcase_add_test(tc, test_overflow_reported);
    tcase_add_test(tc, test_enomem_not_crash);
    tcase_add_test(tc, test_deep_use_reused);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(suite)
