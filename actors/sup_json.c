/* sup_json.c — supervision trees from JSON: the registry of actor type
 * names, the translation of a checked document into a tr_sup_spec, and
 * tr_sup_start_json.  (The validation is in sup_json_check.c.)
 *
 * The registry is a list under one mutex, looked up when a document is
 * checked or started, never per message.  Entries are never removed (a
 * type, once named, may be running anywhere), and stay reachable from a
 * static pointer, so nothing is reported as leaked at exit; freeing them
 * in a destructor would pull types out from under workers of a runtime
 * the program did not free before exiting.
 *
 * Args.  A JSON child's init gets the child's "args" as a `const json_t *`
 * (JSON null when absent).  The supervisor must own them after
 * tr_sup_start_json returns (restarts call init again), so each child's
 * args hold a reference on that node of the document (jansson counts
 * references per node, so the rest of the document may go), released by
 * the spec's args_drop.
 *
 * Naming the child whose init failed.  tr_sup_start returns only the
 * reason, not which child gave it.  So a static child does not get the
 * registered type itself but the registry's copy of it whose init is a
 * trampoline: its args are a small counted record (tr__jarg) holding the
 * JSON args, the real type, the child's path and two counters — inits
 * entered and inits that succeeded.  After a failed start the record whose
 * init was entered and never succeeded names the child (an init that
 * leaves through tr_actor_fail never returns to the trampoline, which is
 * why the counters are "entered" and "succeeded" rather than "failed").
 * The copy has the same name, handlers and sizes, so nothing else can
 * tell.  A simple_one_for_one template keeps the real type and plain JSON
 * args: its children are started later by tr_sup_start_child, whose
 * caller may pass args of its own, which a trampoline could not tell from
 * a record.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sup_json_internal.h"
#include "tr_error.h"
#include "tr_sup.h"

/* ---- the registry ---------------------------------------------------------------- */

typedef struct regtype {
    struct regtype *next;
    const tr_actor_type *real;
    tr_actor_type wrapped; /* real, with init = jarg_init */
    char name[64];
} regtype;

static pthread_mutex_t types_mu = PTHREAD_MUTEX_INITIALIZER;
static regtype *types; /* never freed: see the top of the file */

static int jarg_init(void *state, const void *args);

int tr_sup_register_type(const char *name, const tr_actor_type *type) {
    if (!name || !*name || strlen(name) > 63 || !type || !type->handle || !type->msg_size)
        return TR_EINVAL;
    regtype *e = calloc(1, sizeof *e);
    if (!e)
        return TR_ENOMEM;
    e->real = type;
    e->wrapped = *type;
    e->wrapped.init = jarg_init;
    strcpy(e->name, name);
    pthread_mutex_lock(&types_mu);
    for (regtype *p = types; p; p = p->next) {
        if (strcmp(p->name, name) == 0) {
            pthread_mutex_unlock(&types_mu);
            free(e);
            return TR_EEXIST;
        }
    }
    e->next = types;
    types = e;
    pthread_mutex_unlock(&types_mu);
    return 0;
}

const tr_actor_type *tr__sup_json_lookup(const char *name, const tr_actor_type **wrapped) {
    const tr_actor_type *t = NULL;
    if (!name)
        return NULL;
    pthread_mutex_lock(&types_mu);
    for (regtype *p = types; p; p = p->next) {
        if (strcmp(p->name, name) == 0) {
            t = p->real;
            if (wrapped)
                *wrapped = &p->wrapped; /* entries never move nor go */
            break;
        }
    }
    pthread_mutex_unlock(&types_mu);
    return t;
}

/* ---- a static child's args ----------------------------------------------------------- */

typedef struct tr__jarg {
    atomic_int refs;                 /* the supervisor's, and the start's while it looks */
    atomic_int entered, succeeded;   /* inits */
    json_t *json;                    /* a reference to "args", or JSON null */
    const tr_actor_type *real;
    char where[];                    /* children[1] ("store") */
} tr__jarg;

static int jarg_init(void *state, const void *args) {
    tr__jarg *a = (tr__jarg *)args;
    atomic_fetch_add(&a->entered, 1);
    int rc = a->real->init ? a->real->init(state, a->json) : 0;
    if (rc == 0)
        atomic_fetch_add(&a->succeeded, 1);
    return rc;
}

