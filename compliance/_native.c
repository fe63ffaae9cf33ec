/* Optional C accelerator: an Aho-Corasick automaton over code points that can read its text
 * through a translate table in the same pass.
 *
 * ``Automaton(keys)`` answers ``find(text, overlapping=True)`` exactly as the ahocorasick-rs
 * backend does (every overlapping occurrence as ``(key_index, start, end)`` in code points, by end
 * position, the longest key first at each end). ``find_translated(text, table)`` gives what
 * ``find(text.translate(mapping))`` would give, with the table's deletions and replacements applied
 * character by character during the scan, and returns ``(hits, translated_length)``: a clean line
 * costs one call, with no translated copy made.
 *
 * ``Table(mapping)`` wraps a translate list (``list[int | None]``, as str.translate takes: an int
 * replaces, None deletes, code points past the list's end are kept) as a flat array.
 * ``Table.translate(text)`` is ``text.translate(mapping)``.
 *
 * ``jieba_spans(text, freq, total)`` is ``tuple((s, e) for _w, s, e in
 * tokenizer.tokenize(text, HMM=False))`` for a jieba 0.42 tokenizer whose prefix dictionary is
 * ``freq`` and whose total is ``total``: the same blocks, DAG, route (the same floating-point
 * sums, in the same order) and merging of single Latin letters and digits, without a Python
 * frame per character.
 *
 * The module is optional: livestream_compliance.matcher falls back to ahocorasick-rs when it was
 * not built (no C compiler at install time), and the segmenter to jieba itself. Tests hold both to
 * identical results.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <structmember.h> /* T_OBJECT_EX, READONLY (SlotMaker) */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ROOT_N 0x20000u /* dense root transitions below this code point */
#define DELETED 0xFFFFFFFFu
#define EMPTY UINT64_MAX

/* 0 when ``text`` is a str and ``ready`` (the object's storage) is set; else -1 with the error set */
static int
text_arg(PyObject *text, const void *ready, const char *what)
{
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "text must be a str, not %s", Py_TYPE(text)->tp_name);
        return -1;
    }
    if (ready == NULL) {
        PyErr_Format(PyExc_ValueError, "%s was not initialised", what);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ Table */

typedef struct {
    PyObject_HEAD
    uint32_t *map; /* code point -> replacement, DELETED; length n */
    Py_ssize_t n;
    int identity_ascii; /* no ASCII code point is changed (a fast path for pure-ASCII runs) */
} TableObject;

static void
Table_dealloc(TableObject *self)
{
    PyMem_Free(self->map);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
Table_init(TableObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *mapping;
    static char *kwlist[] = {"mapping", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O", kwlist, &mapping))
        return -1;
    PyObject *seq = PySequence_Fast(mapping, "Table() takes a list of int or None");
    if (seq == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > 0x110000) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "a translate table has at most 0x110000 entries");
        return -1;
    }
    uint32_t *map = PyMem_Malloc(sizeof(uint32_t) * (size_t)(n ? n : 1));
    if (map == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = items[i];
        if (v == Py_None) {
            map[i] = DELETED;
            continue;
        }
        long c = PyLong_AsLong(v);
        if (c == -1 && PyErr_Occurred()) {
            PyMem_Free(map);
            Py_DECREF(seq);
            PyErr_Format(PyExc_TypeError, "translate table entry %zd must be an int or None", i);
            return -1;
        }
        if (c < 0 || c > 0x10FFFF) {
            PyMem_Free(map);
            Py_DECREF(seq);
            PyErr_Format(PyExc_ValueError, "translate table entry %zd is not a code point", i);
            return -1;
        }
        map[i] = (uint32_t)c;
    }
    Py_DECREF(seq);
    PyMem_Free(self->map);
    self->map = map;
    self->n = n;
    self->identity_ascii = 1;
    for (Py_ssize_t i = 0; i < n && i < 128; i++)
        if (map[i] != (uint32_t)i)
            self->identity_ascii = 0;
    return 0;
}

static inline uint32_t
table_get(const TableObject *t, uint32_t c)
{
    return (Py_ssize_t)c < t->n ? t->map[c] : c;
}

static PyObject *
Table_translate(TableObject *self, PyObject *text)
{
    if (text_arg(text, self->map, "Table") < 0)
        return NULL;
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_UCS4 *buf = PyMem_Malloc(sizeof(Py_UCS4) * (size_t)(len ? len : 1));
    if (buf == NULL)
        return PyErr_NoMemory();
    Py_ssize_t j = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        uint32_t c = table_get(self, PyUnicode_READ(kind, data, i));
        if (c != DELETED)
            buf[j++] = c;
    }
    PyObject *out = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buf, j);
    PyMem_Free(buf);
    return out;
}

static PyObject *
Table_deleted(TableObject *self, PyObject *text)
{
    if (text_arg(text, self->map, "Table") < 0)
        return NULL;
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < len; i++) {
        if (table_get(self, PyUnicode_READ(kind, data, i)) == DELETED) {
            PyObject *v = PyLong_FromSsize_t(i);
            if (v == NULL || PyList_Append(out, v) < 0) {
                Py_XDECREF(v);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(v);
        }
    }
    return out;
}

/* normalize.offset_map(text, mapping) for the mapping the table was made from: the index in
 * ``text`` of each character the table keeps, then len(text) */
static PyObject *
Table_kept(TableObject *self, PyObject *text)
{
    if (text_arg(text, self->map, "Table") < 0)
        return NULL;
    Py_ssize_t len = PyUnicode_GET_LENGTH(text), n = 0;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *out = PyList_New(len + 1);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i <= len; i++) {
        if (i < len && table_get(self, PyUnicode_READ(kind, data, i)) == DELETED)
            continue;
        PyObject *v = PyLong_FromSsize_t(i);
        if (v == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, n++, v);
    }
    Py_SET_SIZE(out, n); /* the slots past n were never filled */
    return out;
}

