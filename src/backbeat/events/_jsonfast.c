/* _jsonfast: the JSON codec's two hot loops in C, for flat event records.
 *
 * parse(payloads, names, kinds, max_bytes)  strict JSON objects -> Arrow column buffers
 * encode(keys, kinds, columns, n, split)  Arrow column buffers -> JSON objects
 * int_keys(columns, n)  Kafka record keys such as b"u123" from int64 columns
 * string_list(offsets, data, offset, n)  a string column as a list of bytes
 *
 * Both run without the GIL and only take what they are sure of: parse hands back the indices
 * of the records it did not accept (the Python codec classifies those the slow way), encode
 * returns None when a value is outside what it writes byte for byte like DuckDB's to_json
 * (the Python codec then encodes the batch with DuckDB). codec.py is the only caller and
 * states the contract; tests/events/test_jsonfast.py checks both loops against the Python
 * paths on random input.
 *
 * Kinds: 's' string, 'l' int64, 'i' int32, 'd' float64, 'b' bool.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ growable bytes */

typedef struct {
    char *p;
    size_t len, cap;
} Buf;

static int buf_reserve(Buf *b, size_t extra) {
    if (b->len + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->len + extra)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* ------------------------------------------------------------------ owned memory */

/* Read-only bytes that C allocated, handed to Python without a copy (pyarrow.py_buffer and
 * anything else that takes the buffer protocol). Freed with the last reference. */
typedef struct {
    PyObject_HEAD
    char *data;
    Py_ssize_t len;
} Block;

static void block_dealloc(Block *self) {
    free(self->data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int block_getbuffer(Block *self, Py_buffer *view, int flags) {
    static char empty[1];
    return PyBuffer_FillInfo(view, (PyObject *)self, self->data ? self->data : empty, self->len, 1,
                             flags);
}

static PyBufferProcs block_buffer = {(getbufferproc)block_getbuffer, NULL};

static PyTypeObject BlockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "backbeat.events._jsonfast.Block",
    .tp_doc = "Read-only bytes owned by the C core (buffer protocol).",
    .tp_basicsize = sizeof(Block),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)block_dealloc,
    .tp_as_buffer = &block_buffer,
};

/* A Block that owns *data from now on (*data is set to NULL; freed here on failure). */
static PyObject *take_block(char **data, Py_ssize_t len) {
    Block *b = PyObject_New(Block, &BlockType);
    if (!b) {
        free(*data);
        *data = NULL;
        return NULL;
    }
    b->data = *data;
    b->len = len;
    *data = NULL;
    return (PyObject *)b;
}

/* ------------------------------------------------------------------ 8 bytes at a time */

#if !(defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
#error "the word-wide scans below assume little-endian (the build then skips this module)"
#endif

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* The bytes of v that need a second look in a JSON string: quote, backslash, control
 * character and, with ascii, anything above 0x7F. A byte's high bit is set in the result;
 * only the lowest such bit is exact (a borrow may flag bytes above it), which is all the
 * callers use: zero means none, the trailing zeros count gives the first. Word-wide bit
 * tricks ("has a byte less than n", "has a zero byte"). */
static inline uint64_t special8(uint64_t v, int ascii) {
    uint64_t q = v ^ (ONES * '"'), b = v ^ (ONES * '\\');
    uint64_t m = ((v - ONES * 0x20) & ~v) | ((q - ONES) & ~q) | ((b - ONES) & ~b);
    if (ascii)
        m |= v;
    return m & HIGHS;
}

static inline uint64_t load8(const void *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Index of the first byte from s[i] on that needs a second look, or n. */
static inline Py_ssize_t plain_run(const unsigned char *s, Py_ssize_t i, Py_ssize_t n, int ascii) {
    for (; n - i >= 8; i += 8) {
        uint64_t m = special8(load8(s + i), ascii);
        if (m)
            return i + (__builtin_ctzll(m) >> 3);
    }
    for (; i < n; i++)
        if (s[i] < 0x20 || s[i] == '"' || s[i] == '\\' || (ascii && s[i] >= 0x80))
            return i;
    return n;
}

/* ------------------------------------------------------------------ parse */

enum { UNSEEN = 0, VALUE = 1, NUL = 2 };

typedef struct {
    char kind;
    const char *name;
    Py_ssize_t name_len;
    uint8_t *state;  /* per row: VALUE or NUL (UNSEEN only while a record is parsed) */
    char *values;    /* n * width bytes; strings: n + 1 int32 offsets; bools: a bitmap once packed */
    Buf data;        /* string bytes */
    char *bits;      /* validity bitmap, once packed (NULL without nulls) */
    Py_ssize_t nulls;
} PCol;

#define IS_WS(c) ((c) == ' ' || (c) == '\t' || (c) == '\r')

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && IS_WS(*p))
        p++;
    return p;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int hex4(const char *p, const char *end, uint32_t *out) {
    if (end - p < 4)
        return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return 0;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0 if it is not valid. */
static int utf8_seq(const unsigned char *p, const unsigned char *end) {
    unsigned char c = p[0];
    if (c >= 0xC2 && c <= 0xDF)
        return (end - p >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (end - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && p[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && p[1] >= 0xA0)
            return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (end - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
            (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90)
            return 0; /* overlong */
        if (c == 0xF4 && p[1] >= 0x90)
            return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

static void put_utf8(Buf *b, uint32_t cp) {
    char *o = b->p + b->len;
    if (cp < 0x80) {
        o[0] = (char)cp;
        b->len += 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        b->len += 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        b->len += 3;
    } else {
        o[0] = (char)(0xF0 | cp >> 18);
        o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        o[3] = (char)(0x80 | (cp & 0x3F));
        b->len += 4;
    }
}

/* A JSON string after its opening quote, appended to out (NULL: only checked). Returns the
 * position after the closing quote, or NULL if the string is not valid JSON or UTF-8
 * (raw control characters, bad escapes, lone surrogates). */
static const char *read_string(const char *p, const char *end, Buf *out) {
    /* The decoded string is never longer than its JSON text. */
    if (out && buf_reserve(out, (size_t)(end - p)) < 0)
        return NULL;
    for (;;) {
        const char *run = p;
        p += plain_run((const unsigned char *)p, 0, end - p, 1);
        if (out && p > run) {
            memcpy(out->p + out->len, run, (size_t)(p - run));
            out->len += (size_t)(p - run);
        }
        if (p >= end)
            return NULL;
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL;
        if (c >= 0x80) {
            int n = utf8_seq((const unsigned char *)p, (const unsigned char *)end);
            if (!n)
                return NULL;
            if (out) {
                memcpy(out->p + out->len, p, (size_t)n);
                out->len += (size_t)n;
            }
            p += n;
            continue;
        }
        /* backslash */
        if (end - p < 2)
            return NULL;
        char e = p[1];
        p += 2;
        char plain = 0;
        switch (e) {
        case '"': plain = '"'; break;
        case '\\': plain = '\\'; break;
        case '/': plain = '/'; break;
        case 'b': plain = '\b'; break;
        case 'f': plain = '\f'; break;
        case 'n': plain = '\n'; break;
        case 'r': plain = '\r'; break;
        case 't': plain = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (hex4(p, end, &cp) < 0)
                return NULL;
            p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return NULL;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, end, &lo) < 0 ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return NULL;
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (out)
                put_utf8(out, cp);
            continue;
        }
        default:
            return NULL;
        }
        if (out)
            out->p[out->len++] = plain;
    }
}

/* A JSON number's extent: returns its end (or NULL if not a JSON number); *integral says
 * whether it has neither fraction nor exponent. */
static const char *number_end(const char *p, const char *end, int *integral) {
    const char *q = p;
    if (q < end && *q == '-')
        q++;
    if (q >= end)
        return NULL;
    if (*q == '0')
        q++;
    else if (*q >= '1' && *q <= '9')
        while (q < end && *q >= '0' && *q <= '9')
            q++;
    else
        return NULL;
    *integral = 1;
    if (q < end && *q == '.') {
        q++;
        if (q >= end || *q < '0' || *q > '9')
            return NULL;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
        *integral = 0;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        if (q >= end || *q < '0' || *q > '9')
            return NULL;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
        *integral = 0;
    }
    return q;
}

/* An integer token in [lo, hi]; NULL if the token is anything else. */
static const char *read_int(const char *p, const char *end, int64_t lo, int64_t hi, int64_t *v) {
    int integral;
    const char *q = number_end(p, end, &integral);
    if (!q || !integral || q - p > 20)
        return NULL;
    int neg = *p == '-';
    uint64_t acc = 0;
    for (const char *d = p + neg; d < q; d++) {
        uint64_t digit = (uint64_t)(*d - '0');
        if (acc > (UINT64_MAX - digit) / 10)
            return NULL;
        acc = acc * 10 + digit;
    }
    if (neg) {
        if (acc > (uint64_t)INT64_MAX + 1)
            return NULL;
        *v = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
    } else {
        if (acc > (uint64_t)INT64_MAX)
            return NULL;
        *v = (int64_t)acc;
    }
    return (*v < lo || *v > hi) ? NULL : q;
}

static const char *read_double(const char *p, const char *end, double *v) {
    int integral;
    const char *q = number_end(p, end, &integral);
    if (!q || q - p > 350)
        return NULL;
    char tmp[352]; /* strtod needs a terminated copy: the record goes on after the number */
    memcpy(tmp, p, (size_t)(q - p));
    tmp[q - p] = 0;
    char *stop;
    *v = strtod(tmp, &stop);
    if (stop != tmp + (q - p) || !isfinite(*v))
        return NULL;
    return q;
}

static const char *literal(const char *p, const char *end, const char *word, size_t n) {
    return ((size_t)(end - p) >= n && memcmp(p, word, n) == 0) ? p + n : NULL;
}

/* A value of a key the topic does not know: a scalar is skipped, anything nested declined. */
static const char *skip_scalar(const char *p, const char *end) {
    int integral;
    switch (*p) {
    case '"': return read_string(p + 1, end, NULL);
    case 't': return literal(p, end, "true", 4);
    case 'f': return literal(p, end, "false", 5);
    case 'n': return literal(p, end, "null", 4);
    default: return number_end(p, end, &integral);
    }
}

static const char *read_value(PCol *c, Py_ssize_t row, const char *p, const char *end) {
    if (*p == 'n') {
        c->state[row] = NUL;
        return literal(p, end, "null", 4);
    }
    c->state[row] = VALUE;
    switch (c->kind) {
    case 's':
        return *p == '"' ? read_string(p + 1, end, &c->data) : NULL;
    case 'l':
        return read_int(p, end, INT64_MIN, INT64_MAX, (int64_t *)c->values + row);
    case 'i': {
        int64_t v = 0;
        const char *q = read_int(p, end, INT32_MIN, INT32_MAX, &v);
        ((int32_t *)c->values)[row] = (int32_t)v;
        return q;
    }
    case 'd':
        return read_double(p, end, (double *)c->values + row);
    case 'b':
        if (*p == 't') {
            c->values[row] = 1;
            return literal(p, end, "true", 4);
        }
        c->values[row] = 0;
        return literal(p, end, "false", 5);
    }
    return NULL;
}

static PCol *find_col(PCol *cols, int ncols, int hint, const char *key, Py_ssize_t len) {
    if (hint < ncols && cols[hint].name_len == len && memcmp(cols[hint].name, key, len) == 0)
        return cols + hint;
    for (int i = 0; i < ncols; i++)
        if (cols[i].name_len == len && memcmp(cols[i].name, key, (size_t)len) == 0)
            return cols + i;
    return NULL;
}

/* One record into row `row`: 1 if accepted, 0 if declined (the row is then reused). */
static int parse_record(PCol *cols, int ncols, Py_ssize_t row, const char *p, const char *end) {
    for (int i = 0; i < ncols; i++)
        cols[i].state[row] = UNSEEN;
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return 0;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') {
        p++;
    } else {
        int hint = 0;
        for (;;) {
            if (p >= end || *p != '"')
                return 0;
            const char *key = ++p;
            while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
                p++;
            if (p >= end || *p != '"')
                return 0; /* escaped or malformed key: the slow path decides */
            PCol *c = find_col(cols, ncols, hint, key, p - key);
            p = skip_ws(p + 1, end);
            if (p >= end || *p != ':')
                return 0;
            p = skip_ws(p + 1, end);
            if (p >= end)
                return 0;
            if (c == NULL) {
                p = skip_scalar(p, end);
            } else {
                if (c->state[row] != UNSEEN)
                    return 0; /* duplicate key */
                hint = (int)(c - cols) + 1;
                p = read_value(c, row, p, end);
            }
            if (!p)
                return 0;
            p = skip_ws(p, end);
            if (p < end && *p == ',') {
                p = skip_ws(p + 1, end);
                continue;
            }
            if (p < end && *p == '}') {
                p++;
                break;
            }
            return 0;
        }
    }
    return skip_ws(p, end) == end;
}

static void finish_row(PCol *cols, int ncols, Py_ssize_t row, int accepted) {
    for (int i = 0; i < ncols; i++) {
        PCol *c = cols + i;
        if (c->kind == 's') {
            int32_t *off = (int32_t *)c->values;
            if (!accepted || c->state[row] != VALUE)
                c->data.len = (size_t)off[row];
            off[row + 1] = (int32_t)c->data.len;
        } else if (accepted && c->state[row] != VALUE) {
            switch (c->kind) {
            case 'l': ((int64_t *)c->values)[row] = 0; break;
            case 'i': ((int32_t *)c->values)[row] = 0; break;
            case 'd': ((double *)c->values)[row] = 0; break;
            case 'b': c->values[row] = 0; break;
            }
        }
        if (accepted && c->state[row] == UNSEEN)
            c->state[row] = NUL;
    }
}

static int kind_width(char kind) {
    switch (kind) {
    case 'l': case 'd': return 8;
    case 'i': return 4;
    case 'b': return 1;
    }
    return 0;
}

/* A bitmap of which flags equal on (Arrow's bit order); NULL if out of memory. */
static char *packed_bits(const uint8_t *flags, uint8_t on, Py_ssize_t n) {
    uint8_t *bits = calloc((size_t)(n + 7) / 8 + 1, 1);
    if (bits)
        for (Py_ssize_t i = 0; i < n; i++)
            bits[i >> 3] |= (uint8_t)((flags[i] == on) << (i & 7));
    return (char *)bits;
}

/* Arrow's layout for a parsed column, without the GIL: validity and bool bitmaps, null
 * count, string bytes cut to size. -1 if out of memory. */
static int pack_column(PCol *c, Py_ssize_t rows) {
    c->nulls = 0;
    for (Py_ssize_t i = 0; i < rows; i++)
        c->nulls += c->state[i] != VALUE;
    if (c->nulls && !(c->bits = packed_bits(c->state, VALUE, rows)))
        return -1;
    if (c->kind == 'b') {
        char *bits = packed_bits((const uint8_t *)c->values, 1, rows);
        if (!bits)
            return -1;
        free(c->values);
        c->values = bits;
    }
    if (c->kind == 's' && c->data.p && c->data.cap > c->data.len + 4096) {
        char *p = realloc(c->data.p, c->data.len + 1);
        if (p)
            c->data.p = p, c->data.cap = c->data.len + 1;
    }
    return 0;
}

/* The Python result of one packed column: (validity or None, values, string data or None,
 * nulls), the buffers handed over as Blocks. */
static PyObject *column_result(PCol *c, Py_ssize_t rows) {
    Py_ssize_t size = c->kind == 's' ? (rows + 1) * 4
                      : c->kind == 'b' ? (rows + 7) / 8
                                       : rows * kind_width(c->kind);
    PyObject *validity = c->bits ? take_block(&c->bits, (rows + 7) / 8) : Py_NewRef(Py_None);
    PyObject *values = take_block(&c->values, size);
    PyObject *data = c->kind == 's' ? take_block(&c->data.p, (Py_ssize_t)c->data.len)
                                    : Py_NewRef(Py_None);
    if (!validity || !values || !data) {
        Py_XDECREF(validity);
        Py_XDECREF(values);
        Py_XDECREF(data);
        return NULL;
    }
    return Py_BuildValue("(NNNn)", validity, values, data, c->nulls);
}

static void free_pcols(PCol *cols, int ncols) {
    for (int i = 0; i < ncols; i++) {
        free(cols[i].state);
        free(cols[i].values);
        free(cols[i].data.p);
        free(cols[i].bits);
    }
    free(cols);
}

PyDoc_STRVAR(parse_doc,
"parse(payloads, names, kinds, max_bytes) -> (rows, declined, columns)\n\n"
"Parse strict JSON objects (a list of bytes) into Arrow buffers, one column per name.\n"
"declined: indices of the records not taken (not JSON, not UTF-8, a value of another type,\n"
"an escaped or repeated key, a nested value, over max_bytes); every other record is a\n"
"row, in order.\n"
"columns: (validity bitmap or None, values, string data or None, null count) per name,\n"
"the buffers as Blocks (read-only, buffer protocol, no copy).");

static PyObject *parse(PyObject *self, PyObject *args) {
    PyObject *payloads, *names;
    const char *kinds;
    Py_ssize_t nkinds, max_bytes;
    if (!PyArg_ParseTuple(args, "O!O!s#n", &PyList_Type, &payloads, &PyTuple_Type, &names, &kinds,
                          &nkinds, &max_bytes))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(payloads);
    int ncols = (int)PyTuple_GET_SIZE(names);
    if (ncols != nkinds) {
        PyErr_SetString(PyExc_ValueError, "names and kinds differ in length");
        return NULL;
    }
    PyObject *items = PyList_New(n); /* our own references: the caller's list may change */
    PCol *cols = calloc((size_t)ncols ? (size_t)ncols : 1, sizeof(PCol));
    uint8_t *taken = malloc((size_t)n + 1);
    if (!items || !cols || !taken) {
        Py_XDECREF(items);
        free(cols);
        free(taken);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(payloads, i);
        if (!PyBytes_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "payloads must be bytes");
            goto fail;
        }
        Py_INCREF(item);
        PyList_SET_ITEM(items, i, item);
    }
    for (int i = 0; i < ncols; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!PyBytes_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "names must be bytes");
            goto fail;
        }
        PCol *c = cols + i;
        c->kind = kinds[i];
        c->name = PyBytes_AS_STRING(name);
        c->name_len = PyBytes_GET_SIZE(name);
        int width = c->kind == 's' ? 4 : kind_width(c->kind);
        if (!width) {
            PyErr_Format(PyExc_ValueError, "unknown kind %c", c->kind);
            goto fail;
        }
        c->state = malloc((size_t)n + 1);
        c->values = calloc((size_t)n + 1, (size_t)width);
        if (!c->state || !c->values) {
            PyErr_NoMemory();
            goto fail;
        }
    }
    Py_ssize_t rows = 0;
    int oom = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        const char *p = PyBytes_AS_STRING(item);
        Py_ssize_t size = PyBytes_GET_SIZE(item);
        int ok = size <= max_bytes && parse_record(cols, ncols, rows, p, p + size);
        for (int k = 0; k < ncols && ok; k++)
            if (cols[k].kind == 's' && cols[k].data.len > INT32_MAX)
                ok = 0, oom = 1; /* int32 offsets: the Python path takes the batch */
        finish_row(cols, ncols, rows, ok);
        taken[i] = (uint8_t)ok;
        rows += ok;
    }
    for (int k = 0; k < ncols && !oom; k++)
        oom = pack_column(cols + k, rows) < 0 ? 2 : 0;
    Py_END_ALLOW_THREADS
    if (oom == 2) {
        PyErr_NoMemory();
        goto fail;
    }
    if (oom) {
        PyErr_SetString(PyExc_OverflowError, "string column over 2 GiB");
        goto fail;
    }
    PyObject *declined = PyList_New(0);
    PyObject *columns = PyList_New(ncols);
    if (!declined || !columns)
        goto fail_result;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (taken[i])
            continue;
        PyObject *idx = PyLong_FromSsize_t(i);
        if (!idx || PyList_Append(declined, idx) < 0) {
            Py_XDECREF(idx);
            goto fail_result;
        }
        Py_DECREF(idx);
    }
    for (int i = 0; i < ncols; i++) {
        PyObject *col = column_result(cols + i, rows);
        if (!col)
            goto fail_result;
        PyList_SET_ITEM(columns, i, col);
    }
    Py_DECREF(items);
    free(taken);
    free_pcols(cols, ncols);
    return Py_BuildValue("(nNN)", rows, declined, columns);
