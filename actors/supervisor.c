/* supervisor.c — the supervisor actor: start, child records, stopping
 * children by their shutdown rule, end notifications, strategies,
 * restart intensity and auto_shutdown.  See sup_internal.h for the data
 * and the notification design; the operations are in sup_ops.c.
 *
 * Choices:
 *  - Stopping a set of children is one routine (stop_set): ask them all
 *    to stop (a request that does not wait), then wait for each end
 *    against one deadline; those past it are cancelled (tr_actor_kill) and
 *    get kill_grace_ms more, then tr__actor_kill_hard.  Static strategies
 *    call it with one child at a time, in reverse start order; DYNAMIC
 *    with all children at once, which is the parallel stop without a task
 *    per child.
 *  - A restart whose init fails counts as another restart against the
 *    intensity and is retried at once (OTP retries too), so it ends
 *    either started or with the supervisor giving up, never spinning.
 *    one_for_all / rest_for_one retry the failed child itself, not the
 *    whole group.  Siblings restarted by those strategies are the ones that
 *    were running (a child terminated with terminate_child stays so).
 *  - A supervisor whose own task is cancelled while it waits for a child
 *    (its parent killed it) cannot wait any more: it detaches every child
 *    still running (removes the end hook: the child dies for good when it
 *    ends) and kills it hard.
 */
#include "sup_internal.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

int64_t tr__ms_now(void) { return tr_now() / 1000000; }

/* ---- records ---------------------------------------------------------------------- */

bool tr__sup_is_sup(const tr__child *k) { return k->cs->sup != NULL; }

tr__child *tr__sup_rec_new(tr__sup *c, const tr_child_spec *cs) {
    tr__child *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->sup = c;
    k->sup_ref = c->self;
    k->cs = cs;
    k->state = TR_CHILD_TERMINATED;
    atomic_init(&k->hook_calls, 0);
    if (cs->sup) {
        k->nargs.spec = cs->sup;
        k->nargs.parent = c->node;
    }
    return k;
}

int tr__sup_add(tr__sup *c, tr__child *k) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        tr__child **v = realloc(c->kids, cap * sizeof *v);
        if (!v)
            return TR_ENOMEM;
        c->kids = v;
        c->cap = cap;
    }
    c->kids[c->n++] = k;
    return 0;
}

size_t tr__sup_find_id(tr__sup *c, const char *id) {
    for (size_t i = 0; i < c->n; i++)
        if (c->kids[i]->cs->id && strcmp(c->kids[i]->cs->id, id) == 0)
            return i;
    return SIZE_MAX;
}

size_t tr__sup_find_ref(tr__sup *c, tr_actor_ref r) {
    for (size_t i = 0; i < c->n; i++)
        if (!tr_actor_ref_is_none(r) && tr_actor_ref_eq(c->kids[i]->ref, r))
            return i;
    return SIZE_MAX;
}

/* Waits until the hook has returned for every end seen so far: it runs
 * right after the end wakes its waiters, without waiting, so this is a
 * short spin (a cancelled task cannot yield: sched_yield then). */
static void rec_await_hook(tr__child *k) {
    while (atomic_load_explicit(&k->hook_calls, memory_order_acquire) < k->ends)
        if (tr_yield() != 0)
            sched_yield();
}

void tr__sup_rec_free(tr__child *k) {
    rec_await_hook(k);
    free(k->note);
    if (k->sig)
        tr_watch_rx_drop(&k->sig);
    if (k->has_dargs) {
        if (k->dargs_size > 0)
            free(k->dargs);
        else if (k->ddrop)
            k->ddrop(k->dargs, k->dctx);
    }
    if (k->owned) {
        tr__cspec_free(k->owned, true);
        free(k->owned);
    }
    free(k);
}

void tr__sup_let_go(tr__sup *c, tr__child *k, int reason) {
    (void)c;
    if (tr_actor_ref_is_none(k->ref))
        return;
    rec_await_hook(k);
    tr__actor_release(k->ref, reason);
    k->ref = TR_ACTOR_NONE;
    k->live = false;
    k->state = TR_CHILD_TERMINATED;
}

void tr__sup_remove(tr__sup *c, size_t i) {
    tr__child *k = c->kids[i];
    tr__sup_let_go(c, k, k->last_reason);
    memmove(&c->kids[i], &c->kids[i + 1], (c->n - i - 1) * sizeof *c->kids);
    c->n--;
    tr__sup_rec_free(k);
}

