/* call.c — call and cast, reply slots, and call-cycle detection.
 *
 * A reply slot is not a tr_oneshot: the value never rests in the slot.
 * Slots are pooled (a per-thread cache over a global list, so a call
 * allocates nothing in the steady state) and each holds the caller's
 * tr_waiter.  The replier claims that waiter — one compare-and-swap, no
 * lock — and, having won, copies the value straight into the caller's
 * buffer: a claimed waiter cannot resume before it is woken, so the buffer
 * is there.  If the caller has given up (deadline, cancellation) the claim
 * fails and tr_reply_send returns TR_ECLOSED with the value still the
 * replier's: a late reply is never written anywhere, so there is no dead
 * frame to scribble on and nothing the slot must destroy.
 *
 * A slot has two owners: the caller (until it has the answer or gave up)
 * and the replier (until it sent or dropped — the activation drops a reply
 * the handler neither used nor kept).  When the replier ends by winning
 * the claim, it ends first by construction, and the woken caller recycles
 * the slot without a lock: a round trip costs one claim and no lock on the
 * slot.  Every other ending (a failed claim, a caller leaving, an ended
 * incarnation failing a kept reply) goes through the slot's lock, and
 * whoever of the two ends last recycles.
 *
 * A caller that had to wait for room in the mailbox cannot let the reply
 * claim its waiter before it parks on it (the activation that let it in
 * already woke it once, and waking a task twice corrupts its run queue),
 * so while it waits for room the waiter is unclaimable and the slot is
 * PENDING: a replier then copies the value into the buffer under the lock
 * and the caller finds it there, or re-arms the waiter and parks.
 *
 * Cycles.  While an actor waits in a call it records the callee in its
 * run record (seq_cst).  Before queueing, it follows callee -> the actor
 * that one waits on -> ... ; reaching itself means the call could never
 * be answered: TR_EDEADLK.  Each caller publishes its own edge before it
 * reads the others', so when a cycle closes concurrently at least one of
 * its members sees it (Dekker's argument, edge by edge).
 */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { C_PENDING = 0, C_PARKED, C_DONE, C_GONE };

struct tr_reply {
    tr_waiter w;                /* the caller's waiter, bound at each call */
    tr_wait e;                  /* its entry: e.result, e.n (1: the replier has ended) */
    tr_spin lock;               /* the slow paths */
    _Atomic uint8_t cstate;     /* the caller's side (C_); written under lock */
    bool replier_live;          /* under lock, on the slow paths */
    int result;                 /* C_PENDING answered: the outcome */
    void *out;                  /* the caller's buffer */
    size_t size;
    bool *sent_flag;            /* the activation's "reply used" flag, while not kept */
    _Atomic(tr__slot *) owner;  /* kept: the slot of the keeping actor */
    tr_reply *kprev, *knext;    /* kept list (under the owner's lock); pool link */
};

/* ---- the pool ------------------------------------------------------------------------ */

#define CACHE_MAX 256
#define GLOBAL_BATCH 64

static TR__TLS tr_reply *cache;
static TR__TLS int cache_n;
static TR__TLS bool cache_registered;
static tr_spin pool_lock = TR_SPIN_INIT;
static tr_reply *pool;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void give_to_pool(tr_reply *list) {
    if (!list)
        return;
    tr_reply *last = list;
    while (last->knext)
        last = last->knext;
    tr_spin_lock(&pool_lock);
    last->knext = pool;
    pool = list;
    tr_spin_unlock(&pool_lock);
}

static void cache_thread_exit(void *p) {
    (void)p;
    give_to_pool(cache);
    cache = NULL;
    cache_n = 0;
}

static void cache_key_init(void) { pthread_key_create(&cache_key, cache_thread_exit); }

/* A thread whose cache holds slots must hand them back when it exits. */
static inline void cache_register(void) {
    if (!cache_registered) {
        pthread_once(&cache_once, cache_key_init);
        pthread_setspecific(cache_key, (void *)1);
        cache_registered = true;
    }
}

static tr_reply *reply_get(void) {
    tr_reply *r = cache;
    if (r) {
        cache = r->knext;
        cache_n--;
        return r;
    }
    {
        tr_spin_lock(&pool_lock);
        r = pool;
        if (r) { /* take a batch: this thread calls, so it will call again */
            tr_reply *last = r;
            for (int i = 1; i < GLOBAL_BATCH && last->knext; i++)
                last = last->knext;
            pool = last->knext;
            last->knext = NULL;
        }
        tr_spin_unlock(&pool_lock);
        if (r) {
            cache_register();
            cache = r->knext;
            for (tr_reply *c = cache; c; c = c->knext)
                cache_n++;
            return r;
        }
    }
    r = malloc(sizeof *r);
    if (r) {
        tr_spin_init(&r->lock);
        atomic_init(&r->cstate, C_GONE);
        atomic_init(&r->owner, NULL);
    }
    return r;
}