static PyMethodDef Table_methods[] = {
    {"translate", (PyCFunction)Table_translate, METH_O, "text.translate(mapping), in one C pass"},
    {"deleted", (PyCFunction)Table_deleted, METH_O, "indexes of the characters of text the table deletes"},
    {"kept", (PyCFunction)Table_kept, METH_O, "indexes of the characters of text the table keeps, then len(text)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "livestream_compliance._native.Table",
    .tp_basicsize = sizeof(TableObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A translate list (int or None per code point) as a flat array.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Table_init,
    .tp_dealloc = (destructor)Table_dealloc,
    .tp_methods = Table_methods,
};

/* ------------------------------------------------------------------ Automaton */

/* one transition of the build's table: key and target in one 16-byte slot */
typedef struct {
    uint64_t key;
    int32_t val;
    int32_t unused;
} Slot;

/* An open-addressing table of Slots (a power of two of them, at least twice the keys), keyed by a
 * multiplicative hash: the automaton's transitions while it is built, the model's n-grams */
typedef struct {
    Slot *slots;
    uint64_t mask;
    int shift;
} SlotTable;

/* The slot holding ``k``, or the empty one where it would go */
static inline Slot *
slot_find(const SlotTable *t, uint64_t k)
{
    uint64_t i = (k * 0x9E3779B97F4A7C15ull) >> t->shift;
    while (t->slots[i].key != k && t->slots[i].key != EMPTY)
        i = (i + 1) & t->mask;
    return &t->slots[i];
}

static inline int32_t
slot_get(const SlotTable *t, uint64_t k)
{
    const Slot *slot = slot_find(t, k);
    return slot->key == k ? slot->val : -1;
}

static inline void
slot_put(SlotTable *t, uint64_t k, int32_t v)
{
    Slot *slot = slot_find(t, k);
    slot->key = k;
    slot->val = v;
}

/* ``t`` with room for ``n`` keys, all slots empty: 0, or -1 (out of memory, no error set) */
static int
slot_table_init(SlotTable *t, size_t n)
{
    size_t cap = 1024;
    int shift = 64 - 10;
    while (cap < 2 * n) {
        cap <<= 1;
        shift--;
    }
    t->slots = PyMem_RawMalloc(sizeof(Slot) * cap); /* raw: may be called without the interpreter lock */
    if (t->slots == NULL)
        return -1;
    memset(t->slots, 0xFF, sizeof(Slot) * cap);
    t->mask = cap - 1;
    t->shift = shift;
    return 0;
}

/* one outgoing transition of a state with several: the code point and the target */
typedef struct {
    uint32_t c;
    int32_t t;
} Edge;

#define NO_CHILD 0xFFFFFFFFu /* State.c: no transition */
#define MANY 0xFFFFFFFEu     /* State.c: several transitions, at edges[x] */
#define HASHED 0x80000000u   /* an edge-list header: an open-addressing table of (mask + 1) edges */
#define LINEAR_MAX 6         /* up to this many edges are searched in order */
#define DENSE_N 128u         /* dense rows cover the code points below this (ASCII) */
#define DENSE_DEPTH 2        /* states this deep or shallower, reached by ASCII only, get a dense row */
#define DENSE_MAX 4096       /* at most this many rows (~2 MB at most) */

/* What a scan reads of a state at every character, in one 16-byte record. The states are numbered
 * breadth-first and the edge lists laid out in that order, so the shallow states a scan keeps
 * returning to, and their transitions, sit together in memory (a hash table keyed by state and
 * code point spread them over the whole table: a cache miss a character on large automata). */
typedef struct {
    uint64_t mask; /* a bit per child's code point (see bit_of): no bit, no child, no edge list read */
    uint32_t c;    /* the only child's code point, NO_CHILD, or MANY */
    int32_t x;     /* the only child, or where the edge list starts in edges (a header, then the edges) */
    int32_t fail;  /* failure link */
    int32_t first; /* the first state of its output chain (itself or dict), -1 if no key ends here */
    int32_t dense; /* its row in the automaton's dense ASCII transitions, or -1 (see dense_rows) */
    int32_t unused; /* a 32-byte record: two to a cache line */
} State;

typedef struct {
    PyObject_HEAD
    Py_ssize_t nstates;
    Py_ssize_t nkeys;
    Py_ssize_t nedges;
    State *states;
    Edge *edges;      /* the edge lists of the states with several children (the root: those >= ROOT_N) */
    int32_t *out;     /* first key ending exactly at this state, -1 if none */
    int32_t *dict;    /* nearest state on the failure chain with a key, -1 if none */
    int32_t *keynext; /* next key (ascending index) with the same spelling, -1 if none */
    int32_t *keylen;  /* length of each key in code points */
    int32_t *root;    /* dense transitions of the root for code points < ROOT_N, -1 if none */
    int32_t *dense;   /* per dense row, a transition per class of code point below DENSE_N (see dense_rows) */
    int32_t *rowstate; /* per dense row, its state */
    Py_ssize_t ndense; /* rows in dense */
    int32_t ndcls;     /* classes of the code points below DENSE_N: a row's length */
    uint8_t dcls[DENSE_N]; /* per code point below DENSE_N, its class (0: in no key) */
    SlotTable build;  /* during the build only: the transitions keyed (state << 21 | code point) */
    PyObject *weakreflist;
} AutomatonObject;

/* During the build: the transition from ``state`` on ``c``, or -1 */
static inline int32_t
go(const AutomatonObject *a, int32_t state, uint32_t c)
{
    if (state == 0 && c < ROOT_N)
        return a->root[c];
    return slot_get(&a->build, ((uint64_t)state << 21) | c);
}

static inline uint32_t
edge_hash(uint32_t c)
{
    uint32_t h = c * 0x9E3779B1u;
    return h ^ (h >> 15);
}

static inline uint64_t
bit_of(uint32_t c)
{
    return 1ull << ((c * 0x9E3779B1u) >> 26);
}

/* The transition of a state with several children on ``c``, or -1 */
static inline int32_t
edge_get(const Edge *list, uint32_t c)
{
    uint32_t head = list[0].c;
    const Edge *e = list + 1;
    if (!(head & HASHED)) {
        for (uint32_t i = 0; i < head; i++)
            if (e[i].c == c)
                return e[i].t;
        return -1;
    }
    uint32_t mask = head & ~HASHED;
    for (uint32_t i = edge_hash(c) & mask;; i = (i + 1) & mask) {
        if (e[i].c == c)
            return e[i].t;
        if (e[i].c == NO_CHILD)
            return -1;
    }
}

/* The state after reading ``c`` in state ``s`` (following failure links). */
static inline int32_t
step(const AutomatonObject *a, int32_t s, uint32_t c)
{
    for (;;) {
        const State *st = &a->states[s];
        if (c < DENSE_N && st->dense >= 0) { /* a dense row: the answer, failure links followed */
            int32_t v = a->dense[(size_t)st->dense * (size_t)a->ndcls + a->dcls[c]];
            return v >= 0 ? v : a->rowstate[(uint32_t)~v >> 1];
        }
        if (s == 0) {
            int32_t t = c < ROOT_N ? a->root[c] : st->c == c ? st->x : st->c == MANY ? edge_get(a->edges + st->x, c) : -1;
            return t < 0 ? 0 : t;
        }
        if (st->c == c)
            return st->x;
        if (st->c == MANY && (st->mask & bit_of(c))) {
            int32_t t = edge_get(a->edges + st->x, c);
            if (t >= 0)
                return t;
        }
        s = st->fail;
    }
}

static void
Automaton_free_arrays(AutomatonObject *self)
{
    PyMem_RawFree(self->states); /* the raw allocator: built without the interpreter lock */
    PyMem_RawFree(self->out);
    PyMem_RawFree(self->dict);
    PyMem_RawFree(self->keynext);
    PyMem_RawFree(self->keylen);
    PyMem_RawFree(self->root);
    PyMem_RawFree(self->build.slots);
    PyMem_RawFree(self->edges);
    PyMem_RawFree(self->dense);
    PyMem_RawFree(self->rowstate);
    self->dense = self->rowstate = NULL;
    self->ndense = 0;
    self->states = NULL;
    self->out = self->dict = self->keynext = self->keylen = self->root = NULL;
    self->build.slots = NULL;
    self->edges = NULL;
}

static void
Automaton_dealloc(AutomatonObject *self)
{
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    Automaton_free_arrays(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The child of state ``s`` on ``c`` (no failure link followed), or -1 */
static inline int32_t
child_of(const AutomatonObject *a, int32_t s, uint32_t c)
{
    const State *st = &a->states[s];
    if (s == 0 && c < ROOT_N)
        return a->root[c];
    if (st->c == c)
        return st->x;
    if (st->c == MANY && (st->mask & bit_of(c)))
        return edge_get(a->edges + st->x, c);
    return -1;
}

/* Dense rows: for the root and the states reached from it by at most DENSE_DEPTH ASCII characters
 * (the states a run of Latin letters and digits keeps returning to), every transition on a code
 * point below DENSE_N with the failure links already followed: one load a character instead of a
 * walk down the failure chain with its unpredictable branches (the houbb shape's 100 random ASCII
 * characters a line). A row holds one transition per class of those code points (each code point
 * some key holds is a class; the others, which lead every state to the root, share class 0), so
 * the rows stay small (~36 KB for the default packs). A transition is the next state's id where
 * that state has no row, else ~(row << 1 | a key ends there): a run of characters within the rows
 * reads nothing else. At most DENSE_MAX rows. 0, or -1 out of memory; the states' ``dense`` must
 * all be -1 before. */
static int
dense_rows(AutomatonObject *b)
{
    /* the classes: every code point below DENSE_N that is a child's code point somewhere */
    uint8_t seen[DENSE_N];
    memset(seen, 0, sizeof seen);
    for (uint32_t c = 0; c < DENSE_N; c++)
        if (b->root[c] >= 0)
            seen[c] = 1;
    for (Py_ssize_t t = 0; t < b->nstates; t++) {
        const State *st = &b->states[t];
        if (st->c < DENSE_N)
            seen[st->c] = 1;
        else if (st->c == MANY) {
            const Edge *list = b->edges + st->x;
            uint32_t head = list[0].c, m = head & HASHED ? (head & ~HASHED) + 1 : head;
            for (uint32_t e = 0; e < m; e++)
                if (list[1 + e].c < DENSE_N)
                    seen[list[1 + e].c] = 1;
        }
    }
    int32_t ncls = 1;
    for (uint32_t c = 0; c < DENSE_N; c++)
        b->dcls[c] = seen[c] ? (uint8_t)ncls++ : 0;
    uint32_t rep[DENSE_N + 1]; /* a code point of each class (class 0: one in no key, if any) */
    rep[0] = DENSE_N;
    for (uint32_t c = 0; c < DENSE_N; c++) {
        if (b->dcls[c])
            rep[b->dcls[c]] = c;
        else if (rep[0] == DENSE_N)
            rep[0] = c;
    }
    b->ndcls = ncls;
    int32_t *rows = PyMem_RawMalloc(sizeof(int32_t) * DENSE_MAX);
    if (rows == NULL)
        return -1;
    Py_ssize_t nrows = 0, from = 0;
    rows[nrows++] = 0;
    for (int d = 0; d < DENSE_DEPTH; d++) {
        Py_ssize_t to = nrows;
        for (Py_ssize_t r = from; r < to; r++)
            for (int32_t k = 1; k < ncls; k++) {
                int32_t t = child_of(b, rows[r], rep[k]);
                if (t > 0 && nrows < DENSE_MAX)
                    rows[nrows++] = t;
            }
        from = to;
    }
    b->dense = PyMem_RawMalloc(sizeof(int32_t) * (size_t)ncls * (size_t)nrows);
    if (b->dense == NULL) {
        PyMem_RawFree(rows);
        return -1;
    }
    for (Py_ssize_t r = 0; r < nrows; r++)
        for (int32_t k = 0; k < ncls; k++) /* no row is in use yet: step follows the failure links */
            b->dense[(size_t)r * (size_t)ncls + (size_t)k] = rep[k] < DENSE_N ? step(b, rows[r], rep[k]) : 0;
    for (Py_ssize_t r = 0; r < nrows; r++)
        b->states[rows[r]].dense = (int32_t)r;
    for (size_t e = 0; e < (size_t)nrows * (size_t)ncls; e++) {
        int32_t t = b->dense[e], row = b->states[t].dense;
        if (row >= 0)
            b->dense[e] = ~(int32_t)((uint32_t)row << 1 | (b->states[t].first >= 0));
    }
    b->rowstate = rows;
    b->ndense = nrows;
    return 0;
}

/* Build the automaton of ``nkeys`` keys (``items``, non-empty str) into ``b``'s arrays, which must
 * be NULL. Runs without the interpreter lock: it reads only the keys' (immutable) character data,
 * which the caller keeps alive, and allocates with the raw allocator. 0, -1 (out of memory) or -2
 * (an inconsistent trie); on failure ``b``'s arrays are freed by the caller. */
static int
automaton_build(AutomatonObject *b, PyObject *const *items, Py_ssize_t nkeys, size_t total)
{
    int rc = 0;
    b->nkeys = nkeys;
    /* the trie, in the build's table: per state its failure link, output and parent; one entry per
     * character read (at most one new state each), shrunk once the states are made */
    int32_t *fail = PyMem_RawMalloc(sizeof(int32_t) * total);
    int32_t *out = PyMem_RawMalloc(sizeof(int32_t) * total);
    int32_t *dict = PyMem_RawMalloc(sizeof(int32_t) * total);
    int32_t *parent = PyMem_RawMalloc(sizeof(int32_t) * total);
    uint32_t *pchar = PyMem_RawMalloc(sizeof(uint32_t) * total);
    int32_t *depth = PyMem_RawMalloc(sizeof(int32_t) * total);
    int32_t *keylast = PyMem_RawMalloc(sizeof(int32_t) * total); /* last key in a state's chain */
    int32_t *nkids = NULL, *kid0 = NULL, *order = NULL, *newid = NULL;
    Edge *adj = NULL;
    b->keynext = PyMem_RawMalloc(sizeof(int32_t) * (size_t)(nkeys ? nkeys : 1));
    b->keylen = PyMem_RawMalloc(sizeof(int32_t) * (size_t)(nkeys ? nkeys : 1));
    b->root = PyMem_RawMalloc(sizeof(int32_t) * ROOT_N);
    if (!fail || !out || !dict || !parent || !pchar || !depth || !keylast || !b->keynext || !b->keylen ||
        !b->root || slot_table_init(&b->build, total) < 0) /* room for every character a new state */
        goto nomemory;
    memset(b->root, 0xFF, sizeof(int32_t) * ROOT_N);
    int32_t n = 1;
    out[0] = -1;
    keylast[0] = -1;
    depth[0] = 0;
    parent[0] = -1;
    pchar[0] = 0;
    for (Py_ssize_t k = 0; k < nkeys; k++) {
        PyObject *key = items[k];
        Py_ssize_t len = PyUnicode_GET_LENGTH(key);
        int kind = PyUnicode_KIND(key);
        const void *data = PyUnicode_DATA(key);
        int32_t st = 0;
        for (Py_ssize_t i = 0; i < len; i++) {
            uint32_t c = PyUnicode_READ(kind, data, i);
            int32_t t = go(b, st, c);
            if (t < 0) {
                t = n++;
                out[t] = -1;
                keylast[t] = -1;
                depth[t] = depth[st] + 1;
                parent[t] = st;
                pchar[t] = c;
                if (st == 0 && c < ROOT_N)
                    b->root[c] = t;
                else
                    slot_put(&b->build, ((uint64_t)st << 21) | c, t);
            }
            st = t;
        }
        b->keylen[k] = (int32_t)len;
        b->keynext[k] = -1;
        if (out[st] < 0)
            out[st] = (int32_t)k;
        else
            b->keynext[keylast[st]] = (int32_t)k;
        keylast[st] = (int32_t)k;
    }
    b->nstates = n;
    /* each state's children (but the root's dense ones) together: counted, then placed */
    nkids = PyMem_RawCalloc((size_t)n + 1, sizeof(int32_t));
    kid0 = PyMem_RawMalloc(sizeof(int32_t) * ((size_t)n + 1));
    adj = PyMem_RawMalloc(sizeof(Edge) * (size_t)n);
    order = keylast; /* reused: no longer needed */
    newid = depth;   /* reused once the failure links are made */
    if (!nkids || !kid0 || !adj)
        goto nomemory;
    for (int32_t t = 1; t < n; t++)
        if (!(parent[t] == 0 && pchar[t] < ROOT_N))
            nkids[parent[t]]++;
    kid0[0] = 0;
    for (int32_t t = 0; t < n; t++)
        kid0[t + 1] = kid0[t] + nkids[t];
    memset(nkids, 0, sizeof(int32_t) * (size_t)n);
    for (int32_t t = 1; t < n; t++)
        if (!(parent[t] == 0 && pchar[t] < ROOT_N)) {
            int32_t p = parent[t];
            adj[kid0[p] + nkids[p]].c = pchar[t];
            adj[kid0[p] + nkids[p]].t = t;
            nkids[p]++;
        }
    /* failure links in breadth-first order: states sorted by depth (counting sort) */
    {
        int32_t maxd = 0;
        for (int32_t t = 0; t < n; t++)
            if (depth[t] > maxd)
                maxd = depth[t];
        int32_t *count = PyMem_RawCalloc((size_t)maxd + 2, sizeof(int32_t));
        if (count == NULL)
            goto nomemory;
        for (int32_t t = 0; t < n; t++)
            count[depth[t] + 1]++;
        for (int32_t d = 1; d <= maxd + 1; d++)
            count[d] += count[d - 1];
        for (int32_t t = 0; t < n; t++)
            order[count[depth[t]]++] = t;
        PyMem_RawFree(count);
    }
    fail[0] = 0;
    dict[0] = -1;
    for (int32_t i = 1; i < n; i++) {
        int32_t t = order[i];
        int32_t p = parent[t];
        uint32_t c = pchar[t];
        int32_t f = 0;
        if (p != 0) {
            int32_t g = fail[p];
            for (;;) {
                int32_t x = go(b, g, c);
                if (x >= 0) {
                    f = x;
                    break;
                }
                if (g == 0)
                    break;
                g = fail[g];
            }
        }
        fail[t] = f;
        dict[t] = out[f] >= 0 ? f : dict[f];
    }
    PyMem_RawFree(b->build.slots);
    b->build.slots = NULL;
    /* the run-time layout: states renumbered in breadth-first order, siblings together (the root's
     * children by code point, then each state's in turn), edge lists in the same order */
    {
        int32_t next = 1;
        order[0] = 0;
        newid[0] = 0;
        for (uint32_t c = 0; c < ROOT_N; c++)
            if (b->root[c] >= 0) {
                order[next] = b->root[c];
                newid[b->root[c]] = next++;
            }
        for (int32_t i = 0; i < n; i++) {
            int32_t t = order[i];
            for (int32_t e = kid0[t]; e < kid0[t + 1]; e++) {
                order[next] = adj[e].t;
                newid[adj[e].t] = next++;
            }
        }
        if (next != n) {
            rc = -2;
            goto done;
        }
    }
    size_t nedges = 0;
    for (int32_t t = 0; t < n; t++) {
        int32_t k = nkids[t];
        if (k >= 2) {
            size_t cap = 1;
            while (cap < 2 * (size_t)k)
                cap <<= 1;
            nedges += 1 + (k <= LINEAR_MAX ? (size_t)k : cap);
        }
    }
    b->states = PyMem_RawMalloc(sizeof(State) * (size_t)n);
    b->out = PyMem_RawMalloc(sizeof(int32_t) * (size_t)n);
    b->dict = PyMem_RawMalloc(sizeof(int32_t) * (size_t)n);
    b->edges = PyMem_RawMalloc(sizeof(Edge) * (nedges ? nedges : 1));
    if (!b->states || !b->out || !b->dict || !b->edges)
        goto nomemory;
    b->nedges = (Py_ssize_t)nedges;
    size_t at = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t t = order[i], k = nkids[t];
        State *st = &b->states[i];
        const Edge *kids = adj + kid0[t];
        st->fail = newid[fail[t]];
        st->mask = 0;
        st->dense = -1;
        st->unused = 0;
        for (int32_t e = 0; e < k; e++)
            st->mask |= bit_of(kids[e].c);
        st->first = out[t] >= 0 ? i : dict[t] >= 0 ? newid[dict[t]] : -1;
        b->out[i] = out[t];
        b->dict[i] = dict[t] >= 0 ? newid[dict[t]] : -1;
        if (k == 0) {
            st->c = NO_CHILD;
            st->x = 0;
        }
        else if (k == 1) {
            st->c = kids[0].c;
            st->x = newid[kids[0].t];
        }
        else {
            st->c = MANY;
            st->x = (int32_t)at;
            Edge *list = b->edges + at;
            if (k <= LINEAR_MAX) {
                list[0].c = (uint32_t)k;
                list[0].t = 0;
                for (int32_t e = 0; e < k; e++) {
                    list[1 + e].c = kids[e].c;
                    list[1 + e].t = newid[kids[e].t];
                }
                at += 1 + (size_t)k;
            }
            else {
                uint32_t cap = 1;
                while (cap < 2 * (uint32_t)k)
                    cap <<= 1;
                list[0].c = HASHED | (cap - 1);
                list[0].t = 0;
                for (uint32_t e = 0; e < cap; e++) {
                    list[1 + e].c = NO_CHILD;
                    list[1 + e].t = -1;
                }
                for (int32_t e = 0; e < k; e++) {
                    uint32_t j = edge_hash(kids[e].c) & (cap - 1);
                    while (list[1 + j].c != NO_CHILD)
                        j = (j + 1) & (cap - 1);
                    list[1 + j].c = kids[e].c;
                    list[1 + j].t = newid[kids[e].t];
                }
                at += 1 + (size_t)cap;
            }
        }
    }
    for (uint32_t c = 0; c < ROOT_N; c++)
        if (b->root[c] >= 0)
            b->root[c] = newid[b->root[c]];
    if (dense_rows(b) < 0)
        goto nomemory;
    goto done;
nomemory:
    rc = -1;
done:
    PyMem_RawFree(fail);
    PyMem_RawFree(out);
    PyMem_RawFree(dict);
    PyMem_RawFree(parent);
    PyMem_RawFree(pchar);
    PyMem_RawFree(depth);
    PyMem_RawFree(keylast);
    PyMem_RawFree(nkids);
    PyMem_RawFree(kid0);
    PyMem_RawFree(adj);
    return rc;
}

static int
Automaton_init(AutomatonObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *keys_arg;
    static char *kwlist[] = {"keys", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O", kwlist, &keys_arg))
        return -1;
    /* a tuple of its own: no other thread can drop a key while the build runs without the lock */
    PyObject *seq = PySequence_Tuple(keys_arg);
    if (seq == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError, "Automaton() takes a sequence of str");
        }
        return -1;
    }
    Py_ssize_t nkeys = PyTuple_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    if (nkeys > INT32_MAX / 2) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "too many keys");
        return -1;
    }
    size_t total = 1;
    for (Py_ssize_t k = 0; k < nkeys; k++) {
        if (!PyUnicode_Check(items[k])) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_TypeError, "key %zd must be a str, not %s", k, Py_TYPE(items[k])->tp_name);
            return -1;
        }
        Py_ssize_t n = PyUnicode_GET_LENGTH(items[k]);
        if (n == 0) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_ValueError, "key %zd is empty", k);
            return -1;
        }
        total += (size_t)n;
    }
    if (total > (1u << 30)) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "keys too long in total");
        return -1;
    }
    /* built aside, without the interpreter lock (other threads run meanwhile: a server's event loop
     * during a reload, or the other automaton's build), then swapped in with the lock held, so that
     * no scan ever sees a half-built automaton */
    AutomatonObject b;
    memset(&b, 0, sizeof b);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = automaton_build(&b, items, nkeys, total);
    Py_END_ALLOW_THREADS
    Py_DECREF(seq);
    if (rc < 0) {
        Automaton_free_arrays(&b);
        if (rc == -1)
            PyErr_NoMemory();
        else
            PyErr_SetString(PyExc_SystemError, "Automaton: the trie's states are not all reachable");
        return -1;
    }
    Automaton_free_arrays(self);
    self->nstates = b.nstates;
    self->nkeys = b.nkeys;
    self->nedges = b.nedges;
    self->states = b.states;
    self->edges = b.edges;
    self->out = b.out;
    self->dict = b.dict;
    self->keynext = b.keynext;
    self->keylen = b.keylen;
    self->root = b.root;
    self->dense = b.dense;
    self->rowstate = b.rowstate;
    self->ndense = b.ndense;
    self->ndcls = b.ndcls;
    memcpy(self->dcls, b.dcls, sizeof self->dcls);
    self->build.slots = NULL;
    return 0;
}

/* Append the tuple of the ``n`` integers ``values`` to ``list``; -1 with the error set. */
static int
append_ints(PyObject *list, int n, const Py_ssize_t *values)
{
    PyObject *t = PyTuple_New(n);
    if (t == NULL)
        return -1;
    for (int i = 0; i < n; i++) {
        PyObject *v = PyLong_FromSsize_t(values[i]);
        if (v == NULL) {
            Py_DECREF(t);
            return -1;
        }
        PyTuple_SET_ITEM(t, i, v);
    }
    int r = PyList_Append(list, t);
    Py_DECREF(t);
    return r;
}

static inline int
append_hit(PyObject *list, long k, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t values[3] = {k, start, end};
    return append_ints(list, 3, values);
}

/* Append every key of the output chain from state ``s`` (a state where a key ends), each ending at
 * (translated) position ``end``. */
static inline int
report(const AutomatonObject *a, PyObject *hits, int32_t s, Py_ssize_t end)
{
    for (; s >= 0; s = a->dict[s])
        for (int32_t k = a->out[s]; k >= 0; k = a->keynext[k])
            if (append_hit(hits, k, end - a->keylen[k], end) < 0)
                return -1;
    return 0;
}

static PyObject *
scan(AutomatonObject *self, PyObject *text, TableObject *table, Py_ssize_t *translated)
{
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *hits = PyList_New(0);
    if (hits == NULL)
        return NULL;
    const State *states = self->states;
    int32_t s = 0;
    Py_ssize_t j = 0; /* position in the translated text */
    for (Py_ssize_t i = 0; i < len; i++) {
        uint32_t c = PyUnicode_READ(kind, data, i);
        if (table != NULL) {
            c = table_get(table, c);
            if (c == DELETED)
                continue;
        }
        j++;
        s = step(self, s, c);
        if (states[s].first >= 0 && report(self, hits, states[s].first, j) < 0) {
            Py_DECREF(hits);
            return NULL;
        }
    }
    *translated = j;
    return hits;
}

static PyObject *
Automaton_find(AutomatonObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "find(text, overlapping=True)");
        return NULL;
    }
    if (text_arg(args[0], self->states, "Automaton") < 0)
        return NULL;
    if (nargs == 2 && !PyObject_IsTrue(args[1])) {
        PyErr_SetString(PyExc_ValueError, "only overlapping matches are supported");
        return NULL;
    }
    Py_ssize_t n;
    return scan(self, args[0], NULL, &n);
}

