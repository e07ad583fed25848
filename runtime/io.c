/* io.c — fd readiness and socket I/O that waits like every troupe call.
 *
 * Each helper is the same three steps: try the system call; if it would
 * block, wait for readiness; try again.  Only the waiting differs between
 * callers:
 *
 *  - In a task, an ev_io watcher on the task's own worker loop wakes the
 *    parked task through the tr_wait.h protocol, so the deadline and
 *    cancellation race the fd exactly as they race a channel wake-up.  The
 *    watcher is started and stopped from task code, which is safe because
 *    a worker's loop only runs on that worker's thread while no task runs.
 *    It lives on the task's stack for one wait only: starting a watcher
 *    costs no system call (libev applies fd changes lazily, at its next
 *    poll), and keeping no per-fd state means nothing to free when the
 *    user closes an fd.  The flip side: libev's epoll backend does not
 *    take a stopped fd out of the kernel's set; it does so lazily, when
 *    the next event for it arrives, possibly after another thread has
 *    closed the fd.  libev recovers from that by design (the epoll_ctl
 *    fails and it rebuilds its kernel state), but ThreadSanitizer reports
 *    it as a close/epoll_ctl race; tests/testutil.h suppresses exactly that.
 *  - On a plain thread (or on a worker thread outside any task), ppoll()
 *    with the time left before the deadline, in nanoseconds.
 *
 * Sockets are read and written with recv()/send() and MSG_DONTWAIT, so a
 * socket the caller forgot to make non-blocking still cannot stall a
 * worker, and with MSG_NOSIGNAL, so a peer that went away is -EPIPE rather
 * than a dead process.  Other fds (pipes, ttys) fall back to read()/write()
 * after the first ENOTSOCK; that costs them one failed system call per
 * tr_read() or tr_write(), which is cheaper than remembering fd types in a
 * table that closing an fd would silently invalidate.
 */
#include "config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "tr_io.h"
#include "tr_select.h"

/* ---- waiting for readiness ----------------------------------------------- */

/* One parked wait: the watcher, and the waiter its callback must find. */
typedef struct tr_io_wait {
    ev_io io;
    tr_waiter waiter;
    tr_wait entry;
} tr_io_wait;

/* Runs in the worker's loop, on the worker's thread, while the task is
 * parked.  Losing the claim means the deadline or a cancellation got there
 * first; the task is already on its way back and will stop the watcher. */
static void io_ready_cb(struct ev_loop *loop, ev_io *io, int revents) {
    tr_io_wait *iw = io->data;
    /* Level-triggered: stop now so that the loop does not call us again
     * on every iteration until the task gets to run. */
    ev_io_stop(loop, io);
    if (tr_waiter_claim(&iw->waiter, &iw->entry)) {
        iw->entry.result = revents;
        tr_waiter_wake(&iw->waiter);
    }
}

static int io_wait_task(tr_worker *wk, int fd, int events, int64_t deadline) {
    /* Park itself would notice both, but checking first spares starting a
     * watcher for a wait that cannot happen. */
    if (tr_task_cancelled())
        return TR_ECANCELED;
    if (deadline <= tr_now())
        return TR_ETIMEDOUT;

    tr_io_wait iw;
    tr_waiter_init(&iw.waiter);
    tr_wait_init(&iw.entry, &iw.waiter, NULL);
    ev_io_init(&iw.io, io_ready_cb, fd,
               ((events & TR_READABLE) ? EV_READ : 0) | ((events & TR_WRITABLE) ? EV_WRITE : 0));
    iw.io.data = &iw;
    ev_io_start(wk->loop, &iw.io);

    int rc = tr_waiter_park(&iw.waiter, NULL, deadline);

    /* Whatever won, the watcher must not outlive this frame. */
    ev_io_stop(wk->loop, &iw.io);
    /* libev reports an fd the kernel refused (closed, never opened) with
     * EV_ERROR rather than readiness. */
    if (rc == 0 && (iw.entry.result & EV_ERROR))
        rc = -EBADF;
    return rc;
}

