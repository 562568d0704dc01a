/* dict_walk.c: the floor of any transform that reads a Lambda event dict (issue 6, comparison 1).
 *
 * walk(obj) visits every object reachable from obj through dicts, lists and tuples, the way a
 * transform must (PyDict_Next over each dict, every list item), reads each str's length and its
 * first and last code units (so that every str's text is touched, as writing it would), and
 * returns a checksum so that nothing can be skipped. It builds nothing and checks nothing: it is
 * what "ddb2os Python dict" would cost if writing the output were free. An OldImage is not
 * entered: no transform to OpenSearch reads it (ddb2os does not).
 *
 * Built by run_transform.py with the C compiler and the running Python's headers. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static unsigned long walk(PyObject* o) {
    unsigned long h = 0;
    if (PyDict_Check(o)) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(o, &pos, &k, &v)) {
            h += walk(k) * 31u;
            if (!(PyUnicode_Check(k) && PyUnicode_GET_LENGTH(k) == 8 && PyUnicode_CompareWithASCIIString(k, "OldImage") == 0))
                h += walk(v);
        }
    } else if (PyList_Check(o) || PyTuple_Check(o)) {
        const Py_ssize_t n = PySequence_Fast_GET_SIZE(o);
        PyObject** items = PySequence_Fast_ITEMS(o);
        for (Py_ssize_t i = 0; i < n; ++i) h = h * 7u + walk(items[i]);
    } else if (PyUnicode_Check(o)) {
        const Py_ssize_t n = PyUnicode_GET_LENGTH(o);
        h = (unsigned long)n;
        if (n > 0) {
            const int kind = PyUnicode_KIND(o);
            const void* data = PyUnicode_DATA(o);
            h += PyUnicode_READ(kind, data, 0) * 3u + PyUnicode_READ(kind, data, n - 1);
        }
    } else if (PyBytes_Check(o)) {
        h = (unsigned long)PyBytes_GET_SIZE(o);
    } else {
        h = (unsigned long)(Py_TYPE(o)->tp_flags & 0xFF);
    }
    return h;
}

static PyObject* py_walk(PyObject* self, PyObject* o) {
    (void)self;
    return PyLong_FromUnsignedLong(walk(o));
}

static PyMethodDef methods[] = {
    {"walk", py_walk, METH_O, "walk(obj) -> int: visit every object reachable from obj; a checksum."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "dict_walk", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_dict_walk(void) { return PyModule_Create(&module); }
