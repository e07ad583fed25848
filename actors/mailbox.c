/* mailbox.c — an actor's mailbox: a bounded FIFO of message nodes plus a
 * system lane, under the actor's slot lock.
 *
 * Why not a tr_mpsc per actor: a ring of capacity slots costs
 * capacity * msg_size bytes whether or not anything is queued, and a
 * million idle actors would hold gigabytes.  Here a queued message is a
 * node (malloc'd: glibc's per-thread cache makes a same-thread alloc/free
 * pair cost about as much as a pool would), and an empty mailbox is two
 * NULL pointers.  The lock is the slot entry's (see internal.h), so
 * resolving a ref and enqueueing are one locked section, which also
 * decides, race-free, whether the message must start an activation: the
 * scheduling state (IDLE / SCHEDULED / RUNNING) is changed only under the
 * same lock, by senders (IDLE -> SCHEDULED) and by the activation (RUNNING
 * -> IDLE only when it finds both lanes empty).
 *
 * A full mailbox applies the actor's overflow policy.  Senders that wait
 * park with tr_wait's protocol in a FIFO; when the activation takes a
 * message it claims the first waiting sender and moves that sender's node
 * into the queue itself, so waiting senders are served in order and a new
 * sender can never overtake one that waits (the queue stays full while
 * anyone waits).
 *
 * The system lane (DOWN notifications, exit signals from linked actors)
 * lives in the actor's extension block, is unbounded ("never fills") and
 * is served before the user lane.
 */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- node pool -------------------------------------------------------------------
 * Nodes of three size classes are recycled through a per-thread cache
 * over a global list, so a steady stream of messages allocates nothing and
 * a node freed by an activation on another worker is reused there.  The
 * global list is capped: after a burst, memory goes back to malloc. */

#define NCLASS 3
static const size_t class_data[NCLASS] = {32, 96, 224}; /* node sizes 64, 128, 256 */
#define CACHE_MAX 128
#define GLOBAL_MAX 4096
#define BATCH 32

typedef struct node_cache {
    tr__mnode *head[NCLASS];
    int n[NCLASS];
} node_cache;

static TR__TLS node_cache ncache;
static TR__TLS bool ncache_registered;
static tr_spin gpool_lock = TR_SPIN_INIT;
static tr__mnode *gpool[NCLASS];
static int gpool_n[NCLASS];
static pthread_key_t ncache_key;
static pthread_once_t ncache_once = PTHREAD_ONCE_INIT;

static inline int size_class(size_t msg_size) {
    for (int c = 0; c < NCLASS; c++)
        if (msg_size <= class_data[c])
            return c;
    return -1;
}

/* Gives list (count nodes of class c) to the global pool, or to free(). */
static void gpool_give(int c, tr__mnode *list, int count) {
    tr_spin_lock(&gpool_lock);
    if (gpool_n[c] + count <= GLOBAL_MAX) {
        tr__mnode *last = list;
        while (last->next)
            last = last->next;
        last->next = gpool[c];
        gpool[c] = list;
        gpool_n[c] += count;
        list = NULL;
    }
    tr_spin_unlock(&gpool_lock);
    while (list) {
        tr__mnode *next = list->next;
        free(list);
        list = next;
    }
}

static void ncache_thread_exit(void *p) {
    (void)p;
    for (int c = 0; c < NCLASS; c++) {
        if (ncache.head[c])
            gpool_give(c, ncache.head[c], ncache.n[c]);
        ncache.head[c] = NULL;
        ncache.n[c] = 0;
    }
}

static void ncache_key_init(void) { pthread_key_create(&ncache_key, ncache_thread_exit); }

static tr__mnode *node_get(int c) {
    tr__mnode *n = ncache.head[c];
    if (n) {
        ncache.head[c] = n->next;
        ncache.n[c]--;
        return n;
    }
    tr_spin_lock(&gpool_lock);
    n = gpool[c];
    int took = 0;
    if (n) {
        tr__mnode *last = n;
        took = 1;
        while (took < BATCH && last->next) {
            last = last->next;
            took++;
        }
        gpool[c] = last->next;
        gpool_n[c] -= took;
        last->next = NULL;
    }
    tr_spin_unlock(&gpool_lock);
    if (n) {
        ncache.head[c] = n->next;
        ncache.n[c] = took - 1;
        return n;
    }
    return malloc(sizeof(tr__mnode) + class_data[c]);
}

