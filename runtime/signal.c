/* signal.c — Unix signals delivered to tasks and threads as wake-ups.
 *
 * Each runtime has one signal hub, made on the first tr_signal_open().  It
 * holds one libev ev_signal watcher per signal number, all in worker 0's
 * loop: libev runs the watcher's callback on that worker's thread, outside
 * the signal handler, so the callback may take locks and wake waiters like
 * any other waker of the tr_wait.h protocol.
 *
 * A libev loop is not thread-safe, so watchers are started and stopped only
 * on worker 0's thread.  Rather than sending "start signo" and "stop signo"
 * messages (which could arrive out of order, and would each need memory
 * that outlives a cancelled caller), opens and closes only change counts
 * under the hub's lock and then ask worker 0 to reconcile: one injcall,
 * embedded in the hub and queued at most once at a time, that makes the
 * set of started watchers match the set of signals with open handles.  It
 * reads the counts when it runs, so requests that pile up cost one pass,
 * and it counts its passes so that an open can wait for "a pass that began
 * after my change", which is when its watcher is surely started.
 *
 * libev attaches a signal to one loop per process; a second loop starting
 * a watcher for the same signal would silently steal it (libev asserts
 * only in debug builds).  A process-wide table, under a mutex, says which
 * hub owns each signal; an owner lets go only after its watcher has really
 * stopped, so two loops never hold the same signal, and a close waits for
 * that stop so that "close on runtime A, open on runtime B" just works.
 *
 * The hub is reference-counted (the runtime, each handle, a queued
 * reconcile, a parked receive), so a handle may outlive its runtime: when
 * the runtime is freed the hub goes dead, its watchers are stopped right
 * there (the worker threads have been joined), parked plain threads get
 * TR_ECLOSED, and the memory goes with the last handle.
 */
#include "config.h"

#include <limits.h>
#include <signal.h>
#include <stdlib.h>

#include "internal.h"
#include "tr_signal.h"

typedef struct tr_signal_hub tr_signal_hub;

/* One signal number's state in a hub; all of it under the hub's lock. */
typedef struct sigslot {
    ev_signal ev;            /* in worker 0's loop while active */
    struct sigaction saved;  /* the disposition before the watcher started */
    int handles;             /* open handles */
    bool active;             /* the watcher is started */
    tr_signal *list;         /* the open handles, each sees every delivery */
} sigslot;

struct tr_signal_hub {
    tr_spin lock;
    tr_runtime *rt;          /* valid while !dead */
    atomic_int refs;
    bool dead;               /* the runtime has been freed */
    bool call_queued;        /* `call` is in worker 0's inject queue */
    uint64_t syncs;          /* reconcile passes run so far */
    tr_waitq syncq;          /* opens and closes waiting for a pass */
    tr_injcall call;
    sigslot slot[NSIG];      /* indexed by signal number */
};

struct tr_signal {
    tr_signal_hub *hub;
    tr_signal *prev, *next;  /* the slot's list */
    int signo;
    int pending;             /* deliveries not yet taken, under hub->lock */
    tr_waitq waiters;        /* receives parked on this handle */
};

/* Which hub catches each signal, process-wide.  Lock order: owner_mu, then
 * a hub's lock. */
static pthread_mutex_t owner_mu = PTHREAD_MUTEX_INITIALIZER;
static tr_signal_hub *owner[NSIG];

static bool signo_catchable(int signo) {
    if (signo <= 0 || signo >= NSIG)
        return false;
    switch (signo) {
    case SIGKILL: case SIGSTOP:                  /* cannot be caught */
    case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL: /* faults of the thread */
        return false;
    }
#if defined(__linux__) && defined(SIGRTMIN)
    /* glibc keeps the first real-time signals for its threads. */
    if (signo >= 32 && signo < SIGRTMIN)
        return false;
#endif
    return true;
}

/* ---- waking ---------------------------------------------------------------- */

/* Claims every waiter of q for `result`, chaining the entries through their
 * (now unused) next links; the caller wakes them after unlocking. */
/* ---- the hub ----------------------------------------------------------------- */

