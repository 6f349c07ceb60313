/* CLIP's byte-level BPE tokenizer (METHODS.md §2): loading the merges, splitting cleaned text
 * with CLIP's pattern and merging each piece by rank. Read-only after load, so threads may
 * share one tokenizer. */
#include "inspectd/tokenizer.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "clip/unicode.h"

#define N_MERGES 48894
#define N_VOCAB (512 + N_MERGES + 2) // 49408: bytes, bytes + "</w>", merges, SOT, EOT
#define MAX_VOCAB_TEXT (64u << 20)   // more than this before line 48,895 is not a vocabulary

static const char SOT_TEXT[] = "<start_of_text>";
static const char EOT_TEXT[] = "<end_of_text>";

typedef struct pair_entry {
    uint64_t key;   /* left id << 32 | right id; EMPTY_PAIR when the slot is free */
    int32_t rank;   /* order of the merge in the file: lower merges first */
    int32_t merged; /* id of left + right */
} pair_entry;

#define EMPTY_PAIR UINT64_MAX

struct insp_tokenizer {
    char **vocab;            /* [N_VOCAB] NUL-terminated entries in id order, in arena */
    char *arena;
    int32_t *str_slots;      /* [str_cap] string → id table, -1 = free; a repeated string
                                keeps its last id, as Python's dict(zip(vocab, ids)) does */
    size_t str_cap;
    pair_entry *pair_slots;  /* [pair_cap] (left, right) → rank and merged id */
    size_t pair_cap;
    int32_t byte_sym[256];   /* id of byte b's symbol inside a word */
    int32_t byte_end[256];   /* id of byte b's symbol ending a word ("</w>" appended) */
};

/* ---- hash tables -------------------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; // FNV-1a
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t hash_pair(uint64_t x)
{
    x ^= x >> 33; // splitmix64's finaliser
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* The slot holding s[n] or the free slot where it would go. */
static size_t str_slot(const insp_tokenizer *t, const char *s, size_t n)
{
    size_t mask = t->str_cap - 1, i = (size_t)hash_bytes(s, n) & mask;
    for (;;) {
        int32_t id = t->str_slots[i];
        if (id < 0)
            return i;
        const char *v = t->vocab[id];
        if (strncmp(v, s, n) == 0 && v[n] == '\0')
            return i;
        i = (i + 1) & mask;
    }
}

static int32_t str_lookup(const insp_tokenizer *t, const char *s, size_t n)
{
    return t->str_slots[str_slot(t, s, n)];
}

static const pair_entry *pair_lookup(const insp_tokenizer *t, int32_t left, int32_t right)
{
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t mask = t->pair_cap - 1, i = (size_t)hash_pair(key) & mask;
    for (;;) {
        const pair_entry *e = &t->pair_slots[i];
        if (e->key == key)
            return e;
        if (e->key == EMPTY_PAIR)
            return NULL;
        i = (i + 1) & mask;
    }
}

static void pair_insert(insp_tokenizer *t, int32_t left, int32_t right, int32_t rank,
                        int32_t merged)
{
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t mask = t->pair_cap - 1, i = (size_t)hash_pair(key) & mask;
    while (t->pair_slots[i].key != EMPTY_PAIR && t->pair_slots[i].key != key)
        i = (i + 1) & mask;
    // a repeated merge keeps its last rank, as Python's dict(zip(merges, ranks)) does
    t->pair_slots[i] = (pair_entry){key, rank, merged};
}

/* ---- loading ------------------------------------------------------------------------ */

/* GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others for 256 + n in
 * byte order. order[i] is the byte whose symbol has vocabulary position i. */
static void byte_table(uint32_t cp_of_byte[256], uint8_t order[256])
{
    int n = 0, extra = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        if (printable) {
            cp_of_byte[b] = (uint32_t)b;
            order[n++] = (uint8_t)b;
        }
    }
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        if (!printable) {
            cp_of_byte[b] = 256u + (uint32_t)extra++;
            order[n++] = (uint8_t)b;
        }
    }
}

/* Reads path (gzip or plain; zlib passes plain files through) up to the end of merge line
 * N_MERGES into a malloc'ed, NUL-terminated buffer. */
