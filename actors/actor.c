/* actor.c — spawning, the activation loop, and how an incarnation ends.
 *
 * Idle actors hold no stack.  The first message to an idle actor marks it
 * SCHEDULED and spawns an activation: a task on the actor's worker that
 * handles messages while any remain and returns when both lanes are empty,
 * giving its stack back to the pool.  Going idle and "a sender saw the
 * actor running and did not spawn" cannot race: both are decided under
 * the actor's slot lock (the mailbox lock).
 *
 * Before it gives its stack back, an activation that found the mailbox
 * empty yields once and looks again.  A caller on the same worker, woken
 * by the reply, then runs first and sends its next request to an actor
 * that is still RUNNING: no spawn, and a call round trip costs two task
 * switches.  One yield only, so an actor nobody talks to goes idle after
 * one turn of its worker's run queue.
 *
 * init runs inline, on the spawner's task or thread (as the actor: it has
 * a run record, so tr_actor_self() and tr_actor_fail work).  Spawning an
 * activation for it would cost a task and a wait that must not be
 * cancelled (init reads the spawner's args), for nothing: the spawner
 * waits for init anyway.
 *
 * tr_actor_fail() unwinds with _longjmp to the _setjmp of the activation
 * (or of the inline init or end); the run record, in memory, says what was
 * running, so the loop finishes that message (its caller gets TR_EDOWN)
 * and ends the incarnation.  One setjmp per activation, not per message.
 *
 * Ending: terminate(reason) runs, then either the actor dies (its slot
 * entry forgets it under the lock; mailbox dropped, kept replies failed,
 * waiters woken, monitors and links told, name forgotten, memory freed) or,
 * with a supervisor's end hook, it waits in LIMBO for a restart.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

tr__ext *tr__ext_get(tr__actor *a) {
    if (!a->ext) {
        tr__ext *x = calloc(1, sizeof *x);
        if (!x)
            return NULL;
        tr_waitq_init(&x->waiters);
        a->ext = x;
    }
    return a->ext;
}

/* r->phase is read by tr__actor_kill_hard on another thread (under the
 * slot lock): written with relaxed atomic stores.  It is set under the
 * lock where the actor's code is entered from the loop (a message popped,
 * terminate about to run), so that a hard kill that finds NONE under the
 * lock knows no handler or terminate can start before it sees KILLED. */
static inline void set_phase(tr__run *r, int phase) {
    __atomic_store_n(&r->phase, phase, __ATOMIC_RELAXED);
}

static void run_setup(tr__run *r, tr__actor *a, tr_task *task) {
    r->a = a;
    r->task = task;
    r->prev = NULL;
    set_phase(r, TR__PHASE_NONE);
    r->fail_reason = 0;
    r->exit_set = false;
    r->exit_reason = 0;
    r->end_reason = 0;
    r->sent = r->kept = false;
    r->msg.data = NULL;
    r->msg.reply = NULL;
    r->msg.from = TR_ACTOR_NONE;
    r->node = NULL;
    atomic_init(&r->calling, 0);
}

/* ---- death ---------------------------------------------------------------------- */

typedef struct death {
    tr__spill sp;
    const tr_actor_type *type;
    tr__actor *a;
    tr__ext *ext;
    tr_actor_ref ref;
    int reason;
} death;

/* Claims waiters of x (all, or only stop's with clause 1), giving them reason. */
static void claim_waiters(tr__ext *x, bool stop_only, int reason, tr_wait **list) {
    tr_wait *e = tr_waitq_peek(&x->waiters);
    while (e) {
        tr_wait *next = e->next;
        if (!stop_only || e->clause == 1) {
            tr_waitq_remove(&x->waiters, e);
            if (tr_waiter_claim(e->waiter, e)) {
                *(int *)e->data = reason;
                e->result = 0;
                e->next = *list;
                *list = e;
            }
        }
        e = next;
    }
}

/* The actor's slot forgets it; everything to do about that is gathered in
 * d and done by die_finish() once the lock is released. */
