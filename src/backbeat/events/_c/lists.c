/* lists.c: per-row Python objects in one C call each: Kafka keys, string columns as bytes. */
#include "jsonfast.h"

const char jf_int_keys_doc[] =
"int_keys(columns, n) -> list[bytes]\n\n"
"One key per row: the prefix and decimal value of the first of the int64 columns\n"
"(prefix, validity or None, values, array offset) that is not null there (b'' if none).";

typedef struct {
    const char *prefix;
    Py_ssize_t prefix_len, offset;
    Py_buffer validity, values;
} KCol;

PyObject *jf_int_keys(PyObject *self, PyObject *args) {
    PyObject *columns;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "O!n", &PyList_Type, &columns, &n))
        return NULL;
    if (n < 0 || n > PY_SSIZE_T_MAX / 16) {
        PyErr_SetString(PyExc_ValueError, "int_keys: bad row count");
        return NULL;
    }
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
        if (c->prefix_len > 40 || c->offset < 0 || c->offset > PY_SSIZE_T_MAX / 16 - n) {
            PyErr_SetString(PyExc_ValueError, "int_keys: prefix over 40 bytes or bad offset");
            goto done;
        }
        if (jf_get_buffer(validity, &c->validity) < 0)
            goto done;
        if (jf_get_buffer(values, &c->values) < 0) {
            jf_release(&c->validity);
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
            if (c->validity.buf && !bit_at(c->validity.buf, j))
                continue;
            memcpy(key, c->prefix, (size_t)c->prefix_len);
            len = put_i64(key + c->prefix_len, ((const int64_t *)c->values.buf)[j]) - key;
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
        jf_release(&cols[k].validity);
        jf_release(&cols[k].values);
    }
    free(cols);
    return result;
}

/* ------------------------------------------------------------------ string lists */

const char jf_string_list_doc[] =
"string_list(offsets, data, offset, n) -> list[bytes]\n\n"
"The n values of an Arrow string or binary array (int32 offsets) as bytes objects, in\n"
"one call that holds the GIL throughout (nulls come out as their empty slots: b'').";

PyObject *jf_string_list(PyObject *self, PyObject *args) {
    PyObject *offsets_obj, *data_obj;
    Py_ssize_t offset, n;
    if (!PyArg_ParseTuple(args, "OOnn", &offsets_obj, &data_obj, &offset, &n))
        return NULL;
    Py_buffer offsets, data;
    if (jf_get_buffer(offsets_obj, &offsets) < 0)
        return NULL;
    if (jf_get_buffer(data_obj, &data) < 0) {
        jf_release(&offsets);
        return NULL;
    }
    PyObject *result = NULL;
    const int32_t *off = (const int32_t *)offsets.buf;
    if (!off || offset < 0 || n < 0 || n > PY_SSIZE_T_MAX / 8 - offset ||
        offsets.len < (offset + n + 1) * 4 ||
        (n && off[offset + n] > (data.buf ? data.len : 0))) {
        PyErr_SetString(PyExc_ValueError, "string_list: buffers too small");
    } else if ((result = PyList_New(n))) {
        for (Py_ssize_t i = 0; i < n; i++) {
            int32_t a = off[offset + i], b = off[offset + i + 1];
            int inside = a >= 0 && b > a && b <= data.len; /* else malformed or empty: b"" */
            PyObject *one = PyBytes_FromStringAndSize(inside ? (const char *)data.buf + a : "",
                                                      inside ? b - a : 0);
            if (!one) {
                Py_CLEAR(result);
                break;
            }
            PyList_SET_ITEM(result, i, one);
        }
    }
    jf_release(&offsets);
    jf_release(&data);
    return result;
}
