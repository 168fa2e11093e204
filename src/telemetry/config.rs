//! WSGITelemetryService and WSGITelemetryOptions: parsed in the Apache
//! parent, with the meaning of mod_wsgi 6's messages.

/// `WSGITelemetryService unix:/path [interval=N]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    pub path: String,
    /// Seconds between samples (at least 0.5; default 1).
    pub interval: f64,
}

/// WSGITelemetryOptions' CaptureUserAgent flag.
pub const CAPTURE_USER_AGENT: u32 = 0x01;
const ALL: u32 = CAPTURE_USER_AGENT;

/// Longest path a sockaddr_un holds (with its NUL).
const SUN_PATH_MAX: usize = 107;

pub fn parse_service(w: &[String]) -> Result<Service, String> {
    let (target, rest) = match w {
        [] => return Err("WSGITelemetryService needs a target, 'unix:/path'.".into()),
        [t, rest @ ..] if rest.len() <= 1 => (t.as_str(), rest.first()),
        _ => return Err("WSGITelemetryService takes a target and at most 'interval=N'.".into()),
    };
    let Some(path) = target.strip_prefix("unix:") else {
        return Err(format!(
            "WSGITelemetryService target must be 'unix:/path', not '{target}' (UDP targets are not supported)."
        ));
    };
    if !path.starts_with('/') || path.len() > SUN_PATH_MAX {
        return Err(format!(
            "WSGITelemetryService needs an absolute socket path of at most {SUN_PATH_MAX} bytes, not '{path}'."
        ));
    }
    let interval = match rest {
        None => 1.0,
        Some(arg) => {
            let Some(v) = arg.strip_prefix("interval=") else {
                return Err(format!(
                    "WSGITelemetryService's second argument must be 'interval=N', not '{arg}'."
                ));
            };
            match v.parse::<f64>() {
                Ok(n) if n.is_finite() && (0.5..1e6).contains(&n) => n,
                _ => {
                    return Err(format!(
                        "WSGITelemetryService interval must be at least 0.5 seconds, not '{v}'."
                    ))
                }
            }
        }
    };
    Ok(Service {
        path: path.to_string(),
        interval,
    })
}

/// WSGITelemetryOptions' words applied to the flags set so far: either all
/// `+Flag`/`-Flag` (changing `current`), or all absolute (replacing it,
/// with None and All).
pub fn parse_options(w: &[String], current: u32) -> Result<u32, String> {
    if w.is_empty() {
        return Err("WSGITelemetryOptions needs at least one flag.".into());
    }
    let incremental = w.iter().any(|t| t.starts_with(['+', '-']));
    if incremental && !w.iter().all(|t| t.starts_with(['+', '-'])) {
        return Err(
            "WSGITelemetryOptions cannot mix +/- flags with absolute names in one directive."
                .into(),
        );
    }
    let mut flags = if incremental { current } else { 0 };
    for token in w {
        let name = token.trim_start_matches(['+', '-']);
        let flag = if name.eq_ignore_ascii_case("None") || name.eq_ignore_ascii_case("All") {
            if incremental {
                return Err(format!(
                    "WSGITelemetryOptions: '{name}' may not have a +/- prefix."
                ));
            }
            flags = if name.eq_ignore_ascii_case("All") {
                ALL
            } else {
                0
            };
            continue;
        } else if name.eq_ignore_ascii_case("CaptureUserAgent") {
            CAPTURE_USER_AGENT
        } else if name.is_empty() {
            return Err("WSGITelemetryOptions: a bare '+' or '-' is not a flag.".into());
        } else {
            return Err(format!(
                "WSGITelemetryOptions: unknown flag '{name}' (known: CaptureUserAgent, None, All)."
            ));
        };
        if token.starts_with('-') {
            flags &= !flag;
        } else {
            flags |= flag;
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn service() {
        let s = parse_service(&words("unix:/run/t.sock")).unwrap();
        assert_eq!((s.path.as_str(), s.interval), ("/run/t.sock", 1.0));
        let s = parse_service(&words("unix:/t.sock interval=0.5")).unwrap();
        assert_eq!(s.interval, 0.5);
        for bad in [
            "",
            "udp:host:1",
            "unix:relative",
            "unix:/t interval=0.2",
            "unix:/t interval=x",
            "unix:/t every=2",
            "unix:/t interval=1 more",
        ] {
            assert!(parse_service(&words(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn options() {
        assert_eq!(parse_options(&words("CaptureUserAgent"), 0), Ok(1));
        assert_eq!(parse_options(&words("All"), 0), Ok(1));
        assert_eq!(parse_options(&words("None"), 1), Ok(0));
        assert_eq!(parse_options(&words("-captureuseragent"), 1), Ok(0));
        assert_eq!(parse_options(&words("+CaptureUserAgent"), 0), Ok(1));
        assert!(parse_options(&words("+CaptureUserAgent None"), 0).is_err());
        assert!(parse_options(&words("+All"), 0).is_err());
        assert!(parse_options(&words("Sideways"), 0).is_err());
        assert!(parse_options(&words("+"), 0).is_err());
        assert!(parse_options(&[], 0).is_err());
    }
}
