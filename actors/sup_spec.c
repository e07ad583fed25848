/* sup_spec.c — supervisor specs: checking them (tr_sup_check) and copying
 * them deeply.
 *
 * A copy owns its ids, names, args copies (args_size > 0) and nested
 * specs; freeing it with drop = true also calls the args_drop of args it
 * owns.  tr_sup_start and start_child copy first and take ownership of the
 * args_drop'd args only once the copy exists, so that on a failure the
 * originals' args are dropped exactly once (tr__spec_drop_args).
 *
 * Check rules (OTP's, where the header leaves room): ids unique, 1..63
 * bytes (not for DYNAMIC); exactly one of type and sup; significant only
 * for transient or temporary children (OTP rejects significant permanent
 * children; with auto_shutdown never the flag is ignored, as the header
 * says, where OTP rejects it); DYNAMIC has exactly one template, no name
 * in it (every child would take the same name) and auto_shutdown never
 * (OTP 27 rejects auto_shutdown for simple_one_for_one).
 */
#include "sup_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 4, 5))) static int bad(char *err, size_t errlen,
                                                     const char *path, const char *fmt, ...) {
    if (err && errlen) {
        char msg[200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(err, errlen, "%s%s", path, msg);
    }
    return TR_EINVAL;
}

static int check_spec(const tr_sup_spec *s, const char *path, char *err, size_t errlen);

int tr__cspec_check(const tr_child_spec *cs, bool dynamic, const char *p, char *err,
                    size_t errlen) {
    if (!cs)
        return bad(err, errlen, p, ": NULL");
    if (!dynamic) {
        if (!cs->id)
            return bad(err, errlen, p, ".id: missing");
        size_t l = strlen(cs->id);
        if (l == 0 || l > 63)
            return bad(err, errlen, p, ".id: must be 1 to 63 bytes");
    }
    if (!cs->type == !cs->sup)
        return bad(err, errlen, p, ".type: exactly one of type and sup must be set");
    if (cs->type && (!cs->type->handle || cs->type->msg_size == 0))
        return bad(err, errlen, p, ".type: no handle, or msg_size 0");
    if (cs->args_size > 0 && !cs->args)
        return bad(err, errlen, p, ".args: NULL with args_size > 0");
    if (cs->restart < TR_RESTART_PERMANENT || cs->restart > TR_RESTART_TEMPORARY)
        return bad(err, errlen, p, ".restart: not a tr_restart value");
    if (cs->shutdown_ms < TR_SHUTDOWN_INFINITY)
        return bad(err, errlen, p, ".shutdown_ms: not a timeout or TR_SHUTDOWN_ value");
    if (cs->significant && cs->restart == TR_RESTART_PERMANENT)
        return bad(err, errlen, p, ".significant: a permanent child cannot be significant");
    const tr_actor_opts *o = &cs->opts;
    if (o->overflow < TR_OVERFLOW_WAIT || o->overflow > TR_OVERFLOW_DROP_OLDEST)
        return bad(err, errlen, p, ".opts.overflow: not a TR_OVERFLOW_ value");
    if (o->name && (!o->name[0] || strlen(o->name) > 63))
        return bad(err, errlen, p, ".opts.name: must be 1 to 63 bytes");
    if (dynamic && o->name)
        return bad(err, errlen, p, ".opts.name: a DYNAMIC template cannot name its children");
    if (cs->sup) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s.sup.", p);
        return check_spec(cs->sup, sub, err, errlen);
    }
    return 0;
}

