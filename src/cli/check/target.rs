//! What is checked: a script file or a module imported from the Python path,
//! and the name of its callable, from SCRIPT, --application-type and
//! --callable-object.
use super::{ApplicationType, CheckArgs};
use crate::accounts;
use std::path::{Path, PathBuf};

/// What is loaded: a script file, or a module imported from the Python path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Target {
    Script(PathBuf),
    Module(String),
}

impl Target {
    /// The probe's KIND argument.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Target::Script(_) => "script",
            Target::Module(_) => "module",
        }
    }

    /// The probe's TARGET argument.
    pub(super) fn text(&self) -> String {
        match self {
            Target::Script(p) => p.display().to_string(),
            Target::Module(m) => m.clone(),
        }
    }

    /// mod_wsgi's module name for a script, `_mod_wsgi_<md5 of the path>`.
    pub(super) fn module_name(&self) -> String {
        match self {
            Target::Script(p) => format!(
                "_mod_wsgi_{:x}",
                md5::compute(p.as_os_str().as_encoded_bytes())
            ),
            Target::Module(m) => m.clone(),
        }
    }

    /// How the report names it.
    pub(super) fn describe(&self) -> String {
        match self {
            Target::Script(p) => p.display().to_string(),
            Target::Module(m) => format!("module {m}"),
        }
    }
}

/// Whether `s` reads as `package.module[:callable]`.
fn is_entry_point(s: &str) -> bool {
    let ident = |p: &str| {
        !p.is_empty()
            && !p.starts_with(|c: char| c.is_ascii_digit())
            && p.chars().all(|c| c.is_alphanumeric() || c == '_')
    };
    let (module, callable) = match s.split_once(':') {
        Some((m, c)) => (m, Some(c)),
        None => (s, None),
    };
    module.split('.').all(ident) && callable.is_none_or(|c| c.split('.').all(ident))
}

/// The target and the callable's name from SCRIPT, --application-type and
/// --callable-object.
pub(super) fn target_of(args: &CheckArgs) -> Result<(Target, String), String> {
    let given = args.script.as_str();
    let kind = args.application_type.unwrap_or_else(|| {
        let looks_like_file = Path::new(given).exists()
            || given.contains('/')
            || given.ends_with(".wsgi")
            || given.ends_with(".py");
        if !looks_like_file && is_entry_point(given) {
            ApplicationType::Module
        } else {
            ApplicationType::Script
        }
    });
    let default = || {
        args.callable_object
            .clone()
            .unwrap_or_else(|| "application".into())
    };
    match kind {
        ApplicationType::Script => Ok((
            Target::Script(accounts::absolute(Path::new(given))),
            default(),
        )),
        ApplicationType::Module => {
            if !is_entry_point(given) {
                return Err(format!(
                    "'{given}' is not a module name: give `package.module` or \
                     `package.module:callable`, or a script file with --application-type script."
                ));
            }
            match given.split_once(':') {
                Some((m, c)) => {
                    if let Some(other) = args.callable_object.as_deref().filter(|o| *o != c) {
                        return Err(format!(
                            "'{given}' names the callable '{c}' but --callable-object says '{other}': \
                             give it once."
                        ));
                    }
                    Ok((Target::Module(m.into()), c.into()))
                }
                None => Ok((Target::Module(given.into()), default())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_entry_points_from_files() {
        assert!(is_entry_point("shop.wsgi:application"));
        assert!(is_entry_point("shop"));
        assert!(is_entry_point("pkg.mod:make.app"));
        assert!(!is_entry_point("app.wsgi/x"));
        assert!(!is_entry_point("1pkg.mod"));
        assert!(!is_entry_point("pkg..mod"));
        assert!(!is_entry_point("pkg.mod:"));
        assert!(!is_entry_point(""));
    }

    fn args(script: &str, extra: &[&str]) -> CheckArgs {
        use clap::{FromArgMatches, Parser};
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            check: CheckArgs,
        }
        let argv: Vec<&str> = ["check", script]
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
        let m = <Cli as clap::CommandFactory>::command()
            .try_get_matches_from(argv)
            .unwrap();
        Cli::from_arg_matches(&m).unwrap().check
    }

    #[test]
    fn chooses_the_target() {
        let (t, c) = target_of(&args("/srv/app.wsgi", &[])).unwrap();
        assert_eq!(
            (t, c.as_str()),
            (Target::Script("/srv/app.wsgi".into()), "application")
        );
        let (t, c) = target_of(&args("shop.wsgi:app", &[])).unwrap();
        assert_eq!((t, c.as_str()), (Target::Module("shop.wsgi".into()), "app"));
        let (t, c) = target_of(&args("shop", &["--callable-object", "make"])).unwrap();
        assert_eq!((t, c.as_str()), (Target::Module("shop".into()), "make"));
        let (t, _) = target_of(&args("app.wsgi", &[])).unwrap();
        assert!(matches!(t, Target::Script(p) if p.is_absolute() && p.ends_with("app.wsgi")));
        let err = target_of(&args("shop:app", &["--callable-object", "other"])).unwrap_err();
        assert!(err.contains("give it once"), "{err}");
        let err = target_of(&args("a/b.py", &["--application-type", "module"])).unwrap_err();
        assert!(err.contains("not a module name"), "{err}");
    }

    #[test]
    fn names_the_script_module_as_mod_wsgi_does() {
        let t = Target::Script("/srv/app.wsgi".into());
        assert_eq!(
            t.module_name(),
            format!("_mod_wsgi_{:x}", md5::compute(b"/srv/app.wsgi"))
        );
    }
}