static short poll_events(int events) {
    return (short)(((events & TR_READABLE) ? POLLIN : 0) | ((events & TR_WRITABLE) ? POLLOUT : 0));
}

/* The plain-thread wait.  ppoll() takes nanoseconds, so the deadline is
 * kept exactly instead of being rounded to poll()'s milliseconds; the loop
 * re-reads the clock after every wake-up so that a signal does not stretch
 * or shorten the wait. */
static int io_wait_poll(int fd, int events, int64_t deadline) {
    struct pollfd p = {.fd = fd, .events = poll_events(events)};
    for (;;) {
        struct timespec ts, *tsp = NULL;
        if (deadline != TR_NEVER) {
            /* Compared before subtracting: a deadline far in the past
             * (INT64_MIN, say) must not overflow. */
            int64_t now = tr_now();
            int64_t left = deadline > now ? deadline - now : 0;
            ts.tv_sec = (time_t)(left / 1000000000);
            ts.tv_nsec = (long)(left % 1000000000);
            tsp = &ts;
        }
        p.revents = 0;
        int n = ppoll(&p, 1, tsp, NULL);
        if (n > 0)
            return (p.revents & POLLNVAL) ? -EBADF : 0;
        if (n == 0) {
            if (tr_now() >= deadline)
                return TR_ETIMEDOUT;
            continue;
        }
        if (errno != EINTR)
            return -errno;
    }
}

/* Waits after a system call said EAGAIN.  No readiness check first: the
 * call just found the fd not ready, and a level-triggered watcher catches
 * readiness that arrives between that call and the park. */
static int io_block(int fd, int events, int64_t deadline) {
    tr_worker *wk = tr__tls_worker;
    if (wk && wk->current)
        return io_wait_task(wk, fd, events, deadline);
    return io_wait_poll(fd, events, deadline);
}

/* What every waiting call does first: in a task, cancellation and the
 * cooperative budget; on a plain thread there is neither. */
static int io_enter(void) { return tr__current() ? tr_wait_enter() : 0; }

static bool would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK; }

int tr_fd_wait(int fd, int events, int64_t deadline) {
    if (fd < 0 || events < 1 || events > (TR_READABLE | TR_WRITABLE))
        return TR_EINVAL;
    tr_worker *wk = tr__tls_worker;
    if (!wk || !wk->current)
        return io_wait_poll(fd, events, deadline);

    int rc = tr_wait_enter();
    if (rc)
        return rc;
    /* A zero-timeout poll answers "ready now" without a task switch, makes
     * a past deadline still report a ready fd, and turns a bad fd into
     * -EBADF before libev ever sees it. */
    struct pollfd p = {.fd = fd, .events = poll_events(events)};
    int n = poll(&p, 1, 0);
    if (n > 0)
        return (p.revents & POLLNVAL) ? -EBADF : 0;
    if (n < 0 && errno != EINTR)
        return -errno;
    return io_wait_task(wk, fd, events, deadline);
}

