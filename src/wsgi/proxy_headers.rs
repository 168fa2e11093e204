//! WSGITrustedProxyHeaders applied to a request head, as mod_wsgi does it.
//! Runs in the Apache child before the head goes to a daemon, so embedded
//! and daemon mode see the same environ.
//!
//! For each category with a listed header, every header of that category
//! but the one applied is removed (all of them when the peer is not
//! trusted), so a client cannot slip a value past through a synonym.
use super::head::{Key, RequestHead};
use crate::config::trusted_proxies::{is_trusted, Category, HEADERS};
use crate::config::{ProxyHeader, Subnet};

/// Categories whose synonyms are stripped (X-Forwarded-Server and
/// X-Forwarded-Port have none, and mod_wsgi leaves them alone).
const STRIPPED: [Category; 4] = [
    Category::ClientIp,
    Category::Host,
    Category::ScriptName,
    Category::Scheme,
];

/// Applies `headers` to `h` for a connection from `peer`; `proxies` is
/// WSGITrustedProxies (None: any peer is trusted). Returns what a scheme
/// header said HTTPS is (None: no scheme header applied).
pub fn apply(
    h: &mut RequestHead,
    headers: &[ProxyHeader],
    proxies: Option<&[Subnet]>,
    peer: &[u8],
) -> Option<bool> {
    if headers.is_empty() {
        return None;
    }
    let trusted = proxies.is_none_or(|list| is_trusted(list, peer));
    let mut winners: Vec<(Category, &'static str)> = Vec::new();
    let mut https = None;
    if trusted {
        for ph in headers {
            let Some(value) = h.get_other(ph.env_name.as_bytes()).map(<[u8]>::to_vec) else {
                continue;
            };
            winners.retain(|(c, _)| *c != ph.category);
            winners.push((ph.category, ph.env_name));
            match ph.env_name {
                "HTTP_X_FORWARDED_FOR" => forwarded_for(h, &value, proxies),
                "HTTP_X_CLIENT_IP" | "HTTP_X_REAL_IP" => h.set(Key::RemoteAddr, &value),
                "HTTP_X_FORWARDED_HOST" | "HTTP_X_HOST" => h.set_other(b"HTTP_HOST", &value),
                "HTTP_X_FORWARDED_SERVER" => h.set(Key::ServerName, &value),
                "HTTP_X_FORWARDED_PORT" => h.set(Key::ServerPort, &value),
                "HTTP_X_SCRIPT_NAME" | "HTTP_X_FORWARDED_SCRIPT_NAME" => {
                    h.set(Key::MountPoint, &value);
                    h.set(Key::ScriptName, &value);
                }
                "HTTP_X_FORWARDED_PROTO" | "HTTP_X_FORWARDED_SCHEME" | "HTTP_X_SCHEME" => {
                    https = scheme(&value, &[b"https"], &[b"http"]).or(https);
                }
                _ => {
                    let on: &[&[u8]] = &[b"on", b"true", b"1"];
                    https = scheme(&value, on, &[b"off", b"false", b"0"]).or(https);
                }
            }
        }
    }
    for &(name, category) in HEADERS {
        let listed = headers.iter().any(|ph| ph.category == category);
        if listed && STRIPPED.contains(&category) && !winners.contains(&(category, name)) {
            h.remove_other(name.as_bytes());
        }
    }
    https
}

/// Some(true) for a value in `on`, Some(false) for one in `off` (any case),
/// None (HTTPS unchanged) otherwise.
fn scheme(value: &[u8], on: &[&[u8]], off: &[&[u8]]) -> Option<bool> {
    let is = |set: &[&[u8]]| set.iter().any(|s| value.eq_ignore_ascii_case(s));
    if is(on) {
        Some(true)
    } else if is(off) {
        Some(false)
    } else {
        None
    }
}

/// The non-empty elements of a comma-separated list, trimmed.
fn elements(value: &[u8]) -> Vec<&[u8]> {
    value
        .split(|&b| b == b',')
        .map(|e| e.trim_ascii())
        .filter(|e| !e.is_empty())
        .collect()
}

/// X-Forwarded-For → REMOTE_ADDR. Without a trust list the first element is
/// the client. With one, the list is walked from the right past trusted
/// proxies; the element before the leftmost trusted one of that run is the
/// client, and X-Forwarded-For is rewritten to start there.
fn forwarded_for(h: &mut RequestHead, value: &[u8], proxies: Option<&[Subnet]>) {
    let items = elements(value);
    let Some(list) = proxies else {
        if let Some(first) = items.first() {
            h.set(Key::RemoteAddr, first);
        }
        return;
    };
    if items.is_empty() {
        return;
    }
    let run = items
        .iter()
        .rev()
        .take_while(|ip| is_trusted(list, ip))
        .count();
    let client = match run {
        0 => items.len() - 1,
        n => (items.len() - n).saturating_sub(1),
    };
    h.set(Key::RemoteAddr, items[client]);
    h.set_other(b"HTTP_X_FORWARDED_FOR", &items[client..].join(&b", "[..]));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wsgi::head::{Target, VarName};

    fn env(h: &RequestHead) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (name, value, _) in h.vars() {
            let name = match name {
                VarName::Known(k) => k.name().to_string(),
                VarName::Other(n) => String::from_utf8_lossy(n).into_owned(),
            };
            out.retain(|(n, _)| *n != name);
            out.push((name, String::from_utf8_lossy(value).into_owned()));
        }
        out.sort();
        out
    }

    fn get(h: &RequestHead, key: &str) -> Option<String> {
        env(h).into_iter().find(|(n, _)| n == key).map(|(_, v)| v)
    }

    fn run(
        hdrs: &[(&str, &str)],
        listed: &[&str],
        proxies: Option<&[&str]>,
        peer: &str,
    ) -> (RequestHead, Option<bool>) {
        let mut h = RequestHead::new(Target::default());
        h.set(Key::RemoteAddr, peer.as_bytes());
        h.set(Key::ScriptName, b"/app");
        for (n, v) in hdrs {
            h.set_header(n.as_bytes(), v.as_bytes());
        }
        let listed: Vec<ProxyHeader> = listed
            .iter()
            .map(|n| ProxyHeader::parse(n).unwrap())
            .collect();
        let proxies: Option<Vec<Subnet>> =
            proxies.map(|l| l.iter().map(|s| Subnet::parse(s).unwrap()).collect());
        let https = apply(&mut h, &listed, proxies.as_deref(), peer.as_bytes());
        (h, https)
    }

    #[test]
    fn xff_without_trust_list_takes_first_element() {
        let (h, _) = run(
            &[
                ("X-Forwarded-For", " , 1.2.3.4 , 5.6.7.8"),
                ("X-Real-IP", "9.9.9.9"),
            ],
            &["X-Forwarded-For"],
            None,
            "127.0.0.1",
        );
        assert_eq!(get(&h, "REMOTE_ADDR").unwrap(), "1.2.3.4");
        assert_eq!(
            get(&h, "HTTP_X_FORWARDED_FOR").unwrap(),
            " , 1.2.3.4 , 5.6.7.8"
        );
        assert_eq!(get(&h, "HTTP_X_REAL_IP"), None);
    }

    #[test]
    fn xff_walk_with_trust_list() {
        let walk = |xff: &str, list: &[&str]| {
            let (h, _) = run(
                &[("X-Forwarded-For", xff)],
                &["X-Forwarded-For"],
                Some(list),
                "127.0.0.1",
            );
            (
                get(&h, "REMOTE_ADDR").unwrap(),
                get(&h, "HTTP_X_FORWARDED_FOR").unwrap(),
            )
        };
        let l = &["127.0.0.1", "10.0.0.0/8"];
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            walk("1.2.3.4, 10.0.0.2, 127.0.0.1", l),
            s("1.2.3.4", "1.2.3.4, 10.0.0.2, 127.0.0.1")
        );
        assert_eq!(
            walk("6.6.6.6, 1.2.3.4, 10.0.0.2", l),
            s("1.2.3.4", "1.2.3.4, 10.0.0.2")
        );
        assert_eq!(walk("6.6.6.6,,1.2.3.4", l), s("1.2.3.4", "1.2.3.4"));
        assert_eq!(
            walk("10.0.0.3, 10.0.0.2", l),
            s("10.0.0.3", "10.0.0.3, 10.0.0.2")
        );
        assert_eq!(
            walk("6.6.6.6, not-an-ip, 10.0.0.2", l),
            s("not-an-ip", "not-an-ip, 10.0.0.2")
        );
        let (h, _) = run(
            &[("X-Forwarded-For", " , ")],
            &["X-Forwarded-For"],
            Some(l),
            "127.0.0.1",
        );
        assert_eq!(get(&h, "REMOTE_ADDR").unwrap(), "127.0.0.1");
    }

    #[test]
    fn untrusted_peer_strips_the_whole_category() {
        let (h, https) = run(
            &[
                ("X-Forwarded-For", "1.2.3.4"),
                ("X-Real-IP", "5.6.7.8"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Port", "8443"),
            ],
            &["X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Port"],
            Some(&["10.0.0.1"]),
            "127.0.0.1",
        );
        assert_eq!(https, None);
        assert_eq!(get(&h, "REMOTE_ADDR").unwrap(), "127.0.0.1");
        assert_eq!(get(&h, "HTTP_X_FORWARDED_FOR"), None);
        assert_eq!(get(&h, "HTTP_X_REAL_IP"), None);
        assert_eq!(get(&h, "HTTP_X_FORWARDED_PROTO"), None);
        assert_eq!(get(&h, "HTTP_X_FORWARDED_PORT").unwrap(), "8443");
        assert_eq!(get(&h, "SERVER_PORT"), None);
    }

    #[test]
    fn every_category_applies() {
        let (h, https) = run(
            &[
                ("X-Client-IP", "1.1.1.1"),
                ("X-Host", "front.example:8080"),
                ("X-Forwarded-Host", "spoof"),
                ("X-Forwarded-Server", "front.example"),
                ("X-Forwarded-Port", "8080"),
                ("X-Forwarded-Script-Name", "/mount"),
                ("X-Script-Name", "/spoof"),
                ("X-Forwarded-SSL", "On"),
                ("X-Forwarded-Proto", "http"),
            ],
            &[
                "X-Client-IP",
                "X-Host",
                "X-Forwarded-Server",
                "X-Forwarded-Port",
                "X-Forwarded-Script-Name",
                "X-Forwarded-SSL",
            ],
            None,
            "127.0.0.1",
        );
        assert_eq!(https, Some(true));
        assert_eq!(get(&h, "REMOTE_ADDR").unwrap(), "1.1.1.1");
        assert_eq!(get(&h, "HTTP_HOST").unwrap(), "front.example:8080");
        assert_eq!(get(&h, "SERVER_NAME").unwrap(), "front.example");
        assert_eq!(get(&h, "SERVER_PORT").unwrap(), "8080");
        assert_eq!(get(&h, "SCRIPT_NAME").unwrap(), "/mount");
        assert_eq!(get(&h, "mod_wsgi.mount_point").unwrap(), "/mount");
        for gone in [
            "HTTP_X_FORWARDED_HOST",
            "HTTP_X_SCRIPT_NAME",
            "HTTP_X_FORWARDED_PROTO",
        ] {
            assert_eq!(get(&h, gone), None, "{gone}");
        }
        assert_eq!(get(&h, "HTTP_X_HOST").unwrap(), "front.example:8080");
    }

    #[test]
    fn scheme_values() {
        let s = |hdr: &str, v: &str| run(&[(hdr, v)], &[hdr], None, "::1").1;
        assert_eq!(s("X-Forwarded-Proto", "HTTPS"), Some(true));
        assert_eq!(s("X-Scheme", "http"), Some(false));
        assert_eq!(s("X-Forwarded-Scheme", "ftp"), None);
        assert_eq!(s("X-HTTPS", "true"), Some(true));
        assert_eq!(s("X-Forwarded-HTTPS", "0"), Some(false));
        assert_eq!(s("X-Forwarded-SSL", "maybe"), None);
        assert_eq!(run(&[], &["X-Forwarded-Proto"], None, "::1").1, None);
    }

    #[test]
    fn hostile_values_do_not_panic() {
        for v in [
            "",
            ",",
            ",,,",
            "\u{ff}\u{fe}",
            "1.2.3.4/8",
            "[::1]",
            "::ffff:10.0.0.1, ,",
        ] {
            run(
                &[("X-Forwarded-For", v)],
                &["X-Forwarded-For"],
                Some(&["10.0.0.0/8"]),
                "127.0.0.1",
            );
            run(
                &[("X-Forwarded-For", v)],
                &["X-Forwarded-For"],
                Some(&["127.0.0.1"]),
                v,
            );
        }
    }
}
