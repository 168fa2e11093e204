//! Directive handlers. Apache reports an `Err` as a syntax error with the
//! configuration file and line, and refuses to start.
use super::{parse_flag, python, AliasOptions, DirConfig, GroupSpec, ScriptAlias, ServerConfig};
use crate::apache::{self, log, sys};
use crate::config::alias::{Matcher, Regex};
use std::ffi::{c_char, c_void, CString};

/// Splits a directive's raw arguments with Apache's own quoting rules.
unsafe fn words(pool: *mut sys::apr_pool_t, args: *const c_char) -> Vec<String> {
    let mut line = args;
    let mut out = Vec::new();
    loop {
        // SAFETY: ap_getword_conf advances `line` through a NUL-terminated string.
        let w = unsafe { sys::ap_getword_conf(pool, &mut line) };
        // SAFETY: w is NULL or a NUL-terminated pool string.
        match unsafe { apache::cbytes(w) } {
            Some(b) if !b.is_empty() => out.push(String::from_utf8_lossy(b).into_owned()),
            _ => break,
        }
    }
    out
}

fn one<'a>(name: &str, w: &'a [String]) -> Result<&'a str, String> {
    match w {
        [v] => Ok(v),
        _ => Err(format!("{name} takes one argument, got {}.", w.len())),
    }
}

/// Entry point for every directive (dispatched on its name). An error names
/// the directive; Apache adds the file and line.
///
/// # Safety
/// Called by Apache with a live `cmd` and this module's per-directory record.
pub unsafe fn apply(
    cmd: *mut sys::cmd_parms,
    mconfig: *mut c_void,
    args: *const c_char,
) -> Result<(), String> {
    // SAFETY: cmd and cmd->cmd are live during configuration.
    let name = unsafe { apache::cstring_lossy((*(*cmd).cmd).name) }.unwrap_or_default();
    // SAFETY: forwarded contract.
    unsafe { apply_named(&name, cmd, mconfig, args) }.map_err(|msg| {
        if msg.starts_with(name.as_str()) {
            msg
        } else {
            format!("{name}: {msg}")
        }
    })
}

unsafe fn apply_named(
    name: &str,
    cmd: *mut sys::cmd_parms,
    mconfig: *mut c_void,
    args: *const c_char,
) -> Result<(), String> {
    // SAFETY: cmd and cmd->server are live during configuration.
    let (pool, server) = unsafe { ((*cmd).pool, (*cmd).server) };
    // SAFETY: temp_pool is live during configuration; args is NUL-terminated.
    let w = unsafe { words((*cmd).temp_pool, args) };
    // SAFETY: mconfig is our DirConfig (create_dir_config); the server record
    // holds our ServerConfig (create_server_config).
    let dir = unsafe { &mut *(mconfig as *mut DirConfig) };
    // SAFETY: create_server_config put a ServerConfig in this server's slot.
    let srv = unsafe { &mut *(sys::wsgi_rs_server_config(server) as *mut ServerConfig) };
    let global_only = || -> Result<(), String> {
        // SAFETY: cmd is live; the returned message (if any) is a static or pool string.
        let e = unsafe { sys::ap_check_cmd_context(cmd, sys::GLOBAL_ONLY as u32) };
        // SAFETY: e is NULL or a NUL-terminated static/pool string.
        match unsafe { apache::cstring_lossy(e) } {
            Some(msg) => Err(msg),
            None => Ok(()),
        }
    };

    match name {
        "WSGIScriptAlias" | "WSGIScriptAliasMatch" => {
            // SAFETY: pool and server are the live configuration pool and server.
            let alias = unsafe { script_alias(name, &w, pool, server) }?;
            srv.aliases.push(alias);
        }
        "WSGICallableObject" => dir.callable_object = Some(callable_object(one(name, &w)?)?),
        "WSGIApplicationGroup" => {
            let spec = GroupSpec::parse(one(name, &w)?)?;
            // SAFETY: cmd is live during configuration.
            unsafe { warn_group(cmd, &spec) };
            dir.application_group = Some(spec);
        }
        "WSGIPassAuthorization" => dir.pass_authorization = Some(parse_flag(name, one(name, &w)?)?),
        "WSGIChunkedRequest" => dir.chunked_request = Some(parse_flag(name, one(name, &w)?)?),
        "WSGIScriptReloading" => dir.script_reloading = Some(parse_flag(name, one(name, &w)?)?),
        "WSGIPythonHome" => {
            global_only()?;
            let home = one(name, &w)?.trim_end_matches('/').to_string();
            let home = if home.is_empty() {
                "/".to_string()
            } else {
                home
            };
            python::check_home(&home)?;
            srv.python.home = Some(home);
        }
        "WSGIPythonPath" => {
            global_only()?;
            let v = one(name, &w)?;
            srv.python.path = v
                .split(':')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
        }
        "WSGIPythonOptimize" => {
            global_only()?;
            srv.python.optimize = match one(name, &w)? {
                "0" => 0,
                "1" => 1,
                "2" => 2,
                v => return Err(format!("WSGIPythonOptimize must be 0, 1 or 2, not '{v}'.")),
            };
        }
        other => return Err(not_yet(other)),
    }
    Ok(())
}