static int check_spec(const tr_sup_spec *s, const char *p, char *err, size_t errlen) {
    if (!s)
        return bad(err, errlen, p, "spec: NULL");
    if (s->strategy < TR_SUP_ONE_FOR_ONE || s->strategy > TR_SUP_DYNAMIC)
        return bad(err, errlen, p, "strategy: not a tr_sup_strategy value");
    if (s->intensity < 0)
        return bad(err, errlen, p, "intensity: negative");
    if (s->period_ms < 0)
        return bad(err, errlen, p, "period_ms: negative");
    if (s->kill_grace_ms < 0)
        return bad(err, errlen, p, "kill_grace_ms: negative");
    if (s->auto_shutdown < TR_AUTO_SHUTDOWN_NEVER ||
        s->auto_shutdown > TR_AUTO_SHUTDOWN_ALL_SIGNIFICANT)
        return bad(err, errlen, p, "auto_shutdown: not a tr_auto_shutdown value");
    if (s->nchildren > 0 && !s->children)
        return bad(err, errlen, p, "children: NULL with nchildren > 0");
    bool dyn = s->strategy == TR_SUP_DYNAMIC;
    if (dyn && s->nchildren != 1)
        return bad(err, errlen, p, "children: a DYNAMIC supervisor takes exactly one template");
    if (dyn && s->auto_shutdown != TR_AUTO_SHUTDOWN_NEVER)
        return bad(err, errlen, p, "auto_shutdown: must be never for a DYNAMIC supervisor");
    for (size_t i = 0; i < s->nchildren; i++) {
        char cp[256];
        snprintf(cp, sizeof cp, "%schildren[%zu]", p, i);
        int rc = tr__cspec_check(&s->children[i], dyn, cp, err, errlen);
        if (rc)
            return rc;
        if (dyn)
            continue;
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->children[j].id, s->children[i].id) == 0)
                return bad(err, errlen, cp, ".id: \"%s\" is used twice", s->children[i].id);
    }
    return 0;
}

int tr_sup_check(const tr_sup_spec *spec, char *err, size_t errlen) {
    if (err && errlen)
        err[0] = 0;
    return check_spec(spec, "", err, errlen);
}

/* ---- copies ----------------------------------------------------------------------- */

static char *dup_str(const char *s, bool *fail) {
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *fail = true;
    return d;
}

int tr__cspec_copy(tr_child_spec *d, const tr_child_spec *s) {
    bool fail = false;
    *d = *s;
    d->id = dup_str(s->id, &fail);
    d->opts.name = dup_str(s->opts.name, &fail);
    d->sup = NULL;
    if (s->args_size > 0) {
        void *a = malloc(s->args_size);
        if (a)
            memcpy(a, s->args, s->args_size);
        else
            fail = true;
        d->args = a;
    }
    if (s->sup && !(d->sup = tr__spec_copy(s->sup)))
        fail = true;
    if (fail) {
        tr__cspec_free(d, false);
        return TR_ENOMEM;
    }
    return 0;
}

void tr__cspec_free(tr_child_spec *c, bool drop) {
    free((char *)c->id);
    free((char *)c->opts.name);
    if (c->args_size > 0)
        free((void *)c->args);
    else if (drop && c->args_drop)
        c->args_drop((void *)c->args, c->args_ctx);
    if (c->sup)
        tr__spec_free((tr_sup_spec *)c->sup, drop);
    memset(c, 0, sizeof *c);
}

tr_sup_spec *tr__spec_copy(const tr_sup_spec *s) {
    tr_sup_spec *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    *d = *s;
    d->children = NULL;
    d->nchildren = 0;
    tr_child_spec *kids = s->nchildren ? calloc(s->nchildren, sizeof *kids) : NULL;
    if (s->nchildren && !kids) {
        free(d);
        return NULL;
    }
    d->children = kids;
    for (size_t i = 0; i < s->nchildren; i++) {
        if (tr__cspec_copy(&kids[i], &s->children[i]) != 0) {
            tr__spec_free(d, false);
            return NULL;
        }
        d->nchildren++;
    }
    return d;
}

void tr__spec_free(tr_sup_spec *s, bool drop) {
    if (!s)
        return;
    tr_child_spec *kids = (tr_child_spec *)s->children;
    for (size_t i = 0; i < s->nchildren; i++)
        tr__cspec_free(&kids[i], drop);
    free(kids);
    free(s);
}

void tr__cspec_drop_args(const tr_child_spec *c) {
    if (!c)
        return;
    if (c->args_size == 0 && c->args_drop)
        c->args_drop((void *)c->args, c->args_ctx);
    if (c->sup)
        tr__spec_drop_args(c->sup);
}

void tr__spec_drop_args(const tr_sup_spec *s) {
    if (!s || (s->nchildren && !s->children))
        return;
    for (size_t i = 0; i < s->nchildren; i++)
        tr__cspec_drop_args(&s->children[i]);
}
