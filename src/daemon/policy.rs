//! script-user= and script-group=: a group may only run scripts owned by
//! that user (or group), in a directory owned alike, not writable by
//! others (mod_wsgi 6's exact checks, order and wording, each with its
//! WSGI#### number). Checked by the Apache child before the request is
//! handed over; a script that fails gets 403.
use crate::config::daemon::DaemonGroup;
use std::ffi::CStr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Group-writable and world-writable permission bits.
const GWRITE: u32 = 0o020;
const WWRITE: u32 = 0o002;

/// One policy (script-user= or script-group=): how to read the owner from
/// a file's metadata and name it, and mod_wsgi's lines for each refusal.
struct Policy {
    owner: fn(&std::fs::Metadata) -> u32,
    name: fn(u32) -> Option<String>,
    /// The script cannot be examined.
    no_info: &'static str,
    /// Its owner has no name (the id follows).
    unknown: &'static str,
    /// Its owner is not the one required ('%s' is the owner's name).
    mismatch: &'static str,
    /// Permission bits the script must not have, with the refusal.
    file_bits: &'static [(u32, &'static str)],
    /// The parent directory cannot be examined ('%s' is its path).
    no_dir: &'static str,
    unknown_dir: &'static str,
    mismatch_dir: &'static str,
    dir_bits: &'static [(u32, &'static str)],
}

const GROUP: Policy = Policy {
    owner: |m| m.gid(),
    name: group_name,
    no_info: "WSGI0153: Group information not available for WSGI script file.",
    unknown: "WSGI0154: Unable to determine group of WSGI script file from gid %ld.",
    mismatch: "WSGI0155: WSGI script file group '%s' does not match group required for daemon process.",
    file_bits: &[(WWRITE, "WSGI0157: WSGI script file is writable to world.")],
    no_dir: "WSGI0158: Unable to stat parent directory '%s' of WSGI script.",
    unknown_dir: "WSGI0159: Unable to determine group of parent directory of WSGI script file from gid %ld.",
    mismatch_dir: "WSGI0160: Parent directory of WSGI script file has group '%s' which does not match group required for daemon process.",
    dir_bits: &[(WWRITE, "WSGI0161: Parent directory of WSGI script file is writable to world.")],
};

const USER: Policy = Policy {
    owner: |m| m.uid(),
    name: user_name,
    no_info: "WSGI0162: User information not available for WSGI script file.",
    unknown: "WSGI0163: Unable to determine owner of WSGI script file from uid %ld.",
    mismatch: "WSGI0164: WSGI script file owner '%s' does not match user required for daemon process.",
    file_bits: &[
        (GWRITE, "WSGI0166: WSGI script file is writable to group."),
        (WWRITE, "WSGI0168: WSGI script file is writable to world."),
    ],
    no_dir: "WSGI0169: Unable to stat parent directory '%s' of WSGI script.",
    unknown_dir: "WSGI0170: Unable to determine owner of parent directory of WSGI script file from uid %ld.",
    mismatch_dir: "WSGI0171: Parent directory of WSGI script file has owner '%s' which does not match user required for daemon process.",
    dir_bits: &[
        (WWRITE, "WSGI0172: Parent directory of WSGI script file is writable to world."),
        (GWRITE, "WSGI0173: Parent directory of WSGI script file is writable to group."),
    ],
};

pub fn check_script(g: &DaemonGroup, script: &str) -> Result<(), String> {
    if let Some(gr) = &g.script_group {
        GROUP.check(gr.id, script)?;
    }
    if let Some(u) = &g.script_user {
        USER.check(u.id, script)?;
    }
    Ok(())
}

/// The directory holding `script`, as Apache's ap_make_dirstr_parent gives
/// it (with its trailing slash).
fn parent(script: &str) -> String {
    match script.rfind('/') {
        Some(i) => script[..=i].to_string(),
        None => String::new(),
    }
}

impl Policy {
    fn check(&self, want: u32, script: &str) -> Result<(), String> {
        let meta = std::fs::metadata(script).map_err(|_| self.no_info.to_string())?;
        self.owned(&meta, want, self.unknown, self.mismatch, self.file_bits)?;
        let dir = parent(script);
        let meta =
            std::fs::metadata(Path::new(&dir)).map_err(|_| self.no_dir.replace("%s", &dir))?;
        self.owned(
            &meta,
            want,
            self.unknown_dir,
            self.mismatch_dir,
            self.dir_bits,
        )
    }

    /// Whether a file (or directory) is owned by `want` and free of `bits`.
    fn owned(
        &self,
        meta: &std::fs::Metadata,
        want: u32,
        unknown: &str,
        mismatch: &str,
        bits: &[(u32, &str)],
    ) -> Result<(), String> {
        let id = (self.owner)(meta);
        let name = (self.name)(id).ok_or_else(|| unknown.replace("%ld", &id.to_string()))?;
        if id != want {
            return Err(mismatch.replace("%s", &name));
        }
        match bits.iter().find(|(b, _)| meta.mode() & b != 0) {
            Some((_, refusal)) => Err(refusal.to_string()),
            None => Ok(()),
        }
    }
}

/// The user name of `uid` (reentrant: Apache's threads call this).
fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 16384];
    // SAFETY: a zeroed passwd is a valid out-parameter for getpwuid_r.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are to live buffers of the given sizes.
    let rc =
        unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points into buf, NUL-terminated.
    Some(
        unsafe { CStr::from_ptr(pw.pw_name) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// The group name of `gid` (reentrant).
fn group_name(gid: u32) -> Option<String> {
    let mut buf = vec![0u8; 16384];
    // SAFETY: a zeroed group is a valid out-parameter for getgrgid_r.
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: all pointers are to live buffers of the given sizes.
    let rc =
        unsafe { libc::getgrgid_r(gid, &mut gr, buf.as_mut_ptr().cast(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() {
        return None;
    }
    // SAFETY: on success gr_name points into buf, NUL-terminated.
    Some(
        unsafe { CStr::from_ptr(gr.gr_name) }
            .to_string_lossy()
            .into_owned(),
    )
}
