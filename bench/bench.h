/* bench.h — what the benchmark files of troupe-bench share.
 *
 * troupe-bench.c is the driver (options, the result line, one runtime per
 * bench); each bench_*.c file holds one family of benches as task bodies
 * that fill a bench_out.  See troupe-bench.c for the line form.
 */
#ifndef TR_BENCH_H
#define TR_BENCH_H

#include <stddef.h>
#include <stdint.h>

enum skynet_mode { SKY_LOCAL, SKY_SPREAD, SKY_BALANCED };

typedef struct bench_opts {
    int workers;          /* -1: the bench's default */
    enum skynet_mode sky;
    size_t stack;
    int stats;
    int spread;           /* channel benches: --place=spread */
} bench_opts;

extern bench_opts opt;

typedef struct {
    uint64_t n;
    int64_t ns;
    int ok;
    char extra[256]; /* extra k=v fields for the result line */
} bench_out;

/* Appends to the string in buf, truncating at cap. */
void append(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Task bodies: arg is a bench_out * with n set; they fill ns, ok, extra. */
void *switch_body(void *p);
void *spawn_body(void *p);
void *skynet_body(void *p);
void *mpsc_1p1c_body(void *p);
void *mpsc_4p1c_body(void *p);
void *pingpong_body(void *p);
void *broadcast_fanout_body(void *p);
void *watch_updates_body(void *p);
void *mutex_uncontended_body(void *p);
void *mutex_contended_body(void *p);
void *semaphore_10_body(void *p);
void *semaphore_5_body(void *p);
void *notify_one_body(void *p);
void *select4_body(void *p);
void *actor_pingpong_body(void *p);
void *count_body(void *p);
void *threadring_body(void *p);
void *actor_memory_body(void *p);
void *fork_join_create_body(void *p);
void *sup_restart_body(void *p), *sup_shutdown_body(void *p); /* bench_sup.c */
void *kvd_body(void *p);
void skynet_setup(void);
int skynet_n_ok(uint64_t n); /* a power of 10 that fits a word */
extern const char *const skynet_mode_names[];

/* kvd_client.c: the load the kvd bench and bench/kvd-client drive.  From
 * a task: `clients` connections to host:port share `requests`
 * request/reply round trips (get_ratio of them gets, the rest sets); on
 * return done, errors, ns (wall time) and lat_ns (the sum of round trip
 * times) are set.  Returns 0, TR_EINVAL, TR_ENOMEM or a spawn error. */
typedef struct kvd_load {
    const char *host;
    int port;
    int clients;
    uint64_t requests;
    double get_ratio;
    uint64_t done, errors;
    int64_t ns, lat_ns;
    char first_error[200];
} kvd_load;
int kvd_load_run(kvd_load *l);

#endif
