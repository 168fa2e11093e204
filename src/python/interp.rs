//! Interpreters (one per application group) and their thread states.
//!
//! `%{GLOBAL}` ("") is the main interpreter; every other application group
//! gets a sub-interpreter, created on first use in each process and kept for
//! the process's life. Each (OS thread, interpreter) pair gets one
//! persistent `PyThreadState`, attached with `PyEval_RestoreThread` and
//! released with `PyEval_SaveThread`, deleted when the thread exits. Code
//! then enters pyo3 through a per-interpreter trampoline function, so pyo3
//! counts the thread as attached and never calls `PyGILState_Ensure` (which
//! deadlocks on Python <= 3.11 once sub-interpreters exist).
//!
//! The trampoline is a Python function object, so applications can find it
//! (`gc.get_objects()`) and call it. It takes no argument: the code to run
//! is parked in a thread-local slot by `Interp::run` just before the call and
//! taken out on entry, so any other call finds the slot empty and does nothing.
use super::objects::InterpObjects;
use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::PyTypeInfo;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};

pub struct Interp {
    /// Index in `INTERPS` (0: main); never reused.
    id: usize,
    /// The application group ("" for the main interpreter).
    name: String,
    state: *mut ffi::PyInterpreterState,
    /// Owned reference to this interpreter's trampoline function.
    enter: *mut ffi::PyObject,
    objects: OnceLock<InterpObjects>,
    /// Whether it has a GIL of its own (PEP 684).
    own_gil: bool,
    /// Threads inside `run` or deleting a thread state now.
    active: AtomicUsize,
    /// Set at shutdown: `run` refuses, thread states are left alone.
    ended: AtomicBool,
    /// Addresses of the thread states our threads made for it.
    tstates: Mutex<Vec<usize>>,
}

// SAFETY: `state` and `enter` are only used by a thread holding this
// interpreter's GIL (inside `Interp::run`); `objects` holds Python objects
// that are only touched with that GIL held (their `Py` handles are Send/Sync).
unsafe impl Send for Interp {}
unsafe impl Sync for Interp {}

/// Every interpreter of this process, by id (main first).
static INTERPS: RwLock<Vec<&'static Interp>> = RwLock::new(Vec::new());
/// Serialises interpreter creation (a group is created once).
static CREATE: Mutex<()> = Mutex::new(());
/// Set once the process is on its way out: exiting threads leave their
/// thread states alone (the GIL may be held for good by a stuck thread).
static EXITING: AtomicBool = AtomicBool::new(false);

/// The code `Interp::run` hands to its trampoline (lifetime erased).
type Thunk = &'static mut dyn FnMut(Python<'_>);

/// This thread's state for each interpreter it has run code in, deleted
/// when the thread exits.
struct ThreadStates(Vec<(usize, *mut ffi::PyThreadState)>);

impl Drop for ThreadStates {
    fn drop(&mut self) {
        // Sub-interpreters first: the main interpreter's state goes last,
        // as it was made first.
        for &(id, ts) in self.0.iter().rev() {
            if let Some(interp) = Interp::by_id(id) {
                interp.delete_thread_state(ts);
            }
        }
    }
}

thread_local! {
    static TSTATES: RefCell<ThreadStates> = const { RefCell::new(ThreadStates(Vec::new())) };
    /// The code `Interp::run` wants the trampoline to run: a pointer to a
    /// `&mut dyn FnMut(Python)` on `run`'s stack, set only during its call.
    static THUNK: Cell<Option<*mut Thunk>> = const { Cell::new(None) };
}

/// The trampoline entered by every `Interp::run`. A panic in the code it
/// runs is caught here, so pyo3 never turns it into its process-wide
/// `PanicException` type inside a sub-interpreter.
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
    super::guard::catch(|| {
        f(py);
        Ok(())
    })
}

