/* stack.c — task stacks: mapped, guarded, pooled, trimmed.
 *
 * Every stack is its own mmap with a PROT_NONE guard below it, so a task
 * that runs off the end faults instead of scribbling over its neighbour;
 * the SIGSEGV handler below recognises a fault in a guard and names the
 * task before aborting.  The guard is GUARD_MIN bytes (at least a page): a
 * frame larger than the guard could step over it without touching it, and
 * 4 KiB frames are common enough (a buffer on the stack); the guard costs
 * address space only.  Mapping and unmapping cost a few microseconds, so
 * stacks that tasks give back are kept in a pool (one per worker, no lock;
 * one shared behind a mutex for spawns from elsewhere).  The common cases
 * of taking and giving back are inline, in internal.h.
 *
 * Only touched pages cost memory, so a pooled stack costs what its last task
 * touched.  When a task went deep, the pages below the top
 * TR_STACK_TRIM_KEEP bytes are handed back to the kernel with MADV_DONTNEED
 * as the stack returns to the pool.  "Went deep" is tested by reading two
 * words just below that mark: an untouched page reads as zeros without
 * becoming resident.  A deep task that happened to leave zeros at both
 * words keeps its pages until the stack is unmapped; that is the price of a
 * check that costs two loads.
 */
#include "internal.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Tell valgrind about every task stack, so that it does not take a switch
 * to a task for a wild stack-pointer change; the requests are a few no-op
 * instructions when the program is not running under valgrind. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define TR_VG_REGISTER(lo, hi) VALGRIND_STACK_REGISTER(lo, hi)
#define TR_VG_DEREGISTER(id) VALGRIND_STACK_DEREGISTER(id)
#endif
#endif
#ifndef TR_VG_REGISTER
#define TR_VG_REGISTER(lo, hi) 0u
#define TR_VG_DEREGISTER(id) ((void)(id))
#endif


#define GUARD_MIN (16u * 1024u) /* inaccessible bytes below a stack, at least */

static size_t page_size_cached;

size_t tr__page_size(void) {
    if (!page_size_cached) {
        long p = sysconf(_SC_PAGESIZE);
        page_size_cached = p > 0 ? (size_t)p : 4096;
    }
    return page_size_cached;
}

static size_t round_up(size_t v, size_t page) { return (v + page - 1) & ~(page - 1); }

size_t tr__stack_round(size_t size) { return round_up(size, tr__page_size()); }

static size_t guard_size(void) { return round_up(GUARD_MIN, tr__page_size()); }

/* Stacks take colours in turn as they are mapped, and keep theirs: see
 * TR_STACK_COLORS. */
static atomic_uint next_color;

static int stack_map(size_t size, tr_stack *out) {
    size_t page = tr__page_size(), guard = guard_size();
    size = round_up(size, page);
    if (size > SIZE_MAX - guard)
        return TR_ENOMEM;
    char *map = mmap(NULL, size + guard, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED)
        return TR_ENOMEM;
    if (mprotect(map, guard, PROT_NONE) != 0) { /* the kernel's map count is out */
        munmap(map, size + guard);
        return TR_ENOMEM;
    }
    out->map = map;
    out->lo = map + guard;
    out->color = (atomic_fetch_add_explicit(&next_color, 1, memory_order_relaxed) %
                  TR_STACK_COLORS) * TR_STACK_COLOR_STEP;
    out->size = size;
    out->next_free = NULL;
    out->vg_id = TR_VG_REGISTER(out->lo, out->lo + size);
    return 0;
}

static void stack_unmap(tr_stack *st) {
    TR_VG_DEREGISTER(st->vg_id);
    munmap(st->map, st->size + guard_size());
}

int tr__stack_get(tr_stack_pool *pool, size_t size, tr_stack *out) {
    size = round_up(size, tr__page_size());
    if (pool) {
        tr_stack **pp = &pool->free;
        /* Pools hold mostly default-sized stacks; look at the first few. */
        for (int i = 0; *pp && i < 4; i++, pp = &(*pp)->next_free) {
            tr_stack *st = *pp;
            if (st->size == size) {
                *pp = st->next_free;
                pool->count--;
                *out = *st; /* the record lives inside the stack it describes */
                out->next_free = NULL;
                return 0;
            }
        }
    }
    return stack_map(size, out);
}

static void stack_trim(tr_stack *st) {
    if (st->size <= TR_STACK_TRIM_KEEP + tr__page_size() || !tr__stack_went_deep(st))
        return;
    madvise(st->lo, st->size - TR_STACK_TRIM_KEEP, MADV_DONTNEED);
}

void tr__stack_put(tr_stack_pool *pool, tr_stack *st) {
    if (!pool || pool->count >= pool->max) {
        stack_unmap(st);
        return;
    }
    stack_trim(st);
    tr__stack_pool_link(pool, st);
}

void tr__stack_pool_drain(tr_stack_pool *pool) {
    while (pool->free) {
        tr_stack *rec = pool->free;
        tr_stack st = *rec;
        pool->free = st.next_free;
        stack_unmap(&st);
    }
    pool->count = 0;
}

/* ---- overflow reports ------------------------------------------------------ */

static struct sigaction old_segv, old_bus;

static void put_str(const char *s) {
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

static void put_u64(uint64_t v) {
    char buf[24];
    int i = sizeof buf;
    buf[--i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put_str(buf + i);
}

static void chain(int sig, siginfo_t *si, void *uc) {
    struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;
    if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
        old->sa_sigaction(sig, si, uc);
        return;
    }
    if (old->sa_handler == SIG_IGN || old->sa_handler == SIG_DFL) {
        /* Put the old disposition back; returning re-runs the faulting
         * instruction, which then faults the old way. */
        sigaction(sig, old, NULL);
        return;
    }
    old->sa_handler(sig);
}

static void on_fault(int sig, siginfo_t *si, void *uc) {
    tr_worker *w = tr__tls_worker;
    tr_task *t = w ? w->current : NULL;
    char *addr = si->si_addr;
    if (t && addr >= t->stack.map && addr < t->stack.lo) {
        put_str("troupe: stack overflow in task #");
        put_u64(t->id);
        if (t->name[0]) {
            put_str(" \"");
            put_str(t->name);
            put_str("\"");
        }
        put_str(": its stack of ");
        put_u64(t->stack.size);
        put_str(" bytes is exhausted (raise stack_size in tr_spawn_opts)\n");
        signal(SIGABRT, SIG_DFL);
        abort();
    }
    chain(sig, si, uc);
}

static void install_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
}

void tr__stack_overflow_init(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_handlers);
}

static pthread_key_t altstack_key;
static pthread_once_t altstack_once = PTHREAD_ONCE_INIT;

static void altstack_free(void *p) {
    stack_t ss = {.ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    free(p);
}

static void altstack_key_init(void) { pthread_key_create(&altstack_key, altstack_free); }

void tr__stack_altstack_init(void) {
    pthread_once(&altstack_once, altstack_key_init);
    stack_t old;
    if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE))
        return; /* the thread has one already (a sanitizer's, say) */
    size_t size = 64 * 1024;
    void *mem = malloc(size);
    if (!mem)
        return; /* overflows then die without the report, nothing worse */
    stack_t ss = {.ss_sp = mem, .ss_size = size, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        free(mem);
        return;
    }
    pthread_setspecific(altstack_key, mem);
}
