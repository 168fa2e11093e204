/* A plain single-phase extension module: it loads in sub-interpreters that
 * share the GIL, and CPython refuses it in one with its own GIL (it does
 * not declare per-interpreter GIL support). Built by the application-group
 * tests. */
#include <Python.h>

static struct PyModuleDef singlephase = {PyModuleDef_HEAD_INIT, "singlephase", NULL, -1, NULL};

PyMODINIT_FUNC PyInit_singlephase(void)
{
    return PyModule_Create(&singlephase);
}
