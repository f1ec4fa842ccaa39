/* parse.c: strict JSON objects straight into Arrow column buffers, without the GIL. */
#include "jsonfast.h"

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
        p += plain_run((const unsigned char *)p, 0, end - p, (const unsigned char *)end, 1);
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

/* A value of a key the topic does not know: a scalar is skipped, anything nested declined,
 * and so is a number with an exponent of three digits or more (pyarrow.json, the reference,
 * refuses some of those, 1e309 but not 1.0e309: the slow path decides). */
static const char *skip_scalar(const char *p, const char *end) {
    int integral;
    switch (*p) {
    case '"': return read_string(p + 1, end, NULL);
    case 't': return literal(p, end, "true", 4);
    case 'f': return literal(p, end, "false", 5);
    case 'n': return literal(p, end, "null", 4);
    default: break;
    }
    const char *q = number_end(p, end, &integral);
    if (q && !integral)
        for (const char *e = p; e < q; e++)
            if (*e == 'e' || *e == 'E')
                return q - e - 1 - (e[1] == '+' || e[1] == '-') >= 3 ? NULL : q;
    return q;
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
            while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20 &&
                   (unsigned char)*p < 0x80)
                p++;
            if (p >= end || *p != '"')
                return 0; /* escaped, non-ASCII or malformed key: the slow path decides */
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
    PyObject *validity = c->bits ? jf_take_block(&c->bits, (rows + 7) / 8) : Py_NewRef(Py_None);
    PyObject *values = jf_take_block(&c->values, size);
    PyObject *data = c->kind == 's' ? jf_take_block(&c->data.p, (Py_ssize_t)c->data.len)
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

const char jf_parse_doc[] =
"parse(payloads, names, kinds, max_bytes) -> (rows, declined, columns)\n\n"
"Parse strict JSON objects (a list of bytes) into Arrow buffers, one column per name.\n"
"declined: indices of the records not taken (not JSON, not UTF-8, a value of another type,\n"
"an escaped or repeated key, a nested value, over max_bytes); every other record is a\n"
"row, in order.\n"
"columns: (validity bitmap or None, values, string data or None, null count) per name,\n"
"the buffers as Blocks (read-only, buffer protocol, no copy).";

PyObject *jf_parse(PyObject *self, PyObject *args) {
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