/// Creates a sub-interpreter. Called with the creating thread's main state
/// current; returns with the new interpreter's state current and its GIL
/// held (the caller's GIL released), or null with the caller's state
/// current again.
///
/// # Safety
/// The calling thread holds the GIL through its own main thread state.
unsafe fn new_interpreter(own_gil: bool) -> Result<*mut ffi::PyThreadState, String> {
    #[cfg(Py_3_12)]
    {
        let cfg = if own_gil {
            ffi::_PyInterpreterConfig_INIT
        } else {
            ffi::_PyInterpreterConfig_LEGACY_INIT
        };
        let mut ts = std::ptr::null_mut();
        // SAFETY: the caller holds the GIL with a current thread state, as
        // Py_NewInterpreterFromConfig requires; `cfg` is a valid config.
        let st = unsafe { ffi::Py_NewInterpreterFromConfig(&mut ts, &cfg) };
        // SAFETY: `st` was just returned by the C API.
        if unsafe { ffi::PyStatus_Exception(st) } != 0 || ts.is_null() {
            let msg = if st.err_msg.is_null() {
                "unknown error".to_string()
            } else {
                // SAFETY: err_msg is a static C string set by CPython.
                unsafe { std::ffi::CStr::from_ptr(st.err_msg) }
                    .to_string_lossy()
                    .into_owned()
            };
            return Err(msg);
        }
        Ok(ts)
    }
    #[cfg(not(Py_3_12))]
    {
        let _ = own_gil;
        // SAFETY: the caller holds the GIL with a current thread state.
        let ts = unsafe { ffi::Py_NewInterpreter() };
        if ts.is_null() {
            // SAFETY: CPython left an exception in the caller's state.
            unsafe { ffi::PyErr_Clear() };
            return Err("Py_NewInterpreter() failed".into());
        }
        Ok(ts)
    }
}

