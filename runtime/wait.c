/* wait.c — parking and waking, for tasks and for plain threads.
 *
 * A parked task is simply not in any run queue; waking it means putting it
 * back in its worker's.  A parked plain thread sleeps on a futex word in its
 * waiter.  Deadlines of tasks are libev timers in the worker's loop, so a
 * thousand sleeping tasks cost a thousand heap entries and no thread.
 *
 * libev timers count from the loop's cached clock, which may lag tr_now()
 * by a little; a timer that fires before the deadline re-arms itself for
 * the rest, so a wait never returns TR_ETIMEDOUT early.
 */
#include "internal.h"

#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>


void tr_spin_lock_slow(tr_spin *s) {
    for (unsigned spins = 0;; spins++) {
        if (!atomic_load_explicit(&s->locked, memory_order_relaxed) &&
            !atomic_exchange_explicit(&s->locked, 1, memory_order_acquire))
            return;
        if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#elif defined(__aarch64__)
            __asm__ __volatile__("yield");
#endif
        } else {
            sched_yield();
        }
    }
}

void tr_waiter_init(tr_waiter *w) { tr__waiter_init_task(w, tr__current()); }

static void futex_wait(atomic_int *word, int expect, const struct timespec *rel) {
    syscall(SYS_futex, (int *)word, FUTEX_WAIT_PRIVATE, expect, rel, NULL, 0);
}

