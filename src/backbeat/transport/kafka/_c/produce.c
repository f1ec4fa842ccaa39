/* _produce: the producer's per-record call loop in C. producer.py's _produce_each is the same
 * loop in Python (the fallback without a C compiler) and states the contract:
 *
 * produce_each(produce, topic, values, keys, header, header_values, start, stop)
 *     calls produce(topic, values[i], keys[i], headers=[(header, header_values[i])]) for i
 *     in [start, stop) and stops at the first exception: returns (i, exception) for the
 *     record that raised, or (stop, None) when every call returned.
 *
 * It makes the public Producer.produce call a Python loop makes, positionally (topic, value,
 * key, partition -1, on_delivery None, callback None, timestamp 0, headers: the defaults of
 * the keyword call), minus the interpreter's work per record and the keyword dictionary:
 * 2.0 -> 1.5 us a record without a broker, 3.0 -> 2.5 CPU seconds for 1 M records against
 * tansu. The caller passes slices of a few thousand records, so Ctrl-C and the encode thread
 * get their turn between slices. tests/transport/kafka/test_produce_each.py checks it
 * against the Python loop and the real Producer; the Kafka integration tests read every
 * key, value and header back.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *any_partition, *now; /* -1 (the partitioner picks), 0 (CreateTime: now) */

static const char produce_each_doc[] =
"produce_each(produce, topic, values, keys, header, header_values, start, stop)\n"
"    -> tuple[int, BaseException | None]\n\n"
"Call produce(topic, values[i], keys[i], headers=[(header, header_values[i])]) for i in\n"
"[start, stop); stop at the first exception and return (i, exception), else (stop, None).";

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

static PyObject *one_call(PyObject *produce, PyObject *topic, PyObject *header,
                          PyObject *value, PyObject *key, PyObject *header_value) {
    PyObject *pair = PyTuple_Pack(2, header, header_value);
    if (!pair)
        return NULL;
    PyObject *headers = PyList_New(1);
    if (!headers) {
        Py_DECREF(pair);
        return NULL;
    }
    PyList_SET_ITEM(headers, 0, pair);
    PyObject *args[9] = {NULL, topic, value, key, any_partition, Py_None, Py_None, now, headers};
    PyObject *result = PyObject_Vectorcall(produce, args + 1, 8 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(headers);
    return result;
}

static PyObject *produce_each(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "produce_each takes 8 arguments");
        return NULL;
    }
    PyObject *produce = args[0], *topic = args[1], *values = args[2], *keys = args[3];
    PyObject *header = args[4], *header_values = args[5];
    if (!PyList_Check(values) || !PyList_Check(keys) || !PyList_Check(header_values)) {
        PyErr_SetString(PyExc_TypeError, "produce_each: values, keys and header_values are lists");
        return NULL;
    }
    Py_ssize_t i = PyLong_AsSsize_t(args[6]), stop = PyLong_AsSsize_t(args[7]);
    if ((i == -1 || stop == -1) && PyErr_Occurred())
        return NULL;
    for (; i < stop; i++) {
        /* Re-checked each time: a list could change size while produce runs. */
        if (i < 0 || i >= PyList_GET_SIZE(values) || i >= PyList_GET_SIZE(keys) ||
            i >= PyList_GET_SIZE(header_values)) {
            PyErr_SetString(PyExc_IndexError, "produce_each: record index out of range");
            return NULL;
        }
        PyObject *value = Py_NewRef(PyList_GET_ITEM(values, i));
        PyObject *key = Py_NewRef(PyList_GET_ITEM(keys, i));
        PyObject *header_value = Py_NewRef(PyList_GET_ITEM(header_values, i));
        PyObject *result = one_call(produce, topic, header, value, key, header_value);
        Py_DECREF(value);
        Py_DECREF(key);
        Py_DECREF(header_value);
        if (!result) {
            PyObject *error = take_exception();
            return Py_BuildValue("(nN)", i, error);
        }
        Py_DECREF(result);
    }
    return Py_BuildValue("(nO)", stop, Py_None);
}

static PyMethodDef methods[] = {
    {"produce_each", (PyCFunction)(void (*)(void))produce_each, METH_FASTCALL, produce_each_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_produce",
    "The producer's per-record call loop in C (see backbeat/transport/kafka/producer.py).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__produce(void) {
    if (!any_partition && !(any_partition = PyLong_FromLong(-1)))
        return NULL;
    if (!now && !(now = PyLong_FromLong(0)))
        return NULL;
    return PyModule_Create(&module);
}