static void die_locked(tr__actor *a, int reason, death *d) {
    memset(d, 0, sizeof *d);
    d->type = a->type;
    d->a = a;
    d->ext = a->ext;
    d->ref = tr__ref_of(a);
    d->reason = reason;
    tr__mailbox_spill_locked(a, &d->sp);
    tr__kept_fail_locked(a, &d->sp.woken);
    if (a->ext)
        claim_waiters(a->ext, false, reason, &d->sp.woken);
    a->run = NULL;
    a->slot->a = NULL;
    a->slot->reason = reason;
}

static void die_finish(death *d) {
    tr__ext *x = d->ext;
    /* The text outlives the actor, like its reason, so that whoever looks
     * at a dead actor (tr_sup_run at its root's end) can read why:
     * "reached max restart intensity".  Stored before the waiters are
     * woken, so that a tr_actor_wait that returns finds it. */
    if (x && x->reason_text[0]) {
        char *text = strdup(x->reason_text);
        tr__slot *s = d->a->slot;
        tr_spin_lock(&s->lock);
        char *old = s->reason_text;
        s->reason_text = text;
        tr_spin_unlock(&s->lock);
        free(old);
    }
    tr__spill_finish(d->type, &d->sp);
    if (x) {
        if (x->name)
            tr__registry_forget(x->name, d->ref);
        tr__notify_death(d->ref, d->reason, x->mons, x->nmons, x->links, x->nlinks);
        free(x);
    }
    free(d->a);
    tr__slot_free(d->ref.slot);
}

/* ---- ending an incarnation ------------------------------------------------------- */

static void end_after_terminate(tr__run *r, int reason) {
    tr__actor *a = r->a;
    tr__slot *s = a->slot;
    tr_spin_lock(&s->lock);
    tr__ext *x = a->ext;
    if (x && x->hooked_end && x->on_end) {
        tr_wait *woken = NULL;
        tr__kept_fail_locked(a, &woken);
        a->run = NULL;
        x->hooked_end = false;
        a->life = TR__LIFE_LIMBO;
        a->sched = TR__SCHED_LIMBO;
        claim_waiters(x, true, reason, &woken);
        tr__actor_end_fn fn = x->on_end;
        void *ctx = x->on_end_ctx;
        tr_actor_ref ref = tr__ref_of(a);
        tr_spin_unlock(&s->lock);
        tr_wait_wake_all(woken);
        fn(ref, reason, ctx); /* a may be restarted (or freed) from here on */
        return;
    }
    death d;
    die_locked(a, reason, &d);
    tr_spin_unlock(&s->lock);
    die_finish(&d);
}

/* Runs terminate and ends the incarnation.  A kill overrides the reason.
 * hard: the task running it is being killed (kill_end below): no
 * terminate, and the reason is TR_ACTOR_KILLED whatever came before. */
static void end_incarnation_as(tr__run *r, int reason, bool hard) {
    tr__actor *a = r->a;
    tr__slot *s = a->slot;
    tr__spill sp = {0};
    tr_spin_lock(&s->lock);
    if (a->life == TR__LIFE_KILLED && !hard)
        reason = a->end_reason;
    bool hooked = a->ext && a->ext->on_end;
    if (a->ext)
        a->ext->hooked_end = hooked;
    if (!hooked)
        tr__senders_refuse_locked(a, &sp); /* closed from now on */
    a->life = TR__LIFE_ENDING;
    if (a->type->terminate && !hard)
        set_phase(r, TR__PHASE_TERMINATE); /* under the lock: see set_phase */
    tr_spin_unlock(&s->lock);
    tr__spill_finish(a->type, &sp);
    r->end_reason = reason;
    if (a->type->terminate && !hard) {
        set_phase(r, TR__PHASE_TERMINATE);
        a->type->terminate(a->state, reason);
        set_phase(r, TR__PHASE_NONE);
    }
    end_after_terminate(r, reason);
}

static void end_incarnation(tr__run *r, int reason) { end_incarnation_as(r, reason, false); }

/* The handler left without using its reply: the caller gets TR_EDOWN. */
static void finish_message(tr__run *r) {
    tr__mnode *n = r->node;
    if (!n)
        return;
    r->node = NULL;
    if (n->reply && !r->sent && !r->kept)
        tr__reply_drop(n->reply);
    tr__mnode_free(n);
}

