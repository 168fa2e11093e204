//! WSGIAccessScript, WSGIAuthUserScript, WSGIAuthGroupScript and
//! WSGIGroupAuthoritative: the per-directory auth hook settings (allowed
//! where AuthConfig is: <Directory>, <Location>, .htaccess).
use super::{parse_flag, GroupSpec};

/// One auth script: its file and the interpreter it runs in.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthScript {
    pub path: String,
    /// application-group= (default %{GLOBAL}, the main interpreter).
    pub application_group: GroupSpec,
}

/// The auth settings of one section; a more specific section's values
/// replace its parent's one by one, as with mod_wsgi.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuthScripts {
    /// WSGIAccessScript: allow_access(environ, host).
    pub access: Option<AuthScript>,
    /// WSGIAuthUserScript: check_password / get_realm_hash.
    pub user: Option<AuthScript>,
    /// WSGIAuthGroupScript: groups_for_user.
    pub group: Option<AuthScript>,
    /// WSGIGroupAuthoritative: kept, but without effect in Apache 2.4 (as
    /// with mod_wsgi: authz providers are combined by <RequireAny/All>).
    pub group_authoritative: Option<bool>,
}

impl AuthScripts {
    pub fn merge(base: &AuthScripts, add: &AuthScripts) -> AuthScripts {
        AuthScripts {
            access: add.access.clone().or_else(|| base.access.clone()),
            user: add.user.clone().or_else(|| base.user.clone()),
            group: add.group.clone().or_else(|| base.group.clone()),
            group_authoritative: add.group_authoritative.or(base.group_authoritative),
        }
    }

    /// Whether `name` is one of these directives.
    pub fn handles(name: &str) -> bool {
        matches!(
            name,
            "WSGIAccessScript"
                | "WSGIAuthUserScript"
                | "WSGIAuthGroupScript"
                | "WSGIGroupAuthoritative"
                | "WSGIAuthGroupAuthoritative"
        )
    }

    /// Applies one of these directives (`w`: its words).
    pub fn apply(&mut self, name: &str, w: &[String]) -> Result<(), String> {
        match name {
            "WSGIAccessScript" => self.access = Some(parse(w, "access")?),
            "WSGIAuthUserScript" => self.user = Some(parse(w, "auth user")?),
            "WSGIAuthGroupScript" => self.group = Some(parse(w, "auth group")?),
            // mod_wsgi's name, and the spelling this module used to declare.
            _ => {
                let [v] = w else {
                    return Err(format!("{name} takes one argument, got {}.", w.len()));
                };
                let on =
                    parse_flag(name, v).map_err(|_| format!("{name} must be one of: Off | On"))?;
                self.group_authoritative = Some(on);
            }
        }
        Ok(())
    }
}

/// `path [application-group=name]`, with mod_wsgi's messages.
fn parse(w: &[String], what: &str) -> Result<AuthScript, String> {
    let Some(path) = w.first().filter(|p| !p.is_empty()) else {
        return Err(format!("Location of {what} script not supplied."));
    };
    let mut script = AuthScript {
        path: path.clone(),
        application_group: GroupSpec::Global,
    };
    for opt in &w[1..] {
        let invalid = || format!("Invalid option to WSGI {what} script definition: '{opt}'.");
        match opt.split_once('=') {
            Some(("application-group", "")) => {
                return Err("Invalid name for WSGI application group.".into())
            }
            Some(("application-group", v)) => script.application_group = GroupSpec::parse(v)?,
            _ => return Err(invalid()),
        }
    }
    Ok(script)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_path_and_group() {
        let mut a = AuthScripts::default();
        a.apply("WSGIAuthUserScript", &words("/srv/auth.wsgi"))
            .unwrap();
        assert_eq!(
            a.user,
            Some(AuthScript {
                path: "/srv/auth.wsgi".into(),
                application_group: GroupSpec::Global
            })
        );
        a.apply("WSGIAccessScript", &words("/a.py application-group=g"))
            .unwrap();
        assert_eq!(
            a.access.unwrap().application_group,
            GroupSpec::Literal("g".into())
        );
    }

    #[test]
    fn refuses_like_mod_wsgi() {
        let mut a = AuthScripts::default();
        let e = |a: &mut AuthScripts, n, s| a.apply(n, &words(s)).unwrap_err();
        assert_eq!(
            e(&mut a, "WSGIAccessScript", ""),
            "Location of access script not supplied."
        );
        assert!(e(&mut a, "WSGIAuthGroupScript", "/a.py bogus=1")
            .starts_with("Invalid option to WSGI auth group script definition"));
        assert!(e(&mut a, "WSGIAuthUserScript", "/a.py process-group=d")
            .starts_with("Invalid option to WSGI auth user script definition"));
        assert_eq!(
            e(&mut a, "WSGIAuthUserScript", "/a.py application-group="),
            "Invalid name for WSGI application group."
        );
        assert!(e(&mut a, "WSGIGroupAuthoritative", "maybe").contains("Off | On"));
        a.apply("WSGIGroupAuthoritative", &words("off")).unwrap();
        assert_eq!(a.group_authoritative, Some(false));
    }

    #[test]
    fn child_values_win_one_by_one() {
        let script = |p: &str| {
            Some(AuthScript {
                path: p.into(),
                application_group: GroupSpec::Global,
            })
        };
        let base = AuthScripts {
            access: script("/base-access"),
            user: script("/base-user"),
            ..Default::default()
        };
        let add = AuthScripts {
            user: script("/child-user"),
            group_authoritative: Some(true),
            ..Default::default()
        };
        let m = AuthScripts::merge(&base, &add);
        assert_eq!(m.access, script("/base-access"));
        assert_eq!(m.user, script("/child-user"));
        assert_eq!(m.group, None);
        assert_eq!(m.group_authoritative, Some(true));
    }
}