fail_result:
    Py_XDECREF(declined);
    Py_XDECREF(columns);
fail:
    Py_DECREF(items);
    free(taken);
    free_pcols(cols, ncols);
    return NULL;
}

/* ------------------------------------------------------------------ encode */

typedef struct {
    char kind;
    const char *key; /* "name": */
    Py_ssize_t key_len;
    char key32[32]; /* the key, padded: copied as one fixed-size move when it fits */
    Py_buffer validity, values, offsets;
    Py_ssize_t offset; /* the Arrow array's offset */
} ECol;

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,
                               1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17,
                               1e18, 1e19, 1e20, 1e21, 1e22};

static char *put_u64(char *o, uint64_t v) {
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *o++ = tmp[--n];
    return o;
}

static char *put_i64(char *o, int64_t v) {
    if (v < 0) {
        *o++ = '-';
        return put_u64(o, (uint64_t)0 - (uint64_t)v);
    }
    return put_u64(o, (uint64_t)v);
}

/* A double as DuckDB's to_json writes it (shortest round-trip digits, fixed notation, ".0"
 * on whole numbers), for values with at most 15 significant digits in [1e-6, 1e15) and
 * zeros. Returns NULL for any other value: the caller lets DuckDB encode the batch. */
static char *put_double(char *o, double x) {
    if (x == 0) {
        if (signbit(x))
            *o++ = '-';
        memcpy(o, "0.0", 3);
        return o + 3;
    }
    double ax = fabs(x);
    if (!(ax >= 1e-6 && ax < 1e15))
        return NULL;
    for (int k = 0; k <= 20; k++) {
        /* v is within v * 2^-52 of the digits m that read back as x, if there are such
         * digits with k decimals: a cheap test first, the exact one (a division) after. */
        double v = ax * POW10[k];
        if (v >= 1e15)
            return NULL; /* more than 15 significant digits */
        double m = (double)(int64_t)(v + 0.5);
        if (m >= 1e15)
            return NULL;
        if (fabs(v - m) > v * 0x1p-50 || m / POW10[k] != ax)
            continue;
        /* m * 10^-k is the shortest decimal that reads back as x: the one DuckDB writes. */
        if (x < 0)
            *o++ = '-';
        char digits[24];
        char *end = put_u64(digits, (uint64_t)m);
        int nd = (int)(end - digits);
        if (k == 0) {
            memcpy(o, digits, (size_t)nd);
            memcpy(o + nd, ".0", 2);
            return o + nd + 2;
        }
        if (nd > k) {
            memcpy(o, digits, (size_t)(nd - k));
            o += nd - k;
            *o++ = '.';
            memcpy(o, digits + nd - k, (size_t)k);
            return o + k;
        }
        *o++ = '0';
        *o++ = '.';
        memset(o, '0', (size_t)(k - nd));
        o += k - nd;
        memcpy(o, digits, (size_t)nd);
        return o + nd;
    }
    return NULL;
}

