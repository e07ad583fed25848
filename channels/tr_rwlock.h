/* tr_rwlock.h — a readers-writer lock that may be held across waits
 * (tokio::sync::RwLock).
 *
 * Why it exists: state read by many tasks and written rarely, where the
 * holders wait while holding (a reader that sends what it read, a writer
 * that awaits a reply before publishing).  The choice against pthread
 * locks is the one tr_mutex.h explains: pthread_rwlock_t when the
 * section never waits (faster; the right default), tr_rwlock when it does.
 *
 * Behaviour, as Tokio's: a fair semaphore of max_readers permits; a read
 * takes one, a write takes all.
 *  - FIFO and write-preferring: a queued writer takes every permit that
 *    frees up while it waits, so readers that come after it wait until it
 *    has had its turn (no writer starvation).  A reader or writer that
 *    times out or is cancelled loses its place and holds nothing, and the
 *    readers queued behind a leaving writer may go at once.
 *  - At most max_readers readers at once; more wait.
 *  - tr_rwlock_downgrade() turns a write lock into a read lock atomically
 *    (no writer can get in between) and lets the queued readers that can
 *    now go, go; a writer queued ahead of them still comes first.
 *  - Deadlock warning, as Tokio's: a task that holds a read lock, queues a
 *    write, then asks another read waits forever (the write blocks it).
 * Added because C has no guards: the lock knows its writer, so a writer
 * asking again for the write (or a read) gets TR_EDEADLK, and a
 * write_unlock by anyone else TR_EPERM.  Readers are not tracked one by
 * one; read_unlock returns TR_EPERM when a writer holds the lock or no
 * reader does, but cannot tell one reader from another.
 *
 * The struct is the caller's; an uncontended read or write lock is one
 * compare-and-swap, like the semaphore it is made of.
 */
#ifndef TR_RWLOCK_H
#define TR_RWLOCK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "tr_mutex.h"
#include "tr_select.h"
#include "tr_semaphore.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The default and largest number of concurrent readers (Tokio's MAX_READS,
 * u32::MAX >> 3). */
#define TR_RWLOCK_MAX_READERS ((size_t)(UINT32_MAX >> 3))

/* Fields are private; the struct is public only so that it can live in the
 * caller's memory. */
typedef struct tr_rwlock {
    tr_sem sem;               /* max_readers permits */
    size_t max_readers;
    _Atomic uintptr_t writer; /* the write holder's id, 0 if none */
    tr_lock_debug dbg;
} tr_rwlock;

/* A static initialiser: unlocked, TR_RWLOCK_MAX_READERS readers. */
#define TR_RWLOCK_INIT                                                                \
    {TR_SEM_INIT(TR_RWLOCK_MAX_READERS), TR_RWLOCK_MAX_READERS, 0,                    \
     {NULL, NULL, NULL, "rwlock", NULL, 0, false}}

/* Initialises *l, unlocked, for TR_RWLOCK_MAX_READERS / max_readers
 * concurrent readers.  TR_EINVAL for NULL, max_readers == 0 or >
 * TR_RWLOCK_MAX_READERS.  Never wait. */
int tr_rwlock_init(tr_rwlock *l);
int tr_rwlock_init_max(tr_rwlock *l, size_t max_readers);

/* Ends the life of *l (nothing to free).  TR_EBUSY if it is held or
 * somebody waits for it (nothing done), TR_EINVAL for NULL. */
int tr_rwlock_destroy(tr_rwlock *l);

/* Names l in debug reports (the string must outlive l).  0 or TR_EINVAL. */
int tr_rwlock_set_name(tr_rwlock *l, const char *name);

/* Takes a read / the write lock, waiting (FIFO) until it is granted, the
 * deadline passes or the calling task is cancelled.  May wait.  Returns
 * 0, TR_EDEADLK (the caller holds the write lock; nothing done),
 * TR_ETIMEDOUT, TR_ECANCELED (then nothing is held), TR_EINVAL. */
int tr_rwlock_read(tr_rwlock *l, int64_t deadline);
int tr_rwlock_write(tr_rwlock *l, int64_t deadline);

/* The same if it can be had right now; never wait.  0, TR_EBUSY (a writer
 * holds it or is queued, max readers reached / anybody holds it), or
 * TR_EINVAL. */
int tr_rwlock_try_read(tr_rwlock *l);
int tr_rwlock_try_write(tr_rwlock *l);

/* Gives back a read lock / the write lock, waking whom it lets in.  Never
 * wait.  0, TR_EPERM (read: a writer holds l, or no reader does; write:
 * the caller is not the writer — nothing done), TR_EINVAL. */
int tr_rwlock_read_unlock(tr_rwlock *l);
int tr_rwlock_write_unlock(tr_rwlock *l);

/* Turns the caller's write lock into a read lock, atomically, and lets in
 * the queued readers that may now go.  Afterwards release it with
 * tr_rwlock_read_unlock().  Never waits.  0, TR_EPERM (not the writer),
 * TR_EINVAL. */
int tr_rwlock_downgrade(tr_rwlock *l);

/* Select clauses taking a read / the write lock: in the chosen clause
 * c->result is 0 (held) or TR_EDEADLK; clauses not chosen hold nothing.
 * TR_EINVAL (and a clause tr_select() rejects) for NULL.  Never wait. */
int tr_rwlock_read_clause(tr_clause *c, tr_rwlock *l);
int tr_rwlock_write_clause(tr_clause *c, tr_rwlock *l);

#ifdef __cplusplus
}
#endif
#endif
