//! Users and groups, and whether one can read a file: the CLI runs as root
//! for system installs while Apache's children and daemons run as another
//! user, so "can that user read the script?" is asked before Apache starts.
use std::ffi::{CStr, CString};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A user account, with the groups it is in (primary first).
#[derive(Clone, Debug)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The account named `name` (or `#uid`), from the passwd database.
pub fn user(name: &str) -> Option<Account> {
    let mut buf = vec![0u8; 16384];
    // SAFETY: zeroed passwd is a valid out-parameter for getpw*_r.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    let rc = if let Some(uid) = name.strip_prefix('#').and_then(|n| n.parse().ok()) {
        // SAFETY: all pointers are to live buffers of the given sizes.
        unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut found) }
    } else {
        let c = CString::new(name).ok()?;
        // SAFETY: as above; c is NUL-terminated.
        unsafe {
            libc::getpwnam_r(
                c.as_ptr(),
                &mut pw,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        }
    };
    if rc != 0 || found.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points into buf, NUL-terminated.
    let name = unsafe { CStr::from_ptr(pw.pw_name) }
        .to_string_lossy()
        .into_owned();
    let groups = groups_of(&name, pw.pw_gid);
    Some(Account {
        name,
        uid: pw.pw_uid,
        gid: pw.pw_gid,
        groups,
    })
}

/// The account this process runs as.
pub fn current() -> Option<Account> {
    // SAFETY: geteuid has no preconditions.
    user(&format!("#{}", unsafe { libc::geteuid() }))
}

/// The group named `name` (or `#gid`).
pub fn group(name: &str) -> Option<u32> {
    if let Some(gid) = name.strip_prefix('#').and_then(|n| n.parse().ok()) {
        return Some(gid);
    }
    let c = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16384];
    // SAFETY: zeroed group is a valid out-parameter for getgrnam_r.
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: all pointers are to live buffers of the given sizes.
    let rc = unsafe {
        libc::getgrnam_r(
            c.as_ptr(),
            &mut gr,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    (rc == 0 && !found.is_null()).then_some(gr.gr_gid)
}

fn groups_of(name: &str, gid: u32) -> Vec<u32> {
    let Ok(c) = CString::new(name) else {
        return vec![gid];
    };
    let mut n: libc::c_int = 64;
    loop {
        let mut list = vec![0 as libc::gid_t; n as usize];
        let want = n;
        // SAFETY: list has room for n entries; n is updated on overflow.
        let rc = unsafe { libc::getgrouplist(c.as_ptr(), gid, list.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            list.truncate(n as usize);
            return list;
        }
        if n <= want {
            n = want * 2;
        }
    }
}

/// The user Apache's children run as when the CLI is started as root and
/// no `--user` is given: the distribution's web server account.
pub fn default_run_user() -> Option<Account> {
    ["www-data", "apache", "daemon", "nobody"]
        .iter()
        .find_map(|n| user(n))
}

/// Whether `who` can read `path` (and search every directory above it);
/// Err says which component stops it and why. From the permission bits
/// only: ACLs and security modules are not consulted.
pub fn can_read(who: &Account, path: &Path) -> Result<(), String> {
    let path = absolute(path);
    let mut dir = PathBuf::from("/");
    let comps: Vec<_> = path.components().skip(1).collect();
    for (i, c) in comps.iter().enumerate() {
        dir.push(c);
        let last = i + 1 == comps.len();
        let meta = std::fs::metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let need = if meta.is_dir() && !last {
            0o1 // search
        } else if meta.is_dir() {
            0o5 // list and search
        } else {
            0o4
        };
        if !allowed(who, &meta, need) {
            return Err(format!(
                "user '{}' cannot {} {} (mode {:04o}, owner {}:{})",
                who.name,
                if need == 0o1 { "enter" } else { "read" },
                dir.display(),
                meta.mode() & 0o7777,
                meta.uid(),
                meta.gid()
            ));
        }
    }
    Ok(())
}

fn allowed(who: &Account, meta: &std::fs::Metadata, need: u32) -> bool {
    if who.uid == 0 {
        return true;
    }
    let mode = meta.mode();
    let bits = if meta.uid() == who.uid {
        mode >> 6
    } else if who.groups.contains(&meta.gid()) || who.gid == meta.gid() {
        mode >> 3
    } else {
        mode
    };
    bits & need == need
}

/// `path` made absolute against the current directory (not resolved).
pub fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_and_reads_everything() {
        let root = user("root").expect("root account");
        assert_eq!(root.uid, 0);
        assert!(user("#0").is_some());
        assert!(can_read(&root, Path::new("/etc/shadow")).is_ok());
    }

    #[test]
    fn others_cannot_read_a_private_file() {
        let nobody = user("nobody").expect("nobody account");
        let dir = std::env::temp_dir().join(format!("wsgi-rs-acct-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("app.wsgi");
        std::fs::write(&file, "x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let me = current().unwrap();
        let verdict = can_read(&nobody, &file);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let after = can_read(&nobody, &file);
        std::fs::remove_dir_all(&dir).unwrap();
        if me.uid != nobody.uid {
            let err = verdict.unwrap_err();
            assert!(
                err.contains("cannot read") && err.contains("app.wsgi"),
                "{err}"
            );
        }
        assert!(after.is_ok(), "{after:?}");
    }
}
