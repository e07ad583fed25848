/* once.c — tr_once (OnceCell) and tr_setonce (SetOnce).
 *
 * tr_once keeps tokio's design in spirit: tokio guards initialisation with
 * a one-permit semaphore; here the "permit" is the INITIALISING state plus
 * a FIFO queue.  Whoever finds the cell empty takes the state and runs its
 * initializer with no lock held, writing straight into the slot (nobody
 * else reads the slot until the state says SET).  Success publishes the
 * value and wakes every waiter; failure hands the state directly to the
 * oldest waiter still waiting (no barging, as with tokio's FIFO
 * semaphore), or empties the cell when there is none.  The owner of the
 * state is remembered so that an initializer that calls get_or_init on its
 * own cell gets TR_EDEADLK instead of the deadlock tokio documents.
 *
 * tr_setonce needs no such state: set() stores and publishes under the
 * lock, and the value never changes afterwards, so readers copy it without
 * a lock once the `set` flag (release/acquire) says so, and the setter
 * copies it into each woken waiter's buffer after dropping the lock.
 */
#include "tr_once.h"

#include <stdlib.h>
#include <string.h>

/* The code for "already holds a value". */
#define ALREADY_SET TR_EEXIST

#define ONCE_MAGIC    0x4f6e6365u
#define SETONCE_MAGIC 0x5365744fu

enum { ONCE_EMPTY = 0, ONCE_INITIALISING = 1, ONCE_SET = 2 };

/* What a get_or_init waiter is woken with (e->result). */
enum { WOKE_RECHECK = 1, WOKE_YOUR_TURN = 2 };

/* Who is calling: the task, or a per-thread address on a plain thread. */
static __thread char thread_token;

static void *self_token(void) {
    tr_task *t = tr_task_self();
    return t ? (void *)t : (void *)&thread_token;
}

static bool once_valid(const tr_once *o) { return o && o->magic == ONCE_MAGIC; }

int tr_once_init(tr_once *o, size_t elem_size, const tr_chan_opts *opts) {
    if (!o || elem_size == 0)
        return TR_EINVAL;
    void *slot = malloc(elem_size);
    if (!slot)
        return TR_ENOMEM;
    tr_spin_init(&o->lock);
    o->state = ONCE_EMPTY;
    o->elem_size = elem_size;
    o->value = slot;
    o->owner = NULL;
    o->opts.drop = opts ? opts->drop : NULL;
    o->opts.drop_ctx = opts ? opts->drop_ctx : NULL;
    tr_waitq_init(&o->waiters);
    o->magic = ONCE_MAGIC;
    return 0;
}

int tr_once_destroy(tr_once *o) {
    if (!once_valid(o))
        return TR_EINVAL;
    tr_spin_lock(&o->lock);
    if (o->state == ONCE_INITIALISING || !tr_waitq_empty(&o->waiters)) {
        tr_spin_unlock(&o->lock);
        return TR_EBUSY;
    }
    bool had = o->state == ONCE_SET;
    o->magic = 0;
    tr_spin_unlock(&o->lock);
    if (had && o->opts.drop)
        o->opts.drop(o->value, o->opts.drop_ctx);
    free(o->value);
    o->value = NULL;
    return 0;
}

bool tr_once_initialized(tr_once *o) {
    if (!once_valid(o))
        return false;
    tr_spin_lock(&o->lock);
    bool set = o->state == ONCE_SET;
    tr_spin_unlock(&o->lock);
    return set;
}

int tr_once_get(tr_once *o, void *out) {
    if (!once_valid(o))
        return TR_EINVAL;
    tr_spin_lock(&o->lock);
    if (o->state != ONCE_SET) {
        tr_spin_unlock(&o->lock);
        return TR_EEMPTY;
    }
    if (out)
        memcpy(out, o->value, o->elem_size);
    tr_spin_unlock(&o->lock);
    return 0;
}

/* Lock held, state ONCE_SET just reached: claims every waiter so that it
 * re-checks; the caller wakes the list after the unlock. */
static tr_wait *publish_locked(tr_once *o) {
    tr_wait *list = NULL;
    o->owner = NULL;
    tr_waitq_claim_all(&o->waiters, WOKE_RECHECK, &list);
    return list;
}

/* Lock held, state ONCE_INITIALISING owned by the caller, which gives it
 * up without a value: the oldest live waiter gets it, else the cell is
 * empty again.  Unlocks; wakes after. */