int tr_fd_nonblock(int fd) {
    if (fd < 0)
        return TR_EINVAL;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (fl & O_NONBLOCK)
        return 0;
    if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

/* ---- reading and writing ------------------------------------------------- */

ssize_t tr_read(int fd, void *buf, size_t len, int64_t deadline) {
    if (fd < 0 || (!buf && len > 0))
        return TR_EINVAL;
    if (len == 0)
        return 0;
    if (len > SSIZE_MAX)
        len = SSIZE_MAX;
    int rc = io_enter();
    if (rc)
        return rc;

    bool sock = true;
    for (;;) {
        ssize_t n = sock ? recv(fd, buf, len, MSG_DONTWAIT) : read(fd, buf, len);
        if (n >= 0)
            return n;
        int e = errno;
        if (e == ENOTSOCK && sock) {
            sock = false;
            continue;
        }
        if (e == EINTR)
            continue;
        if (!would_block(e))
            return -e;
        rc = io_block(fd, TR_READABLE, deadline);
        if (rc)
            return rc;
    }
}

ssize_t tr_write_some(int fd, const void *buf, size_t len, size_t *written,
                      int64_t deadline) {
    if (written)
        *written = 0;
    if (fd < 0 || (!buf && len > 0) || len > SSIZE_MAX)
        return TR_EINVAL;
    if (len == 0)
        return 0;
    int rc = io_enter();
    if (rc)
        return rc;

    const char *p = buf;
    size_t done = 0;
    bool sock = true;
    while (done < len) {
        ssize_t n = sock ? send(fd, p + done, len - done, MSG_DONTWAIT | MSG_NOSIGNAL)
                         : write(fd, p + done, len - done);
        if (n >= 0) {
            done += (size_t)n;
            continue;
        }
        int e = errno;
        if (e == ENOTSOCK && sock) {
            sock = false;
            continue;
        }
        if (e == EINTR)
            continue;
        if (!would_block(e)) {
            rc = -e;
            break;
        }
        rc = io_block(fd, TR_WRITABLE, deadline);
        if (rc)
            break;
    }
    if (written)
        *written = done;
    return rc ? rc : (ssize_t)len;
}

ssize_t tr_write(int fd, const void *buf, size_t len, int64_t deadline) {
    return tr_write_some(fd, buf, len, NULL, deadline);
}

/* ---- connections ----------------------------------------------------------- */

/* Errors that Linux's accept() reports for a connection that died while
 * it sat in the backlog (accept(2), "Error handling"): that connection is
 * gone, the next one may be fine, so the caller never hears of it. */
static bool accept_retryable(int e) {
    switch (e) {
    case ECONNABORTED:
    case EPROTO:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
#ifdef ENONET
    case ENONET:
#endif
    case EHOSTUNREACH:
    case ENETUNREACH:
        return true;
    }
    return false;
}

int tr_accept(int lfd, struct sockaddr *addr, socklen_t *alen, int64_t deadline) {
    if (lfd < 0 || (addr && !alen))
        return TR_EINVAL;
    int rc = io_enter();
    if (rc)
        return rc;

    socklen_t cap = alen ? *alen : 0;
    for (;;) {
        if (alen)
            *alen = cap;
        int fd = accept4(lfd, addr, alen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            return fd;
        int e = errno;
        if (e == EINTR || accept_retryable(e))
            continue;
        if (!would_block(e))
            return -e;
        rc = io_block(lfd, TR_READABLE, deadline);
        if (rc)
            return rc;
    }
}

int tr_connect(int fd, const struct sockaddr *addr, socklen_t alen, int64_t deadline) {
    if (fd < 0 || !addr || alen == 0)
        return TR_EINVAL;
    int rc = io_enter();
    if (rc)
        return rc;

    if (connect(fd, addr, alen) == 0)
        return 0;
    /* After EINTR the handshake goes on in the background, as after
     * EINPROGRESS; calling connect() again would only say EALREADY. */
    if (errno != EINPROGRESS && errno != EINTR)
        return -errno;
    /* Writable means the handshake is over, one way or the other. */
    rc = io_block(fd, TR_WRITABLE, deadline);
    if (rc)
        return rc;
    int err = 0;
    socklen_t sl = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
        return -errno;
    return err ? -err : 0;
}

/* Numeric addresses only (see tr_io.h for why). */
static int tcp_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (!host) {
        in4->sin_family = AF_INET;
        in4->sin_addr.s_addr = htonl(INADDR_ANY);
        in4->sin_port = htons((uint16_t)port);
        *len = sizeof *in4;
        return 0;
    }
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        *len = sizeof *in4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof *in6;
        return 0;
    }
    return TR_EINVAL;
}

/* Closes fd without letting close() clobber the error being returned. */
static int close_with(int fd, int rc) {
    close(fd);
    return rc;
}

