/* pipeline.c — the seeds' pipeline: fetch stage → parse stage → store stage.
 *
 * Three stages joined by two bounded channels of capacity 32.  Each stage
 * is a loop "receive, work, send on"; when a stage's input closes (its
 * sender is dropped at the end of the stage before it), it drops its own
 * sender, so the end of input ripples down the pipeline and the last stage
 * — the main task — sees TR_ECLOSED and stops.  Values are plain structs
 * copied into the channels' slots: no allocation per item.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <troupe.h>

typedef struct {
    char url[48];
    char body[96];
} raw_page;

typedef struct {
    char url[48];
    int words;
} parsed_page;

static const char *const urls[] = {
    "https://example.org/a", "https://example.org/b", "https://example.org/c",
    "https://example.org/d", "https://example.org/e", "https://example.org/f",
};
#define NURLS (sizeof urls / sizeof urls[0])

/* Stage 1: "fetch" each URL (a short sleep stands for the network). */
static void *fetcher(void *arg) {
    tr_mpsc_tx *out = arg;
    for (size_t i = 0; i < NURLS; i++) {
        raw_page page;
        snprintf(page.url, sizeof page.url, "%s", urls[i]);
        snprintf(page.body, sizeof page.body, "page %zu has %zu short words in it", i, i + 6);
        tr_sleep_ms(2);
        if (tr_mpsc_send(out, &page, TR_NEVER) != 0)
            break;
    }
    tr_mpsc_tx_drop(&out); /* closes the parser's input once it drains */
    return NULL;
}

/* Stage 2: parse — count the words of each body. */
typedef struct {
    tr_mpsc_rx *in;
    tr_mpsc_tx *out;
} parser_ends;

static void *parser(void *arg) {
    parser_ends *p = arg;
    raw_page raw;
    while (tr_mpsc_recv(p->in, &raw, TR_NEVER) == 0) {
        parsed_page parsed;
        memcpy(parsed.url, raw.url, sizeof parsed.url);
        parsed.words = 0;
        for (const char *s = raw.body; *s; s++)
            if (*s != ' ' && (s == raw.body || s[-1] == ' '))
                parsed.words++;
        if (tr_mpsc_send(p->out, &parsed, TR_NEVER) != 0)
            break;
    }
    tr_mpsc_rx_drop(&p->in);
    tr_mpsc_tx_drop(&p->out);
    return NULL;
}

/* Stage 3, in the main task: store. */
static void *main_task(void *arg) {
    (void)arg;
    tr_mpsc_tx *fetch_tx, *parse_tx;
    tr_mpsc_rx *fetch_rx, *parse_rx;
    if (tr_mpsc_new(&fetch_tx, &fetch_rx, 32, sizeof(raw_page)) != 0 ||
        tr_mpsc_new(&parse_tx, &parse_rx, 32, sizeof(parsed_page)) != 0)
        return (void *)1;
    parser_ends ends = {fetch_rx, parse_tx};
    tr_task *stage1, *stage2;
    tr_spawn(&stage1, fetcher, fetch_tx);
    tr_spawn(&stage2, parser, &ends);

    size_t stored = 0;
    parsed_page page;
    while (tr_mpsc_recv(parse_rx, &page, TR_NEVER) == 0) {
        printf("stored %-24s %d words\n", page.url, page.words);
        stored++;
    }
    tr_mpsc_rx_drop(&parse_rx);
    tr_task_join(stage1, NULL); /* `ends` lives in this frame: wait for its user */
    tr_task_join(stage2, NULL);
    printf("pipeline drained: %zu of %zu pages stored\n", stored, NURLS);
    return (void *)(intptr_t)(stored == NURLS ? 0 : 1);
}

int main(void) {
    tr_runtime *rt;
    if (tr_runtime_new(&rt, NULL) != 0)
        return 1;
    void *status = NULL;
    int rc = tr_runtime_block_on(rt, main_task, NULL, &status);
    tr_runtime_free(&rt);
    return rc == 0 && status == NULL ? 0 : 1;
}
