//! WSGISlowRequests: a request that took longer than the threshold gets a
//! warning in the error log when it finishes, with what it was and where
//! its time went. (mod_wsgi 6 sends such records to its telemetry service;
//! here the error log is where an operator finds them, and the Prometheus
//! endpoint counts them.)
use super::head::{Key, RequestHead};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The threshold in µs, plus one (0: off). Set in the Apache parent after
/// each configuration read, before children and daemons fork.
static THRESHOLD: AtomicU64 = AtomicU64::new(0);

pub fn configure(threshold: Option<Duration>) {
    let v = threshold.map_or(0, |d| d.as_micros() as u64 + 1);
    THRESHOLD.store(v, Ordering::Relaxed);
}

pub fn active() -> bool {
    THRESHOLD.load(Ordering::Relaxed) != 0
}

/// Parses WSGISlowRequests' seconds (a non-negative number).
pub fn parse(v: &str) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            format!("WSGISlowRequests needs a threshold in seconds (0 or more), not '{v}'.")
        })
}

/// The warning for a request that took `elapsed_us`, or None when it was
/// not slow (or the directive is off).
pub fn report(
    head: &RequestHead,
    status: u16,
    elapsed_us: i64,
    application_us: i64,
) -> Option<String> {
    let threshold = THRESHOLD.load(Ordering::Relaxed).checked_sub(1)?;
    if elapsed_us < 0 || (elapsed_us as u64) < threshold {
        return None;
    }
    let text = |k| String::from_utf8_lossy(head.get(k).unwrap_or(b"")).into_owned();
    let path = format!("{}{}", text(Key::ScriptName), text(Key::PathInfo));
    Some(format!(
        "Slow request: {} {} answered {} after {:.3} s (application {:.3} s; WSGISlowRequests {:.3} s); process pid={}, application group '{}'.",
        text(Key::RequestMethod),
        path,
        status,
        elapsed_us as f64 / 1e6,
        application_us.max(0) as f64 / 1e6,
        threshold as f64 / 1e6,
        std::process::id(),
        head.target.application_group,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        assert_eq!(parse("2.5").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert!(parse("-1").is_err());
        assert!(parse("soon").is_err());
        assert!(parse("inf").is_err());
    }
}
