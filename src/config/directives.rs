//! Directive handlers. Apache reports an `Err` as a syntax error with the
//! configuration file and line, and refuses to start.
use super::{
    daemon, parse_flag, python, python_directives, AliasOptions, DirConfig, GroupSpec, MapHead,
    ProxyHeader, ScriptAlias, ServerConfig, Subnet,
};
use crate::apache::{self, sys};
use crate::config::alias::{Matcher, Regex};
use std::ffi::{c_char, c_void, CString};

/// Splits a directive's raw arguments with Apache's own quoting rules. An
/// empty quoted argument (`""`) is an argument, as mod_wsgi takes it.
pub(super) unsafe fn words(pool: *mut sys::apr_pool_t, args: *const c_char) -> Vec<String> {
    // SAFETY: the caller's contract is conf_words'.
    unsafe { apache::conf_words(pool, args) }
        .iter()
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

pub(super) fn one<'a>(name: &str, w: &'a [String]) -> Result<&'a str, String> {
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
        // A section's messages name the directive at fault themselves.
        if msg.starts_with(name.as_str()) || name.starts_with('<') {
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
    // SAFETY: temp_pool is live during configuration; args is NUL-terminated.
    let w = unsafe { words((*cmd).temp_pool, args) };
    match name {
        n if python_directives::handles(n) => {
            // SAFETY: these are RSRC_CONF directives, read on Apache's one
            // configuration thread with a live cmd; args is NUL-terminated.
            unsafe { python_directives::apply(name, &w, cmd, args) }
        }
        "WSGIScriptAlias" | "WSGIScriptAliasMatch" | "WSGIPythonHome" | "WSGIPythonOptimize" => {
            // SAFETY: these directives are RSRC_CONF: Apache runs them while
            // it reads the main configuration, on one thread, before any
            // request reads the server record; nothing else borrows it now.
            let srv =
                unsafe { &mut *(sys::wsgi_rs_server_config((*cmd).server) as *mut ServerConfig) };
            // SAFETY: cmd is live during configuration.
            unsafe { server_directive(name, &w, cmd, srv) }
        }
        "WSGIDaemonProcess"
        | "WSGISocketPrefix"
        | "WSGISocketRotation"
        | "WSGIRestrictEmbedded"
        | "WSGIServerMetrics"
        | "WSGIAcceptMutex"
        | "WSGISlowRequests"
        | "WSGITelemetryService"
        | "WSGITelemetryOptions"
        | "WSGIImportScript" => {
            // SAFETY: these are RSRC_CONF directives, read on Apache's one
            // configuration thread with a live cmd.
            unsafe { daemon_directive(name, &w, cmd) }
        }
        _ => {
            // SAFETY: mconfig is this section's own DirConfig (create_dir_config),
            // which only this directive call touches while it is parsed (also
            // for .htaccess files, parsed per request into a fresh record).
            let dir = unsafe { &mut *(mconfig as *mut DirConfig) };
            dir_directive(name, &w, dir)
        }
    }
}

/// Directives stored in the per-directory record (also .htaccess).
fn dir_directive(name: &str, w: &[String], dir: &mut DirConfig) -> Result<(), String> {
    match name {
        "WSGICallableObject" => dir.callable_object = Some(callable_object(one(name, w)?)?),
        "WSGIApplicationGroup" => {
            dir.application_group = Some(GroupSpec::parse(one(name, w)?)?);
        }
        "WSGIPassAuthorization" => dir.pass_authorization = Some(parse_flag(name, one(name, w)?)?),
        "WSGIChunkedRequest" => dir.chunked_request = Some(parse_flag(name, one(name, w)?)?),
        "WSGIMapHEADToGET" => dir.map_head_to_get = Some(MapHead::parse(one(name, w)?)?),
        "WSGIEnableSendfile" => dir.enable_sendfile = Some(parse_flag(name, one(name, w)?)?),
        "WSGIScriptReloading" => dir.script_reloading = Some(parse_flag(name, one(name, w)?)?),
        "WSGIProcessGroup" => dir.process_group = Some(process_group(one(name, w)?)?),
        "WSGIRestrictProcess" => {
            if w.is_empty() {
                return Err("WSGIRestrictProcess needs one or more process group names.".into());
            }
            let groups = w
                .iter()
                .map(|g| process_group(g))
                .collect::<Result<Vec<_>, _>>()?;
            dir.restrict_process = Some(groups);
        }
        "WSGIErrorOverride" => dir.error_override = Some(parse_flag(name, one(name, w)?)?),
        "WSGIIgnoreActivity" => dir.ignore_activity = Some(parse_flag(name, one(name, w)?)?),
        "WSGITrustedProxyHeaders" => append(
            &mut dir.trusted_proxy_headers,
            name,
            w,
            "header names",
            ProxyHeader::parse,
        )?,
        n if super::AuthScripts::handles(n) => dir.auth.apply(n, w)?,
        "WSGITrustedProxies" => append(
            &mut dir.trusted_proxies,
            name,
            w,
            "addresses or subnets",
            Subnet::parse,
        )?,
        "WSGIHandlerScript" | "WSGIDispatchScript" | "WSGIPassApacheRequest" => {
            dir.scripts.apply(name, w)?
        }
        other => return Err(misrouted(other)),
    }
    Ok(())
}

