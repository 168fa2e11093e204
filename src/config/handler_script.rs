//! WSGIHandlerScript, WSGIDispatchScript and WSGIPassApacheRequest: parsed
//! into the per-directory record (server context: the server's defaults).
use super::directives::{one, process_group};
use super::{parse_flag, GroupSpec};
use std::collections::HashMap;
use std::sync::Arc;

/// One `WSGIHandlerScript name path [options]`: requests whose handler is
/// `name` run the script's `handle_request`.
#[derive(Clone, Debug, PartialEq)]
pub struct HandlerScript {
    pub path: String,
    /// process-group= ("" for %{GLOBAL}), unexpanded.
    pub process_group: Option<String>,
    pub application_group: Option<GroupSpec>,
    pub pass_authorization: Option<bool>,
}

/// `WSGIDispatchScript path [application-group=]`.
#[derive(Clone, Debug, PartialEq)]
pub struct DispatchScript {
    pub path: String,
    /// The interpreter the hooks run in; %{GLOBAL} when not given.
    pub application_group: Option<GroupSpec>,
}

/// The three directives' values for one section.
#[derive(Clone, Debug, Default)]
pub struct ScriptSettings {
    /// Handler name → script; shared, as every merge copies it.
    pub handlers: Option<Arc<HashMap<String, HandlerScript>>>,
    pub dispatch: Option<Arc<DispatchScript>>,
    pub pass_apache_request: Option<bool>,
}

impl ScriptSettings {
    /// The more specific section's values win; handler names of both
    /// sections are kept (the specific one wins a name), as in mod_wsgi.
    pub fn merge(base: &ScriptSettings, add: &ScriptSettings) -> ScriptSettings {
        let handlers = match (&base.handlers, &add.handlers) {
            (Some(b), Some(a)) => {
                let mut m = (**b).clone();
                m.extend(a.iter().map(|(k, v)| (k.clone(), v.clone())));
                Some(Arc::new(m))
            }
            (b, a) => a.clone().or_else(|| b.clone()),
        };
        ScriptSettings {
            handlers,
            dispatch: add.dispatch.clone().or_else(|| base.dispatch.clone()),
            pass_apache_request: add.pass_apache_request.or(base.pass_apache_request),
        }
    }

    /// The handler script registered under Apache handler `name`.
    pub fn handler(&self, name: &str) -> Option<&HandlerScript> {
        self.handlers.as_ref()?.get(name)
    }

    pub fn pass_apache_request(&self) -> bool {
        self.pass_apache_request.unwrap_or(false)
    }

    /// Applies one of the three directives.
    pub fn apply(&mut self, name: &str, w: &[String]) -> Result<(), String> {
        match name {
            "WSGIHandlerScript" => {
                let (handler, script) = parse_handler(w)?;
                let mut m = self.handlers.as_deref().cloned().unwrap_or_default();
                m.insert(handler, script);
                self.handlers = Some(Arc::new(m));
            }
            "WSGIDispatchScript" => self.dispatch = Some(Arc::new(parse_dispatch(w)?)),
            _ => self.pass_apache_request = Some(parse_flag(name, one(name, w)?)?),
        }
        Ok(())
    }
}

/// Splits `key=value` options; an empty value is refused as mod_wsgi does.
fn options<'a>(
    w: &'a [String],
    what: &str,
) -> impl Iterator<Item = Result<(&'a str, &'a str), String>> + 'a {
    let what = what.to_string();
    w.iter().map(move |opt| match opt.split_once('=') {
        Some((k, v)) if !v.is_empty() => Ok((k, v)),
        Some((k, _)) => Err(format!(
            "Empty value for option '{k}' of WSGI {what} definition."
        )),
        None => Err(format!(
            "Invalid option to WSGI {what} definition: '{opt}' (expected key=value)."
        )),
    })
}