static int read_vocab_text(const char *path, char **out, size_t *out_len, insp_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        return insp_error_set(err, e == ENOENT ? INSP_ERR_NOT_FOUND : INSP_ERR_IO,
                              "BPE vocabulary %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode))
        return insp_error_set(err, INSP_ERR_IO, "BPE vocabulary %s: not a regular file", path);
    gzFile f = gzopen(path, "rb");
    if (!f)
        return insp_error_set(err, INSP_ERR_IO, "BPE vocabulary %s: cannot open: %s", path,
                              errno ? strerror(errno) : "out of memory");

    size_t cap = 1u << 20, len = 0, lines = 0;
    char *buf = malloc(cap + 1);
    int status = INSP_OK;
    if (!buf) {
        status = insp_error_set(err, INSP_ERR_NOMEM, "BPE vocabulary %s: out of memory", path);
        goto done;
    }
    while (lines <= N_MERGES) {
        if (len == cap) {
            if (cap >= MAX_VOCAB_TEXT) {
                status = insp_error_set(err, INSP_ERR_FORMAT,
                                        "BPE vocabulary %s: fewer than %d lines in its first "
                                        "%u MiB", path, N_MERGES + 1, MAX_VOCAB_TEXT >> 20);
                goto done;
            }
            char *grown = realloc(buf, 2 * cap + 1);
            if (!grown) {
                status = insp_error_set(err, INSP_ERR_NOMEM, "BPE vocabulary %s: out of memory",
                                        path);
                goto done;
            }
            buf = grown;
            cap *= 2;
        }
        size_t want = cap - len < (1u << 20) ? cap - len : (1u << 20);
        int got = gzread(f, buf + len, (unsigned)want);
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            status = insp_error_set(err, INSP_ERR_FORMAT, "BPE vocabulary %s: %s", path,
                                    zerr == Z_ERRNO ? strerror(errno) : msg);
            goto done;
        }
        if (got == 0)
            break;
        for (size_t i = len; i < len + (size_t)got; i++) {
            if (buf[i] == '\n' && ++lines > N_MERGES) {
                len = i; // keep lines 0 .. N_MERGES, without the final '\n'
                break;
            }
        }
        if (lines > N_MERGES)
            break;
        len += (size_t)got;
    }
    buf[len] = '\0';
done:
    gzclose(f);
    if (status != INSP_OK) {
        free(buf);
        return status;
    }
    *out = buf;
    *out_len = len;
    return INSP_OK;
}

static bool is_field_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Splits one merge line "left right" in place; false unless it has exactly two fields. */
static bool split_merge(char *line, char **left, size_t *nl, char **right, size_t *nr)
{
    char *p = line;
    char *fields[2];
    size_t lens[2];
    int k = 0;
    for (;;) {
        while (*p && is_field_space(*p))
            p++;
        if (!*p)
            break;
        if (k == 2)
            return false;
        fields[k] = p;
        while (*p && !is_field_space(*p))
            p++;
        lens[k] = (size_t)(p - fields[k]);
        k++;
    }
    if (k != 2)
        return false;
    *left = fields[0], *nl = lens[0];
    *right = fields[1], *nr = lens[1];
    return true;
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 1;
    while (c < n)
        c <<= 1;
    return c;
}