/// Parses every argument into `list`; repeated lines in one section add to
/// the list, as in mod_wsgi.
fn append<T>(
    list: &mut Option<Vec<T>>,
    name: &str,
    w: &[String],
    what: &str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<(), String> {
    if w.is_empty() {
        return Err(format!("{name} needs one or more {what}."));
    }
    let parsed = w.iter().map(|s| parse(s)).collect::<Result<Vec<_>, _>>()?;
    list.get_or_insert_with(Vec::new).extend(parsed);
    Ok(())
}

/// Directives stored in the per-server record (main configuration only).
unsafe fn server_directive(
    name: &str,
    w: &[String],
    cmd: *mut sys::cmd_parms,
    srv: &mut ServerConfig,
) -> Result<(), String> {
    // SAFETY: cmd is live during configuration.
    let global_only = || unsafe { global_only(cmd) };
    match name {
        "WSGIScriptAlias" | "WSGIScriptAliasMatch" => {
            // SAFETY: the configuration pool and server are live.
            let alias = unsafe { script_alias(name, w, (*cmd).pool) }?;
            srv.aliases.push(alias);
        }
        "WSGIPythonHome" => {
            global_only()?;
            let home = one(name, w)?.trim_end_matches('/').to_string();
            let home = if home.is_empty() {
                "/".to_string()
            } else {
                home
            };
            python::check_home(&home)?;
            srv.python.home = Some(home);
        }
        "WSGIPythonOptimize" => {
            global_only()?;
            srv.python.optimize = match one(name, w)? {
                "0" => 0,
                "1" => 1,
                "2" => 2,
                v => return Err(format!("WSGIPythonOptimize must be 0, 1 or 2, not '{v}'.")),
            };
        }
        other => return Err(misrouted(other)),
    }
    Ok(())
}

/// Fails unless the directive is in the main server configuration.
pub(super) unsafe fn global_only(cmd: *mut sys::cmd_parms) -> Result<(), String> {
    // SAFETY: cmd is live; the returned message (if any) is a static or pool string.
    let e = unsafe { sys::ap_check_cmd_context(cmd, sys::GLOBAL_ONLY as u32) };
    // SAFETY: e is NULL or a NUL-terminated static/pool string.
    match unsafe { apache::cstring_lossy(e) } {
        Some(msg) => Err(msg),
        None => Ok(()),
    }
}

/// Daemon-mode directives, kept with this configuration generation's
/// daemon settings (see `daemon::settings`).
unsafe fn daemon_directive(
    name: &str,
    w: &[String],
    cmd: *mut sys::cmd_parms,
) -> Result<(), String> {
    match name {
        "WSGIDaemonProcess" => {
            // SAFETY: cmd, its server and pool are live during configuration.
            let (vhost, pool) = unsafe {
                let s = (*cmd).server;
                let name = ((*s).is_virtual != 0)
                    .then(|| apache::cstring_lossy((*s).server_hostname))
                    .flatten();
                (name, (*cmd).pool)
            };
            let group = daemon::parse(w, vhost, &SystemAccounts)?;
            if group.user.as_ref().is_some_and(|u| u.id == 0) {
                return Err("WSGI process blocked from running as root.".into());
            }
            // SAFETY: configuration is read on one thread; no other borrow is live.
            let settings = unsafe { daemon::settings(pool) };
            if settings.group(&group.name).is_some() {
                return Err(format!(
                    "Name duplicates previous WSGI daemon definition: '{}'.",
                    group.name
                ));
            }
            settings.groups.push(group);
        }
        "WSGIImportScript" => {
            // SAFETY: configuration is read on one thread; no other borrow is live.
            let settings = unsafe { daemon::settings((*cmd).pool) };
            let import = daemon::parse_import(w, |g| settings.group(g).is_some())?;
            settings.imports.push(import);
        }
        "WSGITelemetryService" | "WSGITelemetryOptions" => {
            // SAFETY: cmd is live during configuration.
            unsafe { global_only(cmd) }?;
            // SAFETY: as for WSGIDaemonProcess.
            let settings = unsafe { daemon::settings((*cmd).pool) };
            use crate::telemetry::config;
            if name == "WSGITelemetryService" {
                settings.telemetry = Some(config::parse_service(w)?);
            } else {
                settings.telemetry_options = config::parse_options(w, settings.telemetry_options)?;
            }
        }
        "WSGISocketPrefix"
        | "WSGISocketRotation"
        | "WSGIRestrictEmbedded"
        | "WSGIAcceptMutex"
        | "WSGIServerMetrics"
        | "WSGISlowRequests" => {
            // SAFETY: cmd is live during configuration.
            unsafe { global_only(cmd) }?;
            let v = one(name, w)?;
            // SAFETY: as for WSGIDaemonProcess.
            let settings = unsafe { daemon::settings((*cmd).pool) };
            match name {
                "WSGISocketPrefix" => settings.socket_prefix = Some(v.to_string()),
                "WSGISocketRotation" => settings.socket_rotation = Some(parse_flag(name, v)?),
                "WSGIRestrictEmbedded" => settings.restrict_embedded = Some(parse_flag(name, v)?),
                "WSGISlowRequests" => settings.slow_requests = Some(crate::wsgi::slow::parse(v)?),
                "WSGIServerMetrics" => settings.server_metrics = Some(parse_flag(name, v)?),
                // Accepted for compatibility: daemon threads take connections
                // with accept() on a shared socket, which the kernel hands
                // to one waiting process at a time; there is no lock to pick.
                _ => match v {
                    "default" | "posixsem" | "sysvsem" | "fcntl" | "flock" | "pthread" => {}
                    _ => return Err(format!("Unknown accept mutex '{v}'.")),
                },
            }
        }
        other => return Err(misrouted(other)),
    }
    Ok(())
}

/// A WSGIProcessGroup value: "" for %{GLOBAL} (embedded), else a group
/// name or %{ENV:name}, kept unexpanded.
pub fn process_group(v: &str) -> Result<String, String> {
    if v == "%{GLOBAL}" || v.is_empty() {
        Ok(String::new())
    } else if super::expand::env_name(v).is_some() || !v.contains("%{") {
        Ok(v.to_string())
    } else {
        Err(format!(
            "Invalid process group '{v}': expected a WSGIDaemonProcess name, %{{GLOBAL}} or %{{ENV:name}}."
        ))
    }
}

/// User and group names from the system's databases.
struct SystemAccounts;

impl daemon::Accounts for SystemAccounts {
    fn user(&self, name: &str) -> Option<u32> {
        let c = CString::new(name).ok()?;
        // SAFETY: getpwnam returns NULL or a pointer to static storage, read at once.
        let pw = unsafe { libc::getpwnam(c.as_ptr()) };
        // SAFETY: non-NULL, so a valid passwd record.
        (!pw.is_null()).then(|| unsafe { (*pw).pw_uid })
    }
    fn group(&self, name: &str) -> Option<u32> {
        let c = CString::new(name).ok()?;
        // SAFETY: as for getpwnam.
        let gr = unsafe { libc::getgrnam(c.as_ptr()) };
        // SAFETY: non-NULL, so a valid group record.
        (!gr.is_null()).then(|| unsafe { (*gr).gr_gid })
    }
}

/// A WSGICallableObject value: a Python identifier or %{ENV:name}.
pub fn callable_object(v: &str) -> Result<String, String> {
    let ident = |s: &str| {
        let mut c = s.chars();
        matches!(c.next(), Some(ch) if ch == '_' || ch.is_alphabetic())
            && c.all(|ch| ch == '_' || ch.is_alphanumeric())
    };
    if ident(v) || super::expand::env_name(v).is_some() {
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
                let group = process_group(v)?;
                // SAFETY: configuration is read on one thread; no other borrow is live.
                let settings = unsafe { daemon::settings(pool) };
                if !group.is_empty() && !group.contains("%{") && settings.group(&group).is_none() {
                    return Err(format!(
                        "WSGI process group not yet configured: '{group}' (WSGIDaemonProcess must come first)."
                    ));
                }
                options.process_group = Some(group);
            }
            "application-group" => {
                options.application_group = Some(GroupSpec::parse(v)?);
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

/// A directive routed to a parser that does not know it: a bug, reported
/// as a configuration error rather than a panic.
fn misrouted(name: &str) -> String {
    format!("mod_wsgi_rs: internal error: the directive {name} reached the wrong parser.")
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
