//! Steps 4 and 5: loading the application in Python's main interpreter
//! (then finding its callable), and with an application group other than
//! %{GLOBAL} in a sub-interpreter and again in a second one of the same
//! process, naming the extension modules that refuse.
use super::probe::{Probe, ProbeRun};
use super::report::Report;

/// Steps 4 and 5: loads the application with `probe`; in sub-interpreters
/// too when `sub`, with their own GIL when `per_interpreter_gil`.
pub(super) fn load_steps(probe: &Probe, sub: bool, per_interpreter_gil: bool, r: &mut Report) {
    let loaded = main_load_step(probe, r);
    let python = probe.python;
    let own_gil = per_interpreter_gil && {
        let new_enough = python
            .minor()
            .split('.')
            .nth(1)
            .and_then(|m| m.parse::<u32>().ok())
            >= Some(12);
        if !new_enough && sub {
            r.warning(
                &format!(
                    "sub-interpreter: --per-interpreter-gil needs Python 3.12 or later; Python {} \
                     sub-interpreters share the GIL (WSGIPerInterpreterGIL On is ignored).",
                    python.minor()
                ),
                &[],
            );
        }
        new_enough
    };
    if sub {
        if loaded {
            sub_step(probe, own_gil, r);
        } else {
            r.skipped(
                "sub-interpreter: the application does not load in the main interpreter either.",
            );
        }
    }
}

/// The details of a failed load: traceback, Python path for import errors,
/// and the application's output.
fn failure_details(run: &ProbeRun, prefix: &str) -> Vec<String> {
    let mut details = Vec::new();
    if let Some(tb) = run.get(&format!("{prefix}traceback")) {
        details.push(tb.to_string());
    } else if let Some(e) = run.get(&format!("{prefix}exception")) {
        details.push(e.to_string());
    }
    if let Some(path) = run.get(&format!("{prefix}sys_path")) {
        details.push("The Python path (sys.path) was:".into());
        details.extend(path.lines().map(|l| format!("  {l}")));
    }
    output_details(run, &mut details);
    details
}

fn output_details(run: &ProbeRun, details: &mut Vec<String>) {
    let output = run.output.trim_end();
    if !output.is_empty() {
        details.push("Output while loading:".into());
        details.extend(output.lines().map(|l| format!("  {l}")));
    }
}

/// Step 4: load in the main interpreter, then the callable. Returns whether
/// the application loaded.
fn main_load_step(probe: &Probe, r: &mut Report) -> bool {
    let what = probe.target.describe();
    let run = match probe.run("main") {
        Ok(run) => run,
        Err(e) => {
            r.error(&format!("load: {e}."), &[]);
            return false;
        }
    };
    if let Some(why) = &run.failure {
        let mut details = Vec::new();
        output_details(&run, &mut details);
        r.error(&format!("load: loading {what} failed: {why}."), &details);
        return false;
    }
    if run.get("load") != Some("ok") {
        let exc = run.get("exception").unwrap_or("an exception");
        let mut details = failure_details(&run, "");
        if exc.starts_with("ModuleNotFoundError") || exc.starts_with("ImportError") {
            details.insert(
                details.len().min(1),
                "Install the missing package into the Python home (or the module's Python), or add the \
                 directory that holds it with --python-path (WSGIPythonPath, python-path=)."
                    .into(),
            );
        }
        r.error(&format!("load: loading {what} raised {exc}"), &details);
        return false;
    }
    let mut details = Vec::new();
    output_details(&run, &mut details);
    if details.is_empty() {
        r.ok(&format!("load: {what} loads in the main interpreter."));
    } else {
        r.line(
            "ok",
            &format!("load: {what} loads in the main interpreter."),
            &details,
        );
    }
    let name = probe.callable;
    let kind = run.get("type").unwrap_or("object");
    match run.get("callable") {
        Some("ok") => match run.get("signature") {
            Some(sig) => r.warning(
                &format!(
                    "callable: '{name}' is a {kind} that cannot be called with (environ, start_response): \
                     {sig}."
                ),
                &["A WSGI application takes two arguments. If this is a factory (such as \
                   get_wsgi_application or create_app), assign what it returns: \
                   `application = create_app()`."
                    .into()],
            ),
            None => r.ok(&format!("callable: '{name}' is a {kind}.")),
        },
        Some("not-callable") => r.error(
            &format!("callable: '{name}' in {what} is a {kind}, not a callable."),
            &["Assign the WSGI application to it, or name the right one with --callable-object \
               (WSGICallableObject)."
                .into()],
        ),
        _ => {
            let candidates = run.get("candidates").unwrap_or("");
            let hint = match candidates.split(", ").next() {
                Some(first) if !first.is_empty() => format!(
                    "It defines these callables: {candidates}. Name the application with \
                     --callable-object {first} (WSGICallableObject {first}), or assign it to '{name}'."
                ),
                _ => format!("It defines no callables: assign the WSGI application to '{name}'."),
            };
            r.error(&format!("callable: {what} has no '{name}'."), &[hint]);
        }
    }
    true
}