int insp_tokenizer_load(const char *path, insp_tokenizer **out, insp_error *err)
{
    if (!out)
        return insp_error_set(err, INSP_ERR_INVALID, "tokenizer: no output pointer");
    *out = NULL;
    if (!path || !*path)
        return insp_error_set(err, INSP_ERR_INVALID, "tokenizer: no vocabulary path given");

    char *text = NULL;
    size_t len = 0;
    int status = read_vocab_text(path, &text, &len, err);
    if (status != INSP_OK)
        return status;

    // The merges are compared as bytes; insisting on UTF-8 keeps a damaged file from being
    // taken for a vocabulary.
    uint32_t *cps = malloc((len ? len : 1) * sizeof *cps);
    size_t n_cps;
    if (!cps) {
        free(text);
        return insp_error_set(err, INSP_ERR_NOMEM, "BPE vocabulary %s: out of memory", path);
    }
    status = insp_utf8_decode(text, len, cps, &n_cps, err);
    free(cps);
    if (status != INSP_OK) {
        free(text);
        return insp_error_prefix(err, "BPE vocabulary %s: ", path);
    }

    insp_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        free(text);
        return insp_error_set(err, INSP_ERR_NOMEM, "BPE vocabulary %s: out of memory", path);
    }
    t->str_cap = pow2_at_least(2 * N_VOCAB);
    t->pair_cap = pow2_at_least(2 * N_MERGES);
    // base symbols take ≤ 2 bytes (+ "</w>" + NUL); a merge entry fits in its line
    size_t arena_size = 256 * 3 + 256 * 7 + len + 1 + sizeof SOT_TEXT + sizeof EOT_TEXT;
    t->vocab = malloc(N_VOCAB * sizeof *t->vocab);
    t->arena = malloc(arena_size);
    t->str_slots = malloc(t->str_cap * sizeof *t->str_slots);
    t->pair_slots = malloc(t->pair_cap * sizeof *t->pair_slots);
    if (!t->vocab || !t->arena || !t->str_slots || !t->pair_slots) {
        free(text);
        insp_tokenizer_free(t);
        return insp_error_set(err, INSP_ERR_NOMEM, "BPE vocabulary %s: out of memory", path);
    }
    memset(t->str_slots, 0xff, t->str_cap * sizeof *t->str_slots);
    for (size_t i = 0; i < t->pair_cap; i++)
        t->pair_slots[i].key = EMPTY_PAIR;

    // Header line: both the gzipped original and the hub's merges.txt carry "#version".
    char *line = text, *nl = strchr(line, '\n');
    if (!nl || !memmem(line, (size_t)(nl - line), "#version", 8)) {
        free(text);
        insp_tokenizer_free(t);
        return insp_error_set(err, INSP_ERR_FORMAT,
                              "BPE vocabulary %s: first line is not a \"#version\" header",
                              path);
    }

    // Merge lines 1 .. N_MERGES, split in place; the entries are laid out in id order below.
    char **lefts = malloc(N_MERGES * sizeof *lefts), **rights = malloc(N_MERGES * sizeof *rights);
    size_t *lens = malloc(2 * N_MERGES * sizeof *lens);
    if (!lefts || !rights || !lens) {
        free(lefts), free(rights), free(lens), free(text);
        insp_tokenizer_free(t);
        return insp_error_set(err, INSP_ERR_NOMEM, "BPE vocabulary %s: out of memory", path);
    }
    int n_merges = 0;
    line = nl + 1;
    while (n_merges < N_MERGES && line <= text + len) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        else if (!*line)
            break; // the file's final newline, not an empty merge
        if (!split_merge(line, &lefts[n_merges], &lens[2 * n_merges], &rights[n_merges],
                         &lens[2 * n_merges + 1])) {
            status = insp_error_set(err, INSP_ERR_FORMAT,
                                    "BPE vocabulary %s: line %d is not a merge \"left right\"",
                                    path, n_merges + 2);
            break;
        }
        n_merges++;
        if (!nl)
            break;
        line = nl + 1;
    }
    if (status == INSP_OK && n_merges < N_MERGES)
        status = insp_error_set(err, INSP_ERR_FORMAT,
                                "BPE vocabulary %s: %d merges, expected at least %d", path,
                                n_merges, N_MERGES);
    if (status != INSP_OK) {
        free(lefts), free(rights), free(lens), free(text);
        insp_tokenizer_free(t);
        return status;
    }

    uint32_t cp_of_byte[256];
    uint8_t order[256];
    byte_table(cp_of_byte, order);
    char *a = t->arena;
    int32_t id = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 256; i++) {
            unsigned char u[4];
            int k = insp_utf8_encode(cp_of_byte[order[i]], u);
            t->vocab[id++] = a;
            memcpy(a, u, (size_t)k);
            a += k;
            if (pass == 1) {
                memcpy(a, "</w>", 4);
                a += 4;
            }
            *a++ = '\0';
        }
    }
    for (int r = 0; r < N_MERGES; r++) {
        t->vocab[id++] = a;
        memcpy(a, lefts[r], lens[2 * r]);
        a += lens[2 * r];
        memcpy(a, rights[r], lens[2 * r + 1]);
        a += lens[2 * r + 1];
        *a++ = '\0';
    }
    t->vocab[id++] = a;
    memcpy(a, SOT_TEXT, sizeof SOT_TEXT);
    a += sizeof SOT_TEXT;
    t->vocab[id++] = a;
    memcpy(a, EOT_TEXT, sizeof EOT_TEXT);

    for (int32_t i = 0; i < N_VOCAB; i++)
        t->str_slots[str_slot(t, t->vocab[i], strlen(t->vocab[i]))] = i;
    for (int i = 0; i < 256; i++) {
        t->byte_sym[order[i]] = str_lookup(t, t->vocab[i], strlen(t->vocab[i]));
        t->byte_end[order[i]] = str_lookup(t, t->vocab[256 + i], strlen(t->vocab[256 + i]));
    }
    // A merge whose halves are not vocabulary entries can never apply: every symbol of a word
    // is an entry, so such a pair is simply left out.
    for (int r = 0; r < N_MERGES; r++) {
        int32_t l = str_lookup(t, lefts[r], lens[2 * r]);
        int32_t rr = str_lookup(t, rights[r], lens[2 * r + 1]);
        const char *m = t->vocab[512 + r];
        if (l >= 0 && rr >= 0)
            pair_insert(t, l, rr, r, str_lookup(t, m, strlen(m)));
    }
    free(lefts), free(rights), free(lens), free(text);
    *out = t;
    return INSP_OK;
}

