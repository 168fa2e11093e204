//! script-user= and script-group=: a group may only run scripts owned by
//! that user (or group), in a directory owned alike, neither writable by
//! anyone else. Checked by the Apache child before the request is handed
//! over; a script that fails gets 403.
use crate::config::daemon::DaemonGroup;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub fn check_script(g: &DaemonGroup, script: &str) -> Result<(), String> {
    let (what, name, id, owner): (&str, &str, u32, fn(&std::fs::Metadata) -> u32) =
        match (&g.script_user, &g.script_group) {
            (Some(u), _) => ("user", &u.name, u.id, |m| m.uid()),
            (None, Some(gr)) => ("group", &gr.name, gr.id, |m| m.gid()),
            (None, None) => return Ok(()),
        };
    let dir = Path::new(script).parent().unwrap_or(Path::new("/"));
    for path in [Path::new(script), dir] {
        let refuse = |why: String| {
            Err(format!(
                "{} for WSGI daemon process group '{}' (script-{what}={name}): {}",
                why, g.name, script
            ))
        };
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => return refuse(format!("Cannot check '{}': {e}", path.display())),
        };
        if owner(&meta) != id {
            return refuse(format!(
                "'{}' is not owned by {what} '{name}'",
                path.display()
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return refuse(format!(
                "'{}' is writable by its group or by others",
                path.display()
            ));
        }
    }
    Ok(())
}