static void node_put(int c, tr__mnode *n) {
    if (!ncache_registered) {
        pthread_once(&ncache_once, ncache_key_init);
        pthread_setspecific(ncache_key, (void *)1);
        ncache_registered = true;
    }
    n->next = ncache.head[c];
    ncache.head[c] = n;
    if (++ncache.n[c] > CACHE_MAX) { /* keep half, give the rest back */
        tr__mnode *keep = n;
        for (int i = 1; i < CACHE_MAX / 2; i++)
            keep = keep->next;
        tr__mnode *rest = keep->next;
        keep->next = NULL;
        int count = ncache.n[c] - CACHE_MAX / 2;
        ncache.n[c] = CACHE_MAX / 2;
        gpool_give(c, rest, count);
    }
}

tr__mnode *tr__mnode_new(size_t msg_size, const void *msg) {
    int c = size_class(msg_size);
    tr__mnode *n = c >= 0 ? node_get(c) : malloc(sizeof *n + msg_size);
    if (!n)
        return NULL;
    n->next = NULL;
    n->reply = NULL;
    n->from = TR_ACTOR_NONE;
    n->size_class = (int8_t)c;
    if (msg_size == sizeof(uint64_t))
        memcpy(n->data, msg, sizeof(uint64_t)); /* the common cases, without a call */
    else if (msg_size == sizeof(uint32_t))
        memcpy(n->data, msg, sizeof(uint32_t));
    else
        memcpy(n->data, msg, msg_size);
    return n;
}

void tr__mnode_free(tr__mnode *n) {
    if (n->size_class >= 0)
        node_put(n->size_class, n);
    else
        free(n);
}

void tr__mnode_drop(const tr_actor_type *t, tr__mnode *n) {
    if (t->drop_msg)
        t->drop_msg(n->data, t->drop_ctx);
    if (n->reply)
        tr__reply_drop(n->reply);
    tr__mnode_free(n);
}

static inline void push_user(tr__actor *a, tr__mnode *n) {
    n->next = NULL;
    if (a->tail)
        a->tail->next = n;
    else
        a->head = n;
    a->tail = n;
    uint32_t q = atomic_load_explicit(&a->queued, memory_order_relaxed) + 1;
    atomic_store_explicit(&a->queued, q, memory_order_relaxed);
    if (q > a->high_water)
        a->high_water = q;
}

static inline tr__mnode *pop_user(tr__actor *a) {
    tr__mnode *n = a->head;
    if (n) {
        a->head = n->next;
        if (!a->head)
            a->tail = NULL;
        atomic_store_explicit(&a->queued,
                              atomic_load_explicit(&a->queued, memory_order_relaxed) - 1,
                              memory_order_relaxed);
    }
    return n;
}

/* Whether a user message may come in now. */
static inline bool open_for_users(const tr__actor *a) {
    return a->life == TR__LIFE_INIT || a->life == TR__LIFE_ALIVE ||
           a->life == TR__LIFE_LIMBO || (a->life == TR__LIFE_ENDING && a->ext && a->ext->hooked_end);
}

bool tr__want_activation_locked(tr__actor *a) {
    if (a->sched != TR__SCHED_IDLE || a->life == TR__LIFE_INIT || a->life == TR__LIFE_LIMBO)
        return false;
    a->sched = TR__SCHED_SCHEDULED;
    return true;
}

int tr__post(tr_actor_ref ref, const tr_actor_type *t, tr__mnode *n, int mode, int64_t deadline,
             bool *dropped_new, bool *waited) {
    *dropped_new = false;
    if (waited)
        *waited = false;
    tr__slot *s = tr__slot_lock(ref);
    if (!s)
        return TR__STALE;
    tr__actor *a = s->a;
    if (!a || a->type != t || !open_for_users(a)) {
        tr_spin_unlock(&s->lock);
        return TR_EDOWN;
    }
    if (atomic_load_explicit(&a->queued, memory_order_relaxed) < a->capacity &&
        tr_waitq_empty(&a->senders)) {
        push_user(a, n);
        bool spawn = tr__want_activation_locked(a);
        tr_spin_unlock(&s->lock);
        if (spawn)
            tr__activate(a);
        return 0;
    }
    /* Full. */
    switch (a->overflow) {
    case TR_OVERFLOW_DROP_NEWEST:
        a->dropped++;
        tr_spin_unlock(&s->lock);
        *dropped_new = true;
        return 0;
    case TR_OVERFLOW_DROP_OLDEST: {
        tr__mnode *old = pop_user(a);
        a->dropped++;
        push_user(a, n);
        bool spawn = tr__want_activation_locked(a); /* normally one runs already */
        tr_spin_unlock(&s->lock);
        if (spawn)
            tr__activate(a);
        if (old)
            tr__mnode_drop(t, old);
        return 0;
    }
    case TR_OVERFLOW_FAIL:
        tr_spin_unlock(&s->lock);
        return TR_EFULL;
    default:
        break;
    }
    if (mode == TR__POST_TRY) {
        tr_spin_unlock(&s->lock);
        return TR_EFULL;
    }
    if (n->reply)
        tr__reply_pending(n->reply);
    if (waited)
        *waited = true;
    tr_waiter w;
    tr_wait e;
    tr_waiter_init(&w);
    tr_wait_init(&e, &w, n);
    tr_waitq_push(&a->senders, &e);
    int rc = tr_waiter_park(&w, &s->lock, deadline);
    if (rc == 0)
        return e.result; /* 0: the activation moved n into the queue; TR_EDOWN */
    /* Timed out or cancelled: nobody claimed us, so n was not taken.  The
     * slot may have changed hands meanwhile, but our entry can only be
     * linked in the actor that still holds it (a dying actor claims all). */
    tr_spin_lock(&s->lock);
    if (e.linked)
        tr_waitq_remove(&a->senders, &e);
    tr_spin_unlock(&s->lock);
    return rc;
}

