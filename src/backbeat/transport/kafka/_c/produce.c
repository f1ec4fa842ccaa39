/* _produce: the producer's per-record call loop in C. produce_loop.py's _produce_each is the
 * same loop in Python (the fallback without a C compiler) and states the contract:
 *
 * produce_each(produce, topic, values, keys, header, header_values, start, stop)
 *     values, keys and header_values are binary columns (offsets, data, wide, offset): the
 *     buffers of an Arrow binary or string array without nulls (wide: int64 offsets, else
 *     int32; offset: the array's first row in them). For i in [start, stop) it calls
 *     produce(topic, values[i], keys[i], headers=[(header, header_values[i])]) with each
 *     value as bytes, and stops at the first exception: returns (i, exception) for the record
 *     that raised, or (stop, None) when every call returned. Offsets outside the buffers
 *     raise ValueError before any call.
 *
 * It makes the public Producer.produce call a Python loop makes, positionally (topic, value,
 * key, partition -1, on_delivery None, callback None, timestamp 0, headers: the defaults of
 * the keyword call), minus the interpreter's work per record and the keyword dictionary
 * (2.0 -> 1.5 us a record without a broker). Each record's bytes objects are made just
 * before its call and freed right after, on this thread: the encode thread hands over
 * whole Arrow buffers, never a million small objects for this thread to free (which cost
 * it a third more than the calls themselves). The caller passes slices of a few thousand
 * records, so Ctrl-C and the encode thread get their turn between slices.
 * tests/transport/kafka/test_produce_each.py checks it against the Python loop and the real
 * Producer; the Kafka integration tests read every key, value and header back.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static PyObject *any_partition, *now; /* -1 (the partitioner picks), 0 (CreateTime: now) */

/* A binary column (offsets, data, wide, offset) whose rows were checked against its buffers. */
typedef struct {
    Py_buffer offsets, data;
    int wide;
    Py_ssize_t offset;
} Column;

static void release(Column *c) {
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
static int column(PyObject *spec, Py_ssize_t start, Py_ssize_t stop, Column *c) {
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

static void release_rows(Column cols[3]) {
    for (int k = 0; k < 3; k++)
        release(cols + k);
}

/* Rows [*start, *stop) of the value, key and header columns specs: 0, or -1 with an exception
 * set and nothing left to release. */
static int take_rows(PyObject *const specs[3], PyObject *first, PyObject *last,
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

static const char produce_each_doc[] =
"produce_each(produce, topic, values, keys, header, header_values, start, stop)\n"
"    -> tuple[int, BaseException | None]\n\n"
"Call produce(topic, values[i], keys[i], headers=[(header, header_values[i])]) for i in\n"
"[start, stop), where values, keys and header_values are binary columns (offsets, data,\n"
"wide, offset); stop at the first exception and return (i, exception), else (stop, None).";

static PyObject *item(const Column *c, Py_ssize_t i) {
    int64_t lo, hi;
    bounds(c, i, &lo, &hi);
    return PyBytes_FromStringAndSize((const char *)c->data.buf + lo, (Py_ssize_t)(hi - lo));
}

/* The exception just raised, as a value (traceback attached), and the error indicator clear. */
static PyObject *take_exception(void) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb && value)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value ? value : Py_NewRef(Py_None);
}

/* produce(topic, value, key, headers=[(header, header_value)]) for row i, each as bytes;
 * NULL with an exception set if the call (or making its arguments) failed. */
static PyObject *one_call(PyObject *produce, PyObject *topic, PyObject *header,
                          const Column *cols, Py_ssize_t i) {
    PyObject *value = item(cols, i), *key = item(cols + 1, i), *header_value = item(cols + 2, i);
    PyObject *pair = value && key && header_value ? PyTuple_Pack(2, header, header_value) : NULL;
    PyObject *headers = pair ? PyList_New(1) : NULL;
    PyObject *result = NULL;
    if (headers) {
        PyList_SET_ITEM(headers, 0, Py_NewRef(pair));
        PyObject *args[9] = {NULL, topic, value, key, any_partition, Py_None, Py_None, now, headers};
        result = PyObject_Vectorcall(produce, args + 1, 8 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    Py_XDECREF(headers);
    Py_XDECREF(pair);
    Py_XDECREF(value);
    Py_XDECREF(key);
    Py_XDECREF(header_value);
    return result;
}

static PyObject *produce_each(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "produce_each takes 8 arguments");
        return NULL;
    }
    PyObject *produce = args[0], *topic = args[1], *header = args[4];
    PyObject *const specs[3] = {args[2], args[3], args[5]};
    Py_ssize_t i, stop;
    Column cols[3];
    if (take_rows(specs, args[6], args[7], &i, &stop, cols) < 0)
        return NULL;
    PyObject *result = NULL;
    for (; i < stop; i++) {
        PyObject *returned = one_call(produce, topic, header, cols, i);
        if (!returned) {
            result = Py_BuildValue("(nN)", i, take_exception());
            goto done;
        }
        Py_DECREF(returned);
    }
    result = Py_BuildValue("(nO)", stop, Py_None);
done:
    release_rows(cols);
    return result;
}

static PyMethodDef methods[] = {
    {"produce_each", (PyCFunction)(void (*)(void))produce_each, METH_FASTCALL, produce_each_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_produce",
    "The producer's per-record call loop in C (see backbeat/transport/kafka/produce_loop.py).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__produce(void) {
    if (!any_partition && !(any_partition = PyLong_FromLong(-1)))
        return NULL;
    if (!now && !(now = PyLong_FromLong(0)))
        return NULL;
    return PyModule_Create(&module);
}