static void hand_over_and_unlock(tr_once *o) {
    tr_wait *next = tr_waitq_claim_next(&o->waiters);
    if (next) {
        next->result = WOKE_YOUR_TURN;
        o->owner = next->data;
    } else {
        o->state = ONCE_EMPTY;
        o->owner = NULL;
    }
    tr_spin_unlock(&o->lock);
    if (next)
        tr_waiter_wake(next->waiter);
}

int tr_once_set(tr_once *o, const void *value) {
    if (!once_valid(o) || !value)
        return TR_EINVAL;
    tr_spin_lock(&o->lock);
    if (o->state != ONCE_EMPTY) {
        int rc = o->state == ONCE_SET ? ALREADY_SET : TR_EBUSY;
        tr_spin_unlock(&o->lock);
        return rc;
    }
    memcpy(o->value, value, o->elem_size);
    o->state = ONCE_SET;
    tr_wait *list = publish_locked(o);
    tr_spin_unlock(&o->lock);
    tr_wait_wake_all(list);
    return 0;
}

int tr_once_get_or_init(tr_once *o, tr_once_init_fn init, void *ctx, void *out,
                        int64_t deadline) {
    if (!once_valid(o) || !init)
        return TR_EINVAL;
    int rc = tr_wait_enter();
    if (rc)
        return rc;
    void *me = self_token();
    tr_spin_lock(&o->lock);
    for (;;) {
        if (o->state == ONCE_SET) {
            if (out)
                memcpy(out, o->value, o->elem_size);
            tr_spin_unlock(&o->lock);
            return 0;
        }
        if (o->state == ONCE_EMPTY) {
            o->state = ONCE_INITIALISING;
            o->owner = me;
            tr_spin_unlock(&o->lock);
            break;
        }
        if (o->owner == me) {
            tr_spin_unlock(&o->lock);
            return TR_EDEADLK;
        }
        tr_waiter w;
        tr_wait e;
        tr_waiter_init(&w);
        tr_wait_init(&e, &w, me); /* data: our token, for a hand-over */
        tr_waitq_push(&o->waiters, &e);
        rc = tr_waiter_park(&w, &o->lock, deadline);
        if (rc != 0) {
            /* A failed claim means nothing was handed to us. */
            tr_spin_lock(&o->lock);
            if (e.linked)
                tr_waitq_remove(&o->waiters, &e);
            tr_spin_unlock(&o->lock);
            return rc;
        }
        if (e.result == WOKE_YOUR_TURN)
            break; /* the state is ours; the previous owner set owner = me */
        tr_spin_lock(&o->lock);
    }

    /* We own ONCE_INITIALISING: nobody reads or writes the slot but us. */
    int r = init(o->value, ctx);
    tr_spin_lock(&o->lock);
    if (r != 0) {
        hand_over_and_unlock(o);
        return r;
    }
    o->state = ONCE_SET;
    if (out)
        memcpy(out, o->value, o->elem_size);
    tr_wait *list = publish_locked(o);
    tr_spin_unlock(&o->lock);
    tr_wait_wake_all(list);
    return 0;
}

int tr_once_take(tr_once *o, void *out) {
    if (!once_valid(o))
        return TR_EINVAL;
    tr_spin_lock(&o->lock);
    if (o->state != ONCE_SET) {
        int rc = o->state == ONCE_EMPTY ? TR_EEMPTY : TR_EBUSY;
        tr_spin_unlock(&o->lock);
        return rc;
    }
    if (out || !o->opts.drop) {
        if (out)
            memcpy(out, o->value, o->elem_size);
        o->state = ONCE_EMPTY;
        tr_spin_unlock(&o->lock);
        return 0;
    }
    /* The destructor is user code and must not run under a spin lock; hold
     * the cell as "initialising" meanwhile, so nobody touches the slot,
     * then let the next waiter (if any arrived) initialise it. */
    o->state = ONCE_INITIALISING;
    o->owner = self_token();
    tr_spin_unlock(&o->lock);
    o->opts.drop(o->value, o->opts.drop_ctx);
    tr_spin_lock(&o->lock);
    hand_over_and_unlock(o);
    return 0;
}

/* ---- tr_setonce ------------------------------------------------------------------ */

static bool setonce_valid(const tr_setonce *s) { return s && s->magic == SETONCE_MAGIC; }

int tr_setonce_init(tr_setonce *s, size_t elem_size, const tr_chan_opts *opts) {
    if (!s || elem_size == 0)
        return TR_EINVAL;
    void *slot = malloc(elem_size);
    if (!slot)
        return TR_ENOMEM;
    tr_spin_init(&s->lock);
    atomic_init(&s->set, false);
    s->elem_size = elem_size;
    s->value = slot;
    s->opts.drop = opts ? opts->drop : NULL;
    s->opts.drop_ctx = opts ? opts->drop_ctx : NULL;
    tr_waitq_init(&s->waiters);
    s->magic = SETONCE_MAGIC;
    return 0;
}

