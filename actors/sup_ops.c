/* sup_ops.c — the supervisor's operations (OTP's start_child,
 * terminate_child, restart_child, delete_child, which_children,
 * count_children) and tr_sup_subscribe / tr_sup_dump's call.
 *
 * Each is a tr_actor_call with a tr__sup_req, handled on the supervisor's
 * task (so they are serialised with its restart decisions).  Nothing in a
 * request or reply points into the caller's frame: a caller that times out
 * must not have its memory written later.  start_child's spec travels as a
 * heap copy the message owns (drop_msg frees it if it is never handled);
 * results that are arrays or objects travel as heap pointers in the reply,
 * freed by the handler when the caller has given up.
 *
 * One known gap: tr_actor_call leaves a request to the caller, without
 * saying so, when the supervisor's slot has been reused by another actor
 * between our type check and the send; start_child's spec copy then
 * leaks.  It needs the supervisor to die and its slot to be reused in that
 * window.
 */
#include "sup_internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* ---- the handler ------------------------------------------------------------------ */

static void free_spec(tr_child_spec *sp) {
    if (!sp)
        return;
    tr__cspec_free(sp, true);
    free(sp);
}

void tr__sup_req_drop(void *msg, void *ctx) {
    (void)ctx;
    tr__sup_req *rq = msg;
    free_spec(rq->spec);
    rq->spec = NULL;
}

static bool closed(tr__sup *c) { return c->gave_up || tr__sup_self_stopping(c->self); }

static int op_start_child(tr__sup *c, tr__sup_req *rq, tr__sup_rep *rep) {
    tr_child_spec *sp = rq->spec;
    rq->spec = NULL;
    if (closed(c)) {
        free_spec(sp);
        return TR_EDOWN;
    }
    tr__child *k;
    if (c->strategy == TR_SUP_DYNAMIC) {
        k = tr__sup_rec_new(c, &c->spec->children[0]);
        if (!k) {
            free_spec(sp);
            return TR_ENOMEM;
        }
        if (sp) { /* the child's own args; the rest of its spec is the template's */
            k->has_dargs = true;
            k->dargs = (void *)sp->args;
            k->dargs_size = sp->args_size;
            k->ddrop = sp->args_drop;
            k->dctx = sp->args_ctx;
            sp->args = NULL;
            sp->args_size = 0;
            sp->args_drop = NULL;
            free_spec(sp);
        }
    } else {
        int rc = sp ? tr__cspec_check(sp, false, "spec", NULL, 0) : TR_EINVAL;
        if (rc == 0 && tr__sup_find_id(c, sp->id) != SIZE_MAX)
            rc = TR_EEXIST;
        if (rc == 0 && !(k = tr__sup_rec_new(c, sp)))
            rc = TR_ENOMEM;
        if (rc != 0) {
            free_spec(sp);
            return rc;
        }
        k->owned = sp;
    }
    if (tr__sup_add(c, k) != 0) {
        tr__sup_rec_free(k);
        return TR_ENOMEM;
    }
    int rc = tr__sup_start_rec(c, k);
    if (rc != 0) {
        tr__sup_remove(c, c->n - 1); /* the spec is not kept */
        return rc;
    }
    rep->ref = k->ref;
    return 0;
}

static int op_terminate(tr__sup *c, tr__sup_req *rq, tr_actor_ref from) {
    size_t i;
    if (rq->op == TR__SUP_OP_TERMINATE) {
        if (c->strategy == TR_SUP_DYNAMIC)
            return TR_EINVAL;
        i = tr__sup_find_id(c, rq->id);
    } else {
        i = tr__sup_find_ref(c, rq->ref);
    }
    if (i == SIZE_MAX)
        return TR_EINVAL;
    tr__child *k = c->kids[i];
    if (k->live && tr_actor_ref_eq(k->ref, from))
        return TR_EDEADLK;
    tr__sup_stop_child(c, k);
    if (c->strategy == TR_SUP_DYNAMIC || k->cs->restart == TR_RESTART_TEMPORARY)
        tr__sup_remove(c, i);
    return 0;
}

static int op_restart(tr__sup *c, tr__sup_req *rq, tr__sup_rep *rep) {
    if (c->strategy == TR_SUP_DYNAMIC)
        return TR_EINVAL;
    size_t i = tr__sup_find_id(c, rq->id);
    if (i == SIZE_MAX)
        return TR_EINVAL;
    tr__child *k = c->kids[i];
    if (k->live)
        return TR_EBUSY;
    if (closed(c))
        return TR_EDOWN;
    int rc = tr__sup_start_rec(c, k);
    if (rc != 0)
        return rc;
    k->restarts++;
    k->times[k->ntimes++ % TR__SUP_TIMES] = tr__ms_now();
    rep->ref = k->ref;
    return 0;
}