static void jarg_unref(tr__jarg *a) {
    if (a && atomic_fetch_sub(&a->refs, 1) == 1) {
        json_decref(a->json);
        free(a);
    }
}

static void jarg_drop(void *args, void *ctx) {
    (void)ctx;
    jarg_unref(args);
}

static void json_args_drop(void *args, void *ctx) {
    (void)ctx;
    json_decref(args);
}

/* ---- translation -------------------------------------------------------------------- */

typedef struct xlat {
    tr__jarg **jargs; /* every static child's record, in tree order (refs held) */
    size_t njargs, capjargs;
} xlat;

static void free_spec(tr_sup_spec *s) {
    if (!s)
        return;
    tr_child_spec *kids = (tr_child_spec *)s->children;
    for (size_t i = 0; i < s->nchildren; i++)
        free_spec((tr_sup_spec *)kids[i].sup);
    free(kids);
    free(s);
}

/* Drops the args of every child that has not been handed to a start. */
static void drop_args(tr_sup_spec *s) {
    tr_child_spec *kids = (tr_child_spec *)s->children;
    for (size_t i = 0; i < s->nchildren; i++) {
        if (kids[i].args_drop)
            kids[i].args_drop((void *)kids[i].args, kids[i].args_ctx);
        kids[i].args_drop = NULL;
        if (kids[i].sup)
            drop_args((tr_sup_spec *)kids[i].sup);
    }
}

static int64_t int_or(const json_t *o, const char *key, int64_t dflt) {
    const json_t *v = json_object_get(o, key);
    return v ? (int64_t)json_integer_value(v) : dflt;
}

static int word_or(const json_t *o, const char *key, const char *const *words, int dflt) {
    const json_t *v = json_object_get(o, key);
    return v ? tr__sup_json_word(words, json_string_value(v)) : dflt;
}

static int translate(const json_t *t, const char *path, xlat *x, tr_sup_spec **out);

static int translate_child(const json_t *c, const char *path, bool dynamic, xlat *x,
                           tr_child_spec *k) {
    k->id = json_string_value(json_object_get(c, "id")); /* tr_sup_start copies it */
    k->restart = word_or(c, "restart", tr__sup_json_restarts, TR_RESTART_PERMANENT);
    const json_t *sd = json_object_get(c, "shutdown");
    if (json_is_integer(sd))
        k->shutdown_ms = json_integer_value(sd);
    else if (sd)
        k->shutdown_ms = strcmp(json_string_value(sd), "infinity") == 0 ? TR_SHUTDOWN_INFINITY
                                                                         : TR_SHUTDOWN_BRUTAL;
    k->significant = json_is_true(json_object_get(c, "significant"));
    k->opts.name = json_string_value(json_object_get(c, "name"));
    k->opts.capacity = (size_t)int_or(c, "capacity", 0);
    k->opts.overflow = word_or(c, "overflow", tr__sup_json_overflows, TR_OVERFLOW_WAIT);
    const json_t *sup = json_object_get(c, "supervisor");
    if (sup) {
        char nested[512];
        if (snprintf(nested, sizeof nested, "%s.supervisor", path) >= (int)sizeof nested)
            return TR_EINVAL; /* the check refused it already */
        return translate(sup, nested, x, (tr_sup_spec **)&k->sup);
    }
    const tr_actor_type *wrapped = NULL;
    k->type = tr__sup_json_lookup(json_string_value(json_object_get(c, "type")), &wrapped);
    if (!k->type)
        return TR_EINVAL; /* unregistered since the check: cannot happen, names stay */
    /* A copy, not a reference: the supervisor uses it from whichever
     * worker runs it while the caller may free its document on another
     * thread, and jansson's reference counts are not made to be shared
     * between threads (its inline incref reads the count unsynchronised;
     * ThreadSanitizer reports it). */
    json_t *args = json_object_get(c, "args");
    args = args ? json_deep_copy(args) : json_null();
    if (!args)
        return TR_ENOMEM;
    if (dynamic) {
        k->args = args;
        k->args_drop = json_args_drop;
        return 0;
    }
    if (x->njargs == x->capjargs) {
        size_t cap = x->capjargs ? 2 * x->capjargs : 8;
        tr__jarg **p = realloc(x->jargs, cap * sizeof *p);
        if (!p) {
            json_decref(args);
            return TR_ENOMEM;
        }
        x->jargs = p;
        x->capjargs = cap;
    }
    char where[600];
    int wn = k->id ? snprintf(where, sizeof where, "%s (\"%s\")", path, k->id)
                   : snprintf(where, sizeof where, "%s", path);
    (void)wn; /* a path cut short still names the child well enough */
    tr__jarg *a = malloc(sizeof *a + strlen(where) + 1);
    if (!a) {
        json_decref(args);
        return TR_ENOMEM;
    }
    atomic_init(&a->refs, 2); /* the supervisor's (args_drop) and the start's */
    atomic_init(&a->entered, 0);
    atomic_init(&a->succeeded, 0);
    a->json = args;
    a->real = k->type;
    strcpy(a->where, where);
    x->jargs[x->njargs++] = a;
    k->type = wrapped;
    k->args = a;
    k->args_drop = jarg_drop;
    return 0;
}