void insp_tokenizer_free(insp_tokenizer *t)
{
    if (!t)
        return;
    free(t->vocab);
    free(t->arena);
    free(t->str_slots);
    free(t->pair_slots);
    free(t);
}

const char *insp_tokenizer_token(const insp_tokenizer *t, int32_t id)
{
    if (!t || id < 0 || id >= N_VOCAB)
        return NULL;
    return t->vocab[id];
}

/* ---- finding the vocabulary --------------------------------------------------------- */

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int insp_tokenizer_find(const char *model_dir, char *path, size_t path_size, insp_error *err)
{
    if (!path || path_size == 0)
        return insp_error_set(err, INSP_ERR_INVALID, "tokenizer: no buffer for the path");
    path[0] = '\0';
    const char *env = getenv("INSPECTD_BPE");
    const char *cands[5];
    char *owned[2] = {NULL, NULL};
    int n = 0;
    if (env && *env)
        cands[n++] = env;
    if (model_dir && *model_dir) {
        if (asprintf(&owned[0], "%s/bpe_simple_vocab_16e6.txt.gz", model_dir) < 0)
            owned[0] = NULL;
        if (asprintf(&owned[1], "%s/merges.txt", model_dir) < 0)
            owned[1] = NULL;
        if (!owned[0] || !owned[1]) {
            free(owned[0]), free(owned[1]);
            return insp_error_set(err, INSP_ERR_NOMEM, "tokenizer: out of memory");
        }
        cands[n++] = owned[0];
        cands[n++] = owned[1];
    }
    cands[n++] = "weights/bpe_simple_vocab_16e6.txt.gz";
    cands[n++] = "../shared/clip-bpe/bpe_simple_vocab_16e6.txt.gz";

    int status = INSP_ERR_NOT_FOUND;
    for (int i = 0; i < n && status == INSP_ERR_NOT_FOUND; i++) {
        if (!is_file(cands[i]))
            continue;
        size_t len = strlen(cands[i]);
        if (len >= path_size)
            status = insp_error_set(err, INSP_ERR_INVALID,
                                    "tokenizer: path %s does not fit in %zu bytes", cands[i],
                                    path_size);
        else {
            memcpy(path, cands[i], len + 1);
            status = INSP_OK;
        }
    }
    if (status == INSP_ERR_NOT_FOUND) {
        char looked[400];
        size_t used = 0;
        looked[0] = '\0';
        if (!(env && *env))
            used = (size_t)snprintf(looked, sizeof looked, "$INSPECTD_BPE (unset)");
        for (int i = 0; i < n && used < sizeof looked; i++)
            used += (size_t)snprintf(looked + used, sizeof looked - used, "%s%s",
                                     used ? ", " : "", cands[i]);
        insp_error_set(err, INSP_ERR_NOT_FOUND,
                       "BPE vocabulary bpe_simple_vocab_16e6.txt.gz not found; looked at %s "
                       "(weights/fetch downloads it)", looked);
    }
    free(owned[0]), free(owned[1]);
    return status;
}

/* ---- BPE ---------------------------------------------------------------------------- */

typedef struct bpe_node {
    int32_t id;
    int32_t prev, next; /* neighbours in the word, -1 at its ends */
    uint32_t ver;       /* bumped whenever the node's symbol changes or it is merged away */
} bpe_node;