static const void *rec_args(tr__child *k) {
    if (tr__sup_is_sup(k))
        return &k->nargs;
    if (k->has_dargs)
        return k->dargs;
    return k->cs->args;
}

int tr__sup_start_rec(tr__sup *c, tr__child *k) {
    rec_await_hook(k);
    if (!k->note && !(k->note = malloc(sizeof *k->note)))
        return TR_ENOMEM;
    if (k->sig)
        tr_watch_rx_drop(&k->sig);
    if (tr_watch_subscribe(c->node->tx, &k->sig) != 0)
        return TR_ENOMEM;
    int rc;
    if (tr_actor_ref_is_none(k->ref)) {
        tr_actor_opts o = k->cs->opts;
        o.runtime = c->rt;
        const tr_actor_type *t = tr__sup_is_sup(k) ? &tr__sup_type : k->cs->type;
        tr_actor_ref r;
        rc = tr__actor_spawn_hooked(&r, t, rec_args(k), &o, tr__sup_hook, k);
        if (rc == 0)
            k->ref = r;
    } else {
        rc = tr__actor_restart(k->ref, rec_args(k));
    }
    if (rc == 0) {
        k->live = true;
        k->state = TR_CHILD_RUNNING;
    }
    return rc;
}

/* ---- stopping children ------------------------------------------------------------- */

static int64_t shutdown_of(const tr__child *k) {
    int64_t s = k->cs->shutdown_ms;
    if (s == TR_SHUTDOWN_DEFAULT)
        s = tr__sup_is_sup(k) ? TR_SHUTDOWN_INFINITY : 5000;
    return s;
}

/* Our task was cancelled: k cannot be waited for.  Kill it and let it go. */
static void abandon(tr__child *k) {
    bool limbo = false;
    tr__sup_detach(k->ref, &limbo);
    if (limbo) { /* its end has come, its hook was or is being called */
        k->ends++;
        rec_await_hook(k);
        tr__actor_release(k->ref, TR_ACTOR_KILLED);
    } else {
        tr__actor_kill_hard(k->ref); /* dies for good at its end: no hook any more */
    }
    k->stale = 0;
    k->ref = TR_ACTOR_NONE;
    k->live = false;
    k->state = TR_CHILD_TERMINATED;
    k->last_reason = TR_ACTOR_KILLED;
}

/* k's incarnation has ended (LIMBO) while we stopped it: handled here,
 * so the note its hook sent is to be skipped. */
static void collected(tr__child *k) {
    k->live = false;
    k->ends++;
    k->stale++;
    rec_await_hook(k);
    k->last_reason = k->hook_reason;
    k->state = TR_CHILD_TERMINATED;
}

/* Stops the running children of set in parallel (see the top).  Returns 0
 * or TR_ECANCELED (they were abandoned). */
static int stop_set(tr__sup *c, tr__child **set, size_t n) {
    int64_t now = tr_now();
    int rc = 0;
    bool *late = calloc(n ? n : 1, sizeof *late);
    for (size_t i = 0; i < n; i++)
        if (set[i]->live) {
            if (shutdown_of(set[i]) == TR_SHUTDOWN_BRUTAL)
                tr__actor_kill_hard(set[i]->ref);
            else
                tr__sup_stop_request(set[i]->ref, TR_ACTOR_SHUTDOWN);
        }
    for (size_t i = 0; i < n && rc == 0; i++) {
        tr__child *k = set[i];
        if (!k->live)
            continue;
        int64_t s = shutdown_of(k);
        int64_t dl = s < 0 ? TR_NEVER : now + s * 1000000;
        int r = tr__actor_await_end(k->ref, NULL, dl);
        if (r == TR_ETIMEDOUT && late) {
            late[i] = true;
            tr_actor_kill(k->ref); /* cancel: mailbox dropped, waits return TR_ECANCELED */
        } else if (r == TR_ETIMEDOUT) {
            tr__actor_kill_hard(k->ref);
            r = tr__actor_await_end(k->ref, NULL, TR_NEVER);
        }
        if (r == TR_ECANCELED)
            rc = r;
    }
    if (late && rc == 0) {
        int64_t dl = tr_after_ms(c->kill_grace_ms);
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (!late[i])
                continue;
            int r = tr__actor_await_end(set[i]->ref, NULL, dl);
            if (r == TR_ETIMEDOUT) {
                tr__actor_kill_hard(set[i]->ref);
                r = tr__actor_await_end(set[i]->ref, NULL, TR_NEVER);
            }
            if (r == TR_ECANCELED)
                rc = r;
        }
    }
    free(late);
    for (size_t i = 0; i < n; i++) {
        tr__child *k = set[i];
        if (!k->live)
            continue;
        if (rc != 0) {
            abandon(k);
            continue;
        }
        collected(k);
    }
    return rc;
}

