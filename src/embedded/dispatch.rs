//! WSGIDispatchScript: per request, before the handler chooses embedded or
//! a daemon, the script's optional process_group(), application_group() and
//! callable_object() may replace the configured values. The hooks run in
//! this Apache child, in the interpreter of the script's application-group=
//! (%{GLOBAL} by default), even under WSGIRestrictEmbedded On.
use super::child::{embedded_interp, mtime_of};
use crate::config::handler_script::DispatchScript;
use crate::config::{directives, GroupSpec};
use crate::python::interp::Interp;
use crate::python::text::latin1_bytes;
use crate::wsgi::{app, environ, head::RequestHead, request_rec, script};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

/// What the hooks chose, validated as the directives' values are and left
/// unexpanded (the handler expands them as it does configured values).
/// None keeps the configured value.
#[derive(Default, Debug)]
pub struct Choice {
    /// "" for %{GLOBAL} (embedded).
    pub process_group: Option<String>,
    pub application_group: Option<String>,
    pub callable_object: Option<String>,
}

/// Runs the hooks for the request `head` describes. Err: the reason to log
/// (Python errors are logged with their traceback already) and answer 500.
pub fn run(
    d: &DispatchScript,
    group: &str,
    head: &RequestHead,
    reloading: bool,
) -> Result<Choice, String> {
    let interp = embedded_interp(group).map_err(|why| {
        let spec = d.application_group.as_ref().unwrap_or(&GroupSpec::Global);
        format!(
            "Unable to acquire interpreter '{}' for dispatch script '{}': {why}",
            spec.describe(),
            d.path
        )
    })?;
    let values = interp
        .run(|py| call_hooks(py, interp, d, head, reloading))
        .ok_or_else(|| format!("Dispatch script '{}' could not be run.", d.path))??;
    let [process_group, application_group, callable_object] = values;
    let invalid = |what: &str, why: String| {
        format!(
            "Dispatch script '{}' returned an invalid {what}: {why}",
            d.path
        )
    };
    Ok(Choice {
        process_group: process_group
            .map(|v| directives::process_group(&v).map_err(|e| invalid("process group", e)))
            .transpose()?,
        application_group: application_group
            .map(|v| {
                GroupSpec::parse(&v)
                    .map(|g| g.describe())
                    .map_err(|e| invalid("application group", e))
            })
            .transpose()?,
        callable_object: callable_object
            .map(|v| directives::callable_object(&v).map_err(|e| invalid("callable object", e)))
            .transpose()?,
    })
}

/// Loads the script and calls its hooks, in mod_wsgi's order, stopping at
/// the first failure.
fn call_hooks(
    py: Python<'_>,
    interp: &'static Interp,
    d: &DispatchScript,
    head: &RequestHead,
    reloading: bool,
) -> Result<[Option<String>; 3], String> {
    let failed = |e: PyErr, first: &[String]| {
        app::log_exception(py, interp, &d.path, &e, first);
        format!("Dispatch script '{}' failed.", d.path)
    };
    let objs = interp.objects();
    let module = script::module(py, objs, &d.path, mtime_of(&d.path), reloading).map_err(|e| {
        let first = format!("Failed to exec Python script file '{}'.", d.path);
        failed(e, &[first])
    })?;
    let env = dispatch_environ(py, interp, head).map_err(|e| failed(e, &[]))?;
    let mut out: [Option<String>; 3] = Default::default();
    for (slot, (hook, what)) in out.iter_mut().zip([
        ("process_group", "process group"),
        ("application_group", "application group"),
        ("callable_object", "callable object"),
    ]) {
        *slot = call_hook(&module, &env, hook, what).map_err(|e| failed(e, &[]))?;
    }
    Ok(out)
}

/// One hook's answer: None if absent or it returned None; a str must be
/// Latin-1, bytes are taken as Latin-1.
fn call_hook(
    module: &Bound<'_, PyAny>,
    env: &Bound<'_, PyDict>,
    hook: &str,
    what: &str,
) -> PyResult<Option<String>> {
    let Some(f) = module.getattr_opt(hook)? else {
        return Ok(None);
    };
    let v = f.call1((env,))?;
    if v.is_none() {
        return Ok(None);
    }
    let bytes = match v.cast::<PyBytes>() {
        Ok(b) => b.as_bytes().to_vec(),
        Err(_) => latin1_bytes(&v, what)?,
    };
    Ok(Some(bytes.iter().map(|&b| char::from(b)).collect()))
}

/// The hooks' environ: the request's variables, with the process and
/// application group of where the hooks run, no callable object, and
/// wsgi.errors going to the error log.
fn dispatch_environ<'py>(
    py: Python<'py>,
    interp: &Interp,
    head: &RequestHead,
) -> PyResult<Bound<'py, PyDict>> {
    let objs = interp.objects();
    let env = environ::variables(py, objs, head)?;
    env.set_item("mod_wsgi.process_group", "")?;
    env.set_item("mod_wsgi.application_group", interp.name())?;
    if env.contains("mod_wsgi.callable_object")? {
        env.del_item("mod_wsgi.callable_object")?;
    }
    let errors = objs.log_stream.bind(py).call1((py.None(), 1u8, "<log>"))?;
    env.set_item("wsgi.errors", errors)?;
    if head.request_rec != 0 {
        env.set_item(
            request_rec::KEY,
            request_rec::capsule(py, head.request_rec)?,
        )?;
    }
    Ok(env)
}