/* A _longjmp from tr_actor_fail arrived. */
static void after_fail(tr__run *r) {
    if (r->phase == TR__PHASE_TERMINATE) { /* terminate itself failed: go on ending */
        set_phase(r, TR__PHASE_NONE);
        end_after_terminate(r, r->end_reason);
        return;
    }
    finish_message(r);
    set_phase(r, TR__PHASE_NONE);
    end_incarnation(r, r->fail_reason);
}

/* Ends an actor that has no activation and cannot get one (the runtime is
 * shutting down, or no memory): terminate runs on the calling task or
 * thread. */
static void end_inline(tr__actor *a) {
    tr__run run;
    run_setup(&run, a, NULL);
    run.prev = tr__self_push(&run);
    tr__slot *s = a->slot;
    tr_spin_lock(&s->lock);
    a->run = &run;
    int reason = a->end_reason;
    tr_spin_unlock(&s->lock);
    if (_setjmp(run.jb) == 0)
        end_incarnation(&run, reason);
    else
        after_fail(&run);
    tr__self_pop(&run, run.prev);
}

/* ---- the activation ---------------------------------------------------------------- */

static int handle_user(tr__run *r, tr__mnode *n) {
    tr__actor *a = r->a;
    r->node = n;
    r->msg.data = n->data;
    r->msg.reply = n->reply;
    r->msg.from = n->from;
    r->sent = r->kept = false;
    if (n->reply)
        tr__reply_bind(n->reply, &r->sent);
    set_phase(r, TR__PHASE_HANDLE);
    int rc = a->type->handle(a->state, &r->msg);
    set_phase(r, TR__PHASE_NONE);
    finish_message(r);
    return rc;
}

static int handle_sys(tr__run *r, tr__sysnode *sn) {
    tr__actor *a = r->a;
    tr__sysnode m = *sn;
    free(sn); /* before the callback: a tr_actor_fail in it must leak nothing */
    int rc = 0;
    set_phase(r, TR__PHASE_SYS);
    if (m.kind == TR__SYS_DOWN) {
        if (a->type->on_down)
            a->type->on_down(a->state, m.who, m.reason);
    } else if (a->type->on_exit) {
        rc = a->type->on_exit(a->state, m.who, m.reason);
    }
    set_phase(r, TR__PHASE_NONE);
    return rc;
}

static void run_loop(tr__run *r) {
    tr__actor *a = r->a;
    tr__slot *s = a->slot;
    /* Yields left before going idle: one, or two while yielding pays off
     * (a caller on this worker that spends its cooperative budget yields
     * once before sending, and the actor should still be there). */
    int yields = 1;
    bool yielded = false;
    unsigned since_check = 0;
    for (;;) {
        tr__mnode *n;
        tr__sysnode *sn;
        tr_wait *wake;
        if (!yielded && atomic_load_explicit(&a->queued, memory_order_relaxed) == 0 &&
            !atomic_load_explicit(&a->has_sys, memory_order_relaxed)) {
            /* Empty at a glance: let the others run first (see the top). */
            yielded = true;
            yields--;
            if (tr_yield() == TR_ECANCELED)
                since_check = 32;
        }
        /* Only the runtime's shutdown cancels an activation without killing
         * the actor first; looking for it now and then is enough. */
        bool cancelled = ++since_check >= 32 && tr_task_cancelled();
        if (since_check >= 32)
            since_check = 0;
        tr_spin_lock(&s->lock);
        if (cancelled && (a->life == TR__LIFE_ALIVE || a->life == TR__LIFE_STOPPING)) {
            tr__spill sp = {0};
            tr__kill_locked(a, TR_ACTOR_SHUTDOWN, &sp);
            tr_spin_unlock(&s->lock);
            tr__spill_finish(a->type, &sp);
            end_incarnation(r, TR_ACTOR_SHUTDOWN);
            return;
        }
        if (a->life == TR__LIFE_KILLED) {
            int reason = a->end_reason;
            tr_spin_unlock(&s->lock);
            end_incarnation(r, reason);
            return;
        }
        tr__mailbox_pop_locked(a, &n, &sn, &wake);
        if (!n && !sn) {
            if (a->life == TR__LIFE_STOPPING) {
                int reason = a->end_reason;
                tr_spin_unlock(&s->lock);
                end_incarnation(r, reason);
                return;
            }
            if (!yielded || yields > 0) {
                tr_spin_unlock(&s->lock);
                yielded = true;
                yields--;
                if (tr_yield() == TR_ECANCELED)
                    since_check = 32;
                continue;
            }
            if (tr_task_cancelled() &&
                (a->life == TR__LIFE_ALIVE || a->life == TR__LIFE_STOPPING)) {
                since_check = 32; /* end it on the next turn, above */
                tr_spin_unlock(&s->lock);
                continue;
            }
            a->sched = TR__SCHED_IDLE;
            a->run = NULL;
            tr_spin_unlock(&s->lock);
            return;
        }
        if (n)
            a->handled++;
        set_phase(r, n ? TR__PHASE_HANDLE : TR__PHASE_SYS); /* under the lock: see set_phase */
        tr_spin_unlock(&s->lock);
        if (wake)
            tr_waiter_wake(wake->waiter);
        yields = yielded ? 2 : 1; /* a yield found work: worth two next time */
        yielded = false;
        int reason = n ? handle_user(r, n) : handle_sys(r, sn);
        if (reason != 0 || r->exit_set) {
            end_incarnation(r, reason != 0 ? reason : r->exit_reason);
            return;
        }
    }
}

