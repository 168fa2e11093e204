//! Step 3: whether the user Apache runs the application as can read the
//! script, the Python path, the working directory and Python itself, and the
//! `chmod` that would let it.
use super::python_env::Python;
use super::report::Report;
use super::target::Target;
use super::CheckArgs;
use crate::accounts::{self, Account};
use std::path::{Path, PathBuf};

/// A denial by accounts::can_read, "user 'U' cannot enter|read PATH (mode
/// ..., owner ...)": whether it is about entering a directory, the path, and
/// the parenthesised mode.
struct Denial<'a> {
    enter: bool,
    path: &'a str,
    mode: &'a str,
}

fn parse_denial(text: &str) -> Option<Denial<'_>> {
    let (enter, rest) = [(true, "cannot enter "), (false, "cannot read ")]
        .iter()
        .find_map(|(enter, v)| text.split_once(v).map(|(_, rest)| (*enter, rest)))?;
    let (path, mode) = rest.rsplit_once(" (mode ")?;
    Some(Denial {
        enter,
        path,
        mode: mode.trim_end_matches(')'),
    })
}

impl Denial<'_> {
    /// The shell command that lets others through.
    fn fix(&self) -> String {
        let bits = if self.enter {
            "o+x"
        } else if Path::new(self.path).is_dir() {
            "o+rx"
        } else {
            "o+r"
        };
        format!("chmod {bits} {}", self.path)
    }
}

/// What the application needs to read: its name in the report, the path,
/// and whether it is essential (loading is skipped without it).
fn needed_paths(
    target: &Target,
    args: &CheckArgs,
    python: Option<&Python>,
) -> Vec<(String, PathBuf, bool)> {
    let mut items: Vec<(String, PathBuf, bool)> = Vec::new();
    if let Target::Script(p) = target {
        items.push(("the script".into(), p.clone(), true));
    }
    for d in &args.python_path {
        items.push((
            "the Python path directory".into(),
            accounts::absolute(d),
            false,
        ));
    }
    if let Some(d) = &args.working_directory {
        items.push(("the working directory".into(), accounts::absolute(d), false));
    }
    if let Some(p) = python {
        if let Some(sp) = &p.site_packages {
            items.push((
                "the virtual environment's site-packages".into(),
                sp.clone(),
                true,
            ));
        }
        items.push(("Python's standard library".into(), p.stdlib.clone(), true));
    }
    items
}

/// Reports that `who` cannot read `what` at `path`, as `e` (from
/// accounts::can_read) says, with how to fix it.
fn report_denied(who: &Account, what: &str, path: &Path, e: &str, r: &mut Report) {
    let shown = path.display();
    let user = &who.name;
    let denial = parse_denial(e);
    let text = match &denial {
        Some(d) if Path::new(d.path) == path => {
            format!(
                "permissions: user '{user}' cannot read {what} {shown} (mode {}).",
                d.mode
            )
        }
        Some(d) => format!(
            "permissions: user '{user}' cannot read {what} {shown}: it cannot {} {} (mode {}).",
            if d.enter { "enter" } else { "read" },
            d.path,
            d.mode
        ),
        None => format!("permissions: {what} {shown}: {e}."),
    };
    let advice = match denial {
        Some(d) if Path::new(d.path).starts_with("/root") && what.starts_with("Python's") => {
            format!(
                "Apache runs the application as '{user}', and /root is root's alone: use a Python \
             installed elsewhere (the system's, or a copy under /opt) and recreate the virtual \
             environment with it."
            )
        }
        Some(d) if Path::new(d.path).starts_with("/root") => format!(
            "Apache runs the application as '{user}', and /root is root's alone: move {what} \
             out of /root."
        ),
        d => format!(
            "Apache runs the application as '{user}'. Make {what} readable for that user{}, or \
             give --user/--group the account Apache really uses.",
            d.map_or(String::new(), |d| format!(" (e.g. `{}`)", d.fix()))
        ),
    };
    r.error(&text, &[advice]);
}

