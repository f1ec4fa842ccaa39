/* columns.h: binary columns as the produce loops take them (produce.c, native.c).
 *
 * A column is (offsets, data, wide, offset): the buffers of an Arrow binary or string array
 * without nulls (wide: int64 offsets, else int32; offset: the array's first row in them).
 * column() takes one and checks, before any row is read, that rows [start, stop) lie inside
 * its buffers; bounds() then gives row i's bytes as data[lo:hi]. take_rows() does both loops'
 * argument work: the row range, then the value, key and header columns.
 */
#ifndef BACKBEAT_COLUMNS_H
#define BACKBEAT_COLUMNS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef struct {
    Py_buffer offsets, data;
    int wide;
    Py_ssize_t offset;
} Column;

static inline void release(Column *c) {
    if (c->offsets.obj)
        PyBuffer_Release(&c->offsets);
    if (c->data.obj)
        PyBuffer_Release(&c->data);
}

/* Row i's bytes: data[lo:hi]. */
static inline void bounds(const Column *c, Py_ssize_t i, int64_t *lo, int64_t *hi) {
    Py_ssize_t j = c->offset + i;
    if (c->wide) {
        *lo = ((const int64_t *)c->offsets.buf)[j];
        *hi = ((const int64_t *)c->offsets.buf)[j + 1];
    } else {
        *lo = ((const int32_t *)c->offsets.buf)[j];
        *hi = ((const int32_t *)c->offsets.buf)[j + 1];
    }
}

/* Take a (offsets, data, wide, offset) column whose rows [start, stop) lie in its buffers. */
static inline int column(PyObject *spec, Py_ssize_t start, Py_ssize_t stop, Column *c) {
    PyObject *offsets, *data;
    memset(c, 0, sizeof(*c));
    if (!PyTuple_Check(spec)) {
        PyErr_SetString(PyExc_TypeError, "produce_each: a column is (offsets, data, wide, offset)");
        return -1;
    }
    if (!PyArg_ParseTuple(spec, "OOpn", &offsets, &data, &c->wide, &c->offset))
        return -1;
    if (PyObject_GetBuffer(offsets, &c->offsets, PyBUF_SIMPLE) < 0)
        return -1;
    if (PyObject_GetBuffer(data, &c->data, PyBUF_SIMPLE) < 0)
        return -1;
    Py_ssize_t width = c->wide ? 8 : 4;
    if (c->offset < 0 || stop > PY_SSIZE_T_MAX / 8 - c->offset - 1 ||
        c->offsets.len / width < c->offset + stop + 1) {
        PyErr_SetString(PyExc_ValueError, "produce_each: offsets buffer too short");
        return -1;
    }
    for (Py_ssize_t i = start; i < stop; i++) {
        int64_t lo, hi;
        bounds(c, i, &lo, &hi);
        if (lo < 0 || hi < lo || hi > c->data.len) {
            PyErr_Format(PyExc_ValueError, "produce_each: row %zd lies outside its data", i);
            return -1;
        }
    }
    return 0;
}

static inline void release_rows(Column cols[3]) {
    for (int k = 0; k < 3; k++)
        release(cols + k);
}

/* Rows [*start, *stop) of the value, key and header columns specs: 0, or -1 with an exception
 * set and nothing left to release. */
static inline int take_rows(PyObject *const specs[3], PyObject *first, PyObject *last,
                            Py_ssize_t *start, Py_ssize_t *stop, Column cols[3]) {
    memset(cols, 0, 3 * sizeof(Column));
    *start = PyLong_AsSsize_t(first);
    *stop = PyLong_AsSsize_t(last);
    if ((*start == -1 || *stop == -1) && PyErr_Occurred())
        return -1;
    if (*start < 0 || *stop < *start) {
        PyErr_SetString(PyExc_ValueError, "produce_each: need 0 <= start <= stop");
        return -1;
    }
    for (int k = 0; k < 3; k++) {
        if (column(specs[k], *start, *stop, cols + k) < 0) {
            release_rows(cols);
            return -1;
        }
    }
    return 0;
}

#endif