static int op_delete(tr__sup *c, tr__sup_req *rq) {
    if (c->strategy == TR_SUP_DYNAMIC)
        return TR_EINVAL;
    size_t i = tr__sup_find_id(c, rq->id);
    if (i == SIZE_MAX)
        return TR_EINVAL;
    if (c->kids[i]->live)
        return TR_EBUSY;
    tr__sup_remove(c, i);
    return 0;
}

static void fill_info(tr__child *k, tr_sup_child_info *o) {
    memset(o, 0, sizeof *o);
    if (k->cs->id)
        snprintf(o->id, sizeof o->id, "%s", k->cs->id);
    o->ref = k->live ? k->ref : TR_ACTOR_NONE;
    o->is_supervisor = tr__sup_is_sup(k);
    o->state = k->live ? TR_CHILD_RUNNING : k->state == TR_CHILD_RUNNING ? TR_CHILD_RESTARTING
                                                                          : k->state;
    o->restart = k->cs->restart;
    o->significant = k->cs->significant;
    o->restarts = k->restarts;
    o->last_reason = k->last_reason;
}

static int op_which(tr__sup *c, tr__sup_rep *rep) {
    tr_sup_child_info *v = calloc(c->n ? c->n : 1, sizeof *v);
    if (!v)
        return TR_ENOMEM;
    for (size_t i = 0; i < c->n; i++)
        fill_info(c->kids[i], &v[i]);
    rep->ptr = v;
    rep->n = c->n;
    return 0;
}

static void op_count(tr__sup *c, tr__sup_rep *rep) {
    tr_sup_counts *o = &rep->counts;
    o->specs = c->n;
    for (size_t i = 0; i < c->n; i++) {
        o->active += c->kids[i]->live;
        if (tr__sup_is_sup(c->kids[i]))
            o->supervisors++;
        else
            o->workers++;
    }
}

void tr__sup_handle_req(tr__sup *c, tr_actor_msg *m) {
    tr__sup_req *rq = m->data;
    tr__sup_rep rep;
    memset(&rep, 0, sizeof rep);
    switch (rq->op) {
    case TR__SUP_OP_START_CHILD: rep.rc = op_start_child(c, rq, &rep); break;
    case TR__SUP_OP_TERMINATE:
    case TR__SUP_OP_TERMINATE_REF: rep.rc = op_terminate(c, rq, m->from); break;
    case TR__SUP_OP_RESTART: rep.rc = op_restart(c, rq, &rep); break;
    case TR__SUP_OP_DELETE: rep.rc = op_delete(c, rq); break;
    case TR__SUP_OP_WHICH: rep.rc = op_which(c, &rep); break;
    case TR__SUP_OP_COUNT: op_count(c, &rep); break;
    case TR__SUP_OP_SUBSCRIBE: {
        tr_watch_rx *rx = NULL;
        rep.rc = tr_watch_subscribe(c->node->tx, &rx) == 0 ? 0 : TR_ENOMEM;
        rep.ptr = rx;
        break;
    }
    case TR__SUP_OP_DUMP:
        rep.ptr = tr__sup_dump_core(c, rq->deadline);
        rep.rc = rep.ptr ? 0 : TR_ENOMEM;
        break;
    default: rep.rc = TR_EINVAL; break;
    }
    tr__sup_req_drop(rq, NULL);
    if (!m->reply)
        return;
    if (tr_reply_send(m->reply, &rep) != 0 && rep.ptr) { /* the caller gave up */
        if (rq->op == TR__SUP_OP_SUBSCRIBE) {
            tr_watch_rx *rx = rep.ptr;
            tr_watch_rx_drop(&rx);
        } else if (rq->op == TR__SUP_OP_DUMP) {
            json_decref(rep.ptr);
        } else {
            free(rep.ptr);
        }
    }
}

/* ---- the calls -------------------------------------------------------------------- */

/* TR_EINVAL for a ref that is not a supervisor, TR_EDOWN for none. */
static int check_sup(tr_actor_ref sup) {
    if (tr_actor_ref_is_none(sup))
        return TR_EINVAL;
    tr__actor *a = tr__actor_lock(sup);
    if (!a)
        return TR_EDOWN;
    bool is = a->type == &tr__sup_type;
    tr_spin_unlock(&a->slot->lock);
    return is ? 0 : TR_EINVAL;
}