static const char HEX[] = "0123456789ABCDEF";

/* A string's JSON text, escaped as DuckDB's to_json escapes it. Room: 6 bytes per input byte
 * and 18 more; the string's buffer must be readable up to limit. */
static char *put_string(char *o, const unsigned char *s, Py_ssize_t n,
                        const unsigned char *limit) {
    *o++ = '"';
    Py_ssize_t i = 0;
    for (;;) {
        Py_ssize_t run = i;
        i = plain_run(s, i, n, 0);
        if (i - run <= 16 && limit - (s + run) >= 16)
            memcpy(o, s + run, 16); /* one fixed-size move instead of a call; room is kept */
        else
            memcpy(o, s + run, (size_t)(i - run));
        o += i - run;
        if (i == n)
            break;
        unsigned char c = s[i++];
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            memcpy(o, "u00", 3);
            o[3] = HEX[c >> 4];
            o[4] = HEX[c & 15];
            o += 5;
        }
    }
    *o++ = '"';
    return o;
}

static int ecol_valid(const ECol *c, Py_ssize_t i) {
    if (!c->validity.buf)
        return 1;
    Py_ssize_t j = i + c->offset;
    return ((const uint8_t *)c->validity.buf)[j >> 3] >> (j & 7) & 1;
}

/* Row i's JSON object (no newline) appended to out: 0, -1 out of memory, 1 declined. */
static int encode_row(ECol *cols, int ncols, Py_ssize_t i, Buf *out) {
    int first = 1;
    for (int k = 0; k < ncols; k++) {
        ECol *c = cols + k;
        if (!ecol_valid(c, i))
            continue;
        Py_ssize_t j = i + c->offset;
        const unsigned char *s = NULL;
        Py_ssize_t slen = 0;
        if (c->kind == 's') {
            const int32_t *off = (const int32_t *)c->offsets.buf;
            s = (const unsigned char *)c->values.buf + off[j];
            slen = off[j + 1] - off[j];
        }
        if (buf_reserve(out, (size_t)(c->key_len + 48 + 6 * slen)) < 0)
            return -1;
        char *o = out->p + out->len;
        *o++ = first ? '{' : ',';
        first = 0;
        if (c->key_len <= 32)
            memcpy(o, c->key32, 32);
        else
            memcpy(o, c->key, (size_t)c->key_len);
        o += c->key_len;
        switch (c->kind) {
        case 's':
            o = put_string(o, s, slen, (const unsigned char *)c->values.buf + c->values.len);
            break;
        case 'l': o = put_i64(o, ((const int64_t *)c->values.buf)[j]); break;
        case 'i': o = put_i64(o, ((const int32_t *)c->values.buf)[j]); break;
        case 'd': o = put_double(o, ((const double *)c->values.buf)[j]); break;
        case 'b': {
            int on = ((const uint8_t *)c->values.buf)[j >> 3] >> (j & 7) & 1;
            memcpy(o, on ? "true" : "false", on ? 4 : 5);
            o += on ? 4 : 5;
            break;
        }
        }
        if (!o)
            return 1;
        out->len = (size_t)(o - out->p);
    }
    if (first) /* every field null: DuckDB writes such rows its own way */
        return 1;
    if (buf_reserve(out, 2) < 0)
        return -1;
    out->p[out->len++] = '}';
    return 0;
}