int tr__sup_stop_child(tr__sup *c, tr__child *k) { return stop_set(c, &k, 1); }

/* Stops every child (reverse order; DYNAMIC: all at once); temporary ones
 * are removed.  After a cancellation the rest are abandoned. */
static void stop_all(tr__sup *c) {
    if (c->strategy == TR_SUP_DYNAMIC) {
        stop_set(c, c->kids, c->n);
    } else {
        bool cancelled = false;
        for (size_t i = c->n; i-- > 0;) {
            if (cancelled) {
                if (c->kids[i]->live)
                    abandon(c->kids[i]);
            } else if (tr__sup_stop_child(c, c->kids[i]) != 0) {
                cancelled = true;
            }
        }
    }
    for (size_t i = c->n; i-- > 0;)
        if (c->kids[i]->cs->restart == TR_RESTART_TEMPORARY)
            tr__sup_remove(c, i);
}

/* Kills every running child hard, then collects them. */
static void kill_all(tr__sup *c) {
    for (size_t i = 0; i < c->n; i++)
        if (c->kids[i]->live)
            tr__actor_kill_hard(c->kids[i]->ref);
    bool cancelled = false;
    for (size_t i = c->n; i-- > 0;) {
        tr__child *k = c->kids[i];
        if (!k->live)
            continue;
        if (cancelled || tr__actor_await_end(k->ref, NULL, TR_NEVER) != 0) {
            cancelled = true;
            abandon(k);
            continue;
        }
        collected(k);
    }
}

/* ---- restarts --------------------------------------------------------------------- */

/* One more restart; true when that is more than the intensity allows. */
static bool add_restart(tr__sup *c) {
    int64_t now = tr__ms_now();
    size_t keep = 0;
    for (size_t i = 0; i < c->nhist; i++)
        if (c->hist[i] > now - c->period_ms)
            c->hist[keep++] = c->hist[i];
    c->nhist = keep;
    if (c->nhist == c->caphist) {
        size_t cap = c->caphist ? c->caphist * 2 : 8;
        int64_t *h = realloc(c->hist, cap * sizeof *h);
        if (!h)
            return true; /* no memory to count: give up rather than spin */
        c->hist = h;
        c->caphist = cap;
    }
    c->hist[c->nhist++] = now;
    c->restarts++;
    return c->nhist > (size_t)c->intensity;
}

/* Stops the children and ends the supervisor with TR_ACTOR_SHUTDOWN. */
static void shut_down(tr__sup *c, const char *text) {
    c->gave_up = true;
    tr__sup_node_publish(c->node);
    stop_all(c);
    if (text)
        tr__sup_reason_text(c->self, text);
    tr_actor_exit(TR_ACTOR_SHUTDOWN);
}

/* Restarts k, retrying failed inits against the intensity.  False: gave up. */
static bool restart_one(tr__sup *c, tr__child *k) {
    for (;;) {
        int rc = tr__sup_start_rec(c, k);
        if (rc == 0) {
            k->restarts++;
            k->times[k->ntimes++ % TR__SUP_TIMES] = tr__ms_now();
            return true;
        }
        k->last_reason = rc;
        if (add_restart(c)) {
            shut_down(c, "reached max restart intensity");
            return false;
        }
    }
}

static void auto_shutdown(tr__sup *c) {
    if (c->auto_shutdown == TR_AUTO_SHUTDOWN_ALL_SIGNIFICANT)
        for (size_t i = 0; i < c->n; i++)
            if (c->kids[i]->cs->significant && c->kids[i]->live)
                return;
    shut_down(c, "auto_shutdown: significant child ended");
}