static PyObject *
Automaton_find_translated(AutomatonObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "find_translated(text, table)");
        return NULL;
    }
    if (!PyObject_TypeCheck(args[1], &TableType)) {
        PyErr_SetString(PyExc_TypeError, "table must be a Table");
        return NULL;
    }
    if (text_arg(args[0], self->states, "Automaton") < 0 || text_arg(args[0], ((TableObject *)args[1])->map, "Table") < 0)
        return NULL;
    Py_ssize_t n;
    PyObject *hits = scan(self, args[0], (TableObject *)args[1], &n);
    if (hits == NULL)
        return NULL;
    PyObject *res = Py_BuildValue("(Nn)", hits, n);
    return res;
}

/* The set of key indexes found in ``text``, added in the order find() reports them (so the set is
 * the one ``{h[0] for h in find(text)}`` builds, iteration order included). */
static PyObject *
Automaton_find_keys(AutomatonObject *self, PyObject *text)
{
    if (text_arg(text, self->states, "Automaton") < 0)
        return NULL;
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *keys = PySet_New(NULL);
    if (keys == NULL)
        return NULL;
    int32_t s = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        uint32_t c = PyUnicode_READ(kind, data, i);
        s = step(self, s, c);
        for (int32_t o = self->states[s].first; o >= 0; o = self->dict[o]) {
            for (int32_t k = self->out[o]; k >= 0; k = self->keynext[k]) {
                PyObject *v = PyLong_FromLong(k);
                if (v == NULL || PySet_Add(keys, v) < 0) {
                    Py_XDECREF(v);
                    Py_DECREF(keys);
                    return NULL;
                }
                Py_DECREF(v);
            }
        }
    }
    return keys;
}

static PyObject *
Automaton_get_states(AutomatonObject *self, void *closure)
{
    return PyLong_FromSsize_t(self->nstates);
}

static PyObject *
Automaton_sizeof(AutomatonObject *self, PyObject *unused)
{
    size_t n = (size_t)self->nstates, k = (size_t)self->nkeys;
    size_t size = sizeof(AutomatonObject) + n * (sizeof(State) + 2 * sizeof(int32_t)) + k * 2 * sizeof(int32_t) +
                  ROOT_N * sizeof(int32_t) + (size_t)self->nedges * sizeof(Edge) +
                  (size_t)self->ndense * ((size_t)self->ndcls + 1) * sizeof(int32_t);
    return PyLong_FromSize_t(size);
}

