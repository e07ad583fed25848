/* sup_json_check.c — validation of supervision trees written as JSON.
 *
 * A daemon's tree comes from a file a person edits, so every mistake must
 * be reported with the place it is at and what was expected there
 * ("children[2].restart: expected one of permanent, transient,
 * temporary"), before anything starts.  The walk stops at the first
 * problem: one precise message beats a list in which later errors are
 * consequences of the first.  Unknown keys are errors, since a misspelt
 * optional key ("restrat") would otherwise silently take its default.
 *
 * The rules are OTP's, as tr_sup_check enforces them on a C spec (ids
 * unique per supervisor, a simple_one_for_one supervisor has exactly one
 * child spec, a permanent child cannot be significant), plus what only a
 * document can get wrong: types of values and names of actor types.  The
 * order of checks inside an object is fixed (unknown keys first, then the
 * keys in the order tr_sup.h documents them), so the first problem found
 * does not depend on how the document orders its keys.
 */
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sup_json_internal.h"
#include "tr_error.h"
#include "tr_sup.h"

const char *const tr__sup_json_strategies[] = {"one_for_one", "one_for_all", "rest_for_one",
                                               "simple_one_for_one", NULL};
const char *const tr__sup_json_restarts[] = {"permanent", "transient", "temporary", NULL};
const char *const tr__sup_json_autoshut[] = {"never", "any_significant", "all_significant", NULL};
const char *const tr__sup_json_overflows[] = {"wait", "fail", "drop_newest", "drop_oldest", NULL};

int tr__sup_json_word(const char *const *words, const char *s) {
    for (int i = 0; s && words[i]; i++)
        if (strcmp(words[i], s) == 0)
            return i;
    return -1;
}

/* Where we are: "" at the root, "children[1].supervisor" inside. */
typedef struct where {
    char path[512];
} where;

/* Formats "path.key: message" (or without the parts that are empty) into
 * err and returns TR_EINVAL. */
__attribute__((format(printf, 5, 6))) static int fail(char *err, size_t errlen, const char *path,
                                                      const char *key, const char *fmt, ...) {
    if (err && errlen) {
        char msg[384];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        const char *dot = (*path && key) ? "." : "";
        if (*path || key)
            snprintf(err, errlen, "%s%s%s: %s", path, dot, key ? key : "", msg);
        else
            snprintf(err, errlen, "%s", msg);
    }
    return TR_EINVAL;
}

static int check_keys(const json_t *obj, const char *const *allowed, const char *path, char *err,
                      size_t errlen) {
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        (void)v;
        if (tr__sup_json_word(allowed, key) < 0)
            return fail(err, errlen, path, NULL, "unknown key \"%s\"", key);
    }
    return 0;
}

/* An integer in [min, max] if present. */
static int check_int(const json_t *obj, const char *key, json_int_t min, json_int_t max,
                     const char *expected, const char *path, char *err, size_t errlen) {
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return fail(err, errlen, path, key, "expected %s", expected);
    return 0;
}

/* One of words if present; *out gets its index (untouched when absent). */
static int check_word(const json_t *obj, const char *key, const char *const *words, int *out,
                      const char *path, char *err, size_t errlen) {
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    int i = tr__sup_json_word(words, json_string_value(v));
    if (i < 0) {
        char list[256] = "";
        for (int k = 0; words[k]; k++) {
            strncat(list, k ? ", " : "", sizeof list - strlen(list) - 1);
            strncat(list, words[k], sizeof list - strlen(list) - 1);
        }
        return fail(err, errlen, path, key, "expected one of %s", list);
    }
    *out = i;
    return 0;
}

/* A string of 1..63 bytes (ids and names, as tr_sup.h and tr_actor.h take). */
static int check_label(const json_t *obj, const char *key, const char *path, char *err,
                       size_t errlen) {
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 63 ||
        strlen(json_string_value(v)) != json_string_length(v))
        return fail(err, errlen, path, key, "expected a string of 1 to 63 bytes");
    return 0;
}

static int check_tree(const json_t *t, const where *w, int depth, char *err, size_t errlen);

static const char *const child_keys[] = {"id",   "type",     "supervisor", "restart",
                                         "shutdown", "significant", "name", "capacity",
                                         "overflow", "args", NULL};