static void hub_unref(tr_signal_hub *hub) {
    if (atomic_fetch_sub_explicit(&hub->refs, 1, memory_order_acq_rel) == 1)
        free(hub);
}

static void on_signal(struct ev_loop *loop, ev_signal *ev, int revents) {
    (void)loop;
    (void)revents;
    tr_signal_hub *hub = ev->data;
    tr_wait *woken = NULL;
    tr_spin_lock(&hub->lock);
    for (tr_signal *s = hub->slot[ev->signum].list; s; s = s->next) {
        if (s->pending < INT_MAX)
            s->pending++;
        tr_wait *e = tr_waitq_claim_next(&s->waiters);
        if (e) { /* a receive is parked: it takes the delivery now */
            s->pending = 0;
            e->result = 0;
            e->next = woken;
            woken = e;
        }
    }
    tr_spin_unlock(&hub->lock);
    tr_wait_wake_all(woken);
}

/* Stops one slot's watcher and gives the signal back (hub lock and owner_mu
 * held, on worker 0's thread or after it has been joined). */
static void slot_stop(tr_signal_hub *hub, struct ev_loop *loop, int signo) {
    sigslot *sl = &hub->slot[signo];
    ev_signal_stop(loop, &sl->ev); /* libev resets the signal to SIG_DFL */
    sigaction(signo, &sl->saved, NULL);
    sl->active = false;
    if (owner[signo] == hub)
        owner[signo] = NULL;
}

/* The reconcile pass, on worker 0's thread. */
static void hub_sync(tr_worker *w, tr_injcall *call) {
    tr_signal_hub *hub = (tr_signal_hub *)((char *)call - offsetof(tr_signal_hub, call));
    tr_wait *woken = NULL;
    pthread_mutex_lock(&owner_mu);
    tr_spin_lock(&hub->lock);
    hub->call_queued = false; /* from here a change queues a new pass */
    if (!hub->dead) {
        for (int signo = 1; signo < NSIG; signo++) {
            sigslot *sl = &hub->slot[signo];
            if (sl->handles > 0 && !sl->active) {
                sigaction(signo, NULL, &sl->saved);
                ev_signal_start(w->loop, &sl->ev);
                sl->active = true;
            } else if (sl->handles == 0 && sl->active) {
                slot_stop(hub, w->loop, signo);
            }
        }
    }
    hub->syncs++;
    tr_waitq_claim_all(&hub->syncq, 0, &woken);
    tr_spin_unlock(&hub->lock);
    pthread_mutex_unlock(&owner_mu);
    tr_wait_wake_all(woken);
    hub_unref(hub); /* the queued call's reference */
}

/* Asks for a reconcile pass (hub lock held).  Returns the pass number that
 * will reflect the caller's change; *push says whether the caller must
 * inject the call after unlocking (it was not queued yet). */
static uint64_t hub_request_sync(tr_signal_hub *hub, bool *push) {
    *push = !hub->call_queued;
    if (*push) {
        hub->call_queued = true;
        atomic_fetch_add_explicit(&hub->refs, 1, memory_order_relaxed);
    }
    return hub->syncs + 1;
}

/* Waits until pass `target` has run.  A task parks without a deadline:
 * worker 0 runs every pass before its tasks are all gone.  A plain thread
 * re-checks every 100 ms whether the workers have left (a runtime shut
 * down under its feet), since then no pass will ever run. */
static int hub_sync_wait(tr_signal_hub *hub, uint64_t target) {
    for (;;) {
        tr_waiter w;
        tr_wait e;
        tr_waiter_init(&w);
        tr_spin_lock(&hub->lock);
        if (hub->syncs >= target || hub->dead) {
            tr_spin_unlock(&hub->lock);
            return 0;
        }
        tr_runtime *rt = hub->rt;
        tr_wait_init(&e, &w, NULL);
        tr_waitq_push(&hub->syncq, &e);
        int rc = tr_waiter_park(&w, &hub->lock, w.task ? TR_NEVER : tr_after_ms(100));
        if (rc == 0)
            return 0;
        tr_spin_lock(&hub->lock);
        if (e.linked)
            tr_waitq_remove(&hub->syncq, &e);
        tr_spin_unlock(&hub->lock);
        if (rc != TR_ETIMEDOUT)
            return rc;
        if (atomic_load_explicit(&rt->exiting, memory_order_acquire))
            return TR_ESHUTDOWN;
    }
}