static PyMethodDef Automaton_methods[] = {
    {"find", (PyCFunction)(void (*)(void))Automaton_find, METH_FASTCALL,
     "find(text, overlapping=True): every occurrence as (key_index, start, end)"},
    {"find_translated", (PyCFunction)(void (*)(void))Automaton_find_translated, METH_FASTCALL,
     "find_translated(text, table): (hits in text.translate(table), length of that text)"},
    {"find_keys", (PyCFunction)Automaton_find_keys, METH_O,
     "find_keys(text): the set {key_index for each occurrence}, built in find()'s order"},
    {"__sizeof__", (PyCFunction)Automaton_sizeof, METH_NOARGS, "memory held, in bytes"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Automaton_getset[] = {
    {"states", (getter)Automaton_get_states, NULL, "number of states", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject AutomatonType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "livestream_compliance._native.Automaton",
    .tp_basicsize = sizeof(AutomatonObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Aho-Corasick automaton over code points (overlapping matches).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Automaton_init,
    .tp_dealloc = (destructor)Automaton_dealloc,
    .tp_methods = Automaton_methods,
    .tp_getset = Automaton_getset,
    .tp_weaklistoffset = offsetof(AutomatonObject, weakreflist),
};

/* ------------------------------------------------------------------ FoldedScanner */

/* A scan over an automaton of *folded* keys (each character of a key replaced by one of the same
 * toneless pinyin), resolved in the same pass. ``FoldedScanner(automaton, norm, fold, keys, first,
 * more, long)``: ``norm`` normalises a code point, ``fold`` normalises and folds it (the two tables
 * delete the same code points); ``keys`` are the exact keys; folded key i resolves to
 * ``keys[first[i]]`` (none if ``first[i]`` < 0), else to the keys ``more.get(i, ())``, the first of
 * them spelt exactly at the hit; ``long`` lists the folded keys that also stand for long terms
 * spelt with same-pinyin characters.
 *
 * ``find(text)`` -> ``(hits, fold_hits, length)``: ``hits`` are ``(key_index, start, end)`` where the
 * normalised text spells ``key_index`` exactly (the first spelling of the folded hit that matches),
 * ``fold_hits`` the ``(folded_index, start, end)`` of folded keys marked long, both in the order the
 * automaton reports them, offsets in the normalised text, whose length is ``length``. */
typedef struct {
    PyObject_HEAD
    AutomatonObject *automaton;
    Py_ssize_t nfolded;
    int32_t *cand_first; /* per folded key: its first candidate; nfolded + 1 entries */
    int32_t *cand_key;   /* per candidate: key index */
    int32_t *cand_start; /* per candidate: offset of its spelling in pool */
    int32_t *cand_len;
    Py_UCS4 *pool;
    uint8_t *is_long;
    /* per code point below nnf: its normalised form (low half) and folded form (high half), from the
     * two tables given to __init__ (a copy: the tables themselves are not kept) */
    uint64_t *nf;
    Py_ssize_t nnf;
} FoldedScannerObject;

static void
FoldedScanner_free(FoldedScannerObject *self)
{
    Py_CLEAR(self->automaton);
    PyMem_Free(self->cand_first);
    PyMem_Free(self->cand_key);
    PyMem_Free(self->cand_start);
    PyMem_Free(self->cand_len);
    PyMem_Free(self->pool);
    PyMem_Free(self->is_long);
    PyMem_Free(self->nf);
    self->nf = NULL;
    self->nnf = 0;
    self->cand_first = self->cand_key = self->cand_start = self->cand_len = NULL;
    self->pool = NULL;
    self->is_long = NULL;
}

static void
FoldedScanner_dealloc(FoldedScannerObject *self)
{
    FoldedScanner_free(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Append the candidate (k, keys[k]) to the arrays being filled; -1 with the error set. */
static int
add_candidate(FoldedScannerObject *self, PyObject *keys, long k, Py_ssize_t *ci, Py_ssize_t *pi, Py_ssize_t *cap_c,
              Py_ssize_t *cap_p)
{
    if (k < 0 || k >= PyList_GET_SIZE(keys)) {
        PyErr_Format(PyExc_ValueError, "key index %ld out of range", k);
        return -1;
    }
    PyObject *sp = PyList_GET_ITEM(keys, k);
    if (!PyUnicode_Check(sp)) {
        PyErr_Format(PyExc_TypeError, "keys[%ld] must be a str", k);
        return -1;
    }
    Py_ssize_t len = PyUnicode_GET_LENGTH(sp);
    if (*ci == *cap_c) {
        *cap_c = *cap_c * 2 + 16;
        int32_t *ck = PyMem_Realloc(self->cand_key, sizeof(int32_t) * (size_t)*cap_c);
        if (ck != NULL)
            self->cand_key = ck;
        int32_t *cs = PyMem_Realloc(self->cand_start, sizeof(int32_t) * (size_t)*cap_c);
        if (cs != NULL)
            self->cand_start = cs;
        int32_t *cl = PyMem_Realloc(self->cand_len, sizeof(int32_t) * (size_t)*cap_c);
        if (cl != NULL)
            self->cand_len = cl;
        if (ck == NULL || cs == NULL || cl == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    while (*pi + len > *cap_p) {
        *cap_p = *cap_p * 2 + 64;
        Py_UCS4 *pool = PyMem_Realloc(self->pool, sizeof(Py_UCS4) * (size_t)*cap_p);
        if (pool == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->pool = pool;
    }
    if (PyUnicode_AsUCS4(sp, self->pool + *pi, len, 0) == NULL)
        return -1;
    self->cand_key[*ci] = (int32_t)k;
    self->cand_start[*ci] = (int32_t)*pi;
    self->cand_len[*ci] = (int32_t)len;
    (*ci)++;
    *pi += len;
    return 0;
}

static int
FoldedScanner_init(FoldedScannerObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *automaton, *norm, *fold, *keys, *first_arg, *more, *long_arg;
    static char *kwlist[] = {"automaton", "norm", "fold", "keys", "first", "more", "long", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!O!OO!O", kwlist, &AutomatonType, &automaton, &TableType, &norm,
                                     &TableType, &fold, &PyList_Type, &keys, &first_arg, &PyDict_Type, &more, &long_arg))
        return -1;
    AutomatonObject *a = (AutomatonObject *)automaton;
    TableObject *tn = (TableObject *)norm, *tf = (TableObject *)fold;
    if (a->states == NULL || tn->map == NULL || tf->map == NULL) {
        PyErr_SetString(PyExc_ValueError, "Automaton or Table was not initialised");
        return -1;
    }
    Py_ssize_t span = tn->n > tf->n ? tn->n : tf->n;
    for (Py_ssize_t c = 0; c < span; c++) {
        if ((table_get(tn, (uint32_t)c) == DELETED) != (table_get(tf, (uint32_t)c) == DELETED)) {
            PyErr_Format(PyExc_ValueError, "the tables disagree on deleting code point %zd", c);
            return -1;
        }
    }
    PyObject *first = PySequence_Fast(first_arg, "first must be a sequence of int");
    if (first == NULL)
        return -1;
    Py_ssize_t nf = PySequence_Fast_GET_SIZE(first);
    if (nf != a->nkeys) {
        Py_DECREF(first);
        PyErr_Format(PyExc_ValueError, "first needs one entry per key of the automaton (%zd), not %zd", a->nkeys, nf);
        return -1;
    }
    FoldedScanner_free(self);
    self->nfolded = nf;
    self->cand_first = PyMem_Malloc(sizeof(int32_t) * (size_t)(nf + 1));
    self->is_long = PyMem_Calloc((size_t)(nf ? nf : 1), 1);
    if (self->cand_first == NULL || self->is_long == NULL) {
        Py_DECREF(first);
        FoldedScanner_free(self);
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t ci = 0, pi = 0, cap_c = 0, cap_p = 0;
    for (Py_ssize_t fi = 0; fi < nf; fi++) {
        self->cand_first[fi] = (int32_t)ci;
        long k = PyLong_AsLong(PySequence_Fast_GET_ITEM(first, fi));
        if (k == -1 && PyErr_Occurred())
            goto fail;
        if (k < 0)
            continue; /* no key folds to it: only long terms */
        if (add_candidate(self, keys, k, &ci, &pi, &cap_c, &cap_p) < 0)
            goto fail;
        if (PyDict_GET_SIZE(more) == 0)
            continue;
        PyObject *fo = PyLong_FromSsize_t(fi);
        if (fo == NULL)
            goto fail;
        PyObject *others = PyDict_GetItemWithError(more, fo);
        Py_DECREF(fo);
        if (others == NULL) {
            if (PyErr_Occurred())
                goto fail;
            continue;
        }
        PyObject *seq = PySequence_Fast(others, "more's values must be sequences of int");
        if (seq == NULL)
            goto fail;
        for (Py_ssize_t j = 0; j < PySequence_Fast_GET_SIZE(seq); j++) {
            long k2 = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, j));
            if ((k2 == -1 && PyErr_Occurred()) || add_candidate(self, keys, k2, &ci, &pi, &cap_c, &cap_p) < 0) {
                Py_DECREF(seq);
                goto fail;
            }
        }
        Py_DECREF(seq);
    }
    self->cand_first[nf] = (int32_t)ci;
    Py_DECREF(first);
    first = NULL;
    PyObject *it = PyObject_GetIter(long_arg);
    if (it == NULL)
        goto fail;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        Py_ssize_t fi = PyLong_AsSsize_t(item);
        Py_DECREF(item);
        if (fi == -1 && PyErr_Occurred())
            break;
        if (fi < 0 || fi >= nf) {
            PyErr_Format(PyExc_ValueError, "long: folded key index %zd out of range", fi);
            break;
        }
        self->is_long[fi] = 1;
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        goto fail;
    self->nnf = span;
    self->nf = PyMem_Malloc(sizeof(uint64_t) * (size_t)(span ? span : 1));
    if (self->nf == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t c = 0; c < span; c++)
        self->nf[c] = (uint64_t)table_get(tn, (uint32_t)c) | (uint64_t)table_get(tf, (uint32_t)c) << 32;
    Py_INCREF(automaton);
    self->automaton = a;
    return 0;
fail:
    Py_XDECREF(first);
    FoldedScanner_free(self);
    return -1;
}

/* 1 when c is one of the sorted code points set[0..n), else 0 */
static inline int
in_sorted(const uint32_t *set, Py_ssize_t n, uint32_t c)
{
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (set[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && set[lo] == c;
}

/* One character of folded_scan: the loop's body, for each kind of text. ``nf`` gives the code point
 * normalised and folded in one load; within the dense rows (``row`` >= 0, an ASCII character) the
 * transition is one load of a small table, else step() walks the failure links. The macro is the
 * whole body of a for loop: ``continue`` (inside do/while(0)) ends this character. */
#define FOLDED_STEP(c)                                                                                              \
    do {                                                                                                            \
        uint32_t c_ = (c);                                                                                          \
        uint64_t v_ = (Py_ssize_t)c_ < nnf ? nf[c_] : ((uint64_t)c_ << 32 | c_);                                   \
        uint32_t n_ = (uint32_t)v_;                                                                                 \
        if (n_ == DELETED) {                                                                                        \
            if (nmarks && !*marked && in_sorted(marks, nmarks, c_))                                                 \
                *marked = 1;                                                                                        \
            continue;                                                                                               \
        }                                                                                                           \
        if (marks_all && nmarks && !*marked && in_sorted(marks, nmarks, c_))                                        \
            *marked = 1;                                                                                            \
        buf[j++] = n_;                                                                                              \
        uint32_t f_ = (uint32_t)(v_ >> 32);                                                                         \
        if (f_ < DENSE_N && row >= 0) {                                                                             \
            int32_t d_ = dense[(size_t)row * ncls + dcls[f_]];                                                      \
            if (d_ < 0) {                                                                                           \
                uint32_t u_ = ~(uint32_t)d_;                                                                        \
                row = (int32_t)(u_ >> 1);                                                                           \
                s = rowstate[row];                                                                                  \
                if ((u_ & 1) && report_hits(self, buf, j, states[s].first, hits, fold_hits) < 0)                   \
                    return -1;                                                                                      \
            }                                                                                                       \
            else {                                                                                                  \
                s = d_;                                                                                             \
                row = -1;                                                                                           \
                if (states[s].first >= 0 && report_hits(self, buf, j, states[s].first, hits, fold_hits) < 0)        \
                    return -1;                                                                                      \
            }                                                                                                       \
        }                                                                                                           \
        else {                                                                                                      \
            s = step(a, s, f_);                                                                                     \
            row = states[s].dense;                                                                                  \
            if (states[s].first >= 0 && report_hits(self, buf, j, states[s].first, hits, fold_hits) < 0)            \
                return -1;                                                                                          \
        }                                                                                                           \
    } while (0)

/* The hits of the keys ending at ``j`` (the output chain from state ``o``); 0, or -1 with the error set */
static int
report_hits(FoldedScannerObject *self, const Py_UCS4 *buf, Py_ssize_t j, int32_t o, PyObject **hits, PyObject **fold_hits)
{
    const AutomatonObject *a = self->automaton;
    for (; o >= 0; o = a->dict[o]) {
        for (int32_t fi = a->out[o]; fi >= 0; fi = a->keynext[fi]) {
            Py_ssize_t klen = a->keylen[fi], start = j - klen;
            for (int32_t ci = self->cand_first[fi]; ci < self->cand_first[fi + 1]; ci++) {
                if (self->cand_len[ci] == klen &&
                    memcmp(self->pool + self->cand_start[ci], buf + start, sizeof(Py_UCS4) * (size_t)klen) == 0) {
                    if ((*hits == NULL && (*hits = PyList_New(0)) == NULL) ||
                        append_hit(*hits, self->cand_key[ci], start, j) < 0)
                        return -1;
                    break;
                }
            }
            if (self->is_long[fi] && ((*fold_hits == NULL && (*fold_hits = PyList_New(0)) == NULL) ||
                                      append_hit(*fold_hits, fi, start, j) < 0))
                return -1;
        }
    }
    return 0;
}

/* find()'s scan: the hits appended to ``hits`` and ``fold_hits``, the normalised text written to
 * ``buf`` (room for the text's length), its length to ``*jout``. ``*marked`` is set where one of
 * the sorted code points ``marks[0..nmarks)`` is met: among the deleted code points only, unless
 * ``marks_all``. 0, or -1 with the error set. */
static int
folded_scan(FoldedScannerObject *self, PyObject *text, Py_UCS4 *buf, PyObject **hits, PyObject **fold_hits,
            Py_ssize_t *jout, const uint32_t *marks, Py_ssize_t nmarks, int marks_all, int *marked)
{
    const AutomatonObject *a = self->automaton;
    const uint64_t *nf = self->nf;
    const Py_ssize_t nnf = self->nnf;
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    const State *states = a->states;
    const int32_t *dense = a->dense, *rowstate = a->rowstate;
    const uint8_t *dcls = a->dcls;
    const size_t ncls = (size_t)a->ndcls;
    int32_t s = 0, row = states[0].dense;
    Py_ssize_t j = 0; /* position in the normalised text */
    if (kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *d = data;
        for (Py_ssize_t i = 0; i < len; i++)
            FOLDED_STEP(d[i]);
    }
    else if (kind == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *d = data;
        for (Py_ssize_t i = 0; i < len; i++)
            FOLDED_STEP(d[i]);
    }
    else {
        const Py_UCS4 *d = data;
        for (Py_ssize_t i = 0; i < len; i++)
            FOLDED_STEP(d[i]);
    }
    *jout = j;
    return 0;
}

static PyObject *
FoldedScanner_find(FoldedScannerObject *self, PyObject *text)
{
    if (text_arg(text, self->automaton, "FoldedScanner") < 0)
        return NULL;
    Py_ssize_t len = PyUnicode_GET_LENGTH(text), j = 0;
    Py_UCS4 small[256];
    Py_UCS4 *buf = len <= 256 ? small : PyMem_Malloc(sizeof(Py_UCS4) * (size_t)len);
    if (buf == NULL)
        return PyErr_NoMemory();
    int marked = 0;
    PyObject *hits = NULL, *fold_hits = NULL; /* made on the first hit */
    if (folded_scan(self, text, buf, &hits, &fold_hits, &j, NULL, 0, 0, &marked) < 0 ||
        (hits == NULL && (hits = PyList_New(0)) == NULL) || (fold_hits == NULL && (fold_hits = PyList_New(0)) == NULL))
        goto fail;
    if (buf != small)
        PyMem_Free(buf);
    return Py_BuildValue("(NNn)", hits, fold_hits, j);
fail:
    if (buf != small)
        PyMem_Free(buf);
    Py_XDECREF(hits);
    Py_XDECREF(fold_hits);
    return NULL;
}

static PyObject *FoldedScanner_check(FoldedScannerObject *self, PyObject *const *args, Py_ssize_t nargs);
static PyObject *FoldedScanner_check_many(FoldedScannerObject *self, PyObject *const *args, Py_ssize_t nargs);

static PyMethodDef FoldedScanner_methods[] = {
    {"find", (PyCFunction)FoldedScanner_find, METH_O, "find(text) -> (hits, fold_hits, normalised length)"},
    {"check", (PyCFunction)(void (*)(void))FoldedScanner_check, METH_FASTCALL,
     "check(cfg, text) -> None where the line certainly has no finding, else find(text) (see engine.Checker.check)"},
    {"check_many", (PyCFunction)(void (*)(void))FoldedScanner_check_many, METH_FASTCALL,
     "check_many(cfg, texts, limit) -> [(index, hits, fold_hits, length, verdict)] of the lines check() does not clear"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FoldedScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "livestream_compliance._native.FoldedScanner",
    .tp_basicsize = sizeof(FoldedScannerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A scan of folded keys, resolved to the keys spelt exactly in the same pass.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)FoldedScanner_init,
    .tp_dealloc = (destructor)FoldedScanner_dealloc,
    .tp_methods = FoldedScanner_methods,
};

/* ------------------------------------------------------------------ ModelScanner */

/* The paraphrase model's first question about a line: can any category reach the limit? One scan
 * of the n-gram automaton sums each category's weights over the distinct n-grams met; where even
 * the sum plus a bound on the rounding of any summation order stays below the limit, the answer
 * is None (no category can: the model's own sums, in whatever order Python adds them, stay below
 * it too). Otherwise it is the set find_keys() gives, built in the same order. */
typedef struct {
    PyObject_HEAD
    AutomatonObject *automaton;
    Py_ssize_t nkeys, ncat;
    double *weights; /* nkeys * ncat */
    double limit;
    uint32_t *stamp; /* per key: the scan that last met it */
    uint32_t gen;
    int32_t *met;    /* the keys met by this scan, in the order first met */
    double *sums;    /* per category: the sum of the weights met, and of their magnitudes */
    double *mags;
    double *bound;   /* per key: its largest positive weight (0 if none), and its largest magnitude */
    double *bmag;
    /* where every key is two or three code points (the paraphrase model's n-grams): the keys in a
     * hash table (gram_key), looked up at each position instead of walking the automaton: the
     * lookups do not depend on one another, so their memory reads overlap */
    SlotTable grams;
    uint8_t *gchar; /* a bit per code point below ROOT_N: does a key hold it */
} ModelScannerObject;

#define GRAM_NONE 0xFFFFFFFFu

static inline uint64_t
gram_key(uint32_t a, uint32_t b, uint32_t c)
{
    /* a bigram (a = GRAM_NONE) has the top bit set; code points take 21 bits */
    return a == GRAM_NONE ? (1ull << 63) | ((uint64_t)b << 21) | c : ((uint64_t)a << 42) | ((uint64_t)b << 21) | c;
}


static void
ModelScanner_free(ModelScannerObject *self)
{
    PyMem_Free(self->weights);
    PyMem_Free(self->stamp);
    PyMem_Free(self->met);
    PyMem_Free(self->sums);
    PyMem_Free(self->mags);
    PyMem_Free(self->bound);
    PyMem_Free(self->bmag);
    PyMem_RawFree(self->grams.slots);
    PyMem_Free(self->gchar);
    self->grams.slots = NULL;
    self->gchar = NULL;
    self->weights = self->sums = self->mags = self->bound = self->bmag = NULL;
    self->stamp = NULL;
    self->met = NULL;
}

static void
ModelScanner_dealloc(ModelScannerObject *self)
{
    ModelScanner_free(self);
    Py_XDECREF(self->automaton);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* weights[k * ncat + c] from rows[k][c]; -1 with the error set */
static int
read_rows(ModelScannerObject *self, PyObject *rows)
{
    PyObject *seq = PySequence_Fast(rows, "rows must be a sequence of weight rows");
    if (seq == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    int rc = -1;
    if (n != self->automaton->nkeys) {
        PyErr_Format(PyExc_ValueError, "%zd rows for an automaton of %zd keys", n, self->automaton->nkeys);
        goto done;
    }
    self->nkeys = n;
    self->ncat = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *row = PySequence_Fast(PySequence_Fast_GET_ITEM(seq, k), "a row must be a sequence of floats");
        if (row == NULL)
            goto done;
        Py_ssize_t m = PySequence_Fast_GET_SIZE(row);
        if (k == 0) {
            self->ncat = m;
            self->weights = PyMem_Malloc(sizeof(double) * (size_t)(n * m + 1));
            self->sums = PyMem_Malloc(sizeof(double) * (size_t)(m + 1));
            self->mags = PyMem_Malloc(sizeof(double) * (size_t)(m + 1));
            if (self->weights == NULL || self->sums == NULL || self->mags == NULL) {
                Py_DECREF(row);
                PyErr_NoMemory();
                goto done;
            }
        }
        if (m != self->ncat) {
            Py_DECREF(row);
            PyErr_Format(PyExc_ValueError, "row %zd has %zd weights, row 0 has %zd", k, m, self->ncat);
            goto done;
        }
        for (Py_ssize_t c = 0; c < m; c++) {
            double w = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(row, c));
            if (w == -1.0 && PyErr_Occurred()) {
                Py_DECREF(row);
                goto done;
            }
            if (!isfinite(w)) {
                Py_DECREF(row);
                PyErr_Format(PyExc_ValueError, "row %zd: weight %zd is not finite", k, c);
                goto done;
            }
            self->weights[k * m + c] = w;
        }
        Py_DECREF(row);
    }
    rc = 0;
done:
    Py_DECREF(seq);
    return rc;
}

/* The gram table from ``keys`` (the automaton's keys, in order), where every key is two or three
 * code points and none repeats; else none (the automaton is walked). 0, or -1 with the error set. */
static int
read_grams(ModelScannerObject *self, PyObject *keys)
{
    PyObject *seq = PySequence_Fast(keys, "keys must be a sequence of str");
    if (seq == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n != self->nkeys) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "%zd keys for an automaton of %zd", n, self->nkeys);
        return -1;
    }
    self->gchar = PyMem_Calloc(ROOT_N / 8, 1);
    if (self->gchar == NULL || slot_table_init(&self->grams, (size_t)n) < 0) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    int usable = 1;
    for (Py_ssize_t k = 0; k < n && usable; k++) {
        PyObject *key = PySequence_Fast_GET_ITEM(seq, k);
        if (!PyUnicode_Check(key)) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_TypeError, "key %zd must be a str", k);
            return -1;
        }
        Py_ssize_t len = PyUnicode_GET_LENGTH(key);
        if ((len != 2 && len != 3) || len != self->automaton->keylen[k]) {
            usable = 0;
            break;
        }
        uint32_t c[3] = {GRAM_NONE, 0, 0};
        for (Py_ssize_t i = 0; i < len; i++) {
            c[3 - len + i] = PyUnicode_READ_CHAR(key, i);
            if (c[3 - len + i] < ROOT_N)
                self->gchar[c[3 - len + i] >> 3] |= (uint8_t)(1u << (c[3 - len + i] & 7));
        }
        uint64_t g = gram_key(c[0], c[1], c[2]);
        Slot *slot = slot_find(&self->grams, g);
        if (slot->key == g) /* a repeated key: the automaton reports both */
            usable = 0;
        slot->key = g;
        slot->val = (int32_t)k;
    }
    Py_DECREF(seq);
    if (!usable) {
        PyMem_RawFree(self->grams.slots);
        PyMem_Free(self->gchar);
        self->grams.slots = NULL;
        self->gchar = NULL;
    }
    return 0;
}

static int
ModelScanner_init(ModelScannerObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"automaton", "rows", "limit", "keys", NULL};
    PyObject *automaton, *rows, *keys = Py_None;
    double limit;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!Od|O", kwlist, &AutomatonType, &automaton, &rows, &limit, &keys))
        return -1;
    if (((AutomatonObject *)automaton)->states == NULL) {
        PyErr_SetString(PyExc_ValueError, "Automaton was not initialised");
        return -1;
    }
    ModelScanner_free(self);
    Py_INCREF(automaton);
    Py_XSETREF(self->automaton, (AutomatonObject *)automaton);
    self->limit = limit;
    self->gen = 0;
    if (read_rows(self, rows) < 0)
        goto fail;
    if (self->weights == NULL) { /* no keys: nothing is ever met */
        self->sums = PyMem_Malloc(sizeof(double));
        self->mags = PyMem_Malloc(sizeof(double));
    }
    self->stamp = PyMem_Calloc((size_t)self->nkeys + 1, sizeof(uint32_t));
    self->met = PyMem_Malloc(sizeof(int32_t) * ((size_t)self->nkeys + 1));
    self->bound = PyMem_Malloc(sizeof(double) * ((size_t)self->nkeys + 1));
    self->bmag = PyMem_Malloc(sizeof(double) * ((size_t)self->nkeys + 1));
    if (self->stamp == NULL || self->met == NULL || self->sums == NULL || self->mags == NULL || self->bound == NULL ||
        self->bmag == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t k = 0; k < self->nkeys; k++) {
        double b = 0.0, m = 0.0;
        for (Py_ssize_t c = 0; c < self->ncat; c++) {
            double w = self->weights[k * self->ncat + c];
            if (w > b)
                b = w;
            if (fabs(w) > m)
                m = fabs(w);
        }
        self->bound[k] = b;
        self->bmag[k] = m;
    }
    if (keys != Py_None && read_grams(self, keys) < 0)
        goto fail;
    return 0;
fail:
    ModelScanner_free(self);
    return -1;
}

/* The scan of ``len`` code points of (kind, data): the keys met in self->met[0..*nmet), and whether
 * a category's sum may reach the limit (1) or certainly does not (0). */
static int
model_reach(ModelScannerObject *self, int kind, const void *data, Py_ssize_t len, Py_ssize_t *nmet_out)
{
    const AutomatonObject *a = self->automaton;
    Py_ssize_t ncat = self->ncat, nmet = 0;
    if (++self->gen == 0) { /* wrapped: forget every stamp */
        memset(self->stamp, 0, sizeof(uint32_t) * (size_t)self->nkeys);
        self->gen = 1;
    }
    uint32_t gen = self->gen;
    /* first the keys met, and the sum of their largest positive weights: a bound on every
     * category's sum, which rejects most lines without reading the weight rows */
    double bsum = 0.0, bmags = 0.0;
#define MEET(k)                            \
    do {                                   \
        if (self->stamp[k] != gen) {       \
            self->stamp[k] = gen;          \
            self->met[nmet++] = k;         \
            bsum += self->bound[k];        \
            bmags += self->bmag[k];        \
        }                                  \
    } while (0)
    if (self->grams.slots != NULL) {
        /* the keys ending at each position, longest first: the automaton's order */
        uint32_t p2 = GRAM_NONE, p1 = GRAM_NONE;
        for (Py_ssize_t i = 0; i < len; i++) {
            uint32_t c = PyUnicode_READ(kind, data, i);
            if (c < ROOT_N && !(self->gchar[c >> 3] & (1u << (c & 7)))) {
                p2 = p1 = GRAM_NONE; /* no key holds c: none ends here, none spans it */
                continue;
            }
            int32_t k;
            if (p2 != GRAM_NONE && (k = slot_get(&self->grams, gram_key(p2, p1, c))) >= 0)
                MEET(k);
            if (p1 != GRAM_NONE && (k = slot_get(&self->grams, gram_key(GRAM_NONE, p1, c))) >= 0)
                MEET(k);
            p2 = p1;
            p1 = c;
        }
    }
    else {
        int32_t s = 0;
        for (Py_ssize_t i = 0; i < len; i++) {
            s = step(a, s, PyUnicode_READ(kind, data, i));
            for (int32_t o = a->states[s].first; o >= 0; o = a->dict[o])
                for (int32_t k = a->out[o]; k >= 0; k = a->keynext[k])
                    MEET(k);
        }
    }
#undef MEET
    *nmet_out = nmet;
    /* Summing n numbers in any order is off the exact sum by at most (n - 1) * DBL_EPSILON / 2
     * times the sum of their magnitudes: twice that (ours and the caller's) and then some. A
     * category's exact sum is at most the exact bound sum, and the magnitudes of its weights sum
     * to at most the largest magnitudes' sum. */
    double slack = 2.0 * (double)(nmet + 1) * DBL_EPSILON;
    if (bsum + slack * (bsum + bmags) < self->limit)
        return 0;
    for (Py_ssize_t c = 0; c < ncat; c++)
        self->sums[c] = self->mags[c] = 0.0;
    for (Py_ssize_t i = 0; i < nmet; i++) {
        const double *w = self->weights + (Py_ssize_t)self->met[i] * ncat;
        for (Py_ssize_t c = 0; c < ncat; c++) {
            self->sums[c] += w[c];
            self->mags[c] += fabs(w[c]);
        }
    }
    for (Py_ssize_t c = 0; c < ncat; c++)
        if (self->sums[c] + slack * self->mags[c] >= self->limit)
            return 1;
    return 0;
}

static PyObject *
ModelScanner_scan(ModelScannerObject *self, PyObject *text)
{
    if (text_arg(text, self->stamp, "ModelScanner") < 0)
        return NULL;
    Py_ssize_t nmet = 0;
    if (!model_reach(self, PyUnicode_KIND(text), PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text), &nmet))
        Py_RETURN_NONE;
    PyObject *keys = PySet_New(NULL);
    if (keys == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < nmet; i++) {
        PyObject *v = PyLong_FromLong(self->met[i]);
        if (v == NULL || PySet_Add(keys, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(keys);
            return NULL;
        }
        Py_DECREF(v);
    }
    return keys;
}

static PyMethodDef ModelScanner_methods[] = {
    {"scan", (PyCFunction)ModelScanner_scan, METH_O,
     "scan(text): None if no category can reach the limit, else the set find_keys(text) gives."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ModelScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "livestream_compliance._native.ModelScanner",
    .tp_basicsize = sizeof(ModelScannerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The paraphrase model's n-gram scan with the per-category sums: rules out most lines in one call.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)ModelScanner_init,
    .tp_dealloc = (destructor)ModelScanner_dealloc,
    .tp_methods = ModelScanner_methods,
};

/* ------------------------------------------------------------------ jieba_spans */

/* jieba's re_han_default: [\u4E00-\u9FD5a-zA-Z0-9+#&\._%\-] */
static inline int
jieba_han(Py_UCS4 c)
{
    return (c >= 0x4E00 && c <= 0x9FD5) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '#' || c == '&' || c == '.' || c == '_' || c == '%' || c == '-';
}

/* jieba's re_eng: [a-zA-Z0-9] */
static inline int
jieba_eng(Py_UCS4 c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static inline int
push_span(PyObject *list, Py_ssize_t s, Py_ssize_t e)
{
    Py_ssize_t values[2] = {s, e};
    return append_ints(list, 2, values);
}

/* log(v) as math.log computes it (v converted to a double, then libm's log); v must be > 0 */
static int
jieba_log(PyObject *v, double *out)
{
    double x = PyFloat_AsDouble(v);
    if (x == -1.0 && PyErr_Occurred())
        return -1;
    if (!(x > 0.0) || !isfinite(x)) {
        PyErr_SetString(PyExc_ValueError, "jieba_spans: a word frequency is not a positive finite number");
        return -1;
    }
    *out = log(x);
    return 0;
}

/* ------------------------------------------------------------------ Lexicon */

/* Lexicon(words, counts): jieba's prefix dictionary as a read-mostly mapping str -> int over its
 * packed form (the "\n"-separated ``words``, a str, and their int64 ``counts``, bytes), without an
 * object per word: made in one pass over the words (~20 ms for jieba's 511,847, against ~0.25 s to
 * unpack them into a dict). Entries set later (``lex[word] = n``, what jieba's add_word does when the
 * rule words are taught) go to an overlay that shadows the packed words. jieba_spans reads it in C
 * without making a string per fragment. */
typedef struct {
    PyObject_HEAD
    PyObject *words;       /* the packed words (str) */
    PyObject *counts;      /* their counts (bytes, int64 each) */
    Py_ssize_t nbase;
    Py_ssize_t *start;     /* base word i is words[start[i] : start[i + 1] - 1] */
    int32_t *table;        /* open addressing over the base words: word index, or -1 */
    uint64_t *hashes;      /* per base word, its hash */
    size_t mask;
    /* the overlay: keys (owned str), values, hashes; an open-addressing table of its own */
    PyObject **okeys;
    int64_t *ovalues;
    uint64_t *ohashes;
    Py_ssize_t on, ocap;
    int32_t *otable;
    size_t omask;
    Py_ssize_t oshadow;    /* overlay keys that are also base words (for len) */
    Py_ssize_t ndistinct;  /* distinct base words (a repeated word counts once, as in a dict) */
} LexiconObject;

static PyTypeObject LexiconType;

static inline uint64_t
lex_hash(int kind, const void *data, Py_ssize_t a, Py_ssize_t b)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (Py_ssize_t i = a; i < b; i++) {
        h ^= (uint64_t)PyUnicode_READ(kind, data, i);
        h *= 0x100000001B3ull;
    }
    return h ^ (h >> 29);
}

static inline int
lex_same(PyObject *s, Py_ssize_t sa, Py_ssize_t sb, int kind, const void *data, Py_ssize_t a, Py_ssize_t b)
{
    if (sb - sa != b - a)
        return 0;
    int sk = PyUnicode_KIND(s);
    const void *sd = PyUnicode_DATA(s);
    for (Py_ssize_t i = 0; i < b - a; i++)
        if (PyUnicode_READ(sk, sd, sa + i) != PyUnicode_READ(kind, data, a + i))
            return 0;
    return 1;
}

static inline int64_t
lex_base_value(const LexiconObject *x, Py_ssize_t i)
{
    int64_t v;
    memcpy(&v, PyBytes_AS_STRING(x->counts) + 8 * i, 8);
    return v;
}

/* the base word index of text[a:b], or -1 */
static Py_ssize_t
lex_base_find(const LexiconObject *x, int kind, const void *data, Py_ssize_t a, Py_ssize_t b, uint64_t h)
{
    if (x->table == NULL)
        return -1;
    int wk = PyUnicode_KIND(x->words);
    const void *wd = PyUnicode_DATA(x->words);
    for (size_t j = (size_t)h & x->mask; x->table[j] >= 0; j = (j + 1) & x->mask) {
        Py_ssize_t i = x->table[j];
        if (x->hashes[i] == h && lex_same(x->words, x->start[i], x->start[i + 1] - 1, kind, data, a, b)) {
            (void)wk;
            (void)wd;
            return i;
        }
    }
    return -1;
}

/* the overlay slot of text[a:b], or -1 */
static Py_ssize_t
lex_over_find(const LexiconObject *x, int kind, const void *data, Py_ssize_t a, Py_ssize_t b, uint64_t h)
{
    if (x->on == 0)
        return -1;
    for (size_t j = (size_t)h & x->omask; x->otable[j] >= 0; j = (j + 1) & x->omask) {
        Py_ssize_t i = x->otable[j];
        PyObject *k = x->okeys[i];
        if (x->ohashes[i] == h && lex_same(k, 0, PyUnicode_GET_LENGTH(k), kind, data, a, b))
            return i;
    }
    return -1;
}

/* text[a:b]'s value: 1 (found, *v set) or 0 */
static inline int
lex_find(const LexiconObject *x, int kind, const void *data, Py_ssize_t a, Py_ssize_t b, int64_t *v)
{
    uint64_t h = lex_hash(kind, data, a, b);
    Py_ssize_t i = lex_over_find(x, kind, data, a, b, h);
    if (i >= 0) {
        *v = x->ovalues[i];
        return 1;
    }
    i = lex_base_find(x, kind, data, a, b, h);
    if (i >= 0) {
        *v = lex_base_value(x, i);
        return 1;
    }
    return 0;
}

static void
Lexicon_free(LexiconObject *self)
{
    Py_CLEAR(self->words);
    Py_CLEAR(self->counts);
    PyMem_RawFree(self->start);
    PyMem_RawFree(self->table);
    PyMem_RawFree(self->hashes);
    self->start = NULL;
    self->table = NULL;
    self->hashes = NULL;
    for (Py_ssize_t i = 0; i < self->on; i++)
        Py_DECREF(self->okeys[i]);
    PyMem_Free(self->okeys);
    PyMem_Free(self->ovalues);
    PyMem_Free(self->ohashes);
    PyMem_Free(self->otable);
    self->okeys = NULL;
    self->ovalues = NULL;
    self->ohashes = NULL;
    self->otable = NULL;
    self->on = self->ocap = self->oshadow = self->nbase = self->ndistinct = 0;
}

static void
Lexicon_dealloc(LexiconObject *self)
{
    Lexicon_free(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* the base table, built without the interpreter lock (the words are immutable and kept alive) */
static int
lexicon_build(LexiconObject *b, int kind, const void *data, Py_ssize_t n, Py_ssize_t nwords)
{
    b->start = PyMem_RawMalloc(sizeof(Py_ssize_t) * (size_t)(nwords + 1));
    b->hashes = PyMem_RawMalloc(sizeof(uint64_t) * (size_t)(nwords ? nwords : 1));
    size_t cap = 16;
    while (cap < 2 * (size_t)nwords)
        cap <<= 1;
    b->table = PyMem_RawMalloc(sizeof(int32_t) * cap);
    if (b->start == NULL || b->hashes == NULL || b->table == NULL)
        return -1;
    memset(b->table, 0xFF, sizeof(int32_t) * cap);
    b->mask = cap - 1;
    b->ndistinct = nwords;
    Py_ssize_t w = 0, st = 0;
    for (Py_ssize_t i = 0; i <= n && nwords; i++) {
        if (i < n && PyUnicode_READ(kind, data, i) != '\n')
            continue;
        uint64_t h = lex_hash(kind, data, st, i);
        b->start[w] = st;
        b->hashes[w] = h;
        size_t j = (size_t)h & b->mask;
        for (; b->table[j] >= 0; j = (j + 1) & b->mask) {
            Py_ssize_t o = b->table[j];
            if (b->hashes[o] == h && b->start[o + 1] - 1 - b->start[o] == i - st) {
                Py_ssize_t c = 0;
                while (c < i - st && PyUnicode_READ(kind, data, b->start[o] + c) == PyUnicode_READ(kind, data, st + c))
                    c++;
                if (c == i - st) {
                    b->ndistinct--; /* a repeated word: the later one's value, as a dict keeps it */
                    break;
                }
            }
        }
        b->table[j] = (int32_t)w;
        w++;
        st = i + 1;
        if (w < nwords)
            b->start[w] = st; /* so that start[o + 1] is known for the words placed so far */
    }
    b->start[nwords] = n + 1;
    return 0;
}

static int
Lexicon_init(LexiconObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *words, *counts;
    static char *kwlist[] = {"words", "counts", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "UO!", kwlist, &words, &PyBytes_Type, &counts))
        return -1;
    Py_ssize_t n = PyUnicode_GET_LENGTH(words), nbytes = PyBytes_GET_SIZE(counts);
    int kind = PyUnicode_KIND(words);
    const void *data = PyUnicode_DATA(words);
    if (nbytes % 8 != 0) {
        PyErr_SetString(PyExc_ValueError, "Lexicon: counts is not a whole number of int64 values");
        return -1;
    }
    Py_ssize_t nwords = n == 0 ? 0 : 1;
    for (Py_ssize_t i = 0; i < n; i++)
        nwords += PyUnicode_READ(kind, data, i) == '\n';
    if (nwords != nbytes / 8 || nwords > INT32_MAX / 2) {
        PyErr_Format(PyExc_ValueError, "Lexicon: %zd words but %zd values", nwords, nbytes / 8);
        return -1;
    }
    LexiconObject b;
    memset(&b, 0, sizeof b);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = lexicon_build(&b, kind, data, n, nwords);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        PyMem_RawFree(b.start);
        PyMem_RawFree(b.table);
        PyMem_RawFree(b.hashes);
        PyErr_NoMemory();
        return -1;
    }
    Lexicon_free(self);
    Py_INCREF(words);
    Py_INCREF(counts);
    self->words = words;
    self->counts = counts;
    self->nbase = nwords;
    self->start = b.start;
    self->table = b.table;
    self->hashes = b.hashes;
    self->mask = b.mask;
    self->ndistinct = b.ndistinct;
    return 0;
}

static int
lex_key(PyObject *key)
{
    if (!PyUnicode_Check(key)) {
        PyErr_Format(PyExc_TypeError, "Lexicon keys are str, not %s", Py_TYPE(key)->tp_name);
        return -1;
    }
    return 0;
}

/* key's value: 1 (found), 0 (absent) or -1 (error) */
static int
lex_lookup(LexiconObject *self, PyObject *key, int64_t *v)
{
    if (lex_key(key) < 0)
        return -1;
    return lex_find(self, PyUnicode_KIND(key), PyUnicode_DATA(key), 0, PyUnicode_GET_LENGTH(key), v);
}

static PyObject *
Lexicon_subscript(LexiconObject *self, PyObject *key)
{
    int64_t v;
    int r = lex_lookup(self, key, &v);
    if (r < 0)
        return NULL;
    if (r == 0) {
        PyErr_SetObject(PyExc_KeyError, key);
        return NULL;
    }
    return PyLong_FromLongLong((long long)v);
}

static int
lex_grow_overlay(LexiconObject *self)
{
    Py_ssize_t ncap = self->ocap ? 2 * self->ocap : 64;
    PyObject **k = PyMem_Realloc(self->okeys, sizeof(PyObject *) * (size_t)ncap);
    if (k == NULL)
        return -1;
    self->okeys = k;
    int64_t *v = PyMem_Realloc(self->ovalues, sizeof(int64_t) * (size_t)ncap);
    if (v == NULL)
        return -1;
    self->ovalues = v;
    uint64_t *h = PyMem_Realloc(self->ohashes, sizeof(uint64_t) * (size_t)ncap);
    if (h == NULL)
        return -1;
    self->ohashes = h;
    size_t tcap = 16;
    while (tcap < 2 * (size_t)ncap)
        tcap <<= 1;
    int32_t *t = PyMem_Malloc(sizeof(int32_t) * tcap);
    if (t == NULL)
        return -1;
    memset(t, 0xFF, sizeof(int32_t) * tcap);
    for (Py_ssize_t i = 0; i < self->on; i++) {
        size_t j = (size_t)self->ohashes[i] & (tcap - 1);
        while (t[j] >= 0)
            j = (j + 1) & (tcap - 1);
        t[j] = (int32_t)i;
    }
    PyMem_Free(self->otable);
    self->otable = t;
    self->omask = tcap - 1;
    self->ocap = ncap;
    return 0;
}

static int
Lexicon_ass_subscript(LexiconObject *self, PyObject *key, PyObject *value)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_TypeError, "Lexicon entries cannot be deleted");
        return -1;
    }
    if (lex_key(key) < 0)
        return -1;
    if (!PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "Lexicon values are int, not %s", Py_TYPE(value)->tp_name);
        return -1;
    }
    long long v = PyLong_AsLongLong(value);
    if (v == -1 && PyErr_Occurred())
        return -1;
    int kind = PyUnicode_KIND(key);
    const void *data = PyUnicode_DATA(key);
    Py_ssize_t len = PyUnicode_GET_LENGTH(key);
    uint64_t h = lex_hash(kind, data, 0, len);
    Py_ssize_t i = lex_over_find(self, kind, data, 0, len, h);
    if (i >= 0) {
        self->ovalues[i] = (int64_t)v;
        return 0;
    }
    if (self->on >= self->ocap && lex_grow_overlay(self) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    i = self->on++;
    Py_INCREF(key);
    self->okeys[i] = key;
    self->ovalues[i] = (int64_t)v;
    self->ohashes[i] = h;
    size_t j = (size_t)h & self->omask;
    while (self->otable[j] >= 0)
        j = (j + 1) & self->omask;
    self->otable[j] = (int32_t)i;
    if (lex_base_find(self, kind, data, 0, len, h) >= 0)
        self->oshadow++;
    return 0;
}

static Py_ssize_t
Lexicon_length(LexiconObject *self)
{
    return self->ndistinct + self->on - self->oshadow;
}

static int
Lexicon_contains(LexiconObject *self, PyObject *key)
{
    int64_t v;
    return lex_lookup(self, key, &v);
}

static PyObject *
Lexicon_get(LexiconObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "get(key, default=None)");
        return NULL;
    }
    int64_t v;
    int r = lex_lookup(self, args[0], &v);
    if (r < 0)
        return NULL;
    if (r == 0) {
        PyObject *d = nargs == 2 ? args[1] : Py_None;
        return Py_NewRef(d);
    }
    return PyLong_FromLongLong((long long)v);
}

static PyObject *
Lexicon_base_get(LexiconObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "base_get(key, default=None)");
        return NULL;
    }
    PyObject *key = args[0];
    if (lex_key(key) < 0)
        return NULL;
    int kind = PyUnicode_KIND(key);
    const void *data = PyUnicode_DATA(key);
    Py_ssize_t len = PyUnicode_GET_LENGTH(key);
    Py_ssize_t i = lex_base_find(self, kind, data, 0, len, lex_hash(kind, data, 0, len));
    if (i < 0)
        return Py_NewRef(nargs == 2 ? args[1] : Py_None);
    return PyLong_FromLongLong((long long)lex_base_value(self, i));
}