fn parse_handler(w: &[String]) -> Result<(String, HandlerScript), String> {
    let (name, path) = match w {
        [n, ..] if n.is_empty() => return Err("Name for handler script not supplied.".into()),
        [_] | [] => return Err("Location of handler script not supplied.".into()),
        [_, p, ..] if p.is_empty() => return Err("Location of handler script not supplied.".into()),
        [n, p, ..] => (n.clone(), p.clone()),
    };
    let mut script = HandlerScript {
        path,
        process_group: None,
        application_group: None,
        pass_authorization: None,
    };
    for opt in options(&w[2..], "handler script") {
        match opt? {
            ("process-group", v) => script.process_group = Some(process_group(v)?),
            ("application-group", v) => script.application_group = Some(GroupSpec::parse(v)?),
            ("pass-authorization", v) => {
                script.pass_authorization = Some(parse_flag("pass-authorization", v)?)
            }
            (k, _) => {
                return Err(format!(
                    "Invalid option to WSGI handler script definition: '{k}'."
                ))
            }
        }
    }
    Ok((name, script))
}

fn parse_dispatch(w: &[String]) -> Result<DispatchScript, String> {
    let path = match w.first() {
        Some(p) if !p.is_empty() => p.clone(),
        _ => return Err("Location of dispatch script not supplied.".into()),
    };
    let mut script = DispatchScript {
        path,
        application_group: None,
    };
    for opt in options(&w[1..], "dispatch script") {
        match opt? {
            ("application-group", v) => script.application_group = Some(GroupSpec::parse(v)?),
            (k, _) => {
                return Err(format!(
                    "Invalid option to WSGI dispatch script definition: '{k}'."
                ))
            }
        }
    }
    Ok(script)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn handler_options() {
        let mut s = ScriptSettings::default();
        s.apply(
            "WSGIHandlerScript",
            &w("h /srv/h.py process-group=d application-group=%{GLOBAL} pass-authorization=On"),
        )
        .unwrap();
        let h = s.handler("h").unwrap();
        assert_eq!(h.path, "/srv/h.py");
        assert_eq!(h.process_group.as_deref(), Some("d"));
        assert_eq!(h.application_group, Some(GroupSpec::Global));
        assert_eq!(h.pass_authorization, Some(true));
        assert!(s
            .apply("WSGIHandlerScript", &w("h /x callable-object=app"))
            .unwrap_err()
            .contains("'callable-object'"));
        assert!(s.apply("WSGIHandlerScript", &w("h")).is_err());
        assert!(s
            .apply("WSGIHandlerScript", &w("h /x process-group="))
            .is_err());
        assert!(s.apply("WSGIHandlerScript", &w("h /x bogus")).is_err());
    }

    #[test]
    fn merge_keeps_both_sections_handlers() {
        let mut base = ScriptSettings::default();
        base.apply("WSGIHandlerScript", &w("a /a.py")).unwrap();
        base.apply("WSGIHandlerScript", &w("b /b.py")).unwrap();
        base.apply("WSGIPassApacheRequest", &w("On")).unwrap();
        let mut add = ScriptSettings::default();
        add.apply("WSGIHandlerScript", &w("b /b2.py")).unwrap();
        add.apply("WSGIDispatchScript", &w("/d.py application-group=x"))
            .unwrap();
        let m = ScriptSettings::merge(&base, &add);
        assert_eq!(m.handler("a").unwrap().path, "/a.py");
        assert_eq!(m.handler("b").unwrap().path, "/b2.py");
        assert!(m.pass_apache_request());
        let d = m.dispatch.unwrap();
        assert_eq!(d.application_group, Some(GroupSpec::Literal("x".into())));
    }

    #[test]
    fn dispatch_and_flag_errors() {
        let mut s = ScriptSettings::default();
        assert!(s.apply("WSGIDispatchScript", &[]).is_err());
        assert!(s
            .apply("WSGIDispatchScript", &w("/d.py process-group=x"))
            .unwrap_err()
            .contains("'process-group'"));
        assert!(s.apply("WSGIPassApacheRequest", &w("yes")).is_err());
    }
}