static void release_ecols(ECol *cols, int ncols) {
    for (int k = 0; k < ncols; k++) {
        if (cols[k].validity.buf)
            PyBuffer_Release(&cols[k].validity);
        if (cols[k].values.buf)
            PyBuffer_Release(&cols[k].values);
        if (cols[k].offsets.buf)
            PyBuffer_Release(&cols[k].offsets);
    }
    free(cols);
}

static int get_buffer(PyObject *obj, Py_buffer *view) {
    if (obj == Py_None) {
        view->buf = NULL;
        return 0;
    }
    return PyObject_GetBuffer(obj, view, PyBUF_SIMPLE);
}

PyDoc_STRVAR(encode_doc,
"encode(keys, kinds, columns, n, split) -> bytes | list[bytes] | None\n\n"
"Write n rows as JSON objects: keys are the '\"name\":' prefixes, columns one\n"
"(validity or None, values, offsets or None, array offset) per key, from Arrow buffers\n"
"(strings: values = data, offsets = int32 offsets). Null fields are left out. split: a list\n"
"of one bytes per row; else one bytes, each row ending in a newline. None: a value this\n"
"encoder does not write like DuckDB's to_json (the caller encodes with DuckDB).");

static PyObject *encode(PyObject *self, PyObject *args) {
    PyObject *keys, *columns;
    const char *kinds;
    Py_ssize_t nkinds, n;
    int split;
    if (!PyArg_ParseTuple(args, "O!s#O!np", &PyTuple_Type, &keys, &kinds, &nkinds,
                          &PyList_Type, &columns, &n, &split))
        return NULL;
    int ncols = (int)nkinds;
    if (PyTuple_GET_SIZE(keys) != nkinds || PyList_GET_SIZE(columns) != nkinds || n < 0) {
        PyErr_SetString(PyExc_ValueError, "keys, kinds and columns differ in length");
        return NULL;
    }
    ECol *cols = calloc((size_t)ncols ? (size_t)ncols : 1, sizeof(ECol));
    if (!cols)
        return PyErr_NoMemory();
    for (int k = 0; k < ncols; k++) {
        ECol *c = cols + k;
        PyObject *key = PyTuple_GET_ITEM(keys, k);
        PyObject *spec = PyList_GET_ITEM(columns, k);
        PyObject *validity, *values, *offsets;
        if (!PyBytes_Check(key) ||
            !PyArg_ParseTuple(spec, "OOOn", &validity, &values, &offsets, &c->offset)) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "keys must be bytes");
            release_ecols(cols, ncols);
            return NULL;
        }
        c->kind = kinds[k];
        c->key = PyBytes_AS_STRING(key);
        c->key_len = PyBytes_GET_SIZE(key);
        memcpy(c->key32, c->key, (size_t)(c->key_len < 32 ? c->key_len : 32));
        if (get_buffer(validity, &c->validity) < 0 || get_buffer(values, &c->values) < 0 ||
            get_buffer(offsets, &c->offsets) < 0) {
            release_ecols(cols, ncols);
            return NULL;
        }
        Py_ssize_t width = c->kind == 's' ? 0 : kind_width(c->kind);
        int ok = c->kind == 's' ? (c->offsets.buf && c->offsets.len >= (c->offset + n + 1) * 4)
                                : (width && c->values.buf &&
                                   (c->kind == 'b' ? c->values.len * 8 >= c->offset + n
                                                   : c->values.len >= (c->offset + n) * width));
        if (!ok || (c->validity.buf && c->validity.len * 8 < c->offset + n)) {
            PyErr_Format(PyExc_ValueError, "column %d: buffers too small or kind unknown", k);
            release_ecols(cols, ncols);
            return NULL;
        }
    }
    /* The output buffer stays with the thread between calls: a fresh one of this size
     * would be new pages from the kernel each time (faulted in and zeroed, a fifth of the
     * cost). It is as big as the largest batch the thread encoded. */
    static _Thread_local Buf kept = {0};
    Buf out = kept;
    out.len = 0;
    Py_ssize_t *ends = split ? malloc(((size_t)n + 1) * sizeof(Py_ssize_t)) : NULL;
    int status = (split && !ends) ? -1 : 0;
    Py_BEGIN_ALLOW_THREADS
    /* Room for the usual case at once (strings rarely need escapes): growing by doubling
     * would copy and fault in the output several times over. */
    size_t room = (size_t)n * 3;
    for (int k = 0; k < ncols; k++) {
        const ECol *c = cols + k;
        room += (size_t)n * (size_t)(c->key_len + 3);
        if (c->kind == 's') {
            const int32_t *off = (const int32_t *)c->offsets.buf;
            room += (size_t)(off[c->offset + n] - off[c->offset]);
        } else {
            room += (size_t)n * 24;
        }
    }
    if (status == 0 && buf_reserve(&out, room) < 0)
        status = -1;
    for (Py_ssize_t i = 0; i < n && status == 0; i++) {
        status = encode_row(cols, ncols, i, &out);
        if (status == 0 && !split) {
            if (buf_reserve(&out, 1) < 0)
                status = -1;
            else
                out.p[out.len++] = '\n';
        }
        if (split)
            ends[i] = (Py_ssize_t)out.len;
    }
    Py_END_ALLOW_THREADS
    release_ecols(cols, ncols);
    PyObject *result = NULL;
    if (status < 0) {
        PyErr_NoMemory();
    } else if (status > 0) {
        result = Py_None;
        Py_INCREF(result);
    } else if (!split) {
        result = PyBytes_FromStringAndSize(out.p ? out.p : "", (Py_ssize_t)out.len);
    } else if ((result = PyList_New(n))) {
        Py_ssize_t start = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *one = PyBytes_FromStringAndSize(out.p + start, ends[i] - start);
            if (!one) {
                Py_CLEAR(result);
                break;
            }
            PyList_SET_ITEM(result, i, one);
            start = ends[i];
        }
    }
    kept = out;
    free(ends);
    return result;
}