const SUB_ADVICE: &str = "Use --application-group %{GLOBAL} (WSGIApplicationGroup %{GLOBAL}, or \
                  application-group=%{GLOBAL}) so that the application runs in the main interpreter, \
                  with one daemon process group per application if there are several.";

/// What the sub-interpreter step reports about: the target, its group, and
/// the own-GIL note.
struct Sub<'a> {
    what: String,
    group: &'a str,
    gil: &'static str,
}

impl Sub<'_> {
    /// The module a load (`first.` or `second.`) refused, and why.
    fn refused(run: &ProbeRun, prefix: &str) -> Option<(String, String)> {
        run.get(&format!("{prefix}refused")).map(|m| {
            let reason = run.get(&format!("{prefix}reason")).unwrap_or("");
            (m.to_string(), reason.to_string())
        })
    }

    /// The first sub-interpreter did not load the script.
    fn first_failed(&self, run: &ProbeRun, r: &mut Report) {
        let Sub { what, group, gil } = self;
        if let Some((module, reason)) = Self::refused(run, "first.") {
            let mut details = vec![SUB_ADVICE.to_string()];
            details.extend(failure_details(run, "first."));
            r.error(
                &format!(
                    "sub-interpreter: extension module '{module}' cannot be loaded in the sub-interpreter{gil} \
                     of application group '{group}': {reason}."
                ),
                &details,
            );
        } else {
            let exc = run.get("first.exception").unwrap_or("an exception");
            let mut details = failure_details(run, "first.");
            details.push(format!("It loads in the main interpreter. {SUB_ADVICE}"));
            r.error(
                &format!(
                    "sub-interpreter: loading {what} in the sub-interpreter{gil} of application group \
                     '{group}' raised {}",
                    exc.lines().last().unwrap_or(exc)
                ),
                &details,
            );
        }
    }

    /// The first sub-interpreter loaded the script, the second did not.
    fn second_failed(&self, run: &ProbeRun, r: &mut Report) {
        let Sub { what, group, .. } = self;
        if let Some((module, reason)) = Self::refused(run, "second.") {
            r.error(
                &format!(
                    "sub-interpreter: extension module '{module}' loads in one interpreter per process only: \
                     {reason}."
                ),
                &[
                    format!(
                        "{what} loaded in a sub-interpreter, but not in a second one of the same process, so \
                         it fails in application group '{group}' whenever another group of that process \
                         (or %{{GLOBAL}}) imported '{module}' first."
                    ),
                    SUB_ADVICE.to_string(),
                ],
            );
        } else {
            let exc = run.get("second.exception").unwrap_or("an exception");
            let mut details = failure_details(run, "second.");
            details.push(format!(
                "It may fail when another application group of the same process loads it too. {SUB_ADVICE}"
            ));
            r.warning(
                &format!(
                    "sub-interpreter: {what} loads in a sub-interpreter, but loading it again in a second one \
                     raised {}",
                    exc.lines().last().unwrap_or(exc)
                ),
                &details,
            );
        }
    }
}

/// Step 5: load in a sub-interpreter, then in a second one of the same process.
fn sub_step(probe: &Probe, own_gil: bool, r: &mut Report) {
    let sub = Sub {
        what: probe.target.describe(),
        group: probe.group,
        gil: if own_gil {
            " with its own GIL (--per-interpreter-gil)"
        } else {
            ""
        },
    };
    let run = match probe.run(if own_gil { "sub-own-gil" } else { "sub" }) {
        Ok(run) => run,
        Err(e) => {
            r.error(&format!("sub-interpreter: {e}."), &[]);
            return;
        }
    };
    let Sub { what, group, gil } = &sub;
    if let Some(why) = &run.failure {
        let mut details = Vec::new();
        output_details(&run, &mut details);
        r.error(
            &format!("sub-interpreter: loading {what} in a sub-interpreter{gil} failed: {why}."),
            &details,
        );
    } else if let Some(why) = run.get("unsupported") {
        r.warning(&format!("sub-interpreter: not checked: {why}."), &[]);
    } else if run.get("first.load") != Some("ok") {
        sub.first_failed(&run, r);
    } else if run.get("second.load") != Some("ok") {
        sub.second_failed(&run, r);
    } else {
        r.ok(&format!(
            "sub-interpreter: {what} loads in a sub-interpreter{gil} (application group '{group}'), and again \
             in a second one of the same process."
        ));
    }
}