static void futex_wake(atomic_int *word) {
    syscall(SYS_futex, (int *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void tr_waiter_wake(tr_waiter *w) {
    if (w->task) {
        tr__schedule(w->task);
    } else {
        /* wake_fd is read before woken is set: once woken is 1 the waiter
         * may return and its frame be reused, so nothing of it may be read
         * after.  The poller publishes wake_fd and then looks at the state
         * (both seq_cst, and our claim came before this load): either we
         * see its eventfd here, or it sees the claim and waits on the
         * futex instead of in ppoll(). */
        atomic_thread_fence(memory_order_seq_cst); /* orders the claim before the load */
        int fd = atomic_load(&w->wake_fd);
        atomic_store(&w->woken, 1);
        if (fd >= 0) { /* pooled, never closed: a late write is a spurious wake */
            uint64_t one = 1;
            ssize_t r = write(fd, &one, sizeof one);
            (void)r;
        }
        futex_wake(&w->woken); /* harmless if the waiter has already gone */
    }
}

static bool settle(tr_waiter *w, int state) {
    int expect = TR_WAITER_WAITING;
    return atomic_compare_exchange_strong_explicit(&w->state, &expect, state,
                                                   memory_order_acq_rel, memory_order_acquire);
}

static int outcome(tr_waiter *w) {
    switch (atomic_load_explicit(&w->state, memory_order_acquire)) {
    case TR_WAITER_CLAIMED: return 0;
    case TR_WAITER_TIMEDOUT: return TR_ETIMEDOUT;
    default: return TR_ECANCELED;
    }
}

/* ---- tasks ------------------------------------------------------------------- */

typedef struct deadline_timer {
    ev_timer ev;
    tr_waiter *w;
    int64_t deadline;
} deadline_timer;

static void on_deadline(struct ev_loop *loop, ev_timer *ev, int revents) {
    (void)revents;
    deadline_timer *dt = (deadline_timer *)ev;
    int64_t now = tr_now();
    if (dt->deadline > now) { /* the loop's clock lagged: wait out the rest */
        int64_t left = dt->deadline - now;
        ev_timer_set(ev, (double)left / 1e9, 0.);
        ev_timer_start(loop, ev);
        return;
    }
    if (settle(dt->w, TR_WAITER_TIMEDOUT))
        tr__schedule(dt->w->task);
}

int tr__park_task(tr_waiter *w, tr_task *t, int64_t deadline) {
    t->budget = TR_BUDGET;
    if (atomic_load_explicit(&t->cancelled, memory_order_acquire) &&
        settle(w, TR_WAITER_CANCELED))
        return TR_ECANCELED;
    deadline_timer dt;
    bool timed = false;
    if (deadline != TR_NEVER && atomic_load_explicit(&w->state, memory_order_relaxed) ==
                                    TR_WAITER_WAITING) {
        int64_t now = tr_now();
        if (deadline <= now) { /* compare first: deadline may be near INT64_MIN */
            if (settle(w, TR_WAITER_TIMEDOUT))
                return TR_ETIMEDOUT;
        } else {
            int64_t left = deadline - now;
            ev_timer_init(&dt.ev, on_deadline, (double)left / 1e9, 0.);
            dt.w = w;
            dt.deadline = deadline;
            ev_timer_start(t->worker->loop, &dt.ev);
            timed = true;
        }
    }
    /* Claimed already or not, we leave the CPU: a claimer's wake puts us
     * back in the run queue, possibly before we even switch away. */
    t->waiter = w;
    tr__suspend();
    t->waiter = NULL;
    if (timed)
        ev_timer_stop(t->worker->loop, &dt.ev);
    return outcome(w);
}

/* ---- plain threads ------------------------------------------------------------ */

static int park_thread(tr_waiter *w, int64_t deadline) {
    for (;;) {
        if (atomic_load_explicit(&w->woken, memory_order_acquire))
            return outcome(w);
        if (deadline == TR_NEVER) {
#if TR_TSAN
            /* TSan runs the signal handlers it deferred only when a call
             * returns; a futex wait without end would hold them forever. */
            struct timespec slice = {.tv_sec = 0, .tv_nsec = 50000000};
            futex_wait(&w->woken, 0, &slice);
#else
            futex_wait(&w->woken, 0, NULL);
#endif
            continue;
        }
        int64_t now = tr_now();
        if (deadline <= now) {
            if (settle(w, TR_WAITER_TIMEDOUT))
                return TR_ETIMEDOUT;
            deadline = TR_NEVER; /* claimed meanwhile: the wake is coming */
            continue;
        }
        int64_t left = deadline - now;
        struct timespec rel = {.tv_sec = left / 1000000000, .tv_nsec = left % 1000000000};
        futex_wait(&w->woken, 0, &rel);
    }
}

int tr_waiter_park(tr_waiter *w, tr_spin *lock, int64_t deadline) {
    if (lock)
        tr_spin_unlock(lock);
    if (w->task)
        return tr__park_task(w, w->task, deadline);
    return park_thread(w, deadline);
}

/* ---- plain threads that select on fds ----------------------------------------
 *
 * A plain thread has no libev loop, so a select with fd clauses sleeps in
 * ppoll() on those fds plus an eventfd that tr_waiter_wake() writes.  The
 * eventfds come from a process-wide pool and are never closed: a waker
 * that writes after its waiter has gone (it loaded wake_fd just before)
 * then causes at most a spurious wake-up of a later poller, never a write
 * into an fd number that something else reuses.  The pool holds one fd
 * per plain thread that ever polled at the same time, and no more. */

static pthread_mutex_t efd_mu = PTHREAD_MUTEX_INITIALIZER;
static int efd_free[256];
static int efd_nfree;

static int efd_get(void) {
    int fd = -1;
    pthread_mutex_lock(&efd_mu);
    if (efd_nfree > 0)
        fd = efd_free[--efd_nfree];
    pthread_mutex_unlock(&efd_mu);
    if (fd < 0)
        fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd;
}

static void efd_put(int fd) {
    uint64_t v;
    while (read(fd, &v, sizeof v) > 0) /* drain stale wake-ups */
        ;
    pthread_mutex_lock(&efd_mu);
    if (efd_nfree < (int)(sizeof efd_free / sizeof efd_free[0])) {
        efd_free[efd_nfree++] = fd;
        fd = -1;
    }
    pthread_mutex_unlock(&efd_mu);
    /* Pool full (hundreds of threads polling at once): keeping it open
     * forever is the price of never closing one under a late writer. */
    (void)fd;
}

int tr__park_thread_poll(tr_waiter *w, struct pollfd *pfds, tr_wait **entries, int n,
                         int64_t deadline) {
    int efd = efd_get();
    if (efd < 0)
        return -errno;
    atomic_store(&w->wake_fd, efd);
    pfds[n].fd = efd;
    pfds[n].events = POLLIN;
    int rc;
    if (atomic_load(&w->state) == TR_WAITER_CLAIMED) {
        /* Claimed before the waker could see our eventfd: its wake comes
         * through the futex word alone. */
        while (!atomic_load(&w->woken))
            futex_wait(&w->woken, 0, NULL);
        rc = 0;
        goto out;
    }
    for (;;) {
        if (atomic_load(&w->woken)) {
            rc = outcome(w);
            break;
        }
        struct timespec ts, *tsp = NULL;
        if (deadline != TR_NEVER && atomic_load(&w->state) == TR_WAITER_WAITING) {
            int64_t now = tr_now();
            if (deadline <= now) {
                if (settle(w, TR_WAITER_TIMEDOUT)) {
                    rc = TR_ETIMEDOUT;
                    break;
                }
                deadline = TR_NEVER; /* claimed meanwhile: its wake is coming */
                continue;
            }
            int64_t left = deadline - now;
            ts.tv_sec = (time_t)(left / 1000000000);
            ts.tv_nsec = (long)(left % 1000000000);
            tsp = &ts;
        }
        for (int i = 0; i <= n; i++)
            pfds[i].revents = 0;
        int k = ppoll(pfds, (nfds_t)n + 1, tsp, NULL);
        if (k < 0 && errno != EINTR) {
            rc = -errno;
            if (settle(w, TR_WAITER_CANCELED)) /* no waker can win any more */
                break;
            continue; /* a waker won meanwhile: collect its wake */
        }
        if (pfds[n].revents) {
            uint64_t v;
            while (read(efd, &v, sizeof v) > 0)
                ;
        }
        if (k <= 0 || (pfds[n].revents && k == 1))
            continue; /* the loop head reads woken and the clock */
        for (int i = 0; i < n; i++) {
            if (!pfds[i].revents)
                continue;
            if (tr_waiter_claim(w, entries[i])) {
                entries[i]->result = (pfds[i].revents & POLLNVAL) ? -EBADF : 0;
                atomic_store(&w->woken, 1);
            }
            break; /* won or lost, the loop head now finds woken set */
        }
    }
out:
    atomic_store(&w->wake_fd, -1);
    efd_put(efd);
    return rc;
}