/* ------------------------------------------------------------------ record keys */

PyDoc_STRVAR(int_keys_doc,
"int_keys(columns, n) -> list[bytes]\n\n"
"One key per row: the prefix and decimal value of the first of the int64 columns\n"
"(prefix, validity or None, values, array offset) that is not null there (b'' if none).");

typedef struct {
    const char *prefix;
    Py_ssize_t prefix_len, offset;
    Py_buffer validity, values;
} KCol;

static PyObject *int_keys(PyObject *self, PyObject *args) {
    PyObject *columns;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "O!n", &PyList_Type, &columns, &n))
        return NULL;
    Py_ssize_t ncols = PyList_GET_SIZE(columns);
    KCol *cols = calloc((size_t)ncols + 1, sizeof(KCol));
    PyObject *result = NULL;
    Py_ssize_t ready = 0;
    if (!cols)
        return PyErr_NoMemory();
    for (; ready < ncols; ready++) {
        KCol *c = cols + ready;
        PyObject *prefix, *validity, *values;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(columns, ready), "O!OOn", &PyBytes_Type, &prefix,
                              &validity, &values, &c->offset))
            goto done;
        c->prefix = PyBytes_AS_STRING(prefix);
        c->prefix_len = PyBytes_GET_SIZE(prefix);
        if (get_buffer(validity, &c->validity) < 0)
            goto done;
        if (get_buffer(values, &c->values) < 0) {
            if (c->validity.buf)
                PyBuffer_Release(&c->validity);
            goto done;
        }
        if (!c->values.buf || c->values.len < (c->offset + n) * 8 ||
            (c->validity.buf && c->validity.len * 8 < c->offset + n)) {
            ready++;
            PyErr_SetString(PyExc_ValueError, "key column buffers too small");
            goto done;
        }
    }
    if (!(result = PyList_New(n)))
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        char key[64];
        Py_ssize_t len = 0;
        for (Py_ssize_t k = 0; k < ncols; k++) {
            KCol *c = cols + k;
            Py_ssize_t j = i + c->offset;
            if (c->validity.buf && !(((const uint8_t *)c->validity.buf)[j >> 3] >> (j & 7) & 1))
                continue;
            Py_ssize_t p = c->prefix_len < 40 ? c->prefix_len : 40;
            memcpy(key, c->prefix, (size_t)p);
            len = put_i64(key + p, ((const int64_t *)c->values.buf)[j]) - key;
            break;
        }
        PyObject *one = PyBytes_FromStringAndSize(key, len);
        if (!one) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, i, one);
    }