typedef struct bpe_cand {
    int32_t rank, merged;
    int32_t left, right; /* node indices = positions in the piece: order by position */
    uint32_t lver, rver; /* the nodes' versions when pushed; stale when they differ */
} bpe_cand;

/* Scratch of one encode call, grown to the longest piece seen. */
typedef struct bpe_work {
    unsigned char *bytes; /* [cap] */
    bpe_node *nodes;      /* [cap] */
    bpe_cand *heap;       /* [3 cap]: n-1 initial pairs + 2 per merge */
    bpe_cand *batch;      /* [3 cap] */
    size_t cap, n_heap;
} bpe_work;

static bool work_reserve(bpe_work *w, size_t n)
{
    if (n <= w->cap)
        return true;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < n)
        cap *= 2;
    unsigned char *bytes = realloc(w->bytes, cap);
    if (bytes)
        w->bytes = bytes;
    bpe_node *nodes = realloc(w->nodes, cap * sizeof *nodes);
    if (nodes)
        w->nodes = nodes;
    bpe_cand *heap = realloc(w->heap, 3 * cap * sizeof *heap);
    if (heap)
        w->heap = heap;
    bpe_cand *batch = realloc(w->batch, 3 * cap * sizeof *batch);
    if (batch)
        w->batch = batch;
    if (!bytes || !nodes || !heap || !batch)
        return false;
    w->cap = cap;
    return true;
}

static void work_free(bpe_work *w)
{
    free(w->bytes);
    free(w->nodes);
    free(w->heap);
    free(w->batch);
}

static bool cand_before(const bpe_cand *a, const bpe_cand *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(bpe_work *w, bpe_cand c)
{
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_before(&c, &w->heap[p]))
            break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = c;
}

static bpe_cand heap_pop(bpe_work *w)
{
    bpe_cand top = w->heap[0], last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && cand_before(&w->heap[c + 1], &w->heap[c]))
            c++;
        if (!cand_before(&w->heap[c], &last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n > 0)
        w->heap[i] = last;
    return top;
}

static void push_pair(const insp_tokenizer *t, bpe_work *w, int32_t l, int32_t r)
{
    const pair_entry *e = pair_lookup(t, w->nodes[l].id, w->nodes[r].id);
    if (e)
        heap_push(w, (bpe_cand){e->rank, e->merged, l, r, w->nodes[l].ver, w->nodes[r].ver});
}

/* Merges the m bytes of w->bytes as CLIP does: take the lowest-ranked adjacent pair, merge
 * every occurrence of it left to right, repeat. Appends the ids to out[*n_out .. limit). */
static void bpe_piece(const insp_tokenizer *t, bpe_work *w, size_t m, int32_t *out,
                      int *n_out, int limit)
{
    bpe_node *nd = w->nodes;
    for (size_t i = 0; i < m; i++) {
        unsigned char b = w->bytes[i];
        nd[i] = (bpe_node){i + 1 == m ? t->byte_end[b] : t->byte_sym[b], (int32_t)i - 1,
                           i + 1 == m ? -1 : (int32_t)i + 1, 0};
    }
    w->n_heap = 0;
    for (size_t i = 0; i + 1 < m; i++)
        push_pair(t, w, (int32_t)i, (int32_t)i + 1);

    while (w->n_heap > 0) {
        // All candidates of the lowest rank are one pair's occurrences; taking them out
        // before merging keeps pairs formed by this round's merges for later rounds.
        int32_t rank = w->heap[0].rank;
        size_t nb = 0;
        while (w->n_heap > 0 && w->heap[0].rank == rank)
            w->batch[nb++] = heap_pop(w);
        for (size_t k = 0; k < nb; k++) {
            const bpe_cand *c = &w->batch[k];
            bpe_node *l = &nd[c->left], *r = &nd[c->right];
            if (l->ver != c->lver || r->ver != c->rver)
                continue; // overlapped by a merge to its left, or already changed
            l->id = c->merged;
            l->ver++;
            r->ver++;
            l->next = r->next;
            if (l->next >= 0)
                nd[l->next].prev = c->left;
            if (l->prev >= 0)
                push_pair(t, w, l->prev, c->left);
            if (l->next >= 0)
                push_pair(t, w, c->left, l->next);
        }
    }
    for (int32_t i = 0; i >= 0 && *n_out < limit; i = nd[i].next)
        out[(*n_out)++] = nd[i].id;
}