static PyObject *
Lexicon_overlay(LexiconObject *self, PyObject *unused)
{
    PyObject *out = PyDict_New();
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < self->on; i++) {
        PyObject *v = PyLong_FromLongLong((long long)self->ovalues[i]);
        if (v == NULL || PyDict_SetItem(out, self->okeys[i], v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(v);
    }
    return out;
}

static PyObject *
Lexicon_packed(LexiconObject *self, PyObject *unused)
{
    if (self->words == NULL) {
        PyErr_SetString(PyExc_ValueError, "Lexicon was not initialised");
        return NULL;
    }
    return PyTuple_Pack(2, self->words, self->counts);
}

/* the keys: the base words not shadowed, then the overlay's (as a list: a Lexicon is not changed while
 * it is iterated by the code that iterates it, the state writer and tests) */
static PyObject *
Lexicon_iter(LexiconObject *self)
{
    PyObject *keys = PyList_New(0);
    if (keys == NULL)
        return NULL;
    if (self->words != NULL) {
        int kind = PyUnicode_KIND(self->words);
        const void *data = PyUnicode_DATA(self->words);
        for (Py_ssize_t i = 0; i < self->nbase; i++) {
            Py_ssize_t a = self->start[i], b = self->start[i + 1] - 1;
            if (lex_over_find(self, kind, data, a, b, self->hashes[i]) >= 0)
                continue;
            if (lex_base_find(self, kind, data, a, b, self->hashes[i]) != i)
                continue; /* a repeated word: listed once */
            PyObject *w = PyUnicode_Substring(self->words, a, b);
            if (w == NULL || PyList_Append(keys, w) < 0) {
                Py_XDECREF(w);
                Py_DECREF(keys);
                return NULL;
            }
            Py_DECREF(w);
        }
    }
    for (Py_ssize_t i = 0; i < self->on; i++)
        if (PyList_Append(keys, self->okeys[i]) < 0) {
            Py_DECREF(keys);
            return NULL;
        }
    PyObject *it = PyObject_GetIter(keys);
    Py_DECREF(keys);
    return it;
}

/* Lexicon.__reduce__: (_lexicon_restore, (words, counts, overlay)), so that a checker can be copied
 * or pickled like one holding a dict */
static PyObject *
Lexicon_reduce(LexiconObject *self, PyObject *unused)
{
    if (self->words == NULL) {
        PyErr_SetString(PyExc_ValueError, "Lexicon was not initialised");
        return NULL;
    }
    PyObject *mod = PyImport_ImportModule("livestream_compliance._native");
    if (mod == NULL)
        return NULL;
    PyObject *restore = PyObject_GetAttrString(mod, "_lexicon_restore");
    Py_DECREF(mod);
    PyObject *overlay = Lexicon_overlay(self, NULL);
    if (restore == NULL || overlay == NULL) {
        Py_XDECREF(restore);
        Py_XDECREF(overlay);
        return NULL;
    }
    PyObject *out = Py_BuildValue("(N(OON))", restore, self->words, self->counts, overlay);
    return out;
}

static PyObject *
lexicon_restore(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyDict_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "_lexicon_restore(words, counts, overlay: dict)");
        return NULL;
    }
    PyObject *lex = PyObject_CallFunctionObjArgs((PyObject *)&LexiconType, args[0], args[1], NULL);
    if (lex == NULL)
        return NULL;
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(args[2], &pos, &k, &v))
        if (Lexicon_ass_subscript((LexiconObject *)lex, k, v) < 0) {
            Py_DECREF(lex);
            return NULL;
        }
    return lex;
}

