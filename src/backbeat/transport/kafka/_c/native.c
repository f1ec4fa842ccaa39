/* native.c: NativeProducer, a librdkafka producer driven from C, for the producer's hot loop.
 *
 * confluent-kafka's Producer.produce costs about 2.5 us of the calling thread per record, most
 * of it Python: parsing the call's arguments, making header lists, a bytes object per value.
 * NativeProducer calls librdkafka's rd_kafka_producev itself, straight from the Arrow
 * buffers (about 1 us a record, librdkafka's own work), on the librdkafka that
 * confluent-kafka has already loaded into the process: the same library, version and
 * settings, no second copy and no build-time dependency. It finds it among the loaded
 * objects (dl_iterate_phdr), takes a handle with RTLD_NOLOAD and looks up the dozen functions
 * of librdkafka's public C API it uses (declared below as rdkafka.h declares them; that API
 * is stable since librdkafka 1.0, checked with rd_kafka_version()). Where that fails (another
 * platform, librdkafka linked statically) construction raises ImportError and producer.py
 * uses confluent-kafka's Producer instead.
 *
 * It is a whole client, not a shortcut: its own rd_kafka_t with the settings producer.py
 * builds (idempotence, acks=all, ...), delivery reports counted per reason in C, and error
 * and statistics callbacks kept for Python (take()), so the broker watch (health.py) sees
 * what it sees on a confluent-kafka client. Every callback runs inside poll() or flush(), on
 * the caller's thread, with the GIL released; a mutex guards what they keep.
 *
 * producer.py (NativeClient) is the only caller; tests/transport/kafka/test_native.py checks
 * it against a real broker (every record read back), a dead address (failures and errors
 * reported) and wrong settings.
 */
#define _GNU_SOURCE
#include "columns.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>

#include <string.h>
#include <sys/types.h>

/* ------------------------------------------------------------------ librdkafka's public API */

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_conf_s rd_kafka_conf_t;
typedef struct { /* rd_kafka_message_t */
    int err;
    void *rkt;
    int32_t partition;
    void *payload;
    size_t len;
    void *key;
    size_t key_len;
    int64_t offset;
    void *private_;
} RkMessage;

enum { VT_END, VT_TOPIC, VT_RKT, VT_PARTITION, VT_VALUE, VT_KEY, VT_OPAQUE, VT_MSGFLAGS,
       VT_TIMESTAMP, VT_HEADER }; /* rd_kafka_vtype_t */
#define RK_PRODUCER 0
#define RK_CONF_OK 0
#define RK_MSG_F_COPY 0x2
#define RK_PARTITION_UA (-1)
#define RK_ERR_QUEUE_FULL (-184)
#define RK_ERR_FATAL (-150)

static struct {
    int (*version)(void);
    rd_kafka_conf_t *(*conf_new)(void);
    int (*conf_set)(rd_kafka_conf_t *, const char *, const char *, char *, size_t);
    void (*conf_destroy)(rd_kafka_conf_t *);
    void (*conf_set_opaque)(rd_kafka_conf_t *, void *);
    void (*conf_set_dr_msg_cb)(rd_kafka_conf_t *, void (*)(rd_kafka_t *, const RkMessage *, void *));
    void (*conf_set_error_cb)(rd_kafka_conf_t *, void (*)(rd_kafka_t *, int, const char *, void *));
    void (*conf_set_stats_cb)(rd_kafka_conf_t *, int (*)(rd_kafka_t *, char *, size_t, void *));
    rd_kafka_t *(*new_)(int, rd_kafka_conf_t *, char *, size_t);
    int (*producev)(rd_kafka_t *, ...);
    int (*poll)(rd_kafka_t *, int);
    int (*flush)(rd_kafka_t *, int);
    int (*outq_len)(rd_kafka_t *);
    void (*destroy)(rd_kafka_t *);
    const char *(*err2str)(int);
    int (*fatal_error)(rd_kafka_t *, char *, size_t);
} rk;

static char lib_path[4096];

static int find_librdkafka(struct dl_phdr_info *info, size_t size, void *data) {
    const char *name = info->dlpi_name, *base = name ? strrchr(name, '/') : NULL;
    if (base && strncmp(base + 1, "librdkafka", 10) == 0 && strlen(name) < sizeof lib_path) {
        strcpy(lib_path, name);
        return 1;
    }
    return 0;
}