/* ---- splitting ---------------------------------------------------------------------- */

/* The split pattern is case-insensitive; after lower-casing only ſ still folds onto one of
 * its ASCII letters. */
static uint32_t fold(uint32_t c)
{
    return c == 0x17F ? 's' : c;
}

static bool match_ascii(const uint32_t *s, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    if (k > n)
        return false;
    for (size_t i = 0; i < k; i++)
        if (fold(s[i]) != (unsigned char)lit[i])
            return false;
    return true;
}

static bool match_exact(const uint32_t *s, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    if (k > n)
        return false;
    for (size_t i = 0; i < k; i++)
        if (s[i] != (unsigned char)lit[i])
            return false;
    return true;
}

/* Length of the match of CLIP's pattern
 * <start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * at s[0] (not whitespace); *special gets the id when the piece is a special token. */
static size_t next_piece(const uint32_t *s, size_t n, int32_t *special)
{
    *special = -1;
    if (match_ascii(s, n, SOT_TEXT)) {
        if (match_exact(s, n, SOT_TEXT))
            *special = INSP_TOKEN_SOT;
        return sizeof SOT_TEXT - 1;
    }
    if (match_ascii(s, n, EOT_TEXT)) {
        if (match_exact(s, n, EOT_TEXT))
            *special = INSP_TOKEN_EOT;
        return sizeof EOT_TEXT - 1;
    }
    static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    for (size_t i = 0; i < sizeof contractions / sizeof contractions[0]; i++)
        if (match_ascii(s, n, contractions[i]))
            return strlen(contractions[i]);
    size_t k = 1;
    if (insp_uc_is_letter(s[0])) {
        while (k < n && insp_uc_is_letter(s[k]))
            k++;
    } else if (!insp_uc_is_number(s[0])) {
        while (k < n && !insp_uc_is_space(s[k]) && !insp_uc_is_letter(s[k]) &&
               !insp_uc_is_number(s[k]))
            k++;
    }
    return k;
}

int insp_tokenizer_encode(const insp_tokenizer *tok, const char *text, int32_t *ids,
                          int context_length, insp_error *err)
{
    if (!tok || !text || !ids)
        return insp_error_set(err, INSP_ERR_INVALID, "tokenizer: NULL argument to encode");
    if (context_length < 2)
        return insp_error_set(err, INSP_ERR_INVALID,
                              "tokenizer: context length %d leaves no room for SOT and EOT",
                              context_length);
    memset(ids, 0, (size_t)context_length * sizeof *ids);

    size_t len = strlen(text), n_raw, n;
    uint32_t *raw = malloc((len ? len : 1) * sizeof *raw), *s = NULL;
    if (!raw)
        return insp_error_set(err, INSP_ERR_NOMEM, "tokenizer: no memory for %zu bytes of text",
                              len);
    int status = insp_utf8_decode(text, len, raw, &n_raw, err);
    if (status == INSP_OK)
        status = insp_clip_clean(raw, n_raw, &s, &n, err);
    free(raw);
    if (status != INSP_OK)
        return status;

    // Pieces are independent, so the ones past the cut never need merging.
    int limit = context_length - 2, count = 0;
    int32_t *body = ids + 1;
    bpe_work w = {0};
    size_t i = 0;
    while (i < n && count < limit) {
        if (insp_uc_is_space(s[i])) {
            i++;
            continue;
        }
        int32_t special;
        size_t k = next_piece(s + i, n - i, &special);
        if (special >= 0) {
            body[count++] = special;
            i += k;
            continue;
        }
        if (!work_reserve(&w, 4 * k)) {
            status = insp_error_set(err, INSP_ERR_NOMEM,
                                    "tokenizer: no memory for a %zu-character word", k);
            break;
        }
        size_t m = 0;
        for (size_t j = 0; j < k; j++)
            m += (size_t)insp_utf8_encode(s[i + j], w.bytes + m);
        bpe_piece(tok, &w, m, body, &count, limit);
        i += k;
    }
    work_free(&w);
    free(s);
    if (status != INSP_OK) {
        memset(ids, 0, (size_t)context_length * sizeof *ids);
        return status;
    }
    ids[0] = INSP_TOKEN_SOT;
    ids[1 + count] = INSP_TOKEN_EOT;
    return count + 2;
}
