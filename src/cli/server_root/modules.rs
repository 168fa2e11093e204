//! What httpd.conf loads besides mod_wsgi_rs: the Apache modules the
//! options need, and the --include-file files.
use crate::accounts::absolute;
use crate::locate::Apache;
use crate::options::ServerArgs;
use std::path::PathBuf;

/// The modules to load, leaving out those Apache has built in (no .so).
pub(super) fn modules(args: &ServerArgs, https: bool, apache: &Apache) -> Vec<String> {
    let mut modules: Vec<String> = ["unixd", "authz_core", "mime", "dir", "alias", "rewrite"]
        .iter()
        .map(|m| m.to_string())
        .collect();
    if args.access_log {
        modules.push("log_config".into());
    }
    if !args.setenv.is_empty() || !args.passenv.is_empty() {
        modules.push("env".into());
    }
    if args.compress_responses {
        modules.extend(["filter".into(), "deflate".into()]);
    }
    if https {
        modules.extend(["socache_shmcb".into(), "ssl".into()]);
    }
    modules.retain(|m| apache.module(m).is_some());
    modules
}

/// --include-file's files, each existing.
pub(super) fn includes(args: &ServerArgs) -> Result<Vec<PathBuf>, String> {
    let mut includes = Vec::new();
    for f in &args.include_file {
        if !f.is_file() {
            return Err(format!("--include-file {}: no such file.", f.display()));
        }
        includes.push(absolute(f));
    }
    Ok(includes)
}