static PyMethodDef Lexicon_methods[] = {
    {"__reduce__", (PyCFunction)Lexicon_reduce, METH_NOARGS, "pickling support"},
    {"get", (PyCFunction)(void (*)(void))Lexicon_get, METH_FASTCALL, "get(key, default=None)"},
    {"base_get", (PyCFunction)(void (*)(void))Lexicon_base_get, METH_FASTCALL,
     "base_get(key, default=None): the packed words' value, whatever the overlay says."},
    {"overlay", (PyCFunction)Lexicon_overlay, METH_NOARGS, "overlay(): the entries set since it was made, as a dict."},
    {"packed", (PyCFunction)Lexicon_packed, METH_NOARGS, "packed(): (words, counts) it was made from."},
    {NULL, NULL, 0, NULL},
};

static PyMappingMethods Lexicon_as_mapping = {
    .mp_length = (lenfunc)Lexicon_length,
    .mp_subscript = (binaryfunc)Lexicon_subscript,
    .mp_ass_subscript = (objobjargproc)Lexicon_ass_subscript,
};

static PySequenceMethods Lexicon_as_sequence = {
    .sq_contains = (objobjproc)Lexicon_contains,
};

static PyTypeObject LexiconType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "livestream_compliance._native.Lexicon",
    .tp_basicsize = sizeof(LexiconObject),
    .tp_dealloc = (destructor)Lexicon_dealloc,
    .tp_as_mapping = &Lexicon_as_mapping,
    .tp_as_sequence = &Lexicon_as_sequence,
    .tp_iter = (getiterfunc)Lexicon_iter,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Lexicon(words, counts): a packed prefix dictionary as a mapping str -> int, with an overlay.",
    .tp_methods = Lexicon_methods,
    .tp_init = (initproc)Lexicon_init,
    .tp_new = PyType_GenericNew,
};

/* one edge of jieba's DAG: the word text[k..end] and log of its frequency */
typedef struct {
    Py_ssize_t end;
    double weight;
} DagEdge;

static int
push_edge(DagEdge **edges, Py_ssize_t *used, Py_ssize_t *cap, Py_ssize_t end, double weight)
{
    if (*used == *cap) {
        DagEdge *e2 = PyMem_Realloc(*edges, sizeof(DagEdge) * (size_t)(*cap * 2));
        if (e2 == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        *edges = e2;
        *cap *= 2;
    }
    (*edges)[*used].end = end;
    (*edges)[*used].weight = weight;
    (*used)++;
    return 0;
}

/* jieba's __cut_DAG_NO_HMM over the block text[a:b] (get_DAG, calc, and the merging of single
 * Latin letters and digits), appending each word's span to ``out``. */
static int
jieba_block(PyObject *text, int kind, const void *data, Py_ssize_t a, Py_ssize_t b, PyObject *freq, double logtotal,
            PyObject *out)
{
    Py_ssize_t n = b - a, cap = 2 * n + 8, used = 0;
    const LexiconObject *lex = Py_IS_TYPE(freq, &LexiconType) ? (const LexiconObject *)freq : NULL;
    Py_ssize_t *first = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(n + 1)); /* edges of k: first[k] .. first[k+1] */
    DagEdge *edges = PyMem_Malloc(sizeof(DagEdge) * (size_t)cap);
    double *rv = PyMem_Malloc(sizeof(double) * (size_t)(n + 1));
    Py_ssize_t *rx = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(n + 1));
    int rc = -1;
    if (first == NULL || edges == NULL || rv == NULL || rx == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* get_DAG: from k, extend while the fragment is a key of the prefix dictionary; a key with a
     * true frequency is a word ending at i (the frequency's log is what calc adds for it) */
    for (Py_ssize_t k = 0; k < n; k++) {
        first[k] = used;
        for (Py_ssize_t i = k; i < n; i++) {
            if (lex != NULL) { /* the packed dictionary: no string made per fragment */
                int64_t v;
                if (!lex_find(lex, kind, data, a + k, a + i + 1, &v))
                    break;
                if (v != 0) {
                    if (v < 0) {
                        PyErr_SetString(PyExc_ValueError, "jieba_spans: a word frequency is not a positive finite number");
                        goto done;
                    }
                    if (push_edge(&edges, &used, &cap, i, log((double)v)) < 0)
                        goto done;
                }
                continue;
            }
            PyObject *frag = PyUnicode_Substring(text, a + k, a + i + 1);
            if (frag == NULL)
                goto done;
            PyObject *v = PyDict_GetItemWithError(freq, frag); /* borrowed */
            Py_DECREF(frag);
            if (v == NULL) {
                if (PyErr_Occurred())
                    goto done;
                break;
            }
            int truth = PyObject_IsTrue(v);
            double w;
            if (truth < 0)
                goto done;
            if (truth && (jieba_log(v, &w) < 0 || push_edge(&edges, &used, &cap, i, w) < 0))
                goto done;
        }
        /* no word starts here: the character alone, at log(FREQ.get(c) or 1) == log(1) */
        if (used == first[k] && push_edge(&edges, &used, &cap, k, 0.0) < 0)
            goto done;
    }
    first[n] = used;
    /* calc: route[idx] = max((log(freq) - logtotal + route[x + 1][0], x) for x in DAG[idx]);
     * the edges come in ascending x, so a tie goes to the larger x, as the tuple max does */
    rv[n] = 0.0;
    rx[n] = 0;
    for (Py_ssize_t idx = n - 1; idx >= 0; idx--) {
        double best = 0.0;
        Py_ssize_t bx = -1;
        for (Py_ssize_t j = first[idx]; j < first[idx + 1]; j++) {
            double v = edges[j].weight - logtotal + rv[edges[j].end + 1];
            if (bx < 0 || v > best || (v == best && edges[j].end > bx)) {
                best = v;
                bx = edges[j].end;
            }
        }
        rv[idx] = best;
        rx[idx] = bx;
    }
    /* the words along the route; consecutive single Latin letters or digits make one word */
    Py_ssize_t x = 0, buf = -1;
    while (x < n) {
        Py_ssize_t y = rx[x] + 1;
        if (y - x == 1 && jieba_eng(PyUnicode_READ(kind, data, a + x))) {
            if (buf < 0)
                buf = x;
        }
        else {
            if (buf >= 0 && push_span(out, a + buf, a + x) < 0)
                goto done;
            buf = -1;
            if (push_span(out, a + x, a + y) < 0)
                goto done;
        }
        x = y;
    }
    if (buf >= 0 && push_span(out, a + buf, a + n) < 0)
        goto done;
    rc = 0;
done:
    PyMem_Free(first);
    PyMem_Free(edges);
    PyMem_Free(rv);
    PyMem_Free(rx);
    return rc;
}

static PyObject *
jieba_spans(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "jieba_spans(text, freq, total) takes 3 arguments");
        return NULL;
    }
    PyObject *text = args[0], *freq = args[1];
    double logtotal;
    if (text_arg(text, freq, "jieba_spans") < 0 || jieba_log(args[2], &logtotal) < 0)
        return NULL;
    if (!PyDict_Check(freq) && !(Py_IS_TYPE(freq, &LexiconType) && ((LexiconObject *)freq)->words != NULL))
        return PyErr_Format(PyExc_TypeError, "freq must be a dict or a Lexicon, not %s", Py_TYPE(freq)->tp_name);
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    Py_ssize_t i = 0, len = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    while (i < len) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (jieba_han(c)) {
            Py_ssize_t j = i + 1;
            while (j < len && jieba_han(PyUnicode_READ(kind, data, j)))
                j++;
            if (jieba_block(text, kind, data, i, j, freq, logtotal, out) < 0)
                goto fail;
            i = j;
        }
        else {
            /* outside a block every character is a word, except "\r\n" (re_skip_default) */
            Py_ssize_t j = (c == '\r' && i + 1 < len && PyUnicode_READ(kind, data, i + 1) == '\n') ? i + 2 : i + 1;
            if (push_span(out, i, j) < 0)
                goto fail;
            i = j;
        }
    }
    PyObject *t = PyList_AsTuple(out);
    Py_DECREF(out);
    return t;
fail:
    Py_DECREF(out);
    return NULL;
}

/* ------------------------------------------------------------------ only_unmatched_triggers */

static PyObject *str_match, *str_search, *str_start, *str_isdisjoint; /* interned method names */