int tr_tcp_listen(const char *host, int port, int backlog, int *port_out) {
    if (port < 0 || port > 65535 || backlog < 0)
        return TR_EINVAL;
    struct sockaddr_storage ss;
    socklen_t len;
    if (tcp_addr(host, port, &ss, &len) < 0)
        return TR_EINVAL;

    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* A restarted server must be able to bind while old connections sit in
     * TIME_WAIT. */
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        return close_with(fd, -errno);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0)
        return close_with(fd, -errno);
    if (listen(fd, backlog ? backlog : SOMAXCONN) < 0)
        return close_with(fd, -errno);
    if (port_out) {
        struct sockaddr_storage got;
        socklen_t glen = sizeof got;
        if (getsockname(fd, (struct sockaddr *)&got, &glen) < 0)
            return close_with(fd, -errno);
        *port_out = got.ss_family == AF_INET6
                        ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
                        : ntohs(((struct sockaddr_in *)&got)->sin_port);
    }
    return fd;
}

int tr_tcp_connect(const char *host, int port, int64_t deadline) {
    if (!host || port < 1 || port > 65535)
        return TR_EINVAL;
    struct sockaddr_storage ss;
    socklen_t len;
    if (tcp_addr(host, port, &ss, &len) < 0)
        return TR_EINVAL;

    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = tr_connect(fd, (struct sockaddr *)&ss, len, deadline);
    if (rc < 0)
        return close_with(fd, rc);
    return fd;
}

/* ---- fd readiness as a select clause --------------------------------------- */

/* In a task the clause keeps an ev_io in the clause's private room; the
 * watcher claims the shared waiter, so the fd races the other clauses the
 * same way a channel wake-up does.  On a plain thread arming only checks
 * readiness; tr_select() then polls the fds itself (tr__park_thread_poll). */
typedef struct fd_watch {
    ev_io io;
    tr_wait *entry;
} fd_watch;

_Static_assert(sizeof(fd_watch) <= sizeof(((tr_clause *)0)->priv), "fd_watch fits in a clause");

static void fd_clause_cb(struct ev_loop *loop, ev_io *io, int revents) {
    fd_watch *fw = (fd_watch *)io;
    ev_io_stop(loop, io);
    if (tr_waiter_claim(fw->entry->waiter, fw->entry)) {
        fw->entry->result = (revents & EV_ERROR) ? -EBADF : 0;
        tr_waiter_wake(fw->entry->waiter);
    }
}

void tr__fd_clause_pollfd(const tr_clause *c, struct pollfd *p) {
    p->fd = (int)(intptr_t)c->obj;
    p->events = poll_events((int)c->n);
    p->revents = 0;
}

static int fd_arm(tr_clause *c, tr_wait *e) {
    int fd = (int)(intptr_t)c->obj;
    int events = (int)c->n;
    struct pollfd p;
    tr__fd_clause_pollfd(c, &p);
    int n = poll(&p, 1, 0);
    if (n != 0) {
        if (!tr_waiter_claim(e->waiter, e))
            return TR_SELECT_LOST;
        c->result = n < 0 ? -errno : (p.revents & POLLNVAL) ? -EBADF : 0;
        return TR_SELECT_DONE;
    }
    tr_worker *wk = tr__tls_worker;
    if (e->waiter->task && wk) {
        fd_watch *fw = (fd_watch *)(void *)c->priv.p;
        ev_io_init(&fw->io, fd_clause_cb, fd,
                   ((events & TR_READABLE) ? EV_READ : 0) | ((events & TR_WRITABLE) ? EV_WRITE : 0));
        fw->entry = e;
        ev_io_start(wk->loop, &fw->io);
    }
    return TR_SELECT_ARMED;
}

static void fd_disarm(tr_clause *c, tr_wait *e) {
    tr_worker *wk = tr__tls_worker;
    if (e->waiter->task && wk) /* a task never changes worker while parked */
        ev_io_stop(wk->loop, &((fd_watch *)(void *)c->priv.p)->io);
}

const tr_clause_ops tr__fd_clause_ops = {fd_arm, fd_disarm, NULL};

void tr_fd_clause(tr_clause *c, int fd, int events) {
    bool ok = fd >= 0 && events >= 1 && events <= (TR_READABLE | TR_WRITABLE);
    c->ops = ok ? &tr__fd_clause_ops : NULL;
    c->obj = (void *)(intptr_t)fd;
    c->n = (size_t)events;
    c->buf = c->aux = NULL;
    c->result = 0;
}
