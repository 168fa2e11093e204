//! WSGIApplicationGroup values and their %{...} expansions.

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupSpec {
    /// %{GLOBAL}: the main interpreter ("").
    Global,
    /// %{SERVER}: ServerName, plus :port when not 80/443.
    Server,
    /// %{RESOURCE}: %{SERVER}|SCRIPT_NAME.
    Resource,
    /// %{HOST}: the Host header (else ServerName), plus a non-default port.
    Host,
    /// %{ENV:VAR}: request notes, then the request environment, then the process environment.
    Env(String),
    Literal(String),
}

impl GroupSpec {
    pub fn parse(value: &str) -> Result<GroupSpec, String> {
        Ok(match value {
            "%{GLOBAL}" | "" => GroupSpec::Global,
            "%{SERVER}" => GroupSpec::Server,
            "%{RESOURCE}" => GroupSpec::Resource,
            "%{HOST}" => GroupSpec::Host,
            v if super::expand::env_name(v).is_some() => {
                GroupSpec::Env(super::expand::env_name(v).unwrap_or_default().to_string())
            }
            v if v.contains("%{") => {
                return Err(format!(
                    "Invalid application group '{v}': expected %{{GLOBAL}}, %{{SERVER}}, %{{RESOURCE}}, %{{HOST}}, %{{ENV:name}} or a name."
                ))
            }
            v => GroupSpec::Literal(v.to_string()),
        })
    }

    /// The name as configured, for messages.
    pub fn describe(&self) -> String {
        match self {
            GroupSpec::Global => "%{GLOBAL}".into(),
            GroupSpec::Server => "%{SERVER}".into(),
            GroupSpec::Resource => "%{RESOURCE}".into(),
            GroupSpec::Host => "%{HOST}".into(),
            GroupSpec::Env(n) => format!("%{{ENV:{n}}}"),
            GroupSpec::Literal(n) => n.clone(),
        }
    }
}

/// What a request tells the expansions.
pub struct GroupFacts<'a> {
    /// The virtual host's ServerName.
    pub server_name: &'a str,
    /// The request's host name (Host header, without the port), if any.
    pub host: Option<&'a str>,
    /// The port the request came in on, as the server sees it.
    pub port: u16,
    /// SCRIPT_NAME, with runs of '/' already collapsed.
    pub script_name: &'a str,
    /// WSGICaseSensitivity: Off lower-cases SCRIPT_NAME in %{RESOURCE}.
    pub case_sensitive: bool,
    /// %{ENV:name}: request notes, then the request environment, then the
    /// process environment.
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

fn with_port(host: &str, port: u16) -> String {
    if port == 80 || port == 443 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    }
}

impl GroupSpec {
    /// The name of %{GLOBAL} ("") or a literal group, known without a request.
    pub fn expand_static(&self) -> String {
        match self {
            GroupSpec::Literal(name) => name.clone(),
            _ => String::new(),
        }
    }

    /// The interpreter name for a request ("" is the main interpreter).
    pub fn expand(&self, f: &GroupFacts<'_>) -> String {
        match self {
            GroupSpec::Global => String::new(),
            GroupSpec::Server => with_port(f.server_name, f.port),
            GroupSpec::Host => with_port(f.host.unwrap_or(f.server_name), f.port),
            GroupSpec::Resource => {
                let script = if f.case_sensitive {
                    f.script_name.to_string()
                } else {
                    f.script_name.to_lowercase()
                };
                format!("{}|{script}", with_port(f.server_name, f.port))
            }
            GroupSpec::Literal(name) => name.clone(),
            // One more level: a variable may name another expansion (not
            // another variable), as with mod_wsgi.
            GroupSpec::Env(name) => match (f.env)(name) {
                Some(v) => match GroupSpec::parse(&v) {
                    Ok(GroupSpec::Env(_)) | Err(_) => v,
                    Ok(spec) => spec.expand(f),
                },
                None => String::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(env: &'a dyn Fn(&str) -> Option<String>) -> GroupFacts<'a> {
        GroupFacts {
            server_name: "example.com",
            host: Some("alias.example.com"),
            port: 8080,
            script_name: "/Shop",
            case_sensitive: true,
            env,
        }
    }

    #[test]
    fn expands_like_mod_wsgi() {
        let env = |n: &str| match n {
            "APP" => Some("billing".to_string()),
            "INDIRECT" => Some("%{SERVER}".to_string()),
            "LOOP" => Some("%{ENV:LOOP}".to_string()),
            _ => None,
        };
        let f = facts(&env);
        assert_eq!(GroupSpec::Global.expand(&f), "");
        assert_eq!(GroupSpec::Server.expand(&f), "example.com:8080");
        assert_eq!(GroupSpec::Host.expand(&f), "alias.example.com:8080");
        assert_eq!(GroupSpec::Resource.expand(&f), "example.com:8080|/Shop");
        assert_eq!(GroupSpec::Env("APP".into()).expand(&f), "billing");
        assert_eq!(
            GroupSpec::Env("INDIRECT".into()).expand(&f),
            "example.com:8080"
        );
        assert_eq!(GroupSpec::Env("LOOP".into()).expand(&f), "%{ENV:LOOP}");
        assert_eq!(GroupSpec::Env("NONE".into()).expand(&f), "");
        assert_eq!(GroupSpec::Literal("x".into()).expand(&f), "x");
        let f = GroupFacts {
            port: 443,
            host: None,
            case_sensitive: false,
            ..facts(&env)
        };
        assert_eq!(GroupSpec::Server.expand(&f), "example.com");
        assert_eq!(GroupSpec::Host.expand(&f), "example.com");
        assert_eq!(GroupSpec::Resource.expand(&f), "example.com|/shop");
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(GroupSpec::parse("%{GLOBAL}"), Ok(GroupSpec::Global));
        assert_eq!(GroupSpec::parse("%{RESOURCE}"), Ok(GroupSpec::Resource));
        assert_eq!(
            GroupSpec::parse("%{ENV:APP}"),
            Ok(GroupSpec::Env("APP".into()))
        );
        assert_eq!(
            GroupSpec::parse("shop"),
            Ok(GroupSpec::Literal("shop".into()))
        );
        assert!(GroupSpec::parse("%{BOGUS}").is_err());
        assert!(GroupSpec::parse("%{ENV:}").is_err());
    }
}
