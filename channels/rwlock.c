/* rwlock.c — Tokio's RwLock: a fair semaphore of max_readers permits.
 *
 * A read is one permit and a write is all of them, so every rule of the
 * lock falls out of the semaphore's: FIFO, write preference (a queued
 * writer soaks up the permits readers give back, and the pool stays 0 for
 * the readers behind it), max readers, cancellation giving back partial
 * grants, and downgrade as "release all but one".
 *
 * What the semaphore cannot know is who holds what.  The writer's id is
 * kept beside it (written only by the writer, after its acquire and before
 * its release, so the semaphore's own ordering publishes it) for
 * TR_EDEADLK and TR_EPERM, and releases are capped at max_readers so that
 * an unlock nobody owed cannot mint permits.
 */
#include "config.h"

#include "tr_rwlock.h"

static uintptr_t writer_of(const tr_rwlock *l) {
    return atomic_load_explicit((_Atomic uintptr_t *)&l->writer, memory_order_acquire);
}

static void became_writer(tr_rwlock *l, uintptr_t me) {
    atomic_store_explicit(&l->writer, me, memory_order_release);
#ifdef TR_DEBUG
    tr__lock_debug_hold(&l->dbg, l, me);
#endif
}

/* Gives up the writer's role; the caller then releases permits. */
static int stop_writing(tr_rwlock *l) {
    if (writer_of(l) != tr__lock_owner_self())
        return TR_EPERM;
#ifdef TR_DEBUG
    tr__lock_debug_drop(&l->dbg);
#endif
    atomic_store_explicit(&l->writer, 0, memory_order_release);
    return 0;
}

/* ---- lifecycle ------------------------------------------------------------------- */

int tr_rwlock_init_max(tr_rwlock *l, size_t max_readers) {
    if (!l || max_readers == 0 || max_readers > TR_RWLOCK_MAX_READERS)
        return TR_EINVAL;
    tr_sem_init(&l->sem, max_readers);
    l->max_readers = max_readers;
    atomic_init(&l->writer, 0);
    l->dbg = (tr_lock_debug){NULL, NULL, NULL, "rwlock", l, 0, false};
    return 0;
}

int tr_rwlock_init(tr_rwlock *l) { return tr_rwlock_init_max(l, TR_RWLOCK_MAX_READERS); }

int tr_rwlock_destroy(tr_rwlock *l) {
    if (!l)
        return TR_EINVAL;
    if (writer_of(l) != 0 || tr_sem_available_permits(&l->sem) != l->max_readers)
        return TR_EBUSY;
    return tr_sem_destroy(&l->sem);
}

int tr_rwlock_set_name(tr_rwlock *l, const char *name) {
    if (!l)
        return TR_EINVAL;
    l->dbg.name = name;
    return 0;
}

/* ---- locking ---------------------------------------------------------------------- */

int tr_rwlock_read(tr_rwlock *l, int64_t deadline) {
    if (!l)
        return TR_EINVAL;
    if (writer_of(l) == tr__lock_owner_self())
        return TR_EDEADLK;
    return tr_sem_acquire_many(&l->sem, 1, deadline);
}

int tr_rwlock_write(tr_rwlock *l, int64_t deadline) {
    if (!l)
        return TR_EINVAL;
    uintptr_t me = tr__lock_owner_self();
    if (writer_of(l) == me)
        return TR_EDEADLK;
    int rc = tr_sem_acquire_many(&l->sem, l->max_readers, deadline);
    if (rc == 0)
        became_writer(l, me);
    return rc;
}

int tr_rwlock_try_read(tr_rwlock *l) {
    if (!l)
        return TR_EINVAL;
    return tr_sem_try_acquire_many(&l->sem, 1);
}

int tr_rwlock_try_write(tr_rwlock *l) {
    if (!l)
        return TR_EINVAL;
    int rc = tr_sem_try_acquire_many(&l->sem, l->max_readers);
    if (rc == 0)
        became_writer(l, tr__lock_owner_self());
    return rc;
}

/* ---- unlocking -------------------------------------------------------------------- */

int tr_rwlock_read_unlock(tr_rwlock *l) {
    if (!l)
        return TR_EINVAL;
    if (writer_of(l) != 0)
        return TR_EPERM;
    return tr__sem_release_capped(&l->sem, 1, l->max_readers, TR_EPERM);
}

int tr_rwlock_write_unlock(tr_rwlock *l) {
    if (!l)
        return TR_EINVAL;
    int rc = stop_writing(l);
    if (rc)
        return rc;
    return tr__sem_release_capped(&l->sem, l->max_readers, l->max_readers, TR_EPERM);
}

int tr_rwlock_downgrade(tr_rwlock *l) {
    if (!l)
        return TR_EINVAL;
    int rc = stop_writing(l);
    if (rc)
        return rc;
    /* Keep one permit: the read lock; no writer can take all of them. */
    return tr__sem_release_capped(&l->sem, l->max_readers - 1, l->max_readers, TR_EPERM);
}

/* ---- select clauses: the semaphore's, plus the writer bookkeeping ------------------- */

/* A relock is an outcome the select reports, like a closed channel. */
static int refuse_relock(tr_clause *c, tr_wait *e) {
    if (!tr_waiter_claim(e->waiter, e))
        return TR_SELECT_LOST;
    c->result = TR_EDEADLK;
    return TR_SELECT_DONE;
}

static int read_arm(tr_clause *c, tr_wait *e) {
    tr_rwlock *l = c->aux;
    if (writer_of(l) == tr__lock_owner_self())
        return refuse_relock(c, e);
    return tr__sem_acquire_ops.arm(c, e);
}

static int write_arm(tr_clause *c, tr_wait *e) {
    tr_rwlock *l = c->aux;
    uintptr_t me = tr__lock_owner_self();
    if (writer_of(l) == me)
        return refuse_relock(c, e);
    int r = tr__sem_acquire_ops.arm(c, e);
    if (r == TR_SELECT_DONE && c->result == 0)
        became_writer(l, me);
    return r;
}

static void write_finish(tr_clause *c, tr_wait *e) {
    c->result = e->result;
    if (c->result == 0)
        became_writer(c->aux, tr__lock_owner_self());
}

static void sem_disarm(tr_clause *c, tr_wait *e) { tr__sem_acquire_ops.disarm(c, e); }

static const tr_clause_ops read_ops = {read_arm, sem_disarm, NULL};
static const tr_clause_ops write_ops = {write_arm, sem_disarm, write_finish};

static int fill(tr_clause *c, tr_rwlock *l, size_t n, const tr_clause_ops *ops) {
    if (!c)
        return TR_EINVAL;
    c->obj = l ? &l->sem : NULL;
    c->aux = l;
    c->buf = NULL;
    c->n = n;
    c->result = 0;
    c->ops = l ? ops : NULL; /* NULL: tr_select() refuses it */
    return l ? 0 : TR_EINVAL;
}

int tr_rwlock_read_clause(tr_clause *c, tr_rwlock *l) { return fill(c, l, 1, &read_ops); }

int tr_rwlock_write_clause(tr_clause *c, tr_rwlock *l) {
    return fill(c, l, l ? l->max_readers : 0, &write_ops);
}
