/* jsonfast.h: what the C core's files share (see module.c for the whole picture).
 *
 * Growable bytes, word-wide scans of JSON strings, integers as text, kinds, buffers, and the
 * functions each file gives the module. Kinds: 's' string, 'l' int64, 'i' int32,
 * 'd' float64, 'b' bool.
 */
#ifndef BACKBEAT_JSONFAST_H
#define BACKBEAT_JSONFAST_H

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

static inline int buf_reserve(Buf *b, size_t extra) {
    if (extra > SIZE_MAX / 4 - b->len)
        return -1;
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

/* Index of the first byte from s[i] on that needs a second look, or n. The buffer must be
 * readable up to limit: a short tail is then read as one word too, its bytes past n masked
 * off (the lowest flagged byte is exact, and borrows only run upwards). */
static inline Py_ssize_t plain_run(const unsigned char *s, Py_ssize_t i, Py_ssize_t n,
                                   const unsigned char *limit, int ascii) {
    for (; n - i >= 8; i += 8) {
        uint64_t m = special8(load8(s + i), ascii);
        if (m)
            return i + (__builtin_ctzll(m) >> 3);
    }
    if (i < n && limit - (s + i) >= 8) {
        uint64_t m = special8(load8(s + i), ascii) & ((1ULL << (8 * (n - i))) - 1);
        return m ? i + (__builtin_ctzll(m) >> 3) : n;
    }
    for (; i < n; i++)
        if (s[i] < 0x20 || s[i] == '"' || s[i] == '\\' || (ascii && s[i] >= 0x80))
            return i;
    return n;
}

/* ------------------------------------------------------------------ small shared helpers */

static inline int kind_width(char kind) {
    switch (kind) {
    case 'l': case 'd': return 8;
    case 'i': return 4;
    case 'b': return 1;
    }
    return 0;
}

/* Bit j of an Arrow bitmap (validity or bool values). */
static inline int bit_at(const void *bits, Py_ssize_t j) {
    return ((const uint8_t *)bits)[j >> 3] >> (j & 7) & 1;
}

/* "00" to "99": two digits per division. */
static const char DIGIT_PAIRS[] = "0001020304050607080910111213141516171819"
                                  "2021222324252627282930313233343536373839"
                                  "4041424344454647484950515253545556575859"
                                  "6061626364656667686970717273747576777879"
                                  "8081828384858687888990919293949596979899";

static inline char *put_u64(char *o, uint64_t v) {
    char tmp[20];
    int n = 20;
    while (v >= 100) {
        n -= 2;
        memcpy(tmp + n, DIGIT_PAIRS + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10) {
        n -= 2;
        memcpy(tmp + n, DIGIT_PAIRS + 2 * v, 2);
    } else {
        tmp[--n] = (char)('0' + v);
    }
    memcpy(o, tmp + n, (size_t)(20 - n));
    return o + 20 - n;
}

static inline char *put_i64(char *o, int64_t v) {
    if (v < 0) {
        *o++ = '-';
        return put_u64(o, (uint64_t)0 - (uint64_t)v);
    }
    return put_u64(o, (uint64_t)v);
}

/* A read-only view of obj's bytes; None gives view->buf == NULL and view->obj == NULL. */
int jf_get_buffer(PyObject *obj, Py_buffer *view);

/* Releases a view jf_get_buffer filled (nothing for None or one never filled). */
static inline void jf_release(Py_buffer *view) {
    if (view->obj)
        PyBuffer_Release(view);
}

/* Block: read-only bytes that C allocated, handed to Python without a copy (block.c). */
extern PyTypeObject jf_BlockType;
PyObject *jf_take_block(char **data, Py_ssize_t len);
/* A Block of b's bytes (b is emptied); big ones are kept as spares when freed. */
PyObject *jf_take_buf(Buf *b);
/* The biggest spare buffer (empty, len 0), or an empty Buf; jf_give_back keeps or frees one.
 * Both with the GIL held. */
Buf jf_spare(void);
void jf_give_back(Buf *b);

/* ------------------------------------------------------------------ packed rows */

/* A packed column: one Block of n + 1 int64 ends (ends[0] = 0), then the rows' bytes one
 * after another (row i is data[ends[i]:ends[i + 1]]); codec/c_core.py views it as an Arrow
 * large_binary array without a copy. packed_begin reserves the ends (and room for the rows),
 * packed_end closes row i; jf_take_buf hands the whole over. */
static inline Py_ssize_t packed_header(Py_ssize_t n) {
    return (n + 1) * (Py_ssize_t)sizeof(int64_t);
}

static inline int packed_begin(Buf *out, Py_ssize_t n, size_t room) {
    out->len = 0;
    if (buf_reserve(out, (size_t)packed_header(n) + room) < 0)
        return -1;
    out->len = (size_t)packed_header(n);
    ((int64_t *)out->p)[0] = 0;
    return 0;
}

static inline void packed_end(Buf *out, Py_ssize_t n, Py_ssize_t i) {
    ((int64_t *)out->p)[i + 1] = (int64_t)out->len - packed_header(n);
}

/* The module's functions and their docstrings, one file each. */
PyObject *jf_parse(PyObject *self, PyObject *args);
PyObject *jf_encode(PyObject *self, PyObject *args);
PyObject *jf_int_keys(PyObject *self, PyObject *args);
extern const char jf_parse_doc[], jf_encode_doc[], jf_int_keys_doc[];

#endif