static int sup_call(tr_actor_ref sup, tr__sup_req *rq, tr__sup_rep *rep, int64_t deadline) {
    memset(rep, 0, sizeof *rep);
    int rc = check_sup(sup);
    if (rc == 0)
        rc = tr_actor_call(sup, rq, rep, deadline);
    else
        tr__sup_req_drop(rq, NULL); /* never sent */
    if (rc == TR_EINVAL || rc == TR_ENOMEM)
        tr__sup_req_drop(rq, NULL); /* not consumed (a second drop finds NULL) */
    return rc ? rc : rep->rc;
}

static int set_id(tr__sup_req *rq, const char *id) {
    if (!id || !id[0] || strlen(id) >= sizeof rq->id)
        return TR_EINVAL;
    memcpy(rq->id, id, strlen(id) + 1);
    return 0;
}

int tr_sup_start_child(tr_actor_ref sup, const tr_child_spec *spec, tr_actor_ref *out,
                       int64_t deadline) {
    if (out)
        *out = TR_ACTOR_NONE;
    tr__sup_req rq = {.op = TR__SUP_OP_START_CHILD};
    if (spec) {
        rq.spec = malloc(sizeof *rq.spec);
        if (!rq.spec || tr__cspec_copy(rq.spec, spec) != 0) {
            free(rq.spec);
            tr__cspec_drop_args(spec);
            return TR_ENOMEM;
        }
    }
    tr__sup_rep rep;
    int rc = sup_call(sup, &rq, &rep, deadline);
    if (rc == 0 && out)
        *out = rep.ref;
    return rc;
}

static int by_id(tr_actor_ref sup, int op, const char *id, tr_actor_ref *out, int64_t deadline) {
    if (out)
        *out = TR_ACTOR_NONE;
    tr__sup_req rq = {.op = op};
    if (set_id(&rq, id) != 0)
        return TR_EINVAL;
    tr__sup_rep rep;
    int rc = sup_call(sup, &rq, &rep, deadline);
    if (rc == 0 && out)
        *out = rep.ref;
    return rc;
}

int tr_sup_terminate_child(tr_actor_ref sup, const char *id, int64_t deadline) {
    return by_id(sup, TR__SUP_OP_TERMINATE, id, NULL, deadline);
}

int tr_sup_terminate_ref(tr_actor_ref sup, tr_actor_ref child, int64_t deadline) {
    if (tr_actor_ref_is_none(child))
        return TR_EINVAL;
    tr__sup_req rq = {.op = TR__SUP_OP_TERMINATE_REF};
    rq.ref = child;
    tr__sup_rep rep;
    return sup_call(sup, &rq, &rep, deadline);
}

int tr_sup_restart_child(tr_actor_ref sup, const char *id, tr_actor_ref *out, int64_t deadline) {
    return by_id(sup, TR__SUP_OP_RESTART, id, out, deadline);
}

int tr_sup_delete_child(tr_actor_ref sup, const char *id, int64_t deadline) {
    return by_id(sup, TR__SUP_OP_DELETE, id, NULL, deadline);
}

int tr_sup_which_children(tr_actor_ref sup, tr_sup_child_info *out, size_t cap, size_t *count,
                          int64_t deadline) {
    if (!count || (cap && !out))
        return TR_EINVAL;
    tr__sup_req rq = {.op = TR__SUP_OP_WHICH};
    tr__sup_rep rep;
    int rc = sup_call(sup, &rq, &rep, deadline);
    if (rc != 0)
        return rc;
    *count = rep.n;
    memcpy(out, rep.ptr, (rep.n < cap ? rep.n : cap) * sizeof *out);
    free(rep.ptr);
    return 0;
}

int tr_sup_count_children(tr_actor_ref sup, tr_sup_counts *out, int64_t deadline) {
    if (!out)
        return TR_EINVAL;
    tr__sup_req rq = {.op = TR__SUP_OP_COUNT};
    tr__sup_rep rep;
    int rc = sup_call(sup, &rq, &rep, deadline);
    if (rc == 0)
        *out = rep.counts;
    return rc;
}

int tr_sup_subscribe(tr_actor_ref sup, tr_watch_rx **out, int64_t deadline) {
    if (!out)
        return TR_EINVAL;
    *out = NULL;
    tr__sup_req rq = {.op = TR__SUP_OP_SUBSCRIBE};
    tr__sup_rep rep;
    int rc = sup_call(sup, &rq, &rep, deadline);
    if (rc == 0)
        *out = rep.ptr;
    return rc;
}

json_t *tr_sup_dump(tr_actor_ref sup, int64_t deadline) {
    tr__sup_req rq = {.op = TR__SUP_OP_DUMP};
    rq.deadline = deadline;
    tr__sup_rep rep;
    int rc = sup_call(sup, &rq, &rep, deadline);
    return rc == 0 ? rep.ptr : NULL;
}