/* ---- a killed activation (tr__actor_kill_hard) ------------------------------------
 *
 * The activation registers a tr_cleanup around the actor's code.  If its
 * task is killed (tr_task_kill), the task never comes back from its next
 * wait: this cleanup runs instead, on the same stack below the abandoned
 * frames, and ends the incarnation as an end without terminate would:
 * the message being handled is finished (its caller gets TR_EDOWN), then
 * end_incarnation_as(hard) — senders refused or the mailbox kept for
 * LIMBO, kept replies failed, waiters woken, and the end hook (LIMBO) or
 * death (monitors, links, registry).  Nothing on that path waits (the end
 * hook must not either); were something to, the dying task's waits return
 * TR_ECANCELED rather than dying again.
 *
 * The guard holds the ref, not just the run record: if the kill lands
 * after this incarnation has already ended (in the end hook, say), a may
 * be freed or restarted, and the slot (stable memory) tells: a->run is
 * this run record only while this activation still runs the actor. */
typedef struct kill_guard {
    tr_cleanup c;
    tr__run *r;
    tr_actor_ref ref;
} kill_guard;

static void kill_end(void *p) {
    kill_guard *g = p;
    tr__run *r = g->r;
    tr__slot *s = tr__slot_lock(g->ref);
    bool ours = s && s->a && s->a->run == r;
    if (s)
        tr_spin_unlock(&s->lock);
    if (ours) {
        if (r->phase == TR__PHASE_TERMINATE) { /* ENDING already: finish it */
            set_phase(r, TR__PHASE_NONE);
            end_after_terminate(r, TR_ACTOR_KILLED);
        } else {
            finish_message(r);
            set_phase(r, TR__PHASE_NONE);
            end_incarnation_as(r, TR_ACTOR_KILLED, true);
        }
    }
    tr__self_pop(r, r->prev); /* activation_main's own pop is abandoned */
}

static void *activation_main(void *p) {
    tr__actor *a = p;
    tr__run run;
    run_setup(&run, a, tr_task_self());
    run.prev = tr__self_push(&run);
    kill_guard g = {.r = &run, .ref = tr__ref_of(a)};
    tr_cleanup_push(&g.c, kill_end, &g);
    tr__slot *s = a->slot;
    tr_spin_lock(&s->lock);
    a->run = &run;
    a->sched = TR__SCHED_RUNNING;
    tr_spin_unlock(&s->lock);
    if (_setjmp(run.jb) == 0) {
        run_loop(&run);
    } else {
        /* tr_actor_fail abandoned the handler's frames like longjmp: the
         * cleanups they registered and did not pop are dropped with them
         * (popping ours drops everything above it), and ours goes back. */
        tr_cleanup_pop(&g.c, false);
        tr_cleanup_push(&g.c, kill_end, &g);
        after_fail(&run);
    }
    tr_cleanup_pop(&g.c, false);
    /* run.a may be freed by now: only the task's own map is touched. */
    tr__self_pop(&run, run.prev);
    return NULL;
}

