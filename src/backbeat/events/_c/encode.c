/* encode.c: Arrow column buffers to the JSON text DuckDB's to_json writes, without the GIL. */
#include "jsonfast.h"

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
        i = plain_run(s, i, n, limit, 0);
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

/* Row i's JSON object (no newline) appended to out: 0, -1 out of memory, 1 declined. */
static int encode_row(ECol *cols, int ncols, Py_ssize_t i, Buf *out) {
    int first = 1;
    for (int k = 0; k < ncols; k++) {
        ECol *c = cols + k;
        Py_ssize_t j = i + c->offset;
        if (c->validity.buf && !bit_at(c->validity.buf, j))
            continue;
        const unsigned char *s = NULL;
        Py_ssize_t slen = 0;
        if (c->kind == 's') {
            const int32_t *off = (const int32_t *)c->offsets.buf;
            if (off[j] < 0 || off[j + 1] < off[j] || off[j + 1] > c->values.len)
                return 1; /* malformed offsets: not ours to read */
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
            int on = bit_at(c->values.buf, j);
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
        jf_release(&cols[k].validity);
        jf_release(&cols[k].values);
        jf_release(&cols[k].offsets);
    }
    free(cols);
}

const char jf_encode_doc[] =
"encode(keys, kinds, columns, n, packed) -> bytes | Block | None\n\n"
"Write n rows as JSON objects: keys are the '\"name\":' prefixes, columns one\n"
"(validity or None, values, offsets or None, array offset) per key, from Arrow buffers\n"
"(strings: values = data, offsets = int32 offsets). Null fields are left out. packed: one\n"
"Block of n + 1 int64 ends, then the rows (see jsonfast.h); else one bytes, each row ending\n"
"in a newline. None: a value this encoder does not write like DuckDB's to_json (the caller\n"
"encodes with DuckDB).";

PyObject *jf_encode(PyObject *self, PyObject *args) {
    PyObject *keys, *columns;
    const char *kinds;
    Py_ssize_t nkinds, n;
    int packed;
    if (!PyArg_ParseTuple(args, "O!s#O!np", &PyTuple_Type, &keys, &kinds, &nkinds,
                          &PyList_Type, &columns, &n, &packed))
        return NULL;
    int ncols = (int)nkinds;
    if (PyTuple_GET_SIZE(keys) != nkinds || PyList_GET_SIZE(columns) != nkinds) {
        PyErr_SetString(PyExc_ValueError, "keys, kinds and columns differ in length");
        return NULL;
    }
    if (n < 0 || n > PY_SSIZE_T_MAX / 64) {
        PyErr_SetString(PyExc_ValueError, "encode: bad row count");
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
        if (jf_get_buffer(validity, &c->validity) < 0 || jf_get_buffer(values, &c->values) < 0 ||
            jf_get_buffer(offsets, &c->offsets) < 0) {
            release_ecols(cols, ncols);
            return NULL;
        }
        Py_ssize_t width = kind_width(c->kind); /* 0 for strings */
        const int32_t *off = (const int32_t *)c->offsets.buf;
        int ok = c->offset >= 0 && n <= PY_SSIZE_T_MAX / 8 - c->offset;
        ok = ok && (c->kind == 's' ? (off && c->offsets.len >= (c->offset + n + 1) * 4 &&
                                      off[c->offset] >= 0 && off[c->offset] <= off[c->offset + n] &&
                                      off[c->offset + n] <= c->values.len)
                                : (width && c->values.buf &&
                                   (c->kind == 'b' ? c->values.len * 8 >= c->offset + n
                                                   : c->values.len >= (c->offset + n) * width)));
        if (!ok || (c->validity.buf && c->validity.len * 8 < c->offset + n)) {
            PyErr_Format(PyExc_ValueError, "column %d: buffers too small or kind unknown", k);
            release_ecols(cols, ncols);
            return NULL;
        }
    }
    /* Spare buffers (block.c): a fresh one would be new pages from the kernel each time. */
    Buf out = jf_spare();
    int status = 0;
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
    if (packed ? packed_begin(&out, n, room) < 0 : buf_reserve(&out, room) < 0)
        status = -1;
    for (Py_ssize_t i = 0; i < n && status == 0; i++) {
        status = encode_row(cols, ncols, i, &out);
        if (status != 0)
            break;
        if (packed) {
            packed_end(&out, n, i);
        } else if (buf_reserve(&out, 1) < 0) {
            status = -1;
        } else {
            out.p[out.len++] = '\n';
        }
    }
    Py_END_ALLOW_THREADS
    release_ecols(cols, ncols);
    PyObject *result = NULL;
    if (status < 0) {
        PyErr_NoMemory();
    } else if (status > 0) {
        result = Py_NewRef(Py_None);
    } else if (packed) {
        return jf_take_buf(&out);
    } else {
        result = PyBytes_FromStringAndSize(out.p ? out.p : "", (Py_ssize_t)out.len);
    }
    jf_give_back(&out);
    return result;
}
