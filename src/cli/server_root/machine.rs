//! What the server takes from this machine: the accounts Apache's children
//! run as, the MPM Apache has, the user's locale, and the server root's
//! directory.
use crate::accounts;
use crate::locate::Apache;
use crate::options::{Mpm, ServerArgs};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Who Apache's children run as: `(User, Group)` lines when root.
pub(super) fn run_as(args: &ServerArgs) -> Result<Option<(String, String)>, String> {
    if !accounts::is_root() {
        if let Some(u) = &args.user {
            let me = accounts::current().map(|a| a.name).unwrap_or_default();
            if *u != me {
                return Err(format!(
                    "--user {u} needs root: Apache can only switch to another user when it is \
                     started as root. Leave out --user to run as {me}."
                ));
            }
        }
        return Ok(None);
    }
    let user = match &args.user {
        Some(u) => accounts::user(u).ok_or_else(|| {
            format!("there is no user '{u}' on this machine; give --user an existing account.")
        })?,
        None => accounts::default_run_user().ok_or(
            "running as root, and none of the usual web server accounts (www-data, apache, \
             daemon, nobody) exists: name one with --user.",
        )?,
    };
    if user.uid == 0 {
        return Err(
            "Apache refuses to run its children as root: give --user a normal account.".into(),
        );
    }
    let group = match &args.group {
        Some(g) => {
            accounts::group(g)
                .ok_or_else(|| format!("there is no group '{g}' on this machine."))?;
            g.clone()
        }
        None => format!("#{}", user.gid),
    };
    Ok(Some((user.name, group)))
}

/// --server-mpm if Apache has it; otherwise the first of event, worker and
/// prefork that it has.
pub(super) fn pick_mpm(args: &ServerArgs, apache: &Apache) -> Result<Mpm, String> {
    let name = |m: Mpm| match m {
        Mpm::Event => "mpm_event",
        Mpm::Worker => "mpm_worker",
        Mpm::Prefork => "mpm_prefork",
    };
    if let Some(m) = args.server_mpm {
        return apache.module(name(m)).map(|_| m).ok_or_else(|| {
            format!(
                "Apache has no {} module in {}.",
                name(m),
                apache.modules_dir.display()
            )
        });
    }
    [Mpm::Event, Mpm::Worker, Mpm::Prefork]
        .into_iter()
        .find(|&m| apache.module(name(m)).is_some())
        .ok_or_else(|| format!("no Apache MPM module in {}.", apache.modules_dir.display()))
}

/// The user's locale for the daemon, with C/POSIX upgraded to UTF-8 so that
/// Python's file system encoding is UTF-8.
pub(super) fn locale() -> String {
    let lang = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_default();
    if lang.is_empty() || lang == "C" || lang == "POSIX" {
        "C.UTF-8".into()
    } else {
        lang
    }
}

/// The effective user id: names the default server root and the daemons.
pub(super) fn uid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// The default server root: /tmp/mod_wsgi_rs-HOST:PORT:UID, as mod_wsgi-express.
pub(super) fn default_server_root(args: &ServerArgs) -> PathBuf {
    let host = args.host.as_deref().unwrap_or("localhost");
    PathBuf::from(format!("/tmp/mod_wsgi_rs-{host}:{}:{}", args.port, uid()))
}

/// Creates the server root, or reuses one this user owns: a directory in /tmp
/// that someone else made (or a symlink) could redirect our files.
pub(super) fn make_root(root: &Path) -> Result<(), String> {
    match fs::symlink_metadata(root) {
        Ok(meta) => {
            if !meta.is_dir() || meta.uid() != uid() {
                return Err(format!(
                    "the server root {} exists and is not a directory owned by you; remove it \
                     or choose another with --server-root.",
                    root.display()
                ));
            }
        }
        Err(_) => {
            fs::create_dir_all(root)
                .map_err(|e| format!("cannot create the server root {}: {e}", root.display()))?;
            // Apache's user reaches the daemons' sockets through it.
            fs::set_permissions(root, fs::Permissions::from_mode(0o755))
                .map_err(|e| format!("cannot set the permissions of {}: {e}", root.display()))?;
        }
    }
    Ok(())
}