static void reply_put(tr_reply *r) {
    cache_register();
    r->knext = cache;
    cache = r;
    if (++cache_n > CACHE_MAX) { /* a thread that only answers: give half back */
        tr_reply *keep = cache;
        for (int i = 1; i < CACHE_MAX / 2; i++)
            keep = keep->knext;
        tr_reply *rest = keep->knext;
        keep->knext = NULL;
        cache_n = CACHE_MAX / 2;
        give_to_pool(rest);
    }
}

/* ---- the replier's side ------------------------------------------------------------------- */

void tr__reply_bind(tr_reply *r, bool *flag) { r->sent_flag = flag; }

void tr__reply_pending(tr_reply *r) {
    /* Unclaimable until the caller re-arms it: repliers take the slow path. */
    atomic_store_explicit(&r->w.state, TR_WAITER_CANCELED, memory_order_relaxed);
    atomic_store_explicit(&r->cstate, C_PENDING, memory_order_relaxed);
}

static void unkeep(tr_reply *r) {
    tr__slot *s = atomic_load_explicit(&r->owner, memory_order_acquire);
    if (!s)
        return;
    tr_spin_lock(&s->lock);
    /* Still ours under the lock: the keeper is alive (an end unlinks all). */
    if (atomic_load_explicit(&r->owner, memory_order_relaxed) == s) {
        tr__ext *x = s->a->ext;
        if (r->kprev)
            r->kprev->knext = r->knext;
        else
            x->kept = r->knext;
        if (r->knext)
            r->knext->kprev = r->kprev;
        atomic_store_explicit(&r->owner, NULL, memory_order_relaxed);
    }
    tr_spin_unlock(&s->lock);
}

static inline void copy_value(void *dst, const void *src, size_t n) {
    if (n == sizeof(uint64_t))
        memcpy(dst, src, sizeof(uint64_t)); /* a word: no call */
    else
        memcpy(dst, src, n);
}

/* Ends the replier's side with a value (value != NULL) or TR_EDOWN.
 *
 * Fast path: the caller is parked on the slot's waiter; claiming it is the
 * one atomic operation, and once claimed the caller cannot resume before
 * our wake, so its buffer is there to write and nobody else touches the
 * slot.  The wake is our last touch; the caller recycles the slot.
 *
 * Slow path (the claim failed): the caller has given up, is still waiting
 * for room in the mailbox (PENDING), or an ended incarnation already
 * failed it (kept replies).  Sorted out under the slot's lock; whoever of
 * the two sides ends last recycles. */
static int reply_end(tr_reply *r, const void *value) {
    unkeep(r);
    bool *flag = r->sent_flag;
    r->sent_flag = NULL;
    if (flag)
        *flag = true;
    if (tr_waiter_claim(&r->w, &r->e)) {
        if (value)
            copy_value(r->out, value, r->size);
        r->e.result = value ? 0 : TR_EDOWN;
        r->e.n = 1;
        tr_waiter_wake(&r->w);
        return 0;
    }
    tr_spin_lock(&r->lock);
    if (!r->replier_live) {
        tr_spin_unlock(&r->lock);
        return TR_EINVAL;
    }
    r->replier_live = false;
    int rc = 0;
    bool recycle = false, wake = false;
    switch (atomic_load_explicit(&r->cstate, memory_order_relaxed)) {
    case C_PARKED:
        if (tr_waiter_claim(&r->w, &r->e)) { /* re-armed after waiting for room */
            if (value)
                copy_value(r->out, value, r->size);
            r->e.result = value ? 0 : TR_EDOWN;
            r->e.n = 1;
            atomic_store_explicit(&r->cstate, C_DONE, memory_order_relaxed);
            wake = true;
        } else {
            rc = TR_ECLOSED; /* giving up right now: it recycles */
        }
        break;
    case C_PENDING:
        if (value)
            copy_value(r->out, value, r->size);
        r->result = value ? 0 : TR_EDOWN;
        atomic_store_explicit(&r->cstate, C_DONE, memory_order_relaxed);
        break;
    case C_GONE:
        rc = TR_ECLOSED;
        recycle = true;
        break;
    default: /* C_DONE: an ended incarnation failed the caller already */
        rc = TR_ECLOSED;
        break;
    }
    tr_spin_unlock(&r->lock);
    if (wake)
        tr_waiter_wake(&r->w);
    if (recycle)
        reply_put(r);
    return rc;
}