/* Look the functions up once: 0, or -1 with ImportError set. */
static int load(void) {
    if (rk.producev)
        return 0;
    dl_iterate_phdr(find_librdkafka, NULL);
    void *lib = lib_path[0] ? dlopen(lib_path, RTLD_NOW | RTLD_NOLOAD) : NULL;
    if (!lib) {
        PyErr_SetString(PyExc_ImportError, "librdkafka is not loaded (import confluent_kafka)");
        return -1;
    }
    struct { void **slot; const char *name; } want[] = {
        {(void **)&rk.version, "rd_kafka_version"},
        {(void **)&rk.conf_new, "rd_kafka_conf_new"},
        {(void **)&rk.conf_set, "rd_kafka_conf_set"},
        {(void **)&rk.conf_destroy, "rd_kafka_conf_destroy"},
        {(void **)&rk.conf_set_opaque, "rd_kafka_conf_set_opaque"},
        {(void **)&rk.conf_set_dr_msg_cb, "rd_kafka_conf_set_dr_msg_cb"},
        {(void **)&rk.conf_set_error_cb, "rd_kafka_conf_set_error_cb"},
        {(void **)&rk.conf_set_stats_cb, "rd_kafka_conf_set_stats_cb"},
        {(void **)&rk.new_, "rd_kafka_new"},
        {(void **)&rk.poll, "rd_kafka_poll"},
        {(void **)&rk.flush, "rd_kafka_flush"},
        {(void **)&rk.outq_len, "rd_kafka_outq_len"},
        {(void **)&rk.destroy, "rd_kafka_destroy"},
        {(void **)&rk.err2str, "rd_kafka_err2str"},
        {(void **)&rk.fatal_error, "rd_kafka_fatal_error"},
        {(void **)&rk.producev, "rd_kafka_producev"}, /* last: set means all are */
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        if (!(*want[k].slot = dlsym(lib, want[k].name)) || (k == 0 && rk.version() < 0x01000000)) {
            PyErr_Format(PyExc_ImportError, "%s: no usable %s", lib_path, want[k].name);
            memset(&rk, 0, sizeof rk);
            dlclose(lib);
            return -1;
        }
    }
    return 0; /* the handle stays open: confluent-kafka holds the library anyway */
}

/* ------------------------------------------------------------------ the producer object */

#define KINDS 32  /* distinct delivery failure codes kept apart (more share the last slot) */
#define ERRORS 64 /* client errors kept between two take() calls (more are counted only) */

typedef struct {
    int code, fatal;
    char reason[256];
} ClientError;

typedef struct {
    PyObject_HEAD
    rd_kafka_t *rk;
    pthread_mutex_t lock; /* guards what the callbacks keep, below */
    int failed_code[KINDS];
    long failed_n[KINDS];
    int kinds;
    ClientError errors[ERRORS];
    int n_errors;
    long errors_dropped;
    char *stats; /* the latest statistics JSON, malloc'ed */
} NativeProducer;

/* Every record's report comes here, inside poll() or flush(): librdkafka then frees the
 * record on this thread. (With delivery.report.only.error it would free delivered ones on
 * its broker thread, the one that compresses and sends everything: 15-20 % more work there,
 * and that thread is what bounds the throughput once the loop is in C.) */
static void on_delivery(rd_kafka_t *handle, const RkMessage *m, void *opaque) {
    if (!m->err)
        return;
    NativeProducer *self = opaque;
    pthread_mutex_lock(&self->lock);
    int k = 0;
    while (k < self->kinds && self->failed_code[k] != m->err)
        k++;
    if (k == self->kinds) {
        if (k == KINDS)
            k = KINDS - 1;
        else
            self->kinds++;
        self->failed_code[k] = m->err;
    }
    self->failed_n[k]++;
    pthread_mutex_unlock(&self->lock);
}

static void on_error(rd_kafka_t *handle, int code, const char *reason, void *opaque) {
    NativeProducer *self = opaque;
    ClientError e = {code, 0, ""};
    if (code == RK_ERR_FATAL) { /* the real code and reason of a fatal error */
        e.fatal = 1;
        e.code = rk.fatal_error(handle, e.reason, sizeof e.reason);
    } else {
        snprintf(e.reason, sizeof e.reason, "%s", reason ? reason : "");
    }
    pthread_mutex_lock(&self->lock);
    if (self->n_errors < ERRORS)
        self->errors[self->n_errors++] = e;
    else
        self->errors_dropped++;
    pthread_mutex_unlock(&self->lock);
}

static int on_stats(rd_kafka_t *handle, char *json, size_t len, void *opaque) {
    NativeProducer *self = opaque;
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, json, len);
        copy[len] = 0;
    }
    pthread_mutex_lock(&self->lock);
    free(self->stats);
    self->stats = copy;
    pthread_mutex_unlock(&self->lock);
    return 0; /* librdkafka frees json */
}

