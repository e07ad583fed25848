/* sup_fake.h — TEMPORARY: a stand-in for tr_sup_start / tr_sup_stop /
 * tr_sup_check while the real supervisor (branch `sup`) is not merged, so
 * that the JSON and process-level tests can run start and stop paths.
 * It only starts children in order (stopping the started ones in reverse
 * when one fails) and stops them in reverse order; no restarts.  Compiled
 * only with -DTR_SUP_FAKE (actors/sup_json.am); delete it, and the flag,
 * once `sup` is merged.
 */
#ifndef TR_SUP_FAKE_H
#define TR_SUP_FAKE_H
#ifdef TR_SUP_FAKE

#include "tr_sup.h"

typedef struct fake_drop {
    const void *a;
    tr_drop_fn d;
    void *c;
} fake_drop;

typedef struct fake_sup {
    size_t n, nd;
    tr_actor_ref kids[16];
    int64_t shutdown[16];
    fake_drop drops[16];
} fake_sup;

static void fake_drop_all(const tr_sup_spec *spec) {
    for (size_t i = 0; i < spec->nchildren; i++) {
        const tr_child_spec *k = &spec->children[i];
        if (k->sup)
            fake_drop_all(k->sup);
        else if (k->args_drop)
            k->args_drop((void *)k->args, k->args_ctx);
    }
}

static void fake_stop_kids(fake_sup *s) {
    while (s->n > 0) {
        s->n--;
        int64_t sd = s->shutdown[s->n];
        tr_actor_stop(s->kids[s->n], TR_ACTOR_SHUTDOWN,
                      sd == TR_SHUTDOWN_INFINITY ? TR_NEVER : tr_after_ms(sd > 0 ? sd : 5000));
    }
}

typedef struct fake_args {
    const tr_sup_spec *spec;
    tr_runtime *rt;
} fake_args;

static int fake_sup_init(void *st, const void *args) {
    fake_sup *s = st;
    const tr_sup_spec *spec = ((const fake_args *)args)->spec;
    for (size_t i = 0; i < spec->nchildren; i++) {
        const tr_child_spec *k = &spec->children[i];
        if (!k->sup && k->args_drop)
            s->drops[s->nd++] = (fake_drop){k->args, k->args_drop, k->args_ctx};
    }
    if (spec->strategy == TR_SUP_DYNAMIC)
        return 0;
    for (size_t i = 0; i < spec->nchildren; i++) {
        const tr_child_spec *k = &spec->children[i];
        tr_actor_opts o = k->opts;
        o.runtime = ((const fake_args *)args)->rt;
        int rc = k->sup ? tr_sup_start(&s->kids[s->n], k->sup, &o)
                        : tr_actor_spawn(&s->kids[s->n], k->type, k->args, &o);
        if (rc) {
            for (size_t j = i + 1; j < spec->nchildren; j++)
                if (spec->children[j].sup)
                    fake_drop_all(spec->children[j].sup);
            fake_stop_kids(s);
            for (size_t j = 0; j < s->nd; j++)
                s->drops[j].d((void *)s->drops[j].a, s->drops[j].c);
            return rc;
        }
        s->shutdown[s->n++] = k->shutdown_ms;
    }
    return 0;
}

static int fake_sup_handle(void *st, tr_actor_msg *m) {
    (void)st;
    (void)m;
    return 0;
}

static void fake_sup_terminate(void *st, int reason) {
    (void)reason;
    fake_sup *s = st;
    fake_stop_kids(s);
    for (size_t j = 0; j < s->nd; j++)
        s->drops[j].d((void *)s->drops[j].a, s->drops[j].c);
}

static const tr_actor_type fake_sup_type = {
    .name = "fake_sup",
    .state_size = sizeof(fake_sup),
    .msg_size = sizeof(int),
    .init = fake_sup_init,
    .handle = fake_sup_handle,
    .terminate = fake_sup_terminate,
};

int tr_sup_check(const tr_sup_spec *spec, char *err, size_t errlen) {
    (void)err;
    (void)errlen;
    return spec ? 0 : TR_EINVAL;
}

int tr_sup_start(tr_actor_ref *out, const tr_sup_spec *spec, const tr_actor_opts *opts) {
    if (!out || !spec)
        return TR_EINVAL;
    fake_args a = {spec, opts && opts->runtime ? opts->runtime : tr_runtime_current()};
    return tr_actor_spawn(out, &fake_sup_type, &a, opts);
}

int tr_sup_stop(tr_actor_ref sup, int64_t deadline) {
    return tr_actor_stop(sup, TR_ACTOR_SHUTDOWN, deadline);
}

#endif
#endif
