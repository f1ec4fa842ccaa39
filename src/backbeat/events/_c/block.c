/* block.c: Block, read-only bytes that C allocated, handed to Python without a copy. */
#include "jsonfast.h"

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

PyTypeObject jf_BlockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "backbeat.events._jsonfast.Block",
    .tp_doc = "Read-only bytes owned by the C core (buffer protocol).",
    .tp_basicsize = sizeof(Block),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)block_dealloc,
    .tp_as_buffer = &block_buffer,
};

/* A Block that owns *data from now on (*data is set to NULL; freed here on failure). */
PyObject *jf_take_block(char **data, Py_ssize_t len) {
    Block *b = PyObject_New(Block, &jf_BlockType);
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

int jf_get_buffer(PyObject *obj, Py_buffer *view) {
    view->buf = NULL;
    view->obj = NULL;
    view->len = 0;
    if (obj == Py_None)
        return 0;
    return PyObject_GetBuffer(obj, view, PyBUF_SIMPLE);
}
