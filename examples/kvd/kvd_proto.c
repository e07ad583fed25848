/* kvd_proto.c — parsing requests and formatting replies (see kvd_proto.h).
 *
 * Why a separate file: the protocol is pure (bytes in, objects out, no
 * actors, no sockets), so it is the part of the daemon that is easiest to
 * read and to check, and the connection actor stays about I/O.
 *
 * Trade-offs: requests are parsed with jansson into a tree and the parts
 * kept by reference (the key and value go to a shard as they are, with
 * no copy); replies are built as a small object and dumped compact
 * straight into the batch buffer through json_dump_callback, so a reply
 * costs one object, no intermediate string.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvd_proto.h"

static bool blank(const char *p, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return false;
    return true;
}

static int bad(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

int kvd_request_parse(const char *line, size_t len, kvd_request *rq, char *err, size_t errlen) {
    memset(rq, 0, sizeof *rq);
    if (blank(line, len))
        return 0;
    json_error_t je;
    /* JSON_DISABLE_EOF_CHECK off: "{} x" is an error, one object per line. */
    json_t *doc = json_loadb(line, len, JSON_DECODE_ANY, &je);
    if (!doc)
        return bad(err, errlen, "not JSON: %s at column %d", je.text, je.column);
    int rc = -1;
    if (!json_is_object(doc)) {
        bad(err, errlen, "request is not a JSON object");
        goto out;
    }
    json_t *id = json_object_get(doc, "id");
    if (id)
        rq->id = json_incref(id);
    json_t *cmd = json_object_get(doc, "cmd");
    if (!cmd) {
        bad(err, errlen, "cmd: missing");
        goto out;
    }
    if (!json_is_string(cmd)) {
        bad(err, errlen, "cmd: expected a string");
        goto out;
    }
    const char *c = json_string_value(cmd);
    if (strcmp(c, "get") == 0)
        rq->cmd = KVD_CMD_GET;
    else if (strcmp(c, "set") == 0)
        rq->cmd = KVD_CMD_SET;
    else if (strcmp(c, "delete") == 0)
        rq->cmd = KVD_CMD_DELETE;
    else if (strcmp(c, "stats") == 0)
        rq->cmd = KVD_CMD_STATS;
    else {
        /* %.64s: the error must stay a short line whatever was sent. */
        bad(err, errlen, "cmd: unknown command \"%.64s\"", c);
        goto out;
    }
    if (rq->cmd != KVD_CMD_STATS) {
        json_t *key = json_object_get(doc, "key");
        if (!key) {
            bad(err, errlen, "key: missing");
            goto out;
        }
        /* A key with a NUL inside could not be a C string in the shard. */
        if (!json_is_string(key) || strlen(json_string_value(key)) != json_string_length(key)) {
            bad(err, errlen, "key: expected a string");
            goto out;
        }
        rq->key = json_incref(key);
    }
    if (rq->cmd == KVD_CMD_SET) {
        json_t *value = json_object_get(doc, "value");
        if (!value) {
            bad(err, errlen, "value: missing");
            goto out;
        }
        rq->value = json_incref(value);
    }
    rc = 1;
out:
    json_decref(doc);
    return rc;
}

void kvd_request_clear(kvd_request *rq) {
    json_decref(rq->key);
    json_decref(rq->value);
    json_decref(rq->id);
    memset(rq, 0, sizeof *rq);
}

int kvd_buf_append(kvd_buf *b, const void *p, size_t n) {
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void kvd_buf_free(kvd_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

static int dump_cb(const char *p, size_t n, void *ctx) { return kvd_buf_append(ctx, p, n); }

/* Dumps obj and a newline into out, all or nothing. */
static int emit(kvd_buf *out, json_t *obj) {
    if (!obj)
        return -1;
    size_t mark = out->len;
    int rc = json_dump_callback(obj, dump_cb, out, JSON_COMPACT);
    if (rc == 0)
        rc = kvd_buf_append(out, "\n", 1);
    if (rc != 0)
        out->len = mark;
    json_decref(obj);
    return rc;
}

int kvd_reply_ok(kvd_buf *out, const json_t *id, json_t *value, json_t *extra) {
    json_t *o = json_object();
    if (!o)
        return -1;
    int rc = json_object_set_new(o, "ok", json_true());
    if (rc == 0 && value)
        rc = json_object_set(o, "value", value);
    if (rc == 0 && extra)
        rc = json_object_update(o, extra);
    if (rc == 0 && id)
        rc = json_object_set(o, "id", (json_t *)id);
    if (rc != 0) {
        json_decref(o);
        return -1;
    }
    return emit(out, o);
}

int kvd_reply_error(kvd_buf *out, const json_t *id, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *o = json_object();
    if (!o)
        return -1;
    /* json_string refuses invalid UTF-8 (a truncated multibyte key in the
     * message); fall back to a message that is plain ASCII. */
    json_t *m = json_string(msg);
    if (!m)
        m = json_string("bad request");
    int rc = json_object_set_new(o, "ok", json_false());
    if (rc == 0)
        rc = json_object_set_new(o, "error", m);
    else
        json_decref(m);
    if (rc == 0 && id)
        rc = json_object_set(o, "id", (json_t *)id);
    if (rc != 0) {
        json_decref(o);
        return -1;
    }
    return emit(out, o);
}