void tr__activate(tr__actor *a) {
    tr_spawn_opts o = {a->worker, a->stack_size, NULL};
    int rc = tr_spawn_ex(a->rt, &o, NULL, activation_main, a);
    if (rc == 0)
        return;
    /* No activation: the actor was SCHEDULED by us, so nothing else has
     * touched its scheduling.  A runtime going away takes its actors with
     * it (ended here, on the sender's thread); without memory the messages
     * wait for the next sender to try again. */
    tr__slot *s = a->slot;
    tr__spill sp = {0};
    tr_spin_lock(&s->lock);
    if (rc != TR_ENOMEM && (a->life == TR__LIFE_ALIVE || a->life == TR__LIFE_STOPPING))
        tr__kill_locked(a, TR_ACTOR_SHUTDOWN, &sp);
    bool end = a->life == TR__LIFE_KILLED || a->life == TR__LIFE_STOPPING;
    a->sched = end ? TR__SCHED_RUNNING : TR__SCHED_IDLE;
    const tr_actor_type *t = a->type;
    tr_spin_unlock(&s->lock);
    tr__spill_finish(t, &sp);
    if (end)
        end_inline(a);
}

void tr__activate_or_end(tr__actor *a) {
    /* Scheduled only to end, with nothing to handle and no terminate to
     * run on its own stack: end it here, without a task. */
    tr__slot *s = a->slot;
    tr_spin_lock(&s->lock);
    bool inline_end = !a->type->terminate && !a->head && !atomic_load(&a->has_sys) &&
                      (a->life == TR__LIFE_KILLED || a->life == TR__LIFE_STOPPING);
    if (inline_end)
        a->sched = TR__SCHED_RUNNING;
    tr_spin_unlock(&s->lock);
    if (inline_end)
        end_inline(a);
    else
        tr__activate(a);
}

bool tr__kill_locked(tr__actor *a, int reason, tr__spill *sp) {
    switch (a->life) {
    case TR__LIFE_INIT:
    case TR__LIFE_ALIVE:
    case TR__LIFE_STOPPING:
        a->life = TR__LIFE_KILLED;
        a->end_reason = reason;
        tr__mailbox_spill_locked(a, sp);
        /* An inline init has no task of its own (run->task NULL). */
        if (a->run && a->run->task)
            tr_task_cancel(a->run->task);
        return tr__want_activation_locked(a);
    case TR__LIFE_ENDING:
        tr__mailbox_spill_locked(a, sp);
        if (a->run && a->run->task)
            tr_task_cancel(a->run->task); /* a waiting terminate */
        return false;
    case TR__LIFE_LIMBO:
        tr__mailbox_spill_locked(a, sp); /* what the next incarnation would have handled */
        return false;
    default: /* KILLED already */
        return false;
    }
}

/* ---- spawn ------------------------------------------------------------------------- */

/* The task running an init inline (the spawner's, or a restarter's) is
 * killed while init runs: the caller never sees init's end, so this does
 * what it would do on a failed init, with TR_ACTOR_KILLED: a new actor
 * dies (nobody has its ref yet), a restarted one goes back to LIMBO. */
typedef struct init_guard {
    tr_cleanup c;
    tr__run *r;
    bool restart;
} init_guard;

static void init_killed(void *p) {
    init_guard *g = p;
    tr__actor *a = g->r->a;
    tr__slot *s = a->slot;
    tr_spin_lock(&s->lock);
    a->run = NULL;
    if (g->restart) {
        a->life = TR__LIFE_LIMBO;
        a->sched = TR__SCHED_LIMBO;
        tr_spin_unlock(&s->lock);
    } else {
        death d;
        die_locked(a, TR_ACTOR_KILLED, &d);
        tr_spin_unlock(&s->lock);
        die_finish(&d);
    }
    tr__self_pop(g->r, g->r->prev);
}

