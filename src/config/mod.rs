//! Module configuration: per-server (aliases, Python settings) and per-directory
//! (callable, groups, flags) records, created and merged for Apache.

pub(crate) mod alias;
pub(crate) mod auth_scripts;
pub(crate) mod daemon;
pub(crate) mod directives;
pub(crate) mod expand;
pub(crate) mod group;
pub(crate) mod handler_script;
pub(crate) mod interp_options;
pub(crate) mod python;
pub(crate) mod python_directives;
pub(crate) mod trusted_proxies;

pub use alias::{AliasOptions, ScriptAlias};
pub use auth_scripts::{AuthScript, AuthScripts};
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
    pub map_head_to_get: Option<MapHead>,
    pub enable_sendfile: Option<bool>,
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
    /// WSGIAccessScript, WSGIAuthUserScript, WSGIAuthGroupScript...
    pub auth: AuthScripts,
    /// WSGIHandlerScript, WSGIDispatchScript, WSGIPassApacheRequest.
    pub scripts: handler_script::ScriptSettings,
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
            map_head_to_get: add.map_head_to_get.or(base.map_head_to_get),
            enable_sendfile: add.enable_sendfile.or(base.enable_sendfile),
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
            auth: AuthScripts::merge(&base.auth, &add.auth),
            scripts: handler_script::ScriptSettings::merge(&base.scripts, &add.scripts),
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
    /// WSGIMapHEADToGET, Auto by default as with mod_wsgi 6.
    pub fn map_head_to_get(&self) -> MapHead {
        self.map_head_to_get.unwrap_or(MapHead::Auto)
    }
    /// WSGIEnableSendfile, Off by default as with mod_wsgi.
    pub fn enable_sendfile(&self) -> bool {
        self.enable_sendfile.unwrap_or(false)
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

/// WSGIMapHEADToGET: whether a HEAD request reaches the application as GET.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapHead {
    Off,
    On,
    /// Only when an output filter that may change the content is on the
    /// request (see `embedded::handler::head_as_get`).
    Auto,
}

impl MapHead {
    pub fn parse(value: &str) -> Result<MapHead, String> {
        if value.eq_ignore_ascii_case("off") {
            Ok(MapHead::Off)
        } else if value.eq_ignore_ascii_case("on") {
            Ok(MapHead::On)
        } else if value.eq_ignore_ascii_case("auto") {
            Ok(MapHead::Auto)
        } else {
            Err(format!(
                "WSGIMapHEADToGET must be one of: Off | On | Auto, not '{value}'."
            ))
        }
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
        assert_eq!(m.map_head_to_get(), MapHead::Auto);
        assert!(!m.enable_sendfile());
        let add = DirConfig {
            map_head_to_get: Some(MapHead::Off),
            enable_sendfile: Some(true),
            ..Default::default()
        };
        let m = DirConfig::merge(&m, &add);
        assert_eq!(m.map_head_to_get(), MapHead::Off);
        assert!(m.enable_sendfile());
    }

    #[test]
    fn map_head_values() {
        assert_eq!(MapHead::parse("AUTO"), Ok(MapHead::Auto));
        assert_eq!(MapHead::parse("on"), Ok(MapHead::On));
        assert_eq!(MapHead::parse("Off"), Ok(MapHead::Off));
        assert!(MapHead::parse("yes")
            .unwrap_err()
            .contains("Off | On | Auto"));
    }

    #[test]
    fn flags() {
        assert_eq!(parse_flag("X", "ON"), Ok(true));
        assert_eq!(parse_flag("X", "off"), Ok(false));
        assert!(parse_flag("X", "yes").unwrap_err().contains("On or Off"));
    }
}