static int native_init(NativeProducer *self, PyObject *args, PyObject *kwargs) {
    PyObject *config;
    static char *names[] = {"config", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!:NativeProducer", names, &PyDict_Type,
                                     &config))
        return -1;
    if (self->rk) {
        PyErr_SetString(PyExc_RuntimeError, "NativeProducer is already set up");
        return -1;
    }
    if (load() < 0)
        return -1;
    rd_kafka_conf_t *conf = rk.conf_new();
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    char why[512];
    while (PyDict_Next(config, &pos, &key, &value)) {
        const char *k = PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
        const char *v = PyUnicode_Check(value) ? PyUnicode_AsUTF8(value) : NULL;
        if (!k || !v) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_TypeError, "setting %R: names and values must be str", key);
            rk.conf_destroy(conf);
            return -1;
        }
        if (rk.conf_set(conf, k, v, why, sizeof why) != RK_CONF_OK) {
            PyErr_Format(PyExc_ValueError, "%s", why);
            rk.conf_destroy(conf);
            return -1;
        }
    }
    rk.conf_set_opaque(conf, self);
    rk.conf_set_dr_msg_cb(conf, on_delivery);
    rk.conf_set_error_cb(conf, on_error);
    rk.conf_set_stats_cb(conf, on_stats);
    rd_kafka_t *handle = rk.new_(RK_PRODUCER, conf, why, sizeof why);
    if (!handle) {
        rk.conf_destroy(conf); /* rd_kafka_new keeps it only on success */
        PyErr_Format(PyExc_ValueError, "%s", why);
        return -1;
    }
    self->rk = handle;
    return 0;
}

static PyObject *native_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    NativeProducer *self = (NativeProducer *)type->tp_alloc(type, 0);
    if (self)
        pthread_mutex_init(&self->lock, NULL);
    return (PyObject *)self;
}

static void native_dealloc(NativeProducer *self) {
    if (self->rk) {
        rd_kafka_t *handle = self->rk;
        self->rk = NULL;
        Py_BEGIN_ALLOW_THREADS
        rk.destroy(handle); /* the callbacks it may still run touch self: it is alive */
        Py_END_ALLOW_THREADS
    }
    free(self->stats);
    pthread_mutex_destroy(&self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int ready(NativeProducer *self) {
    if (self->rk)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "NativeProducer was not set up");
    return -1;
}

static PyObject *native_produce(NativeProducer *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "produce takes 7 arguments");
        return NULL;
    }
    if (ready(self) < 0)
        return NULL;
    const char *topic = PyUnicode_Check(args[0]) ? PyUnicode_AsUTF8(args[0]) : NULL;
    const char *header = PyUnicode_Check(args[3]) ? PyUnicode_AsUTF8(args[3]) : NULL;
    if (!topic || !header) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "produce: topic and header must be str");
        return NULL;
    }
    PyObject *const specs[3] = {args[1], args[2], args[4]};
    Py_ssize_t i, stop;
    Column cols[3];
    if (take_rows(specs, args[5], args[6], &i, &stop, cols) < 0)
        return NULL;
    int code = 0;
    Py_BEGIN_ALLOW_THREADS
    for (; i < stop; i++) {
        int64_t v0, v1, k0, k1, h0, h1;
        bounds(cols, i, &v0, &v1);
        bounds(cols + 1, i, &k0, &k1);
        bounds(cols + 2, i, &h0, &h1);
        code = rk.producev(self->rk, VT_TOPIC, topic, VT_PARTITION, (int32_t)RK_PARTITION_UA,
                           VT_VALUE, (char *)cols[0].data.buf + v0, (size_t)(v1 - v0),
                           VT_KEY, (char *)cols[1].data.buf + k0, (size_t)(k1 - k0),
                           VT_MSGFLAGS, RK_MSG_F_COPY,
                           VT_HEADER, header, (char *)cols[2].data.buf + h0, (ssize_t)(h1 - h0),
                           VT_END);
        if (code)
            break;
    }
    Py_END_ALLOW_THREADS
    release_rows(cols);
    return Py_BuildValue("(ni)", i, code);
}

/* Milliseconds of a timeout in seconds (negative: wait without end). */
static int timeout_ms(double seconds) {
    return seconds < 0 ? -1 : seconds > 86400.0 ? 86400000 : (int)(seconds * 1000.0);
}

static PyObject *native_poll(NativeProducer *self, PyObject *arg) {
    double seconds = PyFloat_AsDouble(arg);
    if ((seconds == -1.0 && PyErr_Occurred()) || ready(self) < 0)
        return NULL;
    int served, ms = timeout_ms(seconds);
    Py_BEGIN_ALLOW_THREADS
    served = rk.poll(self->rk, ms);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(served);
}