/* Runs init inline (see the top of the file).  Returns init's result. */
static int run_init(tr__actor *a, const void *args, bool restart) {
    if (!a->type->init)
        return 0;
    tr__run run;
    run_setup(&run, a, NULL);
    run.prev = tr__self_push(&run);
    init_guard g = {.r = &run, .restart = restart};
    tr_cleanup_push(&g.c, init_killed, &g);
    tr__slot *s = a->slot;
    tr_spin_lock(&s->lock);
    a->run = &run;
    tr_spin_unlock(&s->lock);
    int rc;
    set_phase(&run, TR__PHASE_INIT);
    if (_setjmp(run.jb) == 0)
        rc = a->type->init(a->state, args);
    else
        rc = run.fail_reason;
    tr_cleanup_pop(&g.c, false); /* also drops what a failed init left above it */
    set_phase(&run, TR__PHASE_NONE);
    tr_spin_lock(&s->lock);
    a->run = NULL;
    tr_spin_unlock(&s->lock);
    tr__self_pop(&run, run.prev);
    return rc;
}

/* After a successful init: ALIVE, and an activation if there is work. */
static void start_after_init(tr__actor *a) {
    tr__slot *s = a->slot;
    tr_spin_lock(&s->lock);
    if (a->life == TR__LIFE_INIT)
        a->life = TR__LIFE_ALIVE;
    a->sched = TR__SCHED_IDLE;
    bool spawn = false;
    if (a->head || a->has_sys || a->life != TR__LIFE_ALIVE)
        spawn = tr__want_activation_locked(a);
    tr_spin_unlock(&s->lock);
    if (spawn)
        tr__activate(a);
}

static void kill_all_at_shutdown(tr_runtime *rt) { tr__actors_kill_all(rt); }

static int spawn_checks(const tr_actor_type *type, const tr_actor_opts *o, tr_runtime **rt,
                        int *worker) {
    if (!type || !type->handle || type->msg_size == 0)
        return TR_EINVAL;
    if (o->capacity > UINT32_MAX / 2 || o->overflow < TR_OVERFLOW_WAIT ||
        o->overflow > TR_OVERFLOW_DROP_OLDEST)
        return TR_EINVAL;
    if (o->stack_size && (o->stack_size < TR_STACK_MIN || o->stack_size > UINT32_MAX))
        return TR_EINVAL;
    if (o->name && (!o->name[0] || strlen(o->name) >= sizeof(((tr_actor_info *)0)->name)))
        return TR_EINVAL;
    *rt = o->runtime ? o->runtime : tr_runtime_current();
    if (!*rt)
        return TR_EINVAL;
    /* No actor may outlive its runtime: end them all when it shuts down. */
    if (tr__runtime_on_shutdown(*rt, kill_all_at_shutdown) != 0)
        return TR_ENOMEM;
    int nw = tr_runtime_workers(*rt);
    if (o->worker < TR_WORKER_BALANCED || o->worker > nw)
        return TR_EINVAL;
    *worker = o->worker;
    if (*worker == TR_WORKER_DEFAULT) /* pinned where it was born, when that is a worker */
        *worker = tr_runtime_current() == *rt ? TR_WORKER(tr_worker_current())
                                              : TR_WORKER_BALANCED;
    if (type->state_size > SIZE_MAX / 2)
        return TR_ENOMEM;
    return 0;
}