void tr__mailbox_pop_locked(tr__actor *a, tr__mnode **n, tr__sysnode **sys, tr_wait **wake) {
    *n = NULL;
    *sys = NULL;
    *wake = NULL;
    if (a->has_sys) {
        tr__ext *x = a->ext;
        tr__sysnode *sn = x->sys_head;
        x->sys_head = sn->next;
        if (!x->sys_head) {
            x->sys_tail = NULL;
            a->has_sys = false;
        }
        *sys = sn;
        return;
    }
    tr__mnode *m = pop_user(a);
    if (!m)
        return;
    *n = m;
    if (!tr_waitq_empty(&a->senders)) {
        tr_wait *e = tr_waitq_claim_next(&a->senders);
        if (e) {
            push_user(a, e->data);
            e->result = 0;
            *wake = e;
        }
    }
}

bool tr__sys_push_locked(tr__actor *a, tr__sysnode *sn) {
    tr__ext *x = a->ext;
    sn->next = NULL;
    if (x->sys_tail)
        x->sys_tail->next = sn;
    else
        x->sys_head = sn;
    x->sys_tail = sn;
    a->has_sys = true;
    return tr__want_activation_locked(a);
}

void tr__sys_post(tr_actor_ref to, int kind, tr_actor_ref who, int reason, uint64_t id) {
    tr__sysnode *sn = malloc(sizeof *sn);
    if (!sn)
        return; /* a notification lost to memory exhaustion; nothing better to do */
    sn->kind = kind;
    sn->reason = reason;
    sn->who = who;
    sn->id = id;
    tr__actor *a = tr__actor_lock(to);
    if (!a) {
        free(sn);
        return;
    }
    bool wanted = kind == TR__SYS_DOWN ? a->type->on_down != NULL : a->type->on_exit != NULL;
    bool live = a->life != TR__LIFE_KILLED &&
                !(a->life == TR__LIFE_ENDING && !(a->ext && a->ext->hooked_end));
    if (!wanted || !live || !tr__ext_get(a)) {
        tr_spin_unlock(&a->slot->lock);
        free(sn);
        return;
    }
    bool spawn = tr__sys_push_locked(a, sn);
    tr_spin_unlock(&a->slot->lock);
    if (spawn)
        tr__activate(a);
}

void tr__senders_refuse_locked(tr__actor *a, tr__spill *sp) {
    tr_waitq_claim_all(&a->senders, TR_EDOWN, &sp->woken);
}

void tr__mailbox_spill_locked(tr__actor *a, tr__spill *sp) {
    uint32_t n = atomic_load_explicit(&a->queued, memory_order_relaxed);
    a->dropped += n;
    if (a->head) {
        a->tail->next = sp->msgs;
        sp->msgs = a->head;
        a->head = a->tail = NULL;
    }
    atomic_store_explicit(&a->queued, 0, memory_order_relaxed);
    if (a->has_sys) {
        a->ext->sys_tail->next = sp->sys;
        sp->sys = a->ext->sys_head;
        a->ext->sys_head = a->ext->sys_tail = NULL;
        a->has_sys = false;
    }
    tr__senders_refuse_locked(a, sp);
}

void tr__spill_finish(const tr_actor_type *t, tr__spill *sp) {
    tr_wait_wake_all(sp->woken);
    sp->woken = NULL;
    while (sp->msgs) {
        tr__mnode *n = sp->msgs;
        sp->msgs = n->next;
        tr__mnode_drop(t, n);
    }
    while (sp->sys) {
        tr__sysnode *sn = sp->sys;
        sp->sys = sn->next;
        free(sn);
    }
}
