//! Module configuration: per-server (aliases, Python settings) and per-directory
//! (callable, groups, flags) records, created and merged for Apache.

pub(crate) mod alias;
pub(crate) mod daemon;
pub(crate) mod directives;
pub(crate) mod expand;
pub(crate) mod group;
pub(crate) mod interp_options;
pub(crate) mod python;
pub(crate) mod python_directives;
pub(crate) mod trusted_proxies;

pub use alias::{AliasOptions, ScriptAlias};
pub use group::{GroupFacts, GroupSpec};
pub use interp_options::InterpOptions;
pub use python::PythonSettings;
pub use trusted_proxies::{ProxyHeader, Subnet};

/// Per-server (and per-vhost) configuration.
#[derive(Default, Clone)]
pub struct ServerConfig {
    /// WSGIScriptAlias / WSGIScriptAliasMatch, in configuration order.
    pub aliases: Vec<ScriptAlias>,
    /// WSGIPython* (global only: read from the main server).
    pub python: PythonSettings,
}

impl ServerConfig {
    /// A vhost's aliases come first, then the main server's (like mod_alias).
    pub fn merge(base: &ServerConfig, add: &ServerConfig) -> ServerConfig {
        let mut aliases = add.aliases.clone();
        aliases.extend(base.aliases.iter().cloned());
        ServerConfig {
            aliases,
            python: base.python.clone(),
        }
    }
}

/// Per-directory configuration (also the server-wide defaults).
#[derive(Default, Clone)]
pub struct DirConfig {
    pub callable_object: Option<String>,
    pub application_group: Option<GroupSpec>,
    pub pass_authorization: Option<bool>,
    pub chunked_request: Option<bool>,
    pub script_reloading: Option<bool>,
    /// WSGIProcessGroup: "" (%{GLOBAL}) runs embedded; %{ENV:name} allowed.
    pub process_group: Option<String>,
    /// WSGIRestrictProcess: the groups that may be selected here.
    pub restrict_process: Option<Vec<String>>,
    pub error_override: Option<bool>,
    pub ignore_activity: Option<bool>,
    /// WSGITrustedProxyHeaders, in configuration order.
    pub trusted_proxy_headers: Option<Vec<ProxyHeader>>,
    /// WSGITrustedProxies (None: any peer is trusted).
    pub trusted_proxies: Option<Vec<Subnet>>,
}

impl DirConfig {
    /// Values set in the more specific section (`add`) win.
    pub fn merge(base: &DirConfig, add: &DirConfig) -> DirConfig {
        DirConfig {
            callable_object: add
                .callable_object
                .clone()
                .or_else(|| base.callable_object.clone()),
            application_group: add
                .application_group
                .clone()
                .or_else(|| base.application_group.clone()),
            pass_authorization: add.pass_authorization.or(base.pass_authorization),
            chunked_request: add.chunked_request.or(base.chunked_request),
            script_reloading: add.script_reloading.or(base.script_reloading),
            process_group: add
                .process_group
                .clone()
                .or_else(|| base.process_group.clone()),
            restrict_process: add
                .restrict_process
                .clone()
                .or_else(|| base.restrict_process.clone()),
            error_override: add.error_override.or(base.error_override),
            ignore_activity: add.ignore_activity.or(base.ignore_activity),
            trusted_proxy_headers: add
                .trusted_proxy_headers
                .clone()
                .or_else(|| base.trusted_proxy_headers.clone()),
            trusted_proxies: add
                .trusted_proxies
                .clone()
                .or_else(|| base.trusted_proxies.clone()),
        }
    }

    /// WSGIApplicationGroup, %{RESOURCE} by default as with mod_wsgi.
    pub fn application_group(&self) -> &GroupSpec {
        self.application_group
            .as_ref()
            .unwrap_or(&GroupSpec::Resource)
    }
    pub fn callable_object(&self) -> &str {
        self.callable_object.as_deref().unwrap_or("application")
    }
    pub fn pass_authorization(&self) -> bool {
        self.pass_authorization.unwrap_or(false)
    }
    pub fn chunked_request(&self) -> bool {
        self.chunked_request.unwrap_or(false)
    }
    /// The configured process group ("" for embedded), unexpanded.
    pub fn process_group(&self) -> &str {
        self.process_group.as_deref().unwrap_or("")
    }
    /// Whether `group` may be selected (WSGIRestrictProcess).
    pub fn may_use(&self, group: &str) -> bool {
        self.restrict_process
            .as_ref()
            .is_none_or(|list| list.iter().any(|g| g == group))
    }
    pub fn error_override(&self) -> bool {
        self.error_override.unwrap_or(false)
    }
    pub fn ignore_activity(&self) -> bool {
        self.ignore_activity.unwrap_or(false)
    }
    pub fn script_reloading(&self) -> bool {
        self.script_reloading.unwrap_or(true)
    }
}

/// Parses On/Off the way Apache's FLAG directives do (case-insensitive).
pub fn parse_flag(name: &str, value: &str) -> Result<bool, String> {
    if value.eq_ignore_ascii_case("on") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("off") {
        Ok(false)
    } else {
        Err(format!("{name} must be On or Off, not '{value}'."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_merge_prefers_specific_values() {
        let base = DirConfig {
            callable_object: Some("app".into()),
            chunked_request: Some(true),
            ..Default::default()
        };
        let add = DirConfig {
            chunked_request: Some(false),
            pass_authorization: Some(true),
            ..Default::default()
        };
        let m = DirConfig::merge(&base, &add);
        assert_eq!(m.callable_object(), "app");
        assert!(!m.chunked_request());
        assert!(m.pass_authorization());
        assert!(m.script_reloading());
    }

    #[test]
    fn flags() {
        assert_eq!(parse_flag("X", "ON"), Ok(true));
        assert_eq!(parse_flag("X", "off"), Ok(false));
        assert!(parse_flag("X", "yes").unwrap_err().contains("On or Off"));
    }
}