/* A child ended by itself with reason: OTP's decision. */
static void child_ended(tr__sup *c, size_t i, int reason) {
    tr__child *k = c->kids[i];
    int restart = k->cs->restart;
    if (restart == TR_RESTART_TEMPORARY ||
        (restart == TR_RESTART_TRANSIENT && !tr_actor_reason_abnormal(reason))) {
        bool sig = k->cs->significant && c->auto_shutdown != TR_AUTO_SHUTDOWN_NEVER;
        if (restart == TR_RESTART_TEMPORARY)
            tr__sup_remove(c, i);
        else
            tr__sup_let_go(c, k, reason);
        if (sig)
            auto_shutdown(c);
        return;
    }
    if (add_restart(c)) {
        shut_down(c, "reached max restart intensity");
        return;
    }
    k->state = TR_CHILD_RESTARTING;
    if (c->strategy == TR_SUP_ONE_FOR_ONE || c->strategy == TR_SUP_DYNAMIC) {
        restart_one(c, k);
        return;
    }
    size_t from = c->strategy == TR_SUP_ONE_FOR_ALL ? 0 : i;
    size_t n = c->n - from;
    tr__child **grp = malloc(n * sizeof *grp);
    if (!grp) {
        restart_one(c, k); /* degrade to one_for_one rather than lose the child */
        return;
    }
    size_t m = 0;
    for (size_t j = from; j < c->n; j++)
        if (c->kids[j] == k || c->kids[j]->live)
            grp[m++] = c->kids[j];
    for (size_t j = m; j-- > 0;) {
        if (grp[j] == k)
            continue;
        if (tr__sup_stop_child(c, grp[j]) != 0)
            break; /* cancelled: cannot happen in a handler that was not killed */
        grp[j]->state = TR_CHILD_RESTARTING;
    }
    for (size_t j = 0; j < m; j++) {
        if (grp[j]->cs->restart == TR_RESTART_TEMPORARY) { /* never restarted */
            tr__sup_remove(c, tr__sup_find_ref(c, grp[j]->ref));
            grp[j] = NULL;
        }
    }
    for (size_t j = 0; j < m; j++)
        if (grp[j] && !restart_one(c, grp[j]))
            break;
    free(grp);
}

/* ---- the actor type ---------------------------------------------------------------- */

static void core_free(tr__sup *c) {
    for (size_t i = c->n; i-- > 0;)
        tr__sup_remove(c, i);
    free(c->kids);
    free(c->hist);
    tr__sup_node_free(c->node);
    tr__spec_free(c->owned, true);
    free(c);
}

static int sup_init(void *st, const void *args) {
    const tr__sup_args *a = args;
    tr__sup *c = calloc(1, sizeof *c);
    if (!c)
        return TR_ENOMEM;
    const tr_sup_spec *s = a->spec;
    c->self = tr_actor_self();
    c->spec = s;
    c->strategy = s->strategy;
    c->auto_shutdown = s->auto_shutdown;
    c->intensity = s->period_ms == 0 ? 1 : s->intensity;
    c->period_ms = s->period_ms == 0 ? 5000 : s->period_ms;
    c->kill_grace_ms = s->kill_grace_ms ? s->kill_grace_ms : 1000;
    c->rt = tr__sup_runtime(c->self);
    if (tr__sup_ensure_ext(c->self) != 0 || !(c->node = tr__sup_node_new(a->parent))) {
        free(c);
        return TR_ENOMEM;
    }
    int rc = 0;
    if (c->strategy != TR_SUP_DYNAMIC) {
        for (size_t i = 0; i < s->nchildren && rc == 0; i++) {
            tr__child *k = tr__sup_rec_new(c, &s->children[i]);
            if (!k || tr__sup_add(c, k) != 0) {
                free(k);
                rc = TR_ENOMEM;
                break;
            }
            rc = tr__sup_start_rec(c, k);
            if (rc != 0)
                tr__sup_remove(c, c->n - 1); /* never started: nothing to stop */
        }
    }
    if (rc != 0) { /* stop those started, in reverse order */
        stop_all(c);
        core_free(c); /* the spec copy stays tr_sup_start's */
        return rc;
    }
    c->owned = a->owned;
    *(tr__sup **)st = c;
    return 0;
}

