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

    pub fn is_global(&self) -> bool {
        matches!(self, GroupSpec::Global)
    }

    /// True when the name is known without a request (scripts can be preloaded).
    pub fn is_static(&self) -> bool {
        matches!(self, GroupSpec::Global | GroupSpec::Literal(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