/* A checked document to an owned spec (free_spec; drop_args unless it went
 * to a start).  On error nothing is left: args are dropped. */
static int translate(const json_t *t, const char *path, xlat *x, tr_sup_spec **out) {
    tr_sup_spec *s = calloc(1, sizeof *s);
    if (!s)
        return TR_ENOMEM;
    s->strategy = word_or(t, "strategy", tr__sup_json_strategies, TR_SUP_ONE_FOR_ONE);
    s->intensity = (int)int_or(t, "intensity", 1);
    s->period_ms = int_or(t, "period_ms", 5000);
    s->auto_shutdown = word_or(t, "auto_shutdown", tr__sup_json_autoshut, 0);
    s->kill_grace_ms = int_or(t, "kill_grace_ms", 0);
    const json_t *kids = json_object_get(t, "children");
    size_t n = json_array_size(kids);
    tr_child_spec *k = n ? calloc(n, sizeof *k) : NULL;
    if (n && !k) {
        free(s);
        return TR_ENOMEM;
    }
    s->children = k;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char cpath[512];
        if (snprintf(cpath, sizeof cpath, "%s%schildren[%zu]", path, *path ? "." : "", i) >=
            (int)sizeof cpath)
            cpath[0] = '\0'; /* the check refused it already */
        rc = translate_child(json_array_get(kids, i), cpath, s->strategy == TR_SUP_DYNAMIC, x,
                             &k[i]);
        s->nchildren = i + 1; /* the child's own allocations are s's from here */
    }
    if (rc) {
        drop_args(s);
        free_spec(s);
        return rc;
    }
    *out = s;
    return 0;
}

static void xlat_release(xlat *x) {
    for (size_t i = 0; i < x->njargs; i++)
        jarg_unref(x->jargs[i]);
    free(x->jargs);
}

int tr_sup_start_json(tr_actor_ref *out, const json_t *tree, const tr_actor_opts *opts,
                      char *err, size_t errlen) {
    if (out)
        *out = TR_ACTOR_NONE;
    if (err && errlen)
        err[0] = '\0';
    if (!out)
        return TR_EINVAL;
    int rc = tr_sup_check_json(tree, err, errlen);
    if (rc)
        return rc;
    xlat x = {0};
    tr_sup_spec *spec = NULL;
    rc = translate(tree, "", &x, &spec);
    if (rc) {
        xlat_release(&x); /* translate dropped the supervisor's references */
        if (err && errlen)
            snprintf(err, errlen, "%s", tr_strerror(rc));
        return rc;
    }
    rc = tr_sup_start(out, spec, opts); /* owns every args_drop'd args from here */
    if (rc && err && errlen) {
        const char *who = NULL;
        for (size_t i = 0; i < x.njargs && !who; i++)
            if (atomic_load(&x.jargs[i]->entered) > atomic_load(&x.jargs[i]->succeeded))
                who = x.jargs[i]->where;
        if (who)
            snprintf(err, errlen, "%s: init failed: reason %d", who, rc);
        else if (rc == TR_EINVAL && tr_sup_check(spec, err, errlen) != 0)
            ; /* the C spec's own rules said why */
        else if (rc == TR_EEXIST)
            snprintf(err, errlen, "an actor name in the tree is already registered");
        else
            snprintf(err, errlen, "start failed: %s (%d)", tr_strerror(rc), rc);
    }
    xlat_release(&x);
    free_spec(spec);
    return rc;
}
