/* kvd_proto.h — kvd's wire protocol: one JSON object per line each way.
 *
 * Why JSON lines: a person can talk to the daemon with nc, a test can
 * check replies with a string compare, and every language has a JSON
 * parser.  Framing is the newline, so a request never needs a length
 * prefix and a client can pipeline: write many lines, then read as many
 * replies, which come back in order.
 *
 * Requests (one per line; "id", optional and of any JSON type, is echoed
 * in the reply so that a pipelining client can match them up):
 *
 *   {"cmd":"set","key":"k","value":<any JSON>}   -> {"ok":true,"replaced":false}
 *   {"cmd":"get","key":"k"}                      -> {"ok":true,"value":<the JSON>}
 *   {"cmd":"delete","key":"k"}                   -> {"ok":true}
 *   {"cmd":"stats"}                              -> {"ok":true,"value":<tree dump>}
 *
 * Errors are replies too, and the connection stays up:
 *
 *   {"ok":false,"error":"not found"}                      get/delete of an absent key
 *   {"ok":false,"error":"line longer than 4096 bytes"}    max_line exceeded
 *   {"ok":false,"error":"not JSON: <reason> at column N"}
 *   {"ok":false,"error":"request is not a JSON object"}
 *   {"ok":false,"error":"cmd: missing"} / "cmd: unknown command \"x\""
 *   {"ok":false,"error":"key: missing"} / "key: expected a string"
 *   {"ok":false,"error":"value: missing"}
 *   {"ok":false,"error":"too many connections"}   then the server closes
 *   {"ok":false,"error":"shutting down"}          a request read while the
 *                                                  daemon could no longer serve it
 *
 * Rules: max_line counts the bytes before the '\n' (a '\r' before it is
 * dropped, but counted); a line of only blanks is skipped without a
 * reply; other members of a request are ignored; keys are strings of
 * up to max_line bytes without NUL; replies are compact JSON, "ok"
 * first, "id" last.  The stats value is tr_sup_dump of the root
 * supervisor: the whole tree, with states, restart counts and mailbox
 * depths.
 */
#ifndef KVD_PROTO_H
#define KVD_PROTO_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

enum kvd_cmd { KVD_CMD_GET = 0, KVD_CMD_SET, KVD_CMD_DELETE, KVD_CMD_STATS };

typedef struct kvd_request {
    int cmd;       /* enum kvd_cmd */
    json_t *key;   /* a JSON string (get, set, delete); owned */
    json_t *value; /* set; owned */
    json_t *id;    /* echoed; NULL when absent; owned */
} kvd_request;

/* Parses one line (without its '\n').  Returns 1 with *rq filled, 0 for
 * a blank line (nothing to answer), -1 for a bad request: err says why
 * and rq->id is set when the line was an object with an "id" (so the
 * error reply can echo it).  Call kvd_request_clear after 1 and -1. */
int kvd_request_parse(const char *line, size_t len, kvd_request *rq, char *err, size_t errlen);
void kvd_request_clear(kvd_request *rq);

/* A growing byte buffer for the replies of one batch of requests. */
typedef struct kvd_buf {
    char *data;
    size_t len, cap;
} kvd_buf;

/* Appends n bytes.  Returns 0 or -1 (out of memory: the buffer keeps
 * what it had). */
int kvd_buf_append(kvd_buf *b, const void *p, size_t n);
void kvd_buf_free(kvd_buf *b);

/* Append one reply line.  ok: {"ok":true[,"value":v][,<extra members>][,"id":id]}
 * (value, extra and id may be NULL; extra is an object whose members are
 * added).  error: {"ok":false,"error":"<printf>"[,"id":id]}.  Return 0 or -1
 * (out of memory). */
int kvd_reply_ok(kvd_buf *out, const json_t *id, json_t *value, json_t *extra);
int kvd_reply_error(kvd_buf *out, const json_t *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
