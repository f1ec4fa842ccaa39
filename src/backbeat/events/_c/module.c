/* _jsonfast: the JSON codec's two hot loops in C, for flat event records (module.c: the
 * module; parse.c, encode.c, lists.c: its functions; block.c: memory handed to Python).
 *
 * parse(payloads, names, kinds, max_bytes)  strict JSON objects -> Arrow column buffers
 * encode(keys, kinds, columns, n, packed)  Arrow column buffers -> JSON objects
 * int_keys(columns, n)  Kafka record keys such as b"u123" from int64 columns, packed
 *
 * Both run without the GIL and only take what they are sure of: parse hands back the indices
 * of the records it did not accept (the Python codec classifies those the slow way), encode
 * returns None when a value is outside what it writes byte for byte like DuckDB's to_json
 * (the Python codec then encodes the batch with DuckDB). codec/c_core.py is the only caller,
 * codec/reference_*.py state the contract; tests/events/test_jsonfast.py checks both loops
 * against the Python paths on random input, test_jsonfast_sanitized.py fuzzes them under ASan
 * and UBSan.
 *
 * Kinds: 's' string, 'l' int64, 'i' int32, 'd' float64, 'b' bool.
 */
#include "jsonfast.h"

static PyMethodDef methods[] = {
    {"parse", jf_parse, METH_VARARGS, jf_parse_doc},
    {"encode", jf_encode, METH_VARARGS, jf_encode_doc},
    {"int_keys", jf_int_keys, METH_VARARGS, jf_int_keys_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jsonfast",
    "The JSON codec's hot loops in C (see backbeat/events/codec/c_core.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__jsonfast(void) {
    if (PyType_Ready(&jf_BlockType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddObjectRef(m, "Block", (PyObject *)&jf_BlockType) < 0)
        Py_CLEAR(m);
    return m;
}
