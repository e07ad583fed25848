/* slots.c — the table behind actor refs, and "which actor runs here".
 *
 * The slot table.  A ref is (slot, gen); the slot indexes a table of
 * fixed-size entries in chunks of 4096 that are allocated on first use
 * and never freed, so any index below the high-water mark names stable
 * memory whose lock a sender may take without holding anything else.
 * Freed slots go to the tail of a FIFO list and are reused from its head:
 * a dead actor's gen and reason stay readable (tr_actor_wait) for as long
 * as possible, and a reused slot bumps gen so stale refs never reach the
 * new actor.  An entry is 32 bytes, so a million actors cost 32 MB of
 * table here, and nothing per actor anywhere else but its own block.
 *
 * "Which actor runs on this task".  tr_actor_self(), a call's `from` and
 * its cycle check need the actor whose code runs on the calling task.  The
 * runtime has no per-task user pointer (see the report: a
 * tr__task_set_local() hook would replace all of this), so each thread
 * keeps a small open-addressing map from task to run record; tasks never
 * migrate, so the map of the thread is the map of the worker and needs no
 * lock.  Activations add themselves when they start and leave when they
 * return; an init run inline on the spawner's task hides the spawner's own
 * entry for its duration.  Plain threads have a single pointer instead.
 */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>

#define CHUNK_SHIFT TR__CHUNK_SHIFT
#define CHUNK TR__CHUNK
#define NCHUNKS TR__NCHUNKS
#define chunks tr__chunks
#define slot_next tr__slot_next

_Atomic(tr__slot *) tr__chunks[TR__NCHUNKS];
atomic_uint tr__slot_next = 1;
static tr_spin table_lock = TR_SPIN_INIT;
static uint32_t free_head, free_tail;

tr__slot *tr__slot_alloc(uint32_t *idx_out) {
    uint32_t idx;
    tr__slot *s;
    tr_spin_lock(&table_lock);
    if (free_head) {
        idx = free_head;
        s = &atomic_load_explicit(&chunks[idx >> CHUNK_SHIFT],
                                  memory_order_relaxed)[idx & (CHUNK - 1)];
        free_head = s->next_free;
        if (!free_head)
            free_tail = 0;
    } else {
        idx = atomic_load_explicit(&slot_next, memory_order_relaxed);
        if (idx >= NCHUNKS * CHUNK) {
            tr_spin_unlock(&table_lock);
            return NULL;
        }
        tr__slot *c = atomic_load_explicit(&chunks[idx >> CHUNK_SHIFT], memory_order_relaxed);
        if (!c) {
            /* calloc under a spin lock: once per 4096 actors. */
            c = calloc(CHUNK, sizeof *c);
            if (!c) {
                tr_spin_unlock(&table_lock);
                return NULL;
            }
            atomic_store_explicit(&chunks[idx >> CHUNK_SHIFT], c, memory_order_release);
        }
        s = &c[idx & (CHUNK - 1)];
        atomic_store_explicit(&slot_next, idx + 1, memory_order_release);
    }
    tr_spin_unlock(&table_lock);
    tr_spin_lock(&s->lock);
    if (++s->gen == 0) /* gen 0 means "no actor": skip it when wrapping */
        s->gen = 1;
    s->a = NULL;
    s->reason = 0;
    char *old_text = s->reason_text;
    s->reason_text = NULL;
    s->next_free = 0;
    tr_spin_unlock(&s->lock);
    free(old_text);
    *idx_out = idx;
    return s;
}

void tr__slot_free(uint32_t idx) {
    tr__slot *s = tr__slot_get(idx);
    if (!s)
        return;
    tr_spin_lock(&table_lock);
    s->next_free = 0; /* only the table lock's holders read it while free */
    if (free_tail) {
        tr__slot *t = tr__slot_get(free_tail);
        t->next_free = idx;
    } else {
        free_head = idx;
    }
    free_tail = idx;
    tr_spin_unlock(&table_lock);
}

/* ---- task -> run record ----------------------------------------------------------- */

typedef tr__self_ent self_ent;
#define smap tr__smap
#define plain_self tr__plain_self
TR__TLS tr__self_map tr__smap;
TR__TLS tr__run *tr__plain_self;
static pthread_key_t smap_key;
static pthread_once_t smap_once = PTHREAD_ONCE_INIT;

static void smap_thread_exit(void *p) {
    free(p);
    smap.tab = NULL;
    smap.cap = smap.n = 0;
}

static void smap_key_init(void) { pthread_key_create(&smap_key, smap_thread_exit); }

#define smap_hash tr__self_hash

static tr__run *smap_find(tr_task *t) {
    if (!smap.cap)
        return NULL;
    for (size_t i = smap_hash(t, smap.cap);; i = (i + 1) & (smap.cap - 1)) {
        if (smap.tab[i].task == t)
            return smap.tab[i].run;
        if (!smap.tab[i].task)
            return NULL;
    }
}

static bool smap_grow(void) {
    size_t cap = smap.cap ? smap.cap * 2 : 64;
    self_ent *tab = calloc(cap, sizeof *tab);
    if (!tab)
        return false;
    for (size_t i = 0; i < smap.cap; i++) {
        if (!smap.tab[i].task)
            continue;
        size_t j = smap_hash(smap.tab[i].task, cap);
        while (tab[j].task)
            j = (j + 1) & (cap - 1);
        tab[j] = smap.tab[i];
    }
    if (!smap.tab) {
        pthread_once(&smap_once, smap_key_init);
    }
    free(smap.tab);
    smap.tab = tab;
    smap.cap = cap;
    pthread_setspecific(smap_key, tab);
    return true;
}

/* Sets (run != NULL) or removes the entry of t. */
static void smap_set(tr_task *t, tr__run *run) {
    if (run && (smap.n + 1) * 2 > smap.cap && !smap_grow()) {
        /* No memory for the map: the actor's code then sees itself as no
         * actor (tr_actor_self() == NONE, no cycle check).  Better than
         * failing the activation. */
        return;
    }
    if (!smap.cap)
        return;
    size_t i = smap_hash(t, smap.cap);
    while (smap.tab[i].task && smap.tab[i].task != t)
        i = (i + 1) & (smap.cap - 1);
    if (run) {
        if (!smap.tab[i].task)
            smap.n++;
        smap.tab[i].task = t;
        smap.tab[i].run = run;
        return;
    }
    if (!smap.tab[i].task)
        return;
    /* Backward-shift deletion: no tombstones, probes stay short. */
    smap.n--;
    size_t hole = i;
    for (size_t j = (i + 1) & (smap.cap - 1); smap.tab[j].task; j = (j + 1) & (smap.cap - 1)) {
        size_t home = smap_hash(smap.tab[j].task, smap.cap);
        /* j may move to the hole if its home is not in (hole, j]. */
        bool between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!between) {
            smap.tab[hole] = smap.tab[j];
            hole = j;
        }
    }
    smap.tab[hole].task = NULL;
    smap.tab[hole].run = NULL;
}

tr__run *tr__self_push(tr__run *r) {
    tr_task *t = tr_task_self();
    if (!t) {
        tr__run *prev = plain_self;
        plain_self = r;
        return prev;
    }
    tr__run *prev = smap_find(t);
    smap_set(t, r);
    return prev;
}

void tr__self_pop(tr__run *r, tr__run *prev) {
    (void)r;
    tr_task *t = tr_task_self();
    if (!t) {
        plain_self = prev;
        return;
    }
    smap_set(t, prev);
}
