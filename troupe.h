/* troupe.h — the one header a troupe program includes.
 *
 * Layers, lowest first: the runtime (workers, tasks, time, I/O, signals,
 * the blocking pool, the wait queue), then channels and locks, then actors
 * and supervisors.  Each layer's header can also be included on its own.
 */
#ifndef TROUPE_H
#define TROUPE_H

#include "tr_error.h"
#include "tr_time.h"
#include "tr_runtime.h"
#include "tr_wait.h"
#include "tr_io.h"
#include "tr_signal.h"
#include "tr_blocking.h"
#include "tr_select.h"
#include "tr_chan.h"
#include "tr_mpsc.h"
#include "tr_oneshot.h"
#include "tr_watch.h"
#include "tr_broadcast.h"
#include "tr_notify.h"
#include "tr_barrier.h"
#include "tr_once.h"
#include "tr_semaphore.h"
#include "tr_mutex.h"
#include "tr_rwlock.h"
#include "tr_actor.h"
#include "tr_sup.h"

#endif