int tr_setonce_destroy(tr_setonce *s) {
    if (!setonce_valid(s))
        return TR_EINVAL;
    tr_spin_lock(&s->lock);
    if (!tr_waitq_empty(&s->waiters)) {
        tr_spin_unlock(&s->lock);
        return TR_EBUSY;
    }
    s->magic = 0;
    tr_spin_unlock(&s->lock);
    if (atomic_load_explicit(&s->set, memory_order_acquire) && s->opts.drop)
        s->opts.drop(s->value, s->opts.drop_ctx);
    free(s->value);
    s->value = NULL;
    return 0;
}

static bool is_set(tr_setonce *s) {
    return atomic_load_explicit(&s->set, memory_order_acquire);
}

bool tr_setonce_initialized(tr_setonce *s) { return setonce_valid(s) && is_set(s); }

int tr_setonce_set(tr_setonce *s, const void *value) {
    if (!setonce_valid(s) || !value)
        return TR_EINVAL;
    tr_spin_lock(&s->lock);
    if (is_set(s)) {
        tr_spin_unlock(&s->lock);
        return ALREADY_SET;
    }
    memcpy(s->value, value, s->elem_size);
    atomic_store_explicit(&s->set, true, memory_order_release);
    tr_wait *list = NULL;
    tr_waitq_claim_all(&s->waiters, 0, &list);
    tr_spin_unlock(&s->lock);
    /* Claimed waiters stay put until woken, so their buffers are ours to
     * fill; the value no longer changes, so no lock is needed to read it. */
    while (list) {
        tr_wait *next = list->next;
        if (list->data)
            memcpy(list->data, s->value, s->elem_size);
        tr_waiter_wake(list->waiter);
        list = next;
    }
    return 0;
}

int tr_setonce_get(tr_setonce *s, void *out) {
    if (!setonce_valid(s))
        return TR_EINVAL;
    if (!is_set(s))
        return TR_EEMPTY;
    if (out)
        memcpy(out, s->value, s->elem_size);
    return 0;
}

int tr_setonce_wait(tr_setonce *s, void *out, int64_t deadline) {
    if (!setonce_valid(s))
        return TR_EINVAL;
    int rc = tr_wait_enter();
    if (rc)
        return rc;
    if (tr_setonce_get(s, out) == 0)
        return 0;
    tr_spin_lock(&s->lock);
    if (is_set(s)) {
        tr_spin_unlock(&s->lock);
        return tr_setonce_get(s, out);
    }
    tr_waiter w;
    tr_wait e;
    tr_waiter_init(&w);
    tr_wait_init(&e, &w, out);
    tr_waitq_push(&s->waiters, &e);
    rc = tr_waiter_park(&w, &s->lock, deadline);
    if (rc != 0) {
        tr_spin_lock(&s->lock);
        if (e.linked)
            tr_waitq_remove(&s->waiters, &e);
        tr_spin_unlock(&s->lock);
    }
    return rc; /* on 0 the setter already filled out */
}

static int setonce_arm(tr_clause *c, tr_wait *e) {
    tr_setonce *s = c->obj;
    if (!is_set(s)) {
        tr_spin_lock(&s->lock);
        if (!is_set(s)) {
            tr_waitq_push(&s->waiters, e);
            tr_spin_unlock(&s->lock);
            return TR_SELECT_ARMED;
        }
        tr_spin_unlock(&s->lock);
    }
    if (!tr_waiter_claim(e->waiter, e))
        return TR_SELECT_LOST;
    if (c->buf)
        memcpy(c->buf, s->value, s->elem_size);
    c->result = 0;
    return TR_SELECT_DONE;
}

static void setonce_disarm(tr_clause *c, tr_wait *e) {
    tr_setonce *s = c->obj;
    tr_spin_lock(&s->lock);
    if (e->linked)
        tr_waitq_remove(&s->waiters, e);
    tr_spin_unlock(&s->lock);
}

static const tr_clause_ops setonce_wait_ops = {setonce_arm, setonce_disarm, NULL};

int tr_setonce_wait_clause(tr_clause *c, tr_setonce *s, void *out) {
    if (!c)
        return TR_EINVAL;
    if (!setonce_valid(s)) {
        c->ops = NULL;
        return TR_EINVAL;
    }
    c->ops = &setonce_wait_ops;
    c->obj = s;
    c->buf = out;
    c->aux = NULL;
    c->n = 0;
    c->result = 0;
    return 0;
}
