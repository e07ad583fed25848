/* pkgconfig_hello.c — built outside the tree against the installed
 * library, with nothing but `pkg-config --cflags --libs troupe`. */
#include <stdio.h>

#include <troupe.h>

static void *twice(void *arg) { return (void *)((long)arg * 2); }

int main(void) {
    tr_runtime *rt;
    if (tr_runtime_new(&rt, &(tr_runtime_opts){.workers = 2}) != 0)
        return 1;
    void *r = NULL;
    int rc = tr_runtime_block_on(rt, twice, (void *)21, &r);
    tr_runtime_free(&rt);
    printf("installed troupe says %ld\n", (long)r);
    return rc == 0 && (long)r == 42 ? 0 : 1;
}
