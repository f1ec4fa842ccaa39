/* lists.c: Kafka record keys such as b"u123" from int64 columns, packed (jsonfast.h). */
#include "jsonfast.h"

const char jf_int_keys_doc[] =
"int_keys(columns, n) -> Block\n\n"
"One key per row, packed (n + 1 int64 ends, then the keys): the prefix and decimal value of\n"
"the first of the int64 columns (prefix, validity or None, values, array offset) that is not\n"
"null there (b'' if none).";

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
    Buf out = jf_spare();
    int status = 0;
    Py_BEGIN_ALLOW_THREADS
    status = packed_begin(&out, n, (size_t)n * 24);
    for (Py_ssize_t i = 0; i < n && status == 0; i++) {
        if ((status = buf_reserve(&out, 64)) < 0)
            break;
        char *key = out.p + out.len;
        for (Py_ssize_t k = 0; k < ncols; k++) {
            KCol *c = cols + k;
            Py_ssize_t j = i + c->offset;
            if (c->validity.buf && !bit_at(c->validity.buf, j))
                continue;
            memcpy(key, c->prefix, (size_t)c->prefix_len);
            out.len = (size_t)(put_i64(key + c->prefix_len, ((const int64_t *)c->values.buf)[j]) -
                               out.p);
            break;
        }
        packed_end(&out, n, i);
    }
    Py_END_ALLOW_THREADS
    if (status < 0) {
        PyErr_NoMemory();
        jf_give_back(&out);
    } else {
        result = jf_take_buf(&out);
    }
done:
    for (Py_ssize_t k = 0; k < ready; k++) {
        jf_release(&cols[k].validity);
        jf_release(&cols[k].values);
    }
    free(cols);
    return result;
}