/* The supervisor's own task was killed (tr__actor_kill_hard, by a parent
 * whose patience ran out) while its code waited: terminate will not run,
 * so this cleanup does its part without waiting (waits in a dying task
 * return TR_ECANCELED): the children still running are detached and
 * killed, the others let go, and the state freed.  Without it the
 * children would keep end hooks pointing at freed records. */
static void sup_killed(void *p) {
    tr__sup **st = p;
    tr__sup *c = *st;
    if (!c)
        return;
    tr__sup_node_publish(c->node);
    for (size_t i = 0; i < c->n; i++)
        if (c->kids[i]->live)
            abandon(c->kids[i]);
    for (size_t i = 0; i < c->n; i++)
        tr__sup_let_go(c, c->kids[i], c->kids[i]->last_reason);
    core_free(c);
    *st = NULL;
}

static int sup_handle(void *st, tr_actor_msg *m) {
    tr_cleanup cl;
    tr_cleanup_push(&cl, sup_killed, st);
    tr__sup_handle_req(*(tr__sup **)st, m);
    /* Cancelled: we are being killed, and a hard kill would end us at the
     * activation's next safe point, after this cleanup is popped and
     * without terminate.  Take the children down now. */
    tr_cleanup_pop(&cl, tr_task_cancelled());
    return 0;
}

static void sup_child_note(void *st, tr_actor_ref who, int reason) {
    tr__sup *c = *(tr__sup **)st;
    size_t i = tr__sup_find_ref(c, who);
    if (i == SIZE_MAX)
        return; /* a note about a child no longer ours */
    tr__child *k = c->kids[i];
    if (k->stale) {
        k->stale--;
        return;
    }
    if (!k->live)
        return;
    k->live = false;
    k->ends++;
    rec_await_hook(k);
    k->last_reason = reason;
    if (c->gave_up || tr__sup_self_stopping(c->self))
        return; /* ending: terminate collects it */
    child_ended(c, i, reason);
}

static void sup_end(void *st, int reason) {
    tr__sup *c = *(tr__sup **)st;
    if (!c)
        return;
    tr__sup_node_publish(c->node);
    if (reason == TR_ACTOR_KILLED)
        kill_all(c);
    else
        stop_all(c);
    for (size_t i = 0; i < c->n; i++) /* they die for good with their end's reason */
        tr__sup_let_go(c, c->kids[i], c->kids[i]->last_reason);
    core_free(c);
    *(tr__sup **)st = NULL;
}

static void sup_on_down(void *st, tr_actor_ref who, int reason) {
    tr_cleanup cl;
    tr_cleanup_push(&cl, sup_killed, st);
    sup_child_note(st, who, reason);
    tr_cleanup_pop(&cl, tr_task_cancelled()); /* as in sup_handle */
}

static void sup_terminate(void *st, int reason) {
    tr_cleanup cl;
    tr_cleanup_push(&cl, sup_killed, st);
    sup_end(st, reason);
    tr_cleanup_pop(&cl, false);
}

const tr_actor_type tr__sup_type = {
    .name = "supervisor",
    .state_size = sizeof(tr__sup *),
    .msg_size = sizeof(tr__sup_req),
    .reply_size = sizeof(tr__sup_rep),
    .init = sup_init,
    .handle = sup_handle,
    .terminate = sup_terminate,
    .on_down = sup_on_down,
    .drop_msg = tr__sup_req_drop,
};

/* ---- public ------------------------------------------------------------------------- */

int tr_sup_start(tr_actor_ref *out, const tr_sup_spec *spec, const tr_actor_opts *opts) {
    if (out)
        *out = TR_ACTOR_NONE;
    if (!out || tr_sup_check(spec, NULL, 0) != 0) {
        tr__spec_drop_args(spec); /* args_drop'd args are ours whatever we return */
        return TR_EINVAL;
    }
    tr_sup_spec *copy = tr__spec_copy(spec);
    if (!copy) {
        tr__spec_drop_args(spec);
        return TR_ENOMEM;
    }
    tr__sup_args a = {copy, NULL, copy};
    int rc = tr_actor_spawn(out, &tr__sup_type, &a, opts);
    if (rc != 0)
        tr__spec_free(copy, true);
    return rc;
}

int tr_sup_stop(tr_actor_ref sup, int64_t deadline) {
    return tr_actor_stop(sup, TR_ACTOR_SHUTDOWN, deadline);
}