static inline int
ascii_alnum_lower(Py_UCS4 c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* An int argument, or the error set (and -1 with it) */
static int
ssize_arg(PyObject *o, Py_ssize_t *out)
{
    *out = PyLong_AsSsize_t(o);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* rx.<method>(norm, pos[, endpos]) is not None: 1, 0, or -1 with the error set; *m gets the match
 * (a new reference) when ``keep`` is set and there is one */
static int
regex_call(PyObject *rx, PyObject *method, PyObject *norm, Py_ssize_t pos, Py_ssize_t endpos, int has_end,
           PyObject **m)
{
    PyObject *a = PyLong_FromSsize_t(pos), *b = has_end ? PyLong_FromSsize_t(endpos) : NULL, *r;
    if (a == NULL || (has_end && b == NULL)) {
        Py_XDECREF(a);
        Py_XDECREF(b);
        return -1;
    }
    r = PyObject_CallMethodObjArgs(rx, method, norm, a, b, NULL);
    Py_DECREF(a);
    Py_XDECREF(b);
    if (r == NULL)
        return -1;
    int found = r != Py_None;
    if (m != NULL && found)
        *m = r;
    else
        Py_DECREF(r);
    return found;
}

/* A 256-bit set of the code points of a text, hashed (see bloom_has): a string whose first code
 * point is not in it is not in the text, without a search. ``ready`` is 0 until it is filled. */
typedef struct {
    uint64_t w[4];
    int ready;
} Bloom;

static inline uint32_t
bloom_bit(uint32_t c)
{
    return (c * 0x9E3779B1u) >> 24;
}

static void
bloom_fill(Bloom *b, PyObject *text)
{
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    b->w[0] = b->w[1] = b->w[2] = b->w[3] = 0;
    for (Py_ssize_t i = 0, n = PyUnicode_GET_LENGTH(text); i < n; i++) {
        uint32_t h = bloom_bit(PyUnicode_READ(kind, data, i));
        b->w[h >> 6] |= 1ull << (h & 63);
    }
    b->ready = 1;
}

static inline int
bloom_has(const Bloom *b, uint32_t c)
{
    uint32_t h = bloom_bit(c);
    return (b->w[h >> 6] >> (h & 63)) & 1;
}

/* Does ``norm`` hold one of the strings of ``guard`` (a sequence of str)? 1, 0, or -1 with the
 * error set. ``bloom``: a set of ``norm``'s code points, filled on first use, or NULL. */
static int
guard_present(PyObject *norm, PyObject *guard, Bloom *bloom)
{
    PyObject *g = PySequence_Fast(guard, "guard must be a sequence of str");
    if (g == NULL)
        return -1;
    int present = 0;
    for (Py_ssize_t q = 0; q < PySequence_Fast_GET_SIZE(g) && !present; q++) {
        PyObject *x = PySequence_Fast_GET_ITEM(g, q);
        if (bloom != NULL && PyUnicode_Check(x) && PyUnicode_GET_LENGTH(x) > 0) {
            if (!bloom->ready)
                bloom_fill(bloom, norm);
            if (!bloom_has(bloom, PyUnicode_READ_CHAR(x, 0)))
                continue; /* its first code point is nowhere in norm */
        }
        present = PyUnicode_Contains(norm, x);
    }
    Py_DECREF(g);
    return present;
}

/* engine._only_unmatched_triggers (see its docstring): 1 when every hit is a pattern trigger whose
 * patterns do not match (or a term glued to a Latin letter or digit, or a dropped-character form on
 * a line from which nothing was deleted), 0 otherwise, -1 with the error set. The same verdict as
 * the Python function's; where it searches a pattern, this tests the pattern's guard first on a line
 * of any length (``guard_min`` is the Python function's threshold, unused here), and no regex runs
 * for a line with a hit that takes the full path whatever the patterns say. */
static int
trigger_verdict(PyObject *trig, PyObject *hits_arg, PyObject *norm, PyObject *prefilter, int same_length,
                PyObject *text, PyObject *stand_in, Py_ssize_t guard_min)
{
    (void)guard_min; /* the Python function's threshold for its guard test; here every guard is tested */
    if (!PyList_Check(trig) || !PyUnicode_Check(norm)) {
        PyErr_SetString(PyExc_TypeError, "only_unmatched_triggers: trigger_only must be a list and norm a str");
        return -1;
    }
    PyObject *hits = PySequence_Fast(hits_arg, "hits must be a sequence");
    if (hits == NULL)
        return -1;
    Py_ssize_t nlen = PyUnicode_GET_LENGTH(norm), ntrig = PyList_GET_SIZE(trig);
    int kind = PyUnicode_KIND(norm);
    const void *data = PyUnicode_DATA(norm);
    PyObject *ran[64]; /* patterns already searched over the whole line (beyond 64: searched again) */
    PyObject *guarded[64]; /* patterns whose guard this line holds (beyond 64: tested again) */
    Bloom bloom = {{0, 0, 0, 0}, 0}; /* norm's code points, once a guard is tested */
    int nran = 0, nguarded = 0, verdict = 1;
    /* first a hit that takes the full path whatever the patterns say (a Chinese-edged term): then
     * no regex is run. Up to the first malformed hit, which the loop below reports. */
    for (Py_ssize_t h = 0; h < PySequence_Fast_GET_SIZE(hits); h++) {
        PyObject *hit = PySequence_Fast_GET_ITEM(hits, h);
        if (!PyTuple_Check(hit) || PyTuple_GET_SIZE(hit) != 3 || !PyLong_CheckExact(PyTuple_GET_ITEM(hit, 0)))
            break;
        Py_ssize_t k = PyLong_AsSsize_t(PyTuple_GET_ITEM(hit, 0));
        if (k == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            break;
        }
        if (k < 0)
            k += ntrig;
        if (k < 0 || k >= ntrig)
            break;
        if (PyList_GET_ITEM(trig, k) == Py_None) {
            Py_DECREF(hits);
            return 0;
        }
    }
    for (Py_ssize_t h = 0; h < PySequence_Fast_GET_SIZE(hits) && verdict == 1; h++) {
        PyObject *hit = PySequence_Fast_GET_ITEM(hits, h);
        Py_ssize_t k, s, e;
        if (!PyTuple_Check(hit) || PyTuple_GET_SIZE(hit) != 3) {
            PyErr_SetString(PyExc_TypeError, "a hit must be a (key_index, start, end) tuple");
            goto error;
        }
        if (ssize_arg(PyTuple_GET_ITEM(hit, 0), &k) < 0 || ssize_arg(PyTuple_GET_ITEM(hit, 1), &s) < 0 ||
            ssize_arg(PyTuple_GET_ITEM(hit, 2), &e) < 0)
            goto error;
        if (k < 0)
            k += ntrig; /* as trigger_only[key_index] indexes */
        if (k < 0 || k >= ntrig) {
            PyErr_SetString(PyExc_IndexError, "list index out of range");
            goto error;
        }
        PyObject *entry = PyList_GET_ITEM(trig, k);
        if (entry == Py_None) {
            verdict = 0; /* a term of a Chinese-edged key (or one that is an exception too): the full path */
            break;
        }
        long edges;
        if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2 || !PyTuple_Check(PyTuple_GET_ITEM(entry, 1))) {
            PyErr_SetString(PyExc_TypeError, "a trigger_only entry must be None or (edges, patterns)");
            goto error;
        }
        edges = PyLong_AsLong(PyTuple_GET_ITEM(entry, 0));
        if (edges == -1 && PyErr_Occurred())
            goto error;
        PyObject *pats = PyTuple_GET_ITEM(entry, 1);
        if (edges & 4) {
            /* a term with a dropped character: only where a symbol or emoji was deleted from the line */
            if (!same_length) {
                if (stand_in == Py_None) {
                    verdict = 0;
                    break;
                }
                PyObject *r = PyObject_CallMethodOneArg(stand_in, str_isdisjoint, text);
                if (r == NULL)
                    goto error;
                int disjoint = PyObject_IsTrue(r);
                Py_DECREF(r);
                if (disjoint < 0)
                    goto error;
                if (!disjoint) {
                    verdict = 0;
                    break;
                }
            }
        }
        else if (edges) {
            /* a term whose Latin edge is glued to another letter or digit is dropped whatever else holds */
            int glued = same_length && (((edges & 1) && s > 0 && s - 1 < nlen &&
                                         ascii_alnum_lower(PyUnicode_READ(kind, data, s - 1))) ||
                                        ((edges & 2) && e >= 0 && e < nlen && ascii_alnum_lower(PyUnicode_READ(kind, data, e))));
            if (!glued) {
                verdict = 0;
                break;
            }
        }
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(pats) && verdict == 1; j++) {
            PyObject *p = PyTuple_GET_ITEM(pats, j);
            if (!PyTuple_Check(p) || PyTuple_GET_SIZE(p) != 5) {
                PyErr_SetString(PyExc_TypeError, "a pattern entry must be (rx, width, reach, guard, anchored)");
                goto error;
            }
            PyObject *rx = PyTuple_GET_ITEM(p, 0), *width = PyTuple_GET_ITEM(p, 1), *reach = PyTuple_GET_ITEM(p, 2),
                     *guard = PyTuple_GET_ITEM(p, 3);
            int seen = 0;
            for (int r = 0; r < nran && !seen; r++)
                seen = ran[r] == rx;
            if (seen)
                continue;
            int held = 0;
            for (int r = 0; r < nguarded && !held; r++)
                held = guarded[r] == rx;
            if (guard != Py_None && !held) {
                /* a line without any string of the pattern's guard (one of which every match holds,
                 * literals.prepare) cannot match: no search. A few substring tests in C cost a
                 * fraction of one regex call (the Python function tests it on long lines only) */
                int present = guard_present(norm, guard, &bloom);
                if (present < 0)
                    goto error;
                if (!present) {
                    if (nran < 64)
                        ran[nran++] = rx;
                    continue;
                }
                if (nguarded < 64)
                    guarded[nguarded++] = rx; /* its other trigger hits need not test it again */
            }
            int anchored = PyObject_IsTrue(PyTuple_GET_ITEM(p, 4)), found;
            if (anchored < 0)
                goto error;
            Py_ssize_t w = 0, rch = 0;
            if ((reach != Py_None && ssize_arg(reach, &rch) < 0) || (width != Py_None && ssize_arg(width, &w) < 0))
                goto error;
            if (anchored) {
                /* every match begins with a trigger: only a match at this occurrence is possible */
                found = regex_call(rx, str_match, norm, s, s + rch, reach != Py_None, NULL);
                if (found < 0)
                    goto error;
                verdict = !found;
                continue;
            }
            if (width != Py_None) {
                if (reach == Py_None) {
                    PyErr_SetString(PyExc_TypeError, "a bounded pattern needs its reach");
                    goto error;
                }
                /* a match containing this occurrence starts in [e - width, s] */
                PyObject *m = NULL;
                found = regex_call(rx, str_search, norm, e > w ? e - w : 0, s + rch, 1, &m);
                if (found < 0)
                    goto error;
                if (!found)
                    continue;
                PyObject *start = PyObject_CallMethodNoArgs(m, str_start);
                Py_DECREF(m);
                Py_ssize_t ms;
                if (start == NULL)
                    goto error;
                int bad = ssize_arg(start, &ms);
                Py_DECREF(start);
                if (bad < 0)
                    goto error;
                if (ms <= s) {
                    verdict = 0;
                    break;
                }
                /* a match starting later in the slice may be an artefact of its end: whole line */
            }
            {
                PyObject *r = PyObject_CallMethodOneArg(rx, str_search, norm);
                if (r == NULL)
                    goto error;
                found = r != Py_None;
                Py_DECREF(r);
                if (found) {
                    verdict = 0;
                    break;
                }
            }
            if (nran < 64)
                ran[nran++] = rx;
        }
    }
    Py_DECREF(hits);
    if (verdict && prefilter != Py_None) {
        PyObject *r = PyObject_CallMethodOneArg(prefilter, str_search, norm);
        if (r == NULL)
            return -1;
        verdict = r == Py_None;
        Py_DECREF(r);
    }
    return verdict;
error:
    Py_DECREF(hits);
    return -1;
}

static PyObject *
only_unmatched_triggers(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError,
                        "only_unmatched_triggers(trigger_only, hits, norm, prefilter, same_length, text, stand_in, "
                        "guard_min_length) takes 8 arguments");
        return NULL;
    }
    Py_ssize_t guard_min;
    int same_length = PyObject_IsTrue(args[4]);
    if (same_length < 0 || ssize_arg(args[7], &guard_min) < 0)
        return NULL;
    int verdict = trigger_verdict(args[0], args[1], args[2], args[3], same_length, args[5], args[6], guard_min);
    return verdict < 0 ? NULL : PyBool_FromLong(verdict);
}

/* FoldedScanner.check's configuration (see FoldedScanner_check), read from its cfg list */
typedef struct {
    PyObject *trig, *stand_in;
    ModelScannerObject *model; /* NULL: none */
    Py_ssize_t guard_min, min_length, nrebus, limit;
    const uint32_t *rebus;
    int rebus_all;
} FastConfig;

/* 0, or -1 with the error set */
static int
fast_config(PyObject *cfg, FastConfig *fc)
{
    if (!PyList_Check(cfg) || PyList_GET_SIZE(cfg) != 8) {
        PyErr_SetString(PyExc_TypeError, "cfg must be an 8-item list");
        return -1;
    }
    PyObject *model = PyList_GET_ITEM(cfg, 3), *rebus = PyList_GET_ITEM(cfg, 5);
    fc->trig = PyList_GET_ITEM(cfg, 0);
    fc->stand_in = PyList_GET_ITEM(cfg, 1);
    fc->rebus_all = PyObject_IsTrue(PyList_GET_ITEM(cfg, 6));
    if (ssize_arg(PyList_GET_ITEM(cfg, 2), &fc->guard_min) < 0 || ssize_arg(PyList_GET_ITEM(cfg, 4), &fc->min_length) < 0 ||
        ssize_arg(PyList_GET_ITEM(cfg, 7), &fc->limit) < 0 || fc->rebus_all < 0)
        return -1;
    if (model != Py_None && (!PyObject_TypeCheck(model, &ModelScannerType) || ((ModelScannerObject *)model)->stamp == NULL)) {
        PyErr_SetString(PyExc_TypeError, "cfg[3] must be None or an initialised ModelScanner");
        return -1;
    }
    fc->model = model == Py_None ? NULL : (ModelScannerObject *)model;
    if (!PyBytes_Check(rebus) || PyBytes_GET_SIZE(rebus) % sizeof(uint32_t) != 0) {
        PyErr_SetString(PyExc_TypeError, "cfg[5] must be bytes of native uint32 code points");
        return -1;
    }
    fc->rebus = (const uint32_t *)PyBytes_AS_STRING(rebus);
    fc->nrebus = PyBytes_GET_SIZE(rebus) / (Py_ssize_t)sizeof(uint32_t);
    return 0;
}

/* One line of check(): 1 where ``text`` (a str) certainly has no finding; 0 with find(text)'s
 * triple in *found (a new reference); -1 with the error set. */
static int
fast_one(FoldedScannerObject *self, const FastConfig *fc, PyObject *text, PyObject **found)
{
    Py_ssize_t len = PyUnicode_GET_LENGTH(text), j = 0, nmet = 0;
    Py_UCS4 small[256];
    Py_UCS4 *buf = len <= 256 ? small : PyMem_Malloc(sizeof(Py_UCS4) * (size_t)len);
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    PyObject *hits = NULL, *fold_hits = NULL; /* made on the first hit */
    int marked = 0, clean = -1, verdict = -1; /* the trigger verdict: -1 not asked */
    if (folded_scan(self, text, buf, &hits, &fold_hits, &j, fc->rebus, fc->nrebus, fc->rebus_all, &marked) < 0)
        goto done;
    clean = 0;
    if (fold_hits == NULL && !marked) {
        clean = 1;
        if (hits != NULL) {
            PyObject *norm = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buf, j);
            if (norm == NULL) {
                clean = -1;
                goto done;
            }
            clean = verdict = trigger_verdict(fc->trig, hits, norm, Py_None, j == len, text, fc->stand_in, fc->guard_min);
            Py_DECREF(norm);
            if (clean < 0)
                goto done;
        }
        if (clean && fc->model != NULL && j >= fc->min_length)
            clean = !model_reach(fc->model, PyUnicode_4BYTE_KIND, buf, j, &nmet);
    }
    if (!clean) {
        if ((hits == NULL && (hits = PyList_New(0)) == NULL) || (fold_hits == NULL && (fold_hits = PyList_New(0)) == NULL))
            clean = -1;
        else if ((*found = Py_BuildValue("(OOni)", hits, fold_hits, j, verdict)) == NULL)
            clean = -1;
    }
done:
    if (buf != small)
        PyMem_Free(buf);
    Py_XDECREF(hits);
    Py_XDECREF(fold_hits);
    return clean;
}

/* FoldedScanner.check(cfg, text): None where ``text`` certainly has no finding in Checker.check
 * (source without an untriggered pattern, no join): no folded long-term hit, no rebus emoji, every
 * hit passing the trigger verdict (trigger_verdict), and, where the source has the paraphrase
 * model, a line shorter than its minimum or whose n-gram sums reach no category's limit
 * (model_reach). Else find(text)'s triple and the trigger verdict (1 passed, 0 failed, -1 not
 * asked), for the full path; False where ``text`` is not a str or is longer than the limit.
 * ``cfg``: the list [trigger_only, stand_in, guard_min, model, min_length, rebus, rebus_all,
 * limit]: ``model`` a ModelScanner or None, ``rebus`` the rebus code points as sorted native
 * uint32 bytes, looked for among the deleted code points only unless ``rebus_all``. */
static PyObject *
FoldedScanner_check(FoldedScannerObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    FastConfig fc;
    PyObject *found = NULL;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "check(cfg, text) takes 2 arguments");
        return NULL;
    }
    if (fast_config(args[0], &fc) < 0)
        return NULL;
    if (self->automaton == NULL) {
        PyErr_SetString(PyExc_ValueError, "FoldedScanner was not initialised");
        return NULL;
    }
    if (!PyUnicode_Check(args[1]) || PyUnicode_GET_LENGTH(args[1]) > fc.limit)
        Py_RETURN_FALSE; /* for the caller's full check to report */
    int clean = fast_one(self, &fc, args[1], &found);
    if (clean < 0)
        return NULL;
    return clean ? Py_NewRef(Py_None) : found;
}

/* FoldedScanner.check_many(cfg, texts, limit): check(cfg, text) for each item of the list
 * ``texts``, as the list of (index, hits, fold_hits, length, verdict) of the lines it does not
 * clear; an item that is not a str or is longer than ``limit`` is listed as (index, None, None,
 * -1, -1) for the caller's full check to report. */
static PyObject *
FoldedScanner_check_many(FoldedScannerObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    FastConfig fc;
    Py_ssize_t limit;
    if (nargs != 3 || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "check_many(cfg, texts, limit) takes a cfg, a list of str and a length");
        return NULL;
    }
    if (fast_config(args[0], &fc) < 0 || ssize_arg(args[2], &limit) < 0)
        return NULL;
    if (self->automaton == NULL) {
        PyErr_SetString(PyExc_ValueError, "FoldedScanner was not initialised");
        return NULL;
    }
    PyObject *texts = args[1], *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(texts); i++) {
        PyObject *text = PyList_GET_ITEM(texts, i), *item, *found = NULL;
        if (!PyUnicode_Check(text) || PyUnicode_GET_LENGTH(text) > limit) {
            item = Py_BuildValue("(nOOni)", i, Py_None, Py_None, (Py_ssize_t)-1, -1);
        }
        else {
            Py_INCREF(text); /* the list may change under the trigger verdict's regex calls */
            int clean = fast_one(self, &fc, text, &found);
            Py_DECREF(text);
            if (clean < 0)
                goto fail;
            if (clean)
                continue;
            item = Py_BuildValue("(nOOOO)", i, PyTuple_GET_ITEM(found, 0), PyTuple_GET_ITEM(found, 1),
                                 PyTuple_GET_ITEM(found, 2), PyTuple_GET_ITEM(found, 3));
            Py_DECREF(found);
        }
        if (item == NULL || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            goto fail;
        }
        Py_DECREF(item);
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

/* SlotMaker(cls, names): a callable that makes an instance of ``cls`` with the slots ``names`` set
 * from its positional arguments, in that order. For a class whose __init__ only stores its
 * arguments (a frozen dataclass with slots=True, no __post_init__, no default factory): the same
 * object as cls(*args), without the frozen class's one object.__setattr__ call per field (~3.5 µs
 * for 12 fields; this is ~0.15 µs). ``cls`` must have object's __new__, and every name must be a
 * slot (a member descriptor holding an object) of ``cls`` or a base. */
typedef struct {
    PyObject_HEAD
    PyTypeObject *cls;
    Py_ssize_t n;
    Py_ssize_t *offsets;
    vectorcallfunc vectorcall;
} SlotMakerObject;

static PyObject *
SlotMaker_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    SlotMakerObject *self = (SlotMakerObject *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (self->cls == NULL) {
        PyErr_SetString(PyExc_ValueError, "SlotMaker was not initialised");
        return NULL;
    }
    if (nargs != self->n || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)) {
        PyErr_Format(PyExc_TypeError, "%s maker takes %zd positional arguments (%zd given)", self->cls->tp_name,
                     self->n, nargs);
        return NULL;
    }
    PyObject *obj = self->cls->tp_alloc(self->cls, 0);
    if (obj == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        PyObject **slot = (PyObject **)((char *)obj + self->offsets[i]);
        Py_XSETREF(*slot, Py_NewRef(args[i]));
    }
    return obj;
}

