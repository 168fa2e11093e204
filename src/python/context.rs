//! How mod_wsgi 6 names an interpreter and a process in its log lines
//! ("sub-interpreter 'g' of daemon process 'd'", "main interpreter in
//! embedded mode"), and its header line for a Python exception
//! (WSGI0174/WSGI0175), so that log monitoring written for mod_wsgi 6
//! matches ours.
use pyo3::exceptions::PySystemExit;
use pyo3::prelude::*;

/// "main interpreter" or "sub-interpreter 'g'".
pub fn interp_name(application_group: &str) -> String {
    if application_group.is_empty() {
        "main interpreter".to_string()
    } else {
        format!("sub-interpreter '{application_group}'")
    }
}

/// "embedded mode" or "daemon process 'd'" for this process.
pub fn process() -> String {
    process_of(super::runtime::process_group())
}

fn process_of(process_group: &str) -> String {
    if process_group.is_empty() {
        "embedded mode".to_string()
    } else {
        format!("daemon process '{process_group}'")
    }
}

/// The interpreter of `application_group` in this process.
pub fn interp(application_group: &str) -> String {
    interp_of(super::runtime::process_group(), application_group)
}

/// The interpreter of `application_group` in daemon process group
/// `process_group` ("": embedded).
pub fn interp_of(process_group: &str, application_group: &str) -> String {
    let name = interp_name(application_group);
    if process_group.is_empty() {
        format!("{name} in embedded mode")
    } else {
        format!("{name} of daemon process '{process_group}'")
    }
}

/// "[script f] " when the line is about a request for file `f`, as
/// mod_wsgi 6 starts every line it logs against a request.
pub fn script_tag(request_file: Option<&str>) -> String {
    request_file.map_or_else(String::new, |f| format!("[script {f}] "))
}

/// The line before the traceback of an exception raised while running
/// WSGI script `script` in `application_group`: WSGI0175 for SystemExit
/// (whose exit is ignored), WSGI0174 otherwise.
pub fn exception_header(
    py: Python<'_>,
    err: &PyErr,
    request_file: Option<&str>,
    script: &str,
    application_group: &str,
) -> String {
    let kind = super::guard::type_name(err.value(py).as_any());
    let tag = script_tag(request_file);
    let context = interp(application_group);
    if err.is_instance_of::<PySystemExit>(py) {
        format!(
            "WSGI0175: {tag}{kind} exception raised by WSGI script '{script}' for {context}; ignored."
        )
    } else {
        format!(
            "WSGI0174: {tag}{kind} exception raised processing WSGI script '{script}' for {context}."
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn contexts() {
        assert_eq!(
            super::interp_of("", ""),
            "main interpreter in embedded mode"
        );
        assert_eq!(
            super::interp_of("d", "h|/a"),
            "sub-interpreter 'h|/a' of daemon process 'd'"
        );
        assert_eq!(super::process_of("d"), "daemon process 'd'");
        assert_eq!(super::process_of(""), "embedded mode");
    }
}