void tr__reply_drop(tr_reply *r) { reply_end(r, NULL); }

int tr_reply_send(tr_reply *r, const void *value) {
    if (!r || !value)
        return TR_EINVAL;
    return reply_end(r, value);
}

void tr_reply_drop(tr_reply *r) {
    if (r)
        reply_end(r, NULL);
}

bool tr_reply_is_waiting(const tr_reply *r) {
    if (!r)
        return false;
    tr_reply *m = (tr_reply *)r;
    uint8_t c = atomic_load_explicit(&m->cstate, memory_order_relaxed);
    return c == C_PENDING ||
           (c == C_PARKED &&
            atomic_load_explicit(&m->w.state, memory_order_relaxed) == TR_WAITER_WAITING);
}

tr_reply *tr_reply_keep(tr_actor_msg *m) {
    if (!m || !m->reply)
        return NULL;
    tr_reply *r = m->reply;
    tr__run *run = tr__self();
    if (!run || &run->msg != m || run->kept)
        return r;
    run->kept = true;
    r->sent_flag = NULL;
    tr__actor *a = run->a;
    tr_spin_lock(&a->slot->lock);
    tr__ext *x = tr__ext_get(a);
    if (x) { /* without memory the reply is kept all the same, untracked */
        r->kprev = NULL;
        r->knext = x->kept;
        if (x->kept)
            x->kept->kprev = r;
        x->kept = r;
        atomic_store_explicit(&r->owner, a->slot, memory_order_relaxed);
    }
    tr_spin_unlock(&a->slot->lock);
    return r;
}

void tr__kept_fail_locked(tr__actor *a, tr_wait **woken) {
    tr__ext *x = a->ext;
    if (!x)
        return;
    while (x->kept) {
        tr_reply *r = x->kept;
        x->kept = r->knext;
        atomic_store_explicit(&r->owner, NULL, memory_order_relaxed);
        tr_spin_lock(&r->lock);
        switch (atomic_load_explicit(&r->cstate, memory_order_relaxed)) {
        case C_PARKED:
            if (tr_waiter_claim(&r->w, &r->e)) {
                r->e.result = TR_EDOWN;
                r->e.n = 0; /* the keeper still holds the slot */
                atomic_store_explicit(&r->cstate, C_DONE, memory_order_relaxed);
                r->e.next = *woken;
                *woken = &r->e;
            }
            break;
        case C_PENDING:
            r->result = TR_EDOWN;
            atomic_store_explicit(&r->cstate, C_DONE, memory_order_relaxed);
            break;
        default:
            break;
        }
        tr_spin_unlock(&r->lock);
    }
}

/* ---- the caller's side ---------------------------------------------------------------------- */

/* The caller leaves (failed by an ended incarnation, timed out,
 * cancelled): whoever of the two sides ends last recycles. */
static void caller_leave(tr_reply *r) {
    tr_spin_lock(&r->lock);
    atomic_store_explicit(&r->cstate, C_GONE, memory_order_relaxed);
    bool last = !r->replier_live;
    tr_spin_unlock(&r->lock);
    if (last)
        reply_put(r);
}

static bool would_deadlock(tr_actor_ref me, tr_actor_ref target) {
    tr_actor_ref cur = target;
    for (int hops = 0; hops < 1024; hops++) {
        if (tr_actor_ref_eq(cur, me))
            return true;
        tr__actor *a = tr__actor_lock(cur);
        if (!a)
            return false;
        uint64_t next = a->run ? atomic_load(&a->run->calling) : 0;
        tr_spin_unlock(&a->slot->lock);
        if (!next)
            return false;
        cur = tr__ref_unpack(next);
    }
    return false; /* a chain this long is no cycle through us we can see */
}

static void drop_request(const tr_actor_type *t, tr__mnode *n) {
    n->reply = NULL;
    tr__mnode_drop(t, n);
}

