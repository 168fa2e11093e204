/* A single-phase extension module that, like numpy, loads in one
 * interpreter per process only: the case WSGIApplicationGroup %{GLOBAL}
 * exists for. Built by the application-group tests. */
#include <Python.h>

static PyInterpreterState *first;

/* m_size 0: CPython calls PyInit_onceonly again in each interpreter
 * (with -1 it would copy the first one's dict instead). */
static struct PyModuleDef onceonly = {PyModuleDef_HEAD_INIT, "onceonly", NULL, 0, NULL};

PyMODINIT_FUNC PyInit_onceonly(void)
{
    PyInterpreterState *me = PyInterpreterState_Get();
    if (first != NULL && first != me) {
        PyErr_SetString(PyExc_ImportError, "cannot load module more than once per process");
        return NULL;
    }
    first = me;
    return PyModule_Create(&onceonly);
}