/// A WSGICallableObject value: a Python identifier or %{ENV:name}.
pub fn callable_object(v: &str) -> Result<String, String> {
    let ident = |s: &str| {
        let mut c = s.chars();
        matches!(c.next(), Some(ch) if ch == '_' || ch.is_alphabetic())
            && c.all(|ch| ch == '_' || ch.is_alphanumeric())
    };
    let env = v.strip_prefix("%{ENV:").and_then(|s| s.strip_suffix('}'));
    if ident(v) || matches!(env, Some(n) if !n.is_empty()) {
        Ok(v.to_string())
    } else {
        Err(format!(
            "Invalid callable object name '{v}': expected a Python identifier or %{{ENV:name}}."
        ))
    }
}

/// Parses `url target [key=value ...]`.
unsafe fn script_alias(
    name: &str,
    w: &[String],
    pool: *mut sys::apr_pool_t,
    server: *mut sys::server_rec,
) -> Result<ScriptAlias, String> {
    if w.len() < 2 {
        return Err(format!("{name} needs a URL and a script path."));
    }
    let mut options = AliasOptions::default();
    for opt in &w[2..] {
        let (k, v) = opt.split_once('=').ok_or_else(|| {
            format!("Invalid option to WSGI script alias definition: '{opt}' (expected key=value).")
        })?;
        match k {
            "process-group" => {
                if !(v.is_empty() || v == "%{GLOBAL}") {
                    return Err(format!(
                        "WSGI process group '{v}' is not configured: daemon process groups (WSGIDaemonProcess) are not supported by this version of mod_wsgi_rs yet."
                    ));
                }
                options.process_group = Some(String::new());
            }
            "application-group" => {
                let spec = GroupSpec::parse(v)?;
                if !spec.is_global() {
                    // SAFETY: server is live during configuration.
                    unsafe { log::error(server, log::WARNING, &group_warning(v)) };
                }
                options.application_group = Some(spec);
            }
            "callable-object" => options.callable_object = Some(callable_object(v)?),
            "pass-authorization" => {
                options.pass_authorization = Some(parse_flag("pass-authorization", v)?)
            }
            _ => {
                return Err(format!(
                    "Invalid option to WSGI script alias definition: '{k}'."
                ))
            }
        }
    }
    let target = w[1].clone();
    let matcher = if name == "WSGIScriptAliasMatch" {
        let pat =
            CString::new(w[0].as_str()).map_err(|_| "NUL in regular expression".to_string())?;
        // SAFETY: the pattern is compiled into the configuration pool, which
        // outlives every request that uses it.
        let re = unsafe { sys::ap_pregcomp(pool, pat.as_ptr(), sys::AP_REG_EXTENDED) };
        if re.is_null() {
            return Err(format!(
                "Regular expression could not be compiled: '{}'.",
                w[0]
            ));
        }
        Matcher::Regex(Regex(re))
    } else {
        if !w[0].starts_with('/') {
            return Err(format!("{name} URL path '{}' must start with '/'.", w[0]));
        }
        Matcher::Prefix(w[0].clone())
    };
    Ok(ScriptAlias {
        matcher,
        target,
        options,
    })
}

fn group_warning(v: &str) -> String {
    format!(
        "mod_wsgi_rs: application group '{v}' runs in the main interpreter (%{{GLOBAL}}): sub-interpreters are not supported by this version yet."
    )
}

unsafe fn warn_group(cmd: *mut sys::cmd_parms, spec: &GroupSpec) {
    if !spec.is_global() {
        // SAFETY: cmd and its server are live during configuration.
        unsafe {
            log::error(
                (*cmd).server,
                log::WARNING,
                &group_warning(&format!("{spec:?}")),
            )
        };
    }
}

/// Why a mod_wsgi directive that this version does not implement stops Apache.
fn not_yet(name: &str) -> String {
    let what = match name {
        "WSGIDaemonProcess" | "WSGIProcessGroup" | "WSGISocketPrefix" | "WSGISocketRotation"
        | "WSGIAcceptMutex" | "WSGIRestrictEmbedded" | "WSGIRestrictProcess" => {
            "daemon mode is not implemented yet; without it, applications run embedded in Apache's children"
        }
        "WSGIAccessScript" | "WSGIAuthUserScript" | "WSGIAuthGroupScript"
        | "WSGIAuthGroupAuthoritative" => "authentication/authorization scripts are not implemented yet",
        _ => "this directive is not implemented yet",
    };
    format!("{name} is not supported by this version of mod_wsgi_rs: {what}.")
}

#[cfg(test)]
mod tests {
    use super::callable_object;

    #[test]
    fn callable_names() {
        assert!(callable_object("application").is_ok());
        assert!(callable_object("_app2").is_ok());
        assert!(callable_object("%{ENV:APP}").is_ok());
        assert!(callable_object("my.app").is_err());
        assert!(callable_object("2app").is_err());
    }
}