static int check_child(const json_t *c, const char *path, bool dynamic, int depth, char *err,
                       size_t errlen) {
    if (!json_is_object(c))
        return fail(err, errlen, path, NULL, "expected an object");
    int rc = check_keys(c, child_keys, path, err, errlen);
    if (rc)
        return rc;
    const json_t *id = json_object_get(c, "id");
    if (!id && !dynamic)
        return fail(err, errlen, path, NULL, "missing \"id\"");
    if ((rc = check_label(c, "id", path, err, errlen)))
        return rc;
    const json_t *type = json_object_get(c, "type");
    const json_t *sup = json_object_get(c, "supervisor");
    if (!type == !sup)
        return fail(err, errlen, path, NULL, "needs exactly one of \"type\" or \"supervisor\"");
    if (type) {
        if (!json_is_string(type))
            return fail(err, errlen, path, "type", "expected a string");
        if (!tr__sup_json_lookup(json_string_value(type), NULL))
            return fail(err, errlen, path, "type", "\"%s\" is not a registered actor type",
                        json_string_value(type));
    } else {
        where nested;
        if (snprintf(nested.path, sizeof nested.path, "%s.supervisor", path) >=
            (int)sizeof nested.path)
            return fail(err, errlen, path, NULL, "nested too deep");
        if ((rc = check_tree(sup, &nested, depth + 1, err, errlen)))
            return rc;
    }
    int restart = TR_RESTART_PERMANENT;
    if ((rc = check_word(c, "restart", tr__sup_json_restarts, &restart, path, err, errlen)))
        return rc;
    const json_t *sd = json_object_get(c, "shutdown");
    if (sd && !(json_is_integer(sd) && json_integer_value(sd) > 0) &&
        !(json_is_string(sd) && (strcmp(json_string_value(sd), "infinity") == 0 ||
                                 strcmp(json_string_value(sd), "brutal_kill") == 0)))
        return fail(err, errlen, path, "shutdown",
                    "expected a positive integer, \"infinity\" or \"brutal_kill\"");
    const json_t *sig = json_object_get(c, "significant");
    if (sig && !json_is_boolean(sig))
        return fail(err, errlen, path, "significant", "expected true or false");
    if (json_is_true(sig) && restart == TR_RESTART_PERMANENT)
        return fail(err, errlen, path, "significant",
                    "a permanent child cannot be significant (make it transient or temporary)");
    if ((rc = check_label(c, "name", path, err, errlen)))
        return rc;
    if (dynamic && json_object_get(c, "name"))
        return fail(err, errlen, path, "name",
                    "simple_one_for_one children cannot be named (they would share the name)");
    if ((rc = check_int(c, "capacity", 1, (json_int_t)(SIZE_MAX > INT64_MAX ? INT64_MAX : SIZE_MAX),
                        "a positive integer", path, err, errlen)))
        return rc;
    int overflow = 0;
    if ((rc = check_word(c, "overflow", tr__sup_json_overflows, &overflow, path, err, errlen)))
        return rc;
    if (sup && json_object_get(c, "args"))
        return fail(err, errlen, path, "args", "only a \"type\" child takes args");
    return 0;
}

static const char *const tree_keys[] = {"strategy",      "intensity", "period_ms", "auto_shutdown",
                                        "kill_grace_ms", "children",  NULL};

static int check_tree(const json_t *t, const where *w, int depth, char *err, size_t errlen) {
    const char *path = w->path;
    if (depth > 32) /* bounds the recursion on a hostile document */
        return fail(err, errlen, path, NULL, "supervisors nested more than 32 deep");
    if (!json_is_object(t))
        return fail(err, errlen, path, NULL, "expected an object");
    int rc = check_keys(t, tree_keys, path, err, errlen);
    if (rc)
        return rc;
    int strategy = TR_SUP_ONE_FOR_ONE, autoshut = 0;
    if ((rc = check_word(t, "strategy", tr__sup_json_strategies, &strategy, path, err, errlen)) ||
        (rc = check_int(t, "intensity", 0, INT_MAX, "a non-negative integer", path, err, errlen)) ||
        (rc = check_int(t, "period_ms", 1, INT64_MAX / 1000000, "a positive integer", path, err,
                        errlen)) ||
        (rc = check_word(t, "auto_shutdown", tr__sup_json_autoshut, &autoshut, path, err,
                         errlen)) ||
        (rc = check_int(t, "kill_grace_ms", 1, INT64_MAX / 1000000, "a positive integer", path,
                        err, errlen)))
        return rc;
    const json_t *kids = json_object_get(t, "children");
    if (kids && !json_is_array(kids))
        return fail(err, errlen, path, "children", "expected an array");
    size_t n = json_array_size(kids);
    bool dynamic = strategy == TR_SUP_DYNAMIC;
    if (dynamic && n != 1)
        return fail(err, errlen, path, "children",
                    "simple_one_for_one needs exactly one child (the template), got %zu", n);
    if (dynamic && autoshut != TR_AUTO_SHUTDOWN_NEVER)
        return fail(err, errlen, path, "auto_shutdown",
                    "must be never for simple_one_for_one (as in OTP)");
    for (size_t i = 0; i < n; i++) {
        char cpath[512];
        if (snprintf(cpath, sizeof cpath, "%s%schildren[%zu]", path, *path ? "." : "", i) >=
            (int)sizeof cpath)
            return fail(err, errlen, path, NULL, "nested too deep");
        if ((rc = check_child(json_array_get(kids, i), cpath, dynamic, depth, err, errlen)))
            return rc;
        /* Unique ids among siblings: quadratic, but trees written by hand
         * are small, and a sorted copy would cost an allocation that can
         * fail. */
        const char *id = json_string_value(json_object_get(json_array_get(kids, i), "id"));
        for (size_t j = 0; id && !dynamic && j < i; j++) {
            const char *other = json_string_value(json_object_get(json_array_get(kids, j), "id"));
            if (other && strcmp(other, id) == 0)
                return fail(err, errlen, cpath, "id", "\"%s\" is used twice", id);
        }
    }
    return 0;
}

int tr_sup_check_json(const json_t *tree, char *err, size_t errlen) {
    if (err && errlen)
        err[0] = '\0';
    if (!tree)
        return fail(err, errlen, "", NULL, "no document (NULL)");
    where w = {.path = ""};
    return check_tree(tree, &w, 0, err, errlen);
}