int tr__actor_spawn_hooked(tr_actor_ref *out, const tr_actor_type *type, const void *args,
                           const tr_actor_opts *opts, tr__actor_end_fn fn, void *ctx) {
    if (!out)
        return TR_EINVAL;
    *out = TR_ACTOR_NONE;
    tr_actor_opts def = {0};
    if (!opts)
        opts = &def;
    tr_runtime *rt;
    int worker;
    int rc = spawn_checks(type, opts, &rt, &worker);
    if (rc)
        return rc;
    tr__actor *a = calloc(1, sizeof *a + type->state_size);
    if (!a)
        return TR_ENOMEM;
    if (fn) {
        tr__ext *x = tr__ext_get(a);
        if (!x) {
            free(a);
            return TR_ENOMEM;
        }
        x->on_end = fn;
        x->on_end_ctx = ctx;
    }
    uint32_t idx;
    tr__slot *s = tr__slot_alloc(&idx);
    if (!s) {
        free(a->ext);
        free(a);
        return TR_ENOMEM;
    }
    a->type = type;
    a->rt = rt;
    a->slot = s;
    tr_waitq_init(&a->senders);
    atomic_init(&a->queued, 0);
    a->capacity = opts->capacity ? (uint32_t)opts->capacity : TR_ACTOR_DEFAULT_CAPACITY;
    a->idx = idx;
    a->stack_size = (uint32_t)opts->stack_size;
    a->worker = (int16_t)worker;
    a->overflow = (uint8_t)opts->overflow;
    a->sched = TR__SCHED_RUNNING; /* messages sent during init queue without a spawn */
    a->life = TR__LIFE_INIT;
    tr_spin_lock(&s->lock);
    a->gen = s->gen;
    s->a = a;
    atomic_store_explicit(&s->type, type, memory_order_release);
    tr_spin_unlock(&s->lock);
    tr_actor_ref ref = tr__ref_of(a);
    if (opts->name) {
        rc = tr__registry_add(ref, opts->name);
        if (rc) { /* nobody knows the ref yet: undo quietly */
            tr_spin_lock(&s->lock);
            death d;
            die_locked(a, rc, &d);
            tr_spin_unlock(&s->lock);
            die_finish(&d);
            return rc;
        }
    }
    rc = run_init(a, args, false);
    if (rc != 0) { /* dies with init's reason, without terminate (OTP's rule) */
        tr_spin_lock(&s->lock);
        death d;
        die_locked(a, rc, &d);
        tr_spin_unlock(&s->lock);
        die_finish(&d);
        return rc;
    }
    start_after_init(a);
    *out = ref;
    return 0;
}

int tr_actor_spawn(tr_actor_ref *out, const tr_actor_type *type, const void *args,
                   const tr_actor_opts *opts) {
    return tr__actor_spawn_hooked(out, type, args, opts, NULL, NULL);
}

/* ---- supervisor hooks ------------------------------------------------------------------ */

int tr__actor_on_end(tr_actor_ref ref, tr__actor_end_fn fn, void *ctx) {
    tr__actor *a = tr__actor_lock(ref);
    if (!a)
        return TR_EDOWN;
    tr__ext *x = tr__ext_get(a);
    if (x) {
        x->on_end = fn;
        x->on_end_ctx = ctx;
    }
    tr_spin_unlock(&a->slot->lock);
    return x ? 0 : TR_ENOMEM;
}

int tr__actor_restart(tr_actor_ref ref, const void *args) {
    tr__actor *a = tr__actor_lock(ref);
    if (!a)
        return TR_EDOWN;
    tr__slot *s = a->slot;
    if (a->life != TR__LIFE_LIMBO) {
        tr_spin_unlock(&s->lock);
        return TR_EBUSY;
    }
    a->life = TR__LIFE_INIT;
    a->sched = TR__SCHED_RUNNING;
    a->ext->restarts++; /* LIMBO implies an ext with the hook */
    tr_spin_unlock(&s->lock);
    memset(a->state, 0, a->type->state_size);
    int rc = run_init(a, args, true);
    if (rc != 0) {
        tr_spin_lock(&s->lock);
        a->life = TR__LIFE_LIMBO;
        a->sched = TR__SCHED_LIMBO;
        tr_spin_unlock(&s->lock);
        return rc;
    }
    start_after_init(a);
    return 0;
}

int tr__actor_release(tr_actor_ref ref, int reason) {
    tr__actor *a = tr__actor_lock(ref);
    if (!a)
        return TR_EDOWN;
    if (a->life != TR__LIFE_LIMBO) {
        tr_spin_unlock(&a->slot->lock);
        return TR_EBUSY;
    }
    death d;
    die_locked(a, reason, &d);
    tr_spin_unlock(&d.a->slot->lock);
    die_finish(&d);
    return 0;
}