/// Step 3: whether `who` can read what the application needs. Returns
/// whether the script (if a file) and Python itself are readable.
pub(super) fn permissions_step(
    who: &Account,
    target: &Target,
    args: &CheckArgs,
    python: Option<&Python>,
    r: &mut Report,
) -> bool {
    let items = needed_paths(target, args, python);
    let mut essential_ok = true;
    let mut denied = 0;
    for (what, path, essential) in &items {
        if !path.exists() {
            // A missing script is already an error; Python's paths are Python's own.
            if what.starts_with("the Python path") || what.starts_with("the working") {
                r.warning(
                    &format!("permissions: {what} {} does not exist.", path.display()),
                    &[],
                );
            }
            continue;
        }
        if let Err(e) = accounts::can_read(who, path) {
            denied += 1;
            essential_ok &= !essential;
            report_denied(who, what, path, &e, r);
        }
    }
    if denied == 0 {
        let names: Vec<&str> = items
            .iter()
            .filter(|(_, p, _)| p.exists())
            .map(|(w, _, _)| w.as_str())
            .collect();
        if who.uid == 0 {
            r.warning(
                "permissions: checked for root, which reads everything; Apache does not run \
                 applications as root.",
                &[
                    "Give --user the account Apache runs the application as (its User directive)."
                        .into(),
                ],
            );
        } else {
            r.ok(&format!(
                "permissions: user '{}' can read {}.",
                who.name,
                join_words(&dedup(&names))
            ));
        }
    }
    essential_ok
}

/// The distinct names in `items`, in order, in the plural if repeated
/// ("the Python path directory" twice: "the Python path directories").
fn dedup(items: &[&str]) -> Vec<String> {
    let mut out: Vec<(&str, usize)> = Vec::new();
    for i in items {
        match out.iter_mut().find(|(name, _)| name == i) {
            Some((_, n)) => *n += 1,
            None => out.push((i, 1)),
        }
    }
    out.into_iter()
        .map(|(name, n)| match name.strip_suffix('y') {
            Some(stem) if n > 1 => format!("{stem}ies"),
            _ if n > 1 => format!("{name}s"),
            _ => name.to_string(),
        })
        .collect()
}

fn join_words<S: AsRef<str>>(words: &[S]) -> String {
    match words {
        [] => "nothing".into(),
        [one] => one.as_ref().into(),
        [rest @ .., last] => {
            let rest: Vec<&str> = rest.iter().map(AsRef::as_ref).collect();
            format!("{} and {}", rest.join(", "), last.as_ref())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_denials() {
        let d = parse_denial(
            "user 'www-data' cannot read /nonexistent/app.wsgi (mode 0600, owner 0:0)",
        )
        .unwrap();
        assert_eq!(
            (d.enter, d.path, d.mode),
            (false, "/nonexistent/app.wsgi", "0600, owner 0:0")
        );
        assert_eq!(d.fix(), "chmod o+r /nonexistent/app.wsgi");
        let d = parse_denial("user 'www-data' cannot enter /root (mode 0700, owner 0:0)").unwrap();
        assert_eq!((d.enter, d.fix().as_str()), (true, "chmod o+x /root"));
        let d = parse_denial("user 'www-data' cannot read /tmp (mode 1777, owner 0:0)").unwrap();
        assert_eq!(d.fix(), "chmod o+rx /tmp");
        assert!(parse_denial("/x: No such file").is_none());
    }

    /// The denial's wording is accounts::can_read's: read it from there.
    #[test]
    fn reads_the_denials_of_can_read() {
        let nobody = accounts::user("nobody").expect("nobody account");
        if let Err(e) = accounts::can_read(&nobody, Path::new("/root/.")) {
            let d = parse_denial(&e).unwrap_or_else(|| panic!("unparsed: {e}"));
            assert!(
                d.path.starts_with("/root") && d.mode.starts_with('0'),
                "{e}"
            );
        }
    }

    #[test]
    fn lists_in_words() {
        assert_eq!(join_words(&["a"]), "a");
        assert_eq!(join_words(&["a", "b", "c"]), "a, b and c");
        let names = dedup(&[
            "the script",
            "the path directory",
            "the path directory",
            "x",
        ]);
        assert_eq!(names, ["the script", "the path directories", "x"]);
    }
}
