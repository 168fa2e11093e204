//! Interpreters and thread states.
//!
//! Each (OS thread, interpreter) pair gets one persistent `PyThreadState`,
//! attached with `PyEval_RestoreThread` and released with `PyEval_SaveThread`.
//! Code then enters pyo3 through a per-interpreter trampoline function, so
//! pyo3 counts the thread as attached and never calls `PyGILState_Ensure`
//! (which deadlocks on Python <= 3.11 once sub-interpreters exist).
use super::objects::InterpObjects;
use pyo3::ffi;
use pyo3::prelude::*;
use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::sync::OnceLock;

pub struct Interp {
    /// Application group name ("" is the main interpreter).
    pub name: String,
    state: *mut ffi::PyInterpreterState,
    /// Owned reference to this interpreter's trampoline function.
    enter: *mut ffi::PyObject,
    objects: OnceLock<InterpObjects>,
}

// SAFETY: the raw pointers and Python objects are only dereferenced by a
// thread that holds this interpreter's GIL (inside `Interp::run`).
unsafe impl Send for Interp {}
unsafe impl Sync for Interp {}

static MAIN: OnceLock<&'static Interp> = OnceLock::new();

thread_local! {
    /// This thread's state for each interpreter it has run code in.
    static TSTATES: RefCell<Vec<(usize, *mut ffi::PyThreadState)>> = const { RefCell::new(Vec::new()) };
    /// The interpreter whose code this thread is running, if any.
    static CURRENT: Cell<Option<&'static Interp>> = const { Cell::new(None) };
}

/// Entered by every `Interp::run`; the argument is a pointer to a
/// `&mut dyn FnMut(Python)` on the caller's stack.
#[pyfunction]
fn _wsgi_rs_enter(py: Python<'_>, thunk: usize) {
    // SAFETY: `run` passes the address of a live `&mut dyn FnMut(Python)` and
    // waits for this call to return before the closure goes out of scope.
    let f = unsafe { &mut *(thunk as *mut &mut dyn FnMut(Python<'_>)) };
    f(py)
}

impl Interp {
    /// The main interpreter, set up once Python is initialised.
    pub fn main() -> Option<&'static Interp> {
        MAIN.get().copied()
    }

    /// The interpreter for an application group. Until sub-interpreters land,
    /// every group runs in the main interpreter.
    pub fn for_group(_group: &str) -> Option<&'static Interp> {
        Self::main()
    }

    /// The interpreter whose code the calling thread is running.
    pub fn current() -> Option<&'static Interp> {
        CURRENT.with(|c| c.get())
    }

    /// Registers the main interpreter. Must run on the thread that initialised
    /// Python, with that thread's state still current (the GIL held).
    ///
    /// # Safety
    /// Python is initialised and the calling thread holds the GIL.
    pub unsafe fn register_main(
        init: impl FnOnce(Python<'_>) -> PyResult<InterpObjects>,
    ) -> Result<&'static Interp, String> {
        // SAFETY: the GIL is held (caller's contract); building a function object
        // does not need pyo3's attach count, and the reference is kept forever.
        let (state, enter) = unsafe {
            let ts = ffi::PyThreadState_Get();
            let py = Python::assume_attached();
            let f = wrap_pyfunction!(_wsgi_rs_enter, py).map_err(|e| e.to_string())?;
            (ffi::PyThreadState_GetInterpreter(ts), f.into_ptr())
        };
        let interp: &'static Interp = Box::leak(Box::new(Interp {
            name: String::new(),
            state,
            enter,
            objects: OnceLock::new(),
        }));
        // The initialising thread keeps its own thread state (on prefork it also
        // serves requests; a second state there would self-deadlock on 3.11).
        // SAFETY: we hold the GIL; saving releases it for the other threads.
        let ts = unsafe { ffi::PyEval_SaveThread() };
        TSTATES.with(|t| t.borrow_mut().push((state as usize, ts)));
        let objects = interp
            .run(init)
            .ok_or("Python panicked while setting up the interpreter")?
            .map_err(|e| e.to_string())?;
        let _ = interp.objects.set(objects);
        let _ = MAIN.set(interp);
        Ok(interp)
    }

    pub fn objects(&self) -> &InterpObjects {
        self.objects
            .get()
            .expect("interpreter objects are set before the interpreter is published")
    }

    fn thread_state(&self) -> *mut ffi::PyThreadState {
        TSTATES.with(|t| {
            let mut t = t.borrow_mut();
            if let Some(&(_, ts)) = t.iter().find(|(i, _)| *i == self.state as usize) {
                return ts;
            }
            // SAFETY: creating a thread state does not need the GIL; it stays
            // alive for the life of the thread (it is never deleted).
            let ts = unsafe { ffi::PyThreadState_New(self.state) };
            t.push((self.state as usize, ts));
            ts
        })
    }

    /// Runs `f` with this interpreter's GIL held. None if `f` panicked (the
    /// panic is reported as a Python exception on stderr, i.e. the error log).
    pub fn run<R>(&'static self, f: impl FnOnce(Python<'_>) -> R) -> Option<R> {
        let ts = self.thread_state();
        let outer = CURRENT.with(|c| c.replace(Some(self)));
        assert!(outer.is_none(), "Interp::run is not re-entrant");
        let mut f = Some(f);
        let mut out = None;
        {
            let mut call = |py: Python<'_>| out = Some((f.take().expect("called once"))(py));
            let mut dynf: &mut dyn FnMut(Python<'_>) = &mut call;
            // SAFETY: `ts` belongs to this thread and interpreter and is not
            // current anywhere; after RestoreThread we hold the GIL and may call
            // the C API. `dynf` outlives the call that uses its address.
            // SAFETY: see above: our own thread state, not current elsewhere.
            unsafe {
                ffi::PyEval_RestoreThread(ts);
                let arg = ffi::PyLong_FromVoidPtr(
                    &mut dynf as *mut &mut dyn FnMut(Python<'_>) as *mut c_void,
                );
                let res = if arg.is_null() {
                    arg
                } else {
                    ffi::PyObject_CallOneArg(self.enter, arg)
                };
                if res.is_null() {
                    ffi::PyErr_Print();
                } else {
                    ffi::Py_DecRef(res);
                }
                ffi::Py_DecRef(arg);
                ffi::PyEval_SaveThread();
            }
        }
        CURRENT.with(|c| c.set(None));
        out
    }
}