impl Interp {
    /// The main interpreter, set up once Python is initialised.
    pub fn main() -> Option<&'static Interp> {
        Self::by_id(0)
    }

    /// This interpreter's index in the process (0: main).
    pub fn id(&self) -> usize {
        self.id
    }

    pub fn by_id(id: usize) -> Option<&'static Interp> {
        INTERPS
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .copied()
    }

    /// The interpreter of an application group, if this process has one
    /// ready (set up: one being created is found once it is).
    pub fn by_name(name: &str) -> Option<&'static Interp> {
        INTERPS
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|i| i.name == name && i.ready())
            .copied()
    }

    /// Every interpreter of this process, main first.
    pub fn all() -> Vec<&'static Interp> {
        INTERPS.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The application group this interpreter serves ("" for the main one).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn own_gil(&self) -> bool {
        self.own_gil
    }

    fn publish(interp: Interp) -> &'static Interp {
        let mut all = INTERPS.write().unwrap_or_else(|p| p.into_inner());
        let interp: &'static Interp = Box::leak(Box::new(Interp {
            id: all.len(),
            ..interp
        }));
        all.push(interp);
        interp
    }

    fn unpublished(name: &str, state: *mut ffi::PyInterpreterState, own_gil: bool) -> Interp {
        Interp {
            id: usize::MAX,
            name: name.to_string(),
            state,
            enter: std::ptr::null_mut(),
            objects: OnceLock::new(),
            own_gil,
            active: AtomicUsize::new(0),
            ended: AtomicBool::new(false),
            tstates: Mutex::new(Vec::new()),
        }
    }

    /// Builds the trampoline in the interpreter whose GIL the caller holds.
    ///
    /// # Safety
    /// The calling thread holds the GIL of the interpreter being set up.
    unsafe fn make_enter() -> Result<*mut ffi::PyObject, String> {
        // SAFETY: the GIL is held (caller's contract); building a function
        // object does not need pyo3's attach count. The error is not
        // formatted: PyErr's Display would attach through PyGILState.
        unsafe {
            let py = Python::assume_attached();
            wrap_pyfunction!(_wsgi_rs_enter, py)
                .map(Bound::into_ptr)
                .map_err(|_| "cannot create the interpreter's entry function".to_string())
        }
    }

    /// Registers the main interpreter. Must run on the thread that initialised
    /// Python, with that thread's state still current (the GIL held).
    ///
    /// # Safety
    /// Python is initialised and the calling thread holds the GIL.
    pub unsafe fn register_main(
        init: impl FnOnce(Python<'_>) -> PyResult<InterpObjects>,
    ) -> Result<&'static Interp, String> {
        // SAFETY: the GIL is held (caller's contract).
        let (state, enter) = unsafe {
            let ts = ffi::PyThreadState_Get();
            // pyo3 creates its PanicException type on the first error it
            // fetches, in whichever interpreter that happens. Creating it now
            // makes it a main-interpreter object; sub-interpreters only ever
            // compare a pointer with it (panics are caught before pyo3 would
            // raise one, see `guard`).
            let _ = pyo3::panic::PanicException::type_object_raw(Python::assume_attached());
            (ffi::PyThreadState_GetInterpreter(ts), Self::make_enter()?)
        };
        let interp = Self::publish(Interp {
            enter,
            ..Self::unpublished("", state, false)
        });
        // The initialising thread keeps its own thread state (on prefork it also
        // serves requests; a second state there would self-deadlock on 3.11).
        // SAFETY: we hold the GIL; saving releases it for the other threads.
        let ts = unsafe { ffi::PyEval_SaveThread() };
        interp.adopt(ts);
        let objects = interp
            .run(|py| init(py).map_err(|e| super::guard::describe(py, &e)))
            .ok_or("Python panicked while setting up the interpreter")??;
        let _ = interp.objects.set(objects);
        Ok(interp)
    }

    /// The interpreter of application group `name`, created now if this
    /// process has none yet (`init` builds its objects, in it).
    pub fn for_group(
        name: &str,
        own_gil: bool,
        init: impl FnOnce(Python<'_>, &'static Interp) -> PyResult<InterpObjects>,
    ) -> Result<&'static Interp, String> {
        if let Some(i) = Self::by_name(name) {
            return Ok(i);
        }
        let _once = CREATE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = Self::by_name(name) {
            return Ok(i);
        }
        let main = Self::main().ok_or("Python is not initialised in this process")?;
        if main.ended.load(Ordering::SeqCst) {
            return Err("the process is shutting down".into());
        }
        let main_ts = main.thread_state();
        // SAFETY: `main_ts` is this thread's main state and not current (no
        // `run` is in progress on this thread: creation happens before a
        // request enters Python); holding the GIL through it is what
        // new_interpreter requires. Afterwards only the new interpreter's GIL
        // is held, and SaveThread releases it.
        let (state, enter, ts) = unsafe {
            ffi::PyEval_RestoreThread(main_ts);
            let ts = match new_interpreter(own_gil) {
                Ok(ts) => ts,
                Err(e) => {
                    ffi::PyEval_SaveThread();
                    return Err(e);
                }
            };
            let enter = Self::make_enter();
            let state = ffi::PyThreadState_GetInterpreter(ts);
            ffi::PyEval_SaveThread();
            (state, enter?, ts)
        };
        let interp = Self::publish(Interp {
            enter,
            ..Self::unpublished(name, state, own_gil)
        });
        // The interpreter's first thread state is kept as its anchor, used by
        // no thread: an interpreter whose states were all deleted (every
        // thread that used it exited) would hand out its preallocated first
        // state again, which CPython refuses ("thread state already
        // initialized"). Threads get states of their own; `end` deletes it.
        interp
            .tstates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ts as usize);
        let objects = interp
            .run(|py| init(py, interp).map_err(|e| super::guard::describe(py, &e)))
            .ok_or("Python panicked while setting up the interpreter")??;
        let _ = interp.objects.set(objects);
        Ok(interp)
    }

    pub fn objects(&self) -> &InterpObjects {
        self.objects
            .get()
            .expect("interpreter objects are set before the interpreter is used for requests")
    }

    /// Whether the interpreter's objects are ready (false while it is set up).
    pub fn ready(&self) -> bool {
        self.objects.get().is_some()
    }

    /// Records `ts`, a state of this thread for this interpreter.
    fn adopt(&self, ts: *mut ffi::PyThreadState) {
        TSTATES.with(|t| t.borrow_mut().0.push((self.id, ts)));
        self.tstates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ts as usize);
    }

    fn thread_state(&self) -> *mut ffi::PyThreadState {
        let found = TSTATES.with(|t| {
            t.borrow()
                .0
                .iter()
                .find(|(id, _)| *id == self.id)
                .map(|&(_, ts)| ts)
        });
        if let Some(ts) = found {
            return ts;
        }
        // A thread's first state is for the main interpreter, so that
        // PyGILState (used by C extensions) finds that one on this thread.
        if self.id != 0 {
            if let Some(main) = Self::main() {
                main.thread_state();
            }
        }
        // SAFETY: creating a thread state does not need the GIL; it lives
        // until this thread exits (ThreadStates::drop) or the process ends.
        let ts = unsafe { ffi::PyThreadState_New(self.state) };
        self.adopt(ts);
        ts
    }

    /// Deletes a thread state of this interpreter at thread exit, unless
    /// the interpreter is being shut down.
    fn delete_thread_state(&self, ts: *mut ffi::PyThreadState) {
        if EXITING.load(Ordering::SeqCst) || !self.enter_guard() {
            return;
        }
        // SAFETY: `ts` belongs to the exiting thread and is not current
        // anywhere; attaching it to clear it, then deleting it as the current
        // state, is the documented order. The thread list is read with the
        // GIL held. `enter_guard` keeps shutdown from ending the interpreter
        // meanwhile.
        unsafe {
            ffi::PyEval_RestoreThread(ts);
            // An interpreter's last state is kept (recorded in `tstates`,
            // deleted by `end`): CPython before 3.12 gives the next state of
            // an interpreter without any its preallocated first state again,
            // and aborts ("init_threadstate: thread state already
            // initialized") if that one was used before, as when the
            // threads that served an interpreter exit and the child's main
            // thread then enters it to shut it down.
            let last = ffi::PyInterpreterState_ThreadHead(self.state) == ts
                && ffi::PyThreadState_Next(ts).is_null();
            if last {
                ffi::PyEval_SaveThread();
            } else {
                self.tstates
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .retain(|&t| t != ts as usize);
                ffi::PyThreadState_Clear(ts);
                ffi::PyThreadState_DeleteCurrent();
            }
        }
        self.active.fetch_sub(1, Ordering::SeqCst);
    }

    /// Counts this thread in, unless the interpreter has ended.
    fn enter_guard(&self) -> bool {
        self.active.fetch_add(1, Ordering::SeqCst);
        if self.ended.load(Ordering::SeqCst) {
            self.active.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Runs `f` with this interpreter's GIL held. None if `f` panicked (the
    /// panic is logged) or the interpreter is shut down.
    pub fn run<R>(&'static self, f: impl FnOnce(Python<'_>) -> R) -> Option<R> {
        if !self.enter_guard() {
            return None;
        }
        let out = self.run_inner(f);
        self.active.fetch_sub(1, Ordering::SeqCst);
        out
    }

    fn run_inner<R>(&'static self, f: impl FnOnce(Python<'_>) -> R) -> Option<R> {
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

    /// The process is exiting: threads that end from now on keep their
    /// thread states (deleting one needs a GIL that may never come back).
    pub fn process_exiting() {
        EXITING.store(true, Ordering::SeqCst);
    }

    /// Refuses new work and waits (until `deadline`) for the threads inside
    /// to leave. True when none is left.
    pub fn close(&self, deadline: std::time::Instant) -> bool {
        self.ended.store(true, Ordering::SeqCst);
        while self.active.load(Ordering::SeqCst) != 0 {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        true
    }

    /// Runs `f` in this interpreter after `close`, on the calling thread
    /// (which must have no `run` of its own in progress).
    pub fn run_closed<R>(&'static self, f: impl FnOnce(Python<'_>) -> R) -> Option<R> {
        self.run_inner(f)
    }

    /// Ends a closed sub-interpreter (Py_EndInterpreter) when nothing else
    /// lives in it: no other thread state, including Python threads. The
    /// thread states of exited threads are deleted first. False if it was
    /// left alone.
    ///
    /// # Safety
    /// `close` returned true and no thread will use this interpreter again;
    /// the calling thread has no `run` in progress.
    pub unsafe fn end(&'static self) -> bool {
        if self.id == 0 {
            return false;
        }
        let ts = self.thread_state();
        // With a shared GIL, ending the interpreter leaves that GIL held and
        // no state current: this thread's main state takes it over.
        let main_ts = Self::main().map(Interp::thread_state);
        let mine: Vec<usize> = TSTATES.with(|t| {
            t.borrow()
                .0
                .iter()
                .filter(|(id, _)| *id == self.id)
                .map(|&(_, ts)| ts as usize)
                .collect()
        });
        let others: Vec<usize> = self
            .tstates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .filter(|t| !mine.contains(t))
            .collect();
        // SAFETY: `ts` is this thread's state for this interpreter and not
        // current; the other recorded states belong to threads that are not
        // in the interpreter (`close` succeeded, so no thread is inside, and
        // none may enter again): clearing and deleting them with the GIL
        // held is allowed. Py_EndInterpreter runs only when `ts` is the
        // interpreter's last state, else it would abort the process.
        unsafe {
            ffi::PyEval_RestoreThread(ts);
            for t in others {
                let t = t as *mut ffi::PyThreadState;
                ffi::PyThreadState_Clear(t);
                ffi::PyThreadState_Delete(t);
            }
            self.tstates
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|t| mine.contains(t));
            let head = ffi::PyInterpreterState_ThreadHead(self.state);
            let alone = head == ts && ffi::PyThreadState_Next(ts).is_null();
            if alone {
                ffi::Py_DecRef(self.enter);
                ffi::Py_EndInterpreter(ts);
                if !self.own_gil {
                    if let Some(main_ts) = main_ts {
                        ffi::PyThreadState_Swap(main_ts);
                        ffi::PyEval_SaveThread();
                    }
                }
                // No thread state is current now.
                TSTATES.with(|t| t.borrow_mut().0.retain(|(id, _)| *id != self.id));
                self.tstates
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear();
            } else {
                ffi::PyEval_SaveThread();
            }
            alone
        }
    }
}