static int
SlotMaker_init(SlotMakerObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *cls, *names;
    static char *kwlist[] = {"cls", "names", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO", kwlist, &cls, &names))
        return -1;
    if (!PyType_Check(cls) || ((PyTypeObject *)cls)->tp_new != PyBaseObject_Type.tp_new) {
        PyErr_SetString(PyExc_TypeError, "SlotMaker: cls must be a class with object's __new__");
        return -1;
    }
    PyObject *seq = PySequence_Fast(names, "SlotMaker: names must be a sequence of str");
    if (seq == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Py_ssize_t *offsets = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(n > 0 ? n : 1));
    if (offsets == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PySequence_Fast_GET_ITEM(seq, i), *d;
        if (!PyUnicode_Check(name) || (d = PyObject_GetAttr(cls, name)) == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "SlotMaker: names must be a sequence of str");
            goto fail;
        }
        int ok = Py_IS_TYPE(d, &PyMemberDescr_Type) && PyType_IsSubtype((PyTypeObject *)cls, PyDescr_TYPE(d));
        PyMemberDef *def = ok ? ((PyMemberDescrObject *)d)->d_member : NULL;
        ok = ok && def->type == T_OBJECT_EX && !(def->flags & READONLY) &&
             def->offset >= (Py_ssize_t)sizeof(PyObject) &&
             (size_t)def->offset + sizeof(PyObject *) <= (size_t)((PyTypeObject *)cls)->tp_basicsize;
        if (ok)
            offsets[i] = def->offset;
        Py_DECREF(d);
        if (!ok) {
            PyErr_Format(PyExc_TypeError, "SlotMaker: %R is not a slot of %R", name, cls);
            goto fail;
        }
    }
    Py_DECREF(seq);
    PyMem_Free(self->offsets);
    Py_XSETREF(self->cls, (PyTypeObject *)Py_NewRef(cls));
    self->offsets = offsets;
    self->n = n;
    self->vectorcall = SlotMaker_vectorcall;
    return 0;
fail:
    Py_DECREF(seq);
    PyMem_Free(offsets);
    return -1;
}

static void
SlotMaker_dealloc(SlotMakerObject *self)
{
    Py_XDECREF(self->cls);
    PyMem_Free(self->offsets);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
SlotMaker_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    SlotMakerObject *self = (SlotMakerObject *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->vectorcall = SlotMaker_vectorcall; /* reports "not initialised" until __init__ ran */
    return (PyObject *)self;
}

static PyTypeObject SlotMakerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "livestream_compliance._native.SlotMaker",
    .tp_basicsize = sizeof(SlotMakerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "SlotMaker(cls, names): makes instances of a slotted class from positional slot values.",
    .tp_new = SlotMaker_new,
    .tp_init = (initproc)SlotMaker_init,
    .tp_dealloc = (destructor)SlotMaker_dealloc,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(SlotMakerObject, vectorcall),
};

/* has_any(text, strings): does ``text`` hold one of ``strings`` (a sequence of str)? */
static PyObject *
has_any(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "has_any(text, strings) takes a str and a sequence of str");
        return NULL;
    }
    int present = guard_present(args[0], args[1], NULL);
    return present < 0 ? NULL : PyBool_FromLong(present);
}

/* fold_groups(keys, table) -> (folded keys, first, more, index): ``keys`` (a list of str) grouped
 * by their form through ``table`` (a list of code points indexed by code point; a character beyond
 * it is kept): the distinct folded keys in order of first appearance, per folded key the index of
 * its first key (a list of int), for the folded keys of more than one key the indexes of the others
 * in key order (a dict: folded-key index -> tuple), and folded key -> its index (a dict). What
 * Checker._build_fold's per-key loop makes, in one C pass. */
static PyObject *
fold_groups(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_CheckExact(args[0]) || !PyList_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "fold_groups(keys, table) takes two lists");
        return NULL;
    }
    PyObject *keys = args[0], *tlist = args[1];
    Py_ssize_t tn = PyList_GET_SIZE(tlist), n = PyList_GET_SIZE(keys);
    Py_UCS4 *tab = PyMem_Malloc((size_t)(tn ? tn : 1) * sizeof(Py_UCS4));
    Py_UCS4 *buf = NULL;
    Py_ssize_t cap = 0;
    PyObject *fkeys = NULL, *first = NULL, *more = NULL, *index = NULL, *result = NULL;
    if (tab == NULL)
        return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < tn; i++) {
        PyObject *v = PyList_GET_ITEM(tlist, i);
        long c = PyLong_Check(v) ? PyLong_AsLong(v) : -1;
        if (c < 0 || c > 0x10FFFF) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "fold_groups: table[%zd] is not a code point", i);
            goto done;
        }
        tab[i] = (Py_UCS4)c;
    }
    fkeys = PyList_New(0);
    first = PyList_New(0);
    more = PyDict_New();
    index = PyDict_New();
    if (fkeys == NULL || first == NULL || more == NULL || index == NULL)
        goto done;
    for (Py_ssize_t ki = 0; ki < n; ki++) {
        PyObject *key = PyList_GET_ITEM(keys, ki);
        if (!PyUnicode_Check(key)) {
            PyErr_Format(PyExc_TypeError, "fold_groups: keys[%zd] is not a str", ki);
            goto done;
        }
        Py_ssize_t len = PyUnicode_GET_LENGTH(key);
        int kind = PyUnicode_KIND(key);
        const void *data = PyUnicode_DATA(key);
        if (len > cap) {
            Py_UCS4 *nb = PyMem_Realloc(buf, (size_t)len * sizeof(Py_UCS4));
            if (nb == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            buf = nb;
            cap = len;
        }
        int changed = 0;
        for (Py_ssize_t i = 0; i < len; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            Py_UCS4 m = c < (Py_UCS4)tn ? tab[c] : c;
            buf[i] = m;
            changed |= m != c;
        }
        PyObject *folded;
        if (changed)
            folded = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buf, len);
        else {
            Py_INCREF(key);
            folded = key;
        }
        if (folded == NULL)
            goto done;
        PyObject *fi = PyDict_GetItemWithError(index, folded); /* borrowed */
        int bad = 0;
        if (fi == NULL) {
            PyObject *ki_obj = NULL, *fi_obj = NULL;
            bad = PyErr_Occurred() != NULL
                  || (fi_obj = PyLong_FromSsize_t(PyList_GET_SIZE(fkeys))) == NULL
                  || PyDict_SetItem(index, folded, fi_obj) < 0
                  || PyList_Append(fkeys, folded) < 0
                  || (ki_obj = PyLong_FromSsize_t(ki)) == NULL
                  || PyList_Append(first, ki_obj) < 0;
            Py_XDECREF(fi_obj);
            Py_XDECREF(ki_obj);
        } else {
            PyObject *others = PyDict_GetItemWithError(more, fi); /* borrowed */
            PyObject *ki_obj = NULL;
            if (others == NULL && !PyErr_Occurred()) {
                PyObject *fresh = PyList_New(0);
                bad = fresh == NULL || PyDict_SetItem(more, fi, fresh) < 0;
                Py_XDECREF(fresh); /* the dict holds it */
                others = bad ? NULL : fresh;
            }
            bad = bad || others == NULL || (ki_obj = PyLong_FromSsize_t(ki)) == NULL || PyList_Append(others, ki_obj) < 0;
            Py_XDECREF(ki_obj);
        }
        Py_DECREF(folded);
        if (bad)
            goto done;
    }
    {
        PyObject *k, *v;
        Py_ssize_t pos = 0;
        while (PyDict_Next(more, &pos, &k, &v)) { /* values replaced in place: the key set stays */
            PyObject *t = PyList_AsTuple(v);
            if (t == NULL || PyDict_SetItem(more, k, t) < 0) {
                Py_XDECREF(t);
                goto done;
            }
            Py_DECREF(t);
        }
    }
    result = PyTuple_Pack(4, fkeys, first, more, index);
done:
    PyMem_Free(tab);
    PyMem_Free(buf);
    Py_XDECREF(fkeys);
    Py_XDECREF(first);
    Py_XDECREF(more);
    Py_XDECREF(index);
    return result;
}

/* jieba_dictionary(text) -> (freq, total) or None: jieba's prefix dictionary of its dict.txt
 * (``text``, decoded): per line ``word count tag``, each word -> its count (a repeated word keeps
 * its last), each proper prefix of a word that is not a word -> 0, and the counts' sum; what
 * jieba's gen_pfdict makes. None where the text is not plainly in that shape (a line without
 * exactly two spaces, an empty field, white space at either end of a line, a count that is not
 * ASCII digits, a line break other than "\n"): the caller then parses it its own way. */
static PyObject *
jieba_dictionary(PyObject *module, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "jieba_dictionary(text) takes a str");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *freq = PyDict_New(), *zero = PyLong_FromLong(0), *result = NULL;
    long long total = 0;
    int shape = 1; /* 0: not in the expected shape */
    if (freq == NULL || zero == NULL)
        goto done;
    Py_ssize_t pos = 0;
    while (pos < n && shape) {
        Py_ssize_t sp1 = -1, sp2 = -1, end = pos;
        for (; end < n; end++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, end);
            if (c == '\n')
                break;
            if (c == ' ') {
                if (sp1 < 0)
                    sp1 = end;
                else if (sp2 < 0)
                    sp2 = end;
                else
                    shape = 0;
            } else if (c == '\r' || c == 0x0b || c == 0x0c || (c >= 0x1c && c <= 0x1e) || c == 0x85 || c == 0x2028 || c == 0x2029)
                shape = 0;
        }
        if (!shape || sp2 < 0 || sp2 == sp1 + 1 || sp1 == pos || sp2 == end - 1
            || Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, pos)) || Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, end - 1))) {
            /* an empty line, fewer than two spaces, an empty word, count or tag, or white space at
             * either end (jieba strips each line first) */
            shape = 0;
            break;
        }
        long long count = 0;
        for (Py_ssize_t i = sp1 + 1; i < sp2; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            if (c < '0' || c > '9' || count > (LLONG_MAX - 9) / 10) {
                shape = 0;
                break;
            }
            count = count * 10 + (c - '0');
        }
        if (!shape)
            break;
        total += count;
        if (total < 0) {
            shape = 0;
            break;
        }
        PyObject *word = PyUnicode_Substring(text, pos, sp1), *value = PyLong_FromLongLong(count);
        int bad = word == NULL || value == NULL || PyDict_SetItem(freq, word, value) < 0;
        Py_XDECREF(value);
        for (Py_ssize_t i = pos + 1; !bad && i < sp1; i++) {
            PyObject *prefix = PyUnicode_Substring(text, pos, i);
            bad = prefix == NULL || PyDict_SetDefault(freq, prefix, zero) == NULL;
            Py_XDECREF(prefix);
        }
        Py_XDECREF(word);
        if (bad)
            goto done;
        pos = end + 1; /* past the "\n" (or the end) */
    }
    if (!shape || n == 0) {
        result = Py_None;
        Py_INCREF(result);
    } else {
        PyObject *t = PyLong_FromLongLong(total);
        if (t != NULL) {
            result = PyTuple_Pack(2, freq, t);
            Py_DECREF(t);
        }
    }
done:
    Py_XDECREF(freq);
    Py_XDECREF(zero);
    return result;
}


/* select(keys, key_set, entries, objects) -> list of the indexes i where keys[i] is in key_set
 * (a set or dict; None: no key asked for) or entries[i] is (by identity) one of the objects (a
 * list; entries may be None): the few places of a delta build's changes in ~200,000 keys. */
static PyObject *
select_indexes(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyList_Check(args[0]) || (args[1] != Py_None && !PyAnySet_Check(args[1]) && !PyDict_Check(args[1])) ||
        (args[2] != Py_None && !PyList_Check(args[2])) || !PyList_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "select(keys: list, key_set: set | dict | None, entries: list | None, objects: list)");
        return NULL;
    }
    PyObject *keys = args[0], *wanted = args[1], *entries = args[2], *objs = args[3];
    Py_ssize_t n = PyList_GET_SIZE(keys), no = PyList_GET_SIZE(objs);
    if (entries != Py_None && PyList_GET_SIZE(entries) != n) {
        PyErr_SetString(PyExc_ValueError, "select: keys and entries differ in length");
        return NULL;
    }
    size_t cap = 16;
    while (cap < 2 * (size_t)no)
        cap <<= 1;
    PyObject **set = PyMem_Calloc(cap, sizeof(PyObject *));
    PyObject *out = PyList_New(0);
    if (set == NULL || out == NULL) {
        PyMem_Free(set);
        Py_XDECREF(out);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t j = 0; j < no; j++) {
        PyObject *o = PyList_GET_ITEM(objs, j);
        size_t h = ((size_t)o >> 4) * 0x9E3779B97F4A7C15ull;
        size_t at = h & (cap - 1);
        while (set[at] != NULL && set[at] != o)
            at = (at + 1) & (cap - 1);
        set[at] = o;
    }
    int has_set = wanted != Py_None && (PyDict_Check(wanted) ? PyDict_GET_SIZE(wanted) : PySet_GET_SIZE(wanted)) > 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int hit = 0;
        if (no && entries != Py_None) {
            PyObject *o = PyList_GET_ITEM(entries, i);
            size_t h = ((size_t)o >> 4) * 0x9E3779B97F4A7C15ull;
            for (size_t at = h & (cap - 1); set[at] != NULL; at = (at + 1) & (cap - 1))
                if (set[at] == o) {
                    hit = 1;
                    break;
                }
        }
        if (!hit && has_set) {
            PyObject *k = PyList_GET_ITEM(keys, i);
            hit = PyDict_Check(wanted) ? PyDict_Contains(wanted, k) : PySet_Contains(wanted, k);
            if (hit < 0)
                goto fail;
        }
        if (hit) {
            PyObject *v = PyLong_FromSsize_t(i);
            if (v == NULL || PyList_Append(out, v) < 0) {
                Py_XDECREF(v);
                goto fail;
            }
            Py_DECREF(v);
        }
    }
    PyMem_Free(set);
    return out;
fail:
    PyMem_Free(set);
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef native_functions[] = {
    {"_lexicon_restore", (PyCFunction)(void (*)(void))lexicon_restore, METH_FASTCALL,
     "_lexicon_restore(words, counts, overlay): a Lexicon as pickled (see Lexicon.__reduce__)."},
    {"select", (PyCFunction)(void (*)(void))select_indexes, METH_FASTCALL,
     "select(keys, key_set, entries, objects): indexes of keys in key_set or entries among objects."},
    {"jieba_dictionary", (PyCFunction)jieba_dictionary, METH_O,
     "jieba_dictionary(text): jieba's prefix dictionary of its dict.txt text, or None (see loader)."},
    {"fold_groups", (PyCFunction)(void (*)(void))fold_groups, METH_FASTCALL,
     "fold_groups(keys, table): keys grouped by their folded form (see Checker._build_fold)."},
    {"has_any", (PyCFunction)(void (*)(void))has_any, METH_FASTCALL,
     "has_any(text, strings): whether text holds one of strings (a pattern's guard)."},
    {"jieba_spans", (PyCFunction)(void (*)(void))jieba_spans, METH_FASTCALL,
     "jieba_spans(text, freq, total): the spans of tokenizer.tokenize(text, HMM=False) (see the module doc)."},
    {"only_unmatched_triggers", (PyCFunction)(void (*)(void))only_unmatched_triggers, METH_FASTCALL,
     "engine._only_unmatched_triggers(...) in C, with the guard's minimum line length as an 8th argument."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef nativemodule = {
    PyModuleDef_HEAD_INIT,
    .m_name = "livestream_compliance._native",
    .m_doc = "Optional C accelerator: Aho-Corasick scan through a translate table.",
    .m_size = -1,
    .m_methods = native_functions,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    struct {
        const char *name;
        PyTypeObject *type;
    } types[] = {{"Table", &TableType}, {"Automaton", &AutomatonType}, {"FoldedScanner", &FoldedScannerType},
                 {"ModelScanner", &ModelScannerType}, {"SlotMaker", &SlotMakerType}, {"Lexicon", &LexiconType}};
    str_match = PyUnicode_InternFromString("match");
    str_search = PyUnicode_InternFromString("search");
    str_start = PyUnicode_InternFromString("start");
    str_isdisjoint = PyUnicode_InternFromString("isdisjoint");
    if (str_match == NULL || str_search == NULL || str_start == NULL || str_isdisjoint == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&nativemodule);
    if (m == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (PyType_Ready(types[i].type) < 0 || PyModule_AddObjectRef(m, types[i].name, (PyObject *)types[i].type) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    }
    return m;
}
