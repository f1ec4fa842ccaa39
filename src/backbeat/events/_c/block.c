/* block.c: Block, read-only bytes that C allocated, handed to Python without a copy; and
 * the spare buffers big Blocks leave behind for the next encode. */
#include "jsonfast.h"

/* Read-only bytes that C allocated, handed to Python without a copy (pyarrow.py_buffer and
 * anything else that takes the buffer protocol). Freed with the last reference, or kept as a
 * spare when it is big (see jf_spare). */
typedef struct {
    PyObject_HEAD
    char *data;
    Py_ssize_t len;
    size_t cap; /* bytes allocated: 0 when unknown (never kept as a spare) */
} Block;

/* Big buffers that were Blocks, for the next encode to fill: a fresh one of that size would
 * be new pages from the kernel each time (faulted in and zeroed: a fifth of the encoder's
 * cost, and a cost to the thread that frees it). Only touched with the GIL held. */
#define SPARES 3
#define SPARE_MIN ((size_t)1 << 20)
#define SPARE_MAX ((size_t)64 << 20)
static Buf spares[SPARES];
static int nspares;

static int keep_spare(char *p, size_t cap) {
    if (!p || cap < SPARE_MIN || cap > SPARE_MAX)
        return 0;
    if (nspares == SPARES) { /* the smallest one makes room */
        int smallest = 0;
        for (int i = 1; i < SPARES; i++)
            if (spares[i].cap < spares[smallest].cap)
                smallest = i;
        if (spares[smallest].cap >= cap)
            return 0;
        free(spares[smallest].p);
        spares[smallest] = spares[--nspares];
    }
    spares[nspares++] = (Buf){p, 0, cap};
    return 1;
}

Buf jf_spare(void) {
    if (!nspares)
        return (Buf){0};
    int biggest = 0;
    for (int i = 1; i < nspares; i++)
        if (spares[i].cap > spares[biggest].cap)
            biggest = i;
    Buf b = spares[biggest];
    spares[biggest] = spares[--nspares];
    return b;
}

void jf_give_back(Buf *b) {
    if (!keep_spare(b->p, b->cap))
        free(b->p);
    *b = (Buf){0};
}

static void block_dealloc(Block *self) {
    if (!keep_spare(self->data, self->cap))
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

static PyObject *take(char **data, Py_ssize_t len, size_t cap) {
    Block *b = PyObject_New(Block, &jf_BlockType);
    if (!b) {
        free(*data);
        *data = NULL;
        return NULL;
    }
    b->data = *data;
    b->len = len;
    b->cap = cap;
    *data = NULL;
    return (PyObject *)b;
}

PyObject *jf_take_block(char **data, Py_ssize_t len) {
    return take(data, len, 0);
}

PyObject *jf_take_buf(Buf *b) {
    size_t cap = b->cap;
    PyObject *block = take(&b->p, (Py_ssize_t)b->len, cap);
    *b = (Buf){0};
    return block;
}

int jf_get_buffer(PyObject *obj, Py_buffer *view) {
    view->buf = NULL;
    view->obj = NULL;
    view->len = 0;
    if (obj == Py_None)
        return 0;
    return PyObject_GetBuffer(obj, view, PyBUF_SIMPLE);
}