int tr_actor_call(tr_actor_ref ref, const void *request, void *reply_out, int64_t deadline) {
    if (!request || !reply_out || tr_actor_ref_is_none(ref))
        return TR_EINVAL;
    tr__slot *s = tr__slot_get(ref.slot);
    if (!s)
        return TR_EDOWN;
    const tr_actor_type *t = atomic_load_explicit(&s->type, memory_order_acquire);
    if (!t)
        return TR_EDOWN;
    if (t->reply_size == 0)
        return TR_EINVAL;
    /* A killed caller dies in its first tr_wait_enter: let that come
     * before the node and the reply slot exist, or they would be lost
     * with its frames.  A cancelled one goes on (its request is consumed
     * by the tr_wait_enter below). */
    if (__builtin_expect(tr_task_cancelled(), 0))
        (void)tr_wait_enter();
    tr__run *self = tr__self();
    tr__mnode *n = tr__mnode_new(t->msg_size, request);
    if (!n)
        return TR_ENOMEM;
    tr_reply *r = reply_get();
    if (!r) {
        tr__mnode_free(n);
        return TR_ENOMEM;
    }
    /* From here on the request is consumed, whatever happens. */
    int rc = tr_wait_enter();
    if (rc) {
        reply_put(r);
        drop_request(t, n);
        return rc;
    }
    if (self) {
        tr_actor_ref me = tr__ref_of(self->a);
        n->from = me;
        atomic_store(&self->calling, tr__ref_pack(ref)); /* seq_cst: see the top */
        if (would_deadlock(me, ref)) {
            atomic_store_explicit(&self->calling, 0, memory_order_release);
            reply_put(r);
            drop_request(t, n);
            return TR_EDEADLK;
        }
    }
    tr_waiter_init(&r->w);
    tr_wait_init(&r->e, &r->w, NULL);
    r->replier_live = true;
    r->out = reply_out;
    r->size = t->reply_size;
    r->sent_flag = NULL;
    atomic_store_explicit(&r->cstate, C_PARKED, memory_order_relaxed);
    n->reply = r;
    bool dropped_new, waited;
    rc = tr__post(s, ref, t, n, TR__POST_WAIT, deadline, &dropped_new, &waited);
    if (rc != 0 || dropped_new) { /* nobody saw the slot */
        if (self)
            atomic_store_explicit(&self->calling, 0, memory_order_release);
        reply_put(r);
        if (rc == TR__STALE) { /* the type is unknown now: the request stays the caller's */
            tr__mnode_free(n);
            return TR_EDOWN;
        }
        drop_request(t, n);
        return rc ? rc : TR_EDOWN;
    }
    if (waited) { /* re-arm the waiter, unless the answer came meanwhile */
        tr_spin_lock(&r->lock);
        if (atomic_load_explicit(&r->cstate, memory_order_relaxed) == C_DONE) {
            rc = r->result;
            bool last = !r->replier_live;
            if (!last)
                atomic_store_explicit(&r->cstate, C_GONE, memory_order_relaxed);
            tr_spin_unlock(&r->lock);
            if (last)
                reply_put(r);
            if (self)
                atomic_store_explicit(&self->calling, 0, memory_order_release);
            return rc;
        }
        /* Nothing touched the waiter while it was unclaimable: making it
         * claimable again is one release store, which a replier's claim
         * (acq_rel) pairs with. */
        atomic_store_explicit(&r->cstate, C_PARKED, memory_order_relaxed);
        atomic_store_explicit(&r->w.state, TR_WAITER_WAITING, memory_order_release);
        tr_spin_unlock(&r->lock);
    }
    rc = tr_waiter_park(&r->w, NULL, deadline);
    if (self)
        atomic_store_explicit(&self->calling, 0, memory_order_release);
    if (rc == 0) {
        rc = r->e.result;
        if (r->e.n)
            reply_put(r); /* the replier ended before waking us */
        else
            caller_leave(r);
        return rc;
    }
    caller_leave(r);
    return rc;
}

/* ---- cast ------------------------------------------------------------------------------------ */

static int cast_impl(tr_actor_ref ref, const void *msg, int mode, int64_t deadline) {
    if (!msg || tr_actor_ref_is_none(ref))
        return TR_EINVAL;
    tr__slot *s = tr__slot_get(ref.slot);
    if (!s)
        return TR_EDOWN;
    const tr_actor_type *t = atomic_load_explicit(&s->type, memory_order_acquire);
    if (!t)
        return TR_EDOWN;
    if (mode != TR__POST_TRY) {
        int rc = tr_wait_enter();
        if (rc)
            return rc;
    }
    tr__run *self = tr__self();
    tr__mnode *n = tr__mnode_new(t->msg_size, msg);
    if (!n)
        return TR_ENOMEM;
    if (self)
        n->from = tr__ref_of(self->a);
    bool dropped_new;
    int rc = tr__post(s, ref, t, n, mode, deadline, &dropped_new, NULL);
    if (rc) {
        tr__mnode_free(n); /* the message stays the caller's */
        return rc == TR__STALE ? TR_EDOWN : rc;
    }
    if (dropped_new)
        tr__mnode_drop(t, n);
    return 0;
}

int tr_actor_cast(tr_actor_ref ref, const void *msg, int64_t deadline) {
    return cast_impl(ref, msg, TR__POST_WAIT, deadline);
}

int tr_actor_try_cast(tr_actor_ref ref, const void *msg) {
    return cast_impl(ref, msg, TR__POST_TRY, 0);
}
