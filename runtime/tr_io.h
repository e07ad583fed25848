/* tr_io.h — waiting for file descriptors, and socket I/O that waits.
 *
 * A task that reads a socket must not block its worker's thread: every
 * other task on that worker would stop with it.  So these helpers try the
 * system call on a non-blocking descriptor first and, when it would block,
 * wait for readiness the way every troupe wait works: a task parks (an
 * ev_io watcher on its worker's loop wakes it) and the worker runs other
 * tasks; a plain thread blocks in poll().  Each call takes a deadline and,
 * in a task, returns TR_ECANCELED once the task is cancelled.
 *
 * Trade-offs, chosen on purpose:
 *  - Thin wrappers, not a stream object.  The caller keeps plain fds and
 *    can mix these calls with ordinary system calls; there is no buffering
 *    and no ownership (nothing here closes an fd it did not create).
 *  - Descriptors used from a task must be O_NONBLOCK (tr_fd_nonblock());
 *    a blocking fd would block the whole worker inside read() or accept().
 *    Every fd these helpers create is already non-blocking and close-on-exec.
 *    (Sockets are read and written with MSG_DONTWAIT, so for tr_read() and
 *    tr_write() a blocking socket is harmless; pipes and accept() are not
 *    so forgiving.)  On a plain thread blocking fds work too.
 *  - Host names are not resolved: tr_tcp_listen() and tr_tcp_connect() take
 *    numeric addresses only, because getaddrinfo() may wait on DNS for
 *    seconds and can honour neither a deadline nor cancellation.
 *  - Errors are negative: TR_E... codes, and system errors as -errno
 *    (tr_error.h makes the two one space, so tr_strerror() names both).
 *  - A wait that ends at its deadline says TR_ETIMEDOUT even if the call
 *    had made progress; tr_write_some() exists for callers who need to know
 *    how much got out before that.
 *  - Do not close an fd while another task waits on it: the kernel drops
 *    the readiness interest silently and that task then sleeps until its
 *    deadline.  Cancel the waiter (or shutdown() the socket) first.
 */
#ifndef TR_IO_H
#define TR_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "tr_error.h"
#include "tr_time.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Readiness events for tr_fd_wait(); or them for "either". */
#define TR_READABLE 1
#define TR_WRITABLE 2

/* Waits until fd is ready for the events asked (TR_READABLE, TR_WRITABLE or
 * both), that is until the next read/write/accept would not block: data,
 * EOF, a hang-up or a pending error all count as ready, so that the call
 * that follows sees them.  A deadline in the past still reports an fd that
 * is ready now.  Returns 0 when ready, TR_ETIMEDOUT at the deadline,
 * TR_ECANCELED in a cancelled task, TR_EINVAL for a negative fd or events
 * outside {1, 2, 3}, -EBADF for an fd that is not open.  Waits. */
int tr_fd_wait(int fd, int events, int64_t deadline);

/* Sets O_NONBLOCK on fd (nothing if already set).  Returns 0, TR_EINVAL for
 * a negative fd or -errno from fcntl().  Never waits. */
int tr_fd_nonblock(int fd);

/* Reads at most len bytes into buf, waiting until at least one byte (or
 * EOF) is there.  Returns the count read (0 means EOF; len == 0 returns 0
 * at once),
 * TR_ETIMEDOUT at the deadline with nothing read, TR_ECANCELED in a
 * cancelled task, TR_EINVAL for a negative fd or a NULL buf with len > 0,
 * or -errno (-ECONNRESET, ...).  len above SSIZE_MAX is clamped.  Waits. */
ssize_t tr_read(int fd, void *buf, size_t len, int64_t deadline);

/* Writes all len bytes of buf, waiting for room as often as needed.
 * Returns len, or a negative code: TR_ETIMEDOUT, TR_ECANCELED, TR_EINVAL
 * (negative fd, NULL buf with len > 0, len > SSIZE_MAX), -EPIPE when the
 * peer is gone, other -errno.  On an error some prefix of buf may already
 * have been written and this call does not say how much; use
 * tr_write_some() when that matters (a stream is usually dead by then).
 * On sockets it never raises SIGPIPE; on pipes SIGPIPE is the process's
 * business (ignore it to get -EPIPE).  Waits. */
ssize_t tr_write(int fd, const void *buf, size_t len, int64_t deadline);

/* tr_write() that also reports progress: *written (if not NULL) gets the
 * number of bytes written, on success (then it is len) and on error alike.
 * Returns what tr_write() returns.  Waits. */
ssize_t tr_write_some(int fd, const void *buf, size_t len, size_t *written,
                      int64_t deadline);

/* Accepts a connection on the listening socket lfd, waiting for one.  addr
 * and alen work as for accept(2); both may be NULL (alen must not be NULL
 * when addr is not).  Returns the new fd, non-blocking and close-on-exec;
 * TR_ETIMEDOUT, TR_ECANCELED, TR_EINVAL, or -errno (-EMFILE, ...).
 * Connections that died in the backlog are skipped, not reported.  Waits. */
int tr_accept(int lfd, struct sockaddr *addr, socklen_t *alen, int64_t deadline);

/* Connects the socket fd (non-blocking in a task) to addr, waiting for the
 * handshake.  Returns 0; TR_ETIMEDOUT or TR_ECANCELED, after which the
 * connection attempt is still under way and the socket is good only for
 * close(); TR_EINVAL (negative fd, NULL addr, alen 0); or -errno
 * (-ECONNREFUSED, -ENETUNREACH, ...).  Waits. */
int tr_connect(int fd, const struct sockaddr *addr, socklen_t alen, int64_t deadline);

/* Opens a listening TCP socket on host:port, non-blocking, close-on-exec,
 * with SO_REUSEADDR.  host is a numeric IPv4 or IPv6 address ("127.0.0.1",
 * "::1"); NULL means every IPv4 interface.  port 0 picks a free port;
 * *port_out (if not NULL) gets the port actually bound.  backlog 0 means
 * SOMAXCONN.  Returns the fd; TR_EINVAL for a port outside 0..65535, a
 * negative backlog or a host that is not a numeric address; or -errno
 * (-EADDRINUSE, ...).  Never waits. */
int tr_tcp_listen(const char *host, int port, int backlog, int *port_out);

/* Opens a TCP socket and connects it to host:port (a numeric IPv4 or IPv6
 * address, port 1..65535), waiting for the handshake.  Returns the
 * connected fd, non-blocking and close-on-exec; TR_EINVAL for a bad host
 * or port; TR_ETIMEDOUT, TR_ECANCELED or -errno (-ECONNREFUSED, ...), in
 * which case no fd is left open.  Waits. */
int tr_tcp_connect(const char *host, int port, int64_t deadline);

#ifdef __cplusplus
}
#endif
#endif