done:
    for (Py_ssize_t k = 0; k < ready; k++) {
        if (cols[k].validity.buf)
            PyBuffer_Release(&cols[k].validity);
        if (cols[k].values.buf)
            PyBuffer_Release(&cols[k].values);
    }
    free(cols);
    return result;
}

/* ------------------------------------------------------------------ string lists */

PyDoc_STRVAR(string_list_doc,
"string_list(offsets, data, offset, n) -> list[bytes]\n\n"
"The n values of an Arrow string or binary array (int32 offsets) as bytes objects, in\n"
"one call that holds the GIL throughout (nulls come out as their empty slots: b'').");

static PyObject *string_list(PyObject *self, PyObject *args) {
    PyObject *offsets_obj, *data_obj;
    Py_ssize_t offset, n;
    if (!PyArg_ParseTuple(args, "OOnn", &offsets_obj, &data_obj, &offset, &n))
        return NULL;
    Py_buffer offsets, data;
    if (get_buffer(offsets_obj, &offsets) < 0)
        return NULL;
    if (get_buffer(data_obj, &data) < 0) {
        if (offsets.buf)
            PyBuffer_Release(&offsets);
        return NULL;
    }
    PyObject *result = NULL;
    const int32_t *off = (const int32_t *)offsets.buf;
    if (!off || offset < 0 || n < 0 || offsets.len < (offset + n + 1) * 4 ||
        (n && off[offset + n] > (data.buf ? data.len : 0))) {
        PyErr_SetString(PyExc_ValueError, "string_list: buffers too small");
    } else if ((result = PyList_New(n))) {
        for (Py_ssize_t i = 0; i < n; i++) {
            int32_t a = off[offset + i], b = off[offset + i + 1];
            PyObject *one = PyBytes_FromStringAndSize(b > a ? (const char *)data.buf + a : "",
                                                      b > a ? b - a : 0);
            if (!one) {
                Py_CLEAR(result);
                break;
            }
            PyList_SET_ITEM(result, i, one);
        }
    }
    if (offsets.buf)
        PyBuffer_Release(&offsets);
    if (data.buf)
        PyBuffer_Release(&data);
    return result;
}

/* ------------------------------------------------------------------ module */

static PyMethodDef methods[] = {
    {"parse", parse, METH_VARARGS, parse_doc},
    {"encode", encode, METH_VARARGS, encode_doc},
    {"int_keys", int_keys, METH_VARARGS, int_keys_doc},
    {"string_list", string_list, METH_VARARGS, string_list_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jsonfast",
    "The JSON codec's hot loops in C (see backbeat/events/codec.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__jsonfast(void) {
    if (PyType_Ready(&BlockType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddObjectRef(m, "Block", (PyObject *)&BlockType) < 0)
        Py_CLEAR(m);
    return m;
}