/* The runtime's hub, made on first use; NULL when out of memory. */
static tr_signal_hub *hub_get(tr_runtime *rt) {
    tr_signal_hub *hub = __atomic_load_n(&rt->signals, __ATOMIC_ACQUIRE);
    if (hub)
        return hub;
    tr_signal_hub *made = calloc(1, sizeof *made);
    if (!made)
        return NULL;
    tr_spin_init(&made->lock);
    made->rt = rt;
    atomic_init(&made->refs, 1); /* the runtime's, dropped by tr__signals_free */
    tr_waitq_init(&made->syncq);
    made->call.node.kind = TR_INJ_CALL;
    made->call.fn = hub_sync;
    for (int signo = 1; signo < NSIG; signo++) {
        ev_signal_init(&made->slot[signo].ev, on_signal, signo);
        made->slot[signo].ev.data = made;
    }
    tr_signal_hub *expect = NULL;
    if (__atomic_compare_exchange_n(&rt->signals, &expect, made, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
        return made;
    free(made); /* another thread made it first */
    return expect;
}

/* ---- handles ------------------------------------------------------------------ */

int tr_signal_open(tr_runtime *rt, int signo, tr_signal **out) {
    if (!out)
        return TR_EINVAL;
    *out = NULL;
    if (!signo_catchable(signo))
        return TR_EINVAL;
    if (!rt)
        rt = tr_runtime_current();
    if (!rt)
        return TR_EINVAL;
    int rc = tr_wait_enter();
    if (rc)
        return rc;
    if (atomic_load_explicit(&rt->stopping, memory_order_acquire))
        return TR_ESHUTDOWN;
    tr_signal_hub *hub = hub_get(rt);
    if (!hub)
        return TR_ENOMEM;
    tr_signal *s = calloc(1, sizeof *s);
    if (!s)
        return TR_ENOMEM;
    s->hub = hub;
    s->signo = signo;
    tr_waitq_init(&s->waiters);

    uint64_t target = 0;
    bool push = false;
    pthread_mutex_lock(&owner_mu);
    if (owner[signo] && owner[signo] != hub) {
        pthread_mutex_unlock(&owner_mu);
        free(s);
        return TR_EBUSY;
    }
    owner[signo] = hub;
    tr_spin_lock(&hub->lock);
    sigslot *sl = &hub->slot[signo];
    s->next = sl->list;
    if (sl->list)
        sl->list->prev = s;
    sl->list = s;
    sl->handles++;
    atomic_fetch_add_explicit(&hub->refs, 1, memory_order_relaxed);
    if (!sl->active)
        target = hub_request_sync(hub, &push);
    tr_spin_unlock(&hub->lock);
    pthread_mutex_unlock(&owner_mu);

    if (push)
        tr__inject(&rt->workers[0], &hub->call.node);
    if (target) {
        rc = hub_sync_wait(hub, target);
        if (rc) {
            tr_signal_close(&s);
            return rc;
        }
    }
    *out = s;
    return 0;
}

/* Takes pending deliveries (hub lock held): 0, TR_ECLOSED or TR_EEMPTY. */
static int take_locked(tr_signal *s) {
    if (s->pending > 0) {
        s->pending = 0;
        return 0;
    }
    return s->hub->dead ? TR_ECLOSED : TR_EEMPTY;
}

int tr_signal_try_recv(tr_signal *s) {
    if (!s)
        return TR_EINVAL;
    tr_spin_lock(&s->hub->lock);
    int rc = take_locked(s);
    tr_spin_unlock(&s->hub->lock);
    return rc;
}

int tr_signal_recv(tr_signal *s, int64_t deadline) {
    if (!s)
        return TR_EINVAL;
    int rc = tr_wait_enter();
    if (rc)
        return rc;
    tr_signal_hub *hub = s->hub; /* s may be closed while we wait */
    tr_waiter w;
    tr_wait e;
    tr_waiter_init(&w);
    tr_spin_lock(&hub->lock);
    rc = take_locked(s);
    if (rc != TR_EEMPTY) {
        tr_spin_unlock(&hub->lock);
        return rc;
    }
    tr_wait_init(&e, &w, NULL);
    tr_waitq_push(&s->waiters, &e);
    atomic_fetch_add_explicit(&hub->refs, 1, memory_order_relaxed);
    rc = tr_waiter_park(&w, &hub->lock, deadline);
    if (rc == 0) {
        rc = e.result; /* 0: a delivery; TR_ECLOSED: closed under us */
    } else {
        tr_spin_lock(&hub->lock);
        if (e.linked) /* not linked: a close or a free dropped it, s may be gone */
            tr_waitq_remove(&s->waiters, &e);
        tr_spin_unlock(&hub->lock);
    }
    hub_unref(hub);
    return rc;
}

int tr_signal_pending(const tr_signal *s) {
    if (!s)
        return 0;
    tr_spin_lock(&s->hub->lock);
    int n = s->pending;
    tr_spin_unlock(&s->hub->lock);
    return n;
}

int tr_signal_signo(const tr_signal *s) { return s ? s->signo : 0; }

void tr_signal_close(tr_signal **sp) {
    if (!sp || !*sp)
        return;
    tr_signal *s = *sp;
    *sp = NULL;
    tr_signal_hub *hub = s->hub;
    tr_wait *woken = NULL;
    uint64_t target = 0;
    bool push = false;
    pthread_mutex_lock(&owner_mu);
    tr_spin_lock(&hub->lock);
    sigslot *sl = &hub->slot[s->signo];
    if (s->prev)
        s->prev->next = s->next;
    else
        sl->list = s->next;
    if (s->next)
        s->next->prev = s->prev;
    sl->handles--;
    tr_waitq_claim_all(&s->waiters, TR_ECLOSED, &woken);
    if (sl->handles == 0 && !hub->dead) {
        if (sl->active)
            target = hub_request_sync(hub, &push); /* the pass stops it */
        else if (owner[s->signo] == hub)
            owner[s->signo] = NULL; /* opened and closed before any pass */
    }
    tr_runtime *rt = hub->rt;
    tr_spin_unlock(&hub->lock);
    pthread_mutex_unlock(&owner_mu);
    tr_wait_wake_all(woken);
    if (push)
        tr__inject(&rt->workers[0], &hub->call.node);
    if (target)
        (void)hub_sync_wait(hub, target); /* cancelled: the stop follows anyway */
    free(s);
    hub_unref(hub);
}

/* ---- the runtime goes -------------------------------------------------------- */

void tr__signals_free(tr_runtime *rt) {
    tr_signal_hub *hub = rt->signals;
    if (!hub)
        return;
    rt->signals = NULL;
    tr_wait *woken = NULL;
    int refs = 1; /* the runtime's */
    pthread_mutex_lock(&owner_mu);
    tr_spin_lock(&hub->lock);
    hub->dead = true;
    for (int signo = 1; signo < NSIG; signo++) {
        sigslot *sl = &hub->slot[signo];
        /* The workers have been joined: stopping from here is safe, and
         * no pass will come to do it. */
        if (sl->active)
            slot_stop(hub, rt->workers[0].loop, signo);
        else if (owner[signo] == hub)
            owner[signo] = NULL;
        for (tr_signal *s = sl->list; s; s = s->next)
            tr_waitq_claim_all(&s->waiters, TR_ECLOSED, &woken);
    }
    tr_waitq_claim_all(&hub->syncq, 0, &woken);
    if (hub->call_queued) { /* pushed after the worker's last look: never runs */
        hub->call_queued = false;
        refs++;
    }
    tr_spin_unlock(&hub->lock);
    pthread_mutex_unlock(&owner_mu);
    tr_wait_wake_all(woken);
    while (refs--)
        hub_unref(hub);
}