static PyObject *native_flush(NativeProducer *self, PyObject *arg) {
    double seconds = PyFloat_AsDouble(arg);
    if ((seconds == -1.0 && PyErr_Occurred()) || ready(self) < 0)
        return NULL;
    int left = timeout_ms(seconds), waiting;
    do { /* in steps, so Ctrl-C is heard */
        int step = left < 0 || left > 100 ? 100 : left;
        Py_BEGIN_ALLOW_THREADS
        rk.flush(self->rk, step);
        waiting = rk.outq_len(self->rk);
        Py_END_ALLOW_THREADS
        if (PyErr_CheckSignals() < 0)
            return NULL;
        if (left >= 0)
            left -= step;
    } while (waiting && left != 0);
    return PyLong_FromLong(waiting);
}

static PyObject *native_take(NativeProducer *self, PyObject *unused) {
    PyObject *failed = PyList_New(0), *errors = PyList_New(0), *stats = NULL, *result = NULL;
    char *raw;
    ClientError kept[ERRORS];
    int failed_code[KINDS], kinds, n_errors;
    long failed_n[KINDS], dropped;
    pthread_mutex_lock(&self->lock); /* copy out, then build objects without the lock */
    kinds = self->kinds;
    memcpy(failed_code, self->failed_code, sizeof failed_code);
    memcpy(failed_n, self->failed_n, sizeof failed_n);
    n_errors = self->n_errors;
    memcpy(kept, self->errors, sizeof kept);
    dropped = self->errors_dropped;
    raw = self->stats;
    self->kinds = self->n_errors = 0;
    self->errors_dropped = 0;
    self->stats = NULL;
    memset(self->failed_n, 0, sizeof self->failed_n);
    pthread_mutex_unlock(&self->lock);
    if (!failed || !errors)
        goto done;
    for (int k = 0; k < kinds; k++) {
        PyObject *item = Py_BuildValue("(isl)", failed_code[k], rk.err2str(failed_code[k]),
                                       failed_n[k]);
        if (!item || PyList_Append(failed, item) < 0) {
            Py_XDECREF(item);
            goto done;
        }
        Py_DECREF(item);
    }
    for (int k = 0; k < n_errors; k++) {
        PyObject *item = Py_BuildValue("(isO)", kept[k].code, kept[k].reason,
                                       kept[k].fatal ? Py_True : Py_False);
        if (!item || PyList_Append(errors, item) < 0) {
            Py_XDECREF(item);
            goto done;
        }
        Py_DECREF(item);
    }
    stats = raw ? PyUnicode_DecodeUTF8(raw, (Py_ssize_t)strlen(raw), "replace") : Py_NewRef(Py_None);
    if (stats)
        result = Py_BuildValue("(OOOl)", failed, errors, stats, dropped);
done:
    free(raw);
    Py_XDECREF(failed);
    Py_XDECREF(errors);
    Py_XDECREF(stats);
    return result;
}

static Py_ssize_t native_len(NativeProducer *self) {
    return self->rk ? rk.outq_len(self->rk) : 0;
}

static PyMethodDef native_methods[] = {
    {"produce", (PyCFunction)(void (*)(void))native_produce, METH_FASTCALL,
     "produce(topic, values, keys, header, header_values, start, stop) -> (int, int)\n\n"
     "Queue rows [start, stop) of the binary columns: value, key and one header each; stop at\n"
     "the first row librdkafka refuses. Returns (rows done, librdkafka's error code or 0)."},
    {"poll", (PyCFunction)native_poll, METH_O,
     "poll(timeout) -> int\n\nServe delivery reports, errors and statistics (up to timeout s)."},
    {"flush", (PyCFunction)native_flush, METH_O,
     "flush(timeout) -> int\n\nWait up to timeout s for every queued record; returns how many wait still."},
    {"take", (PyCFunction)native_take, METH_NOARGS,
     "take() -> (failures, errors, stats, errors_dropped)\n\n"
     "What the callbacks kept since the last take: failures [(code, reason, count)], client\n"
     "errors [(code, reason, fatal)], the latest statistics JSON or None."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods native_sequence = {.sq_length = (lenfunc)native_len};

PyTypeObject NativeProducerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "backbeat.transport.kafka._produce.NativeProducer",
    .tp_basicsize = sizeof(NativeProducer),
    .tp_dealloc = (destructor)native_dealloc,
    .tp_as_sequence = &native_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "NativeProducer(config: dict[str, str]): a librdkafka producer driven from C.",
    .tp_methods = native_methods,
    .tp_init = (initproc)native_init,
    .tp_new = native_new,
};
