//! Interpreters and thread states.
//!
//! Each (OS thread, interpreter) pair gets one persistent `PyThreadState`,
//! attached with `PyEval_RestoreThread` and released with `PyEval_SaveThread`.
//! Code then enters pyo3 through a per-interpreter trampoline function, so
//! pyo3 counts the thread as attached and never calls `PyGILState_Ensure`
//! (which deadlocks on Python <= 3.11 once sub-interpreters exist).
//!
//! The trampoline is a Python function object, so applications can find it
//! (`gc.get_objects()`) and call it. It takes no argument: the code to run
//! is parked in a thread-local slot by `Interp::run` just before the call and
//! taken out on entry, so any other call finds the slot empty and does nothing.
use super::objects::InterpObjects;
use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::prelude::*;
use std::cell::{Cell, RefCell};
use std::sync::OnceLock;

pub struct Interp {
    state: *mut ffi::PyInterpreterState,
    /// Owned reference to this interpreter's trampoline function.
    enter: *mut ffi::PyObject,
    objects: OnceLock<InterpObjects>,
}

// SAFETY: `state` and `enter` are only used by a thread holding this
// interpreter's GIL (inside `Interp::run`); `objects` holds Python objects
// that are only touched with the GIL held (their `Py` handles are Send/Sync).
unsafe impl Send for Interp {}
unsafe impl Sync for Interp {}

static MAIN: OnceLock<&'static Interp> = OnceLock::new();

/// The code `Interp::run` hands to its trampoline (lifetime erased).
type Thunk = &'static mut dyn FnMut(Python<'_>);

thread_local! {
    /// This thread's state for each interpreter it has run code in.
    static TSTATES: RefCell<Vec<(usize, *mut ffi::PyThreadState)>> = const { RefCell::new(Vec::new()) };
    /// The code `Interp::run` wants the trampoline to run: a pointer to a
    /// `&mut dyn FnMut(Python)` on `run`'s stack, set only during its call.
    static THUNK: Cell<Option<*mut Thunk>> = const { Cell::new(None) };
}

/// The trampoline entered by every `Interp::run`.
#[pyfunction]
fn _wsgi_rs_enter(py: Python<'_>) -> PyResult<()> {
    let Some(thunk) = THUNK.with(Cell::take) else {
        return Err(PyRuntimeError::new_err(
            "_wsgi_rs_enter is internal to mod_wsgi_rs",
        ));
    };
    // SAFETY: `run` parked a pointer to its live closure in this thread's slot
    // and waits for this call to return before the closure goes out of scope;
    // `take` emptied the slot, so the closure runs at most once.
    let f = unsafe { &mut *thunk };
    f(py);
    Ok(())
}

impl Interp {
    /// The main interpreter, set up once Python is initialised.
    pub fn main() -> Option<&'static Interp> {
        MAIN.get().copied()
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
        let mut f = Some(f);
        let mut out = None;
        let mut call = |py: Python<'_>| {
            if let Some(f) = f.take() {
                out = Some(f(py));
            }
        };
        let dynf: &mut dyn FnMut(Python<'_>) = &mut call;
        // SAFETY: only the lifetime is erased; the slot is emptied (by the
        // trampoline, or below) before `call` goes out of scope.
        let mut dynf: &'static mut dyn FnMut(Python<'_>) = unsafe { std::mem::transmute(dynf) };
        // SAFETY: `ts` belongs to this thread and interpreter and is not
        // current anywhere; after RestoreThread we hold the GIL and may call
        // the C API; SaveThread releases it again.
        unsafe {
            ffi::PyEval_RestoreThread(ts);
            let outer = THUNK.with(|t| t.replace(Some(&mut dynf)));
            let res = ffi::PyObject_CallNoArgs(self.enter);
            THUNK.with(|t| t.set(outer));
            if res.is_null() {
                ffi::PyErr_Print();
            } else {
                ffi::Py_DecRef(res);
            }
            ffi::PyEval_SaveThread();
        }
        out
    }
}
