//! `%{ENV:name}`, the request-time reference that WSGICallableObject and
//! WSGIApplicationGroup accept. Parsed here once; expanded per request by
//! the transport, which knows where the variables live.

/// `name` if `value` is `%{ENV:name}` with a non-empty name.
pub fn env_name(value: &str) -> Option<&str> {
    value
        .strip_prefix("%{ENV:")?
        .strip_suffix('}')
        .filter(|n| !n.is_empty() && !n.contains('}'))
}

#[cfg(test)]
mod tests {
    use super::env_name;

    #[test]
    fn env_references() {
        assert_eq!(env_name("%{ENV:APP}"), Some("APP"));
        assert_eq!(env_name("%{ENV:}"), None);
        assert_eq!(env_name("%{ENV:A}B}"), None);
        assert_eq!(env_name("app"), None);
        assert_eq!(env_name("%{GLOBAL}"), None);
    }
}
