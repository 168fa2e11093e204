//! WSGITrustedProxyHeaders and WSGITrustedProxies: the header names a front
//! proxy may set, grouped in categories, and the peers trusted to set them.
use std::net::{IpAddr, Ipv4Addr};

/// What a trusted header stands for. Headers of one category are synonyms:
/// those not listed are stripped from the environ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    ClientIp,
    Host,
    Server,
    Port,
    ScriptName,
    Scheme,
}

/// Every header mod_wsgi knows, as its environ name, with its category.
pub const HEADERS: &[(&str, Category)] = &[
    ("HTTP_X_FORWARDED_FOR", Category::ClientIp),
    ("HTTP_X_CLIENT_IP", Category::ClientIp),
    ("HTTP_X_REAL_IP", Category::ClientIp),
    ("HTTP_X_FORWARDED_HOST", Category::Host),
    ("HTTP_X_HOST", Category::Host),
    ("HTTP_X_FORWARDED_SERVER", Category::Server),
    ("HTTP_X_FORWARDED_PORT", Category::Port),
    ("HTTP_X_SCRIPT_NAME", Category::ScriptName),
    ("HTTP_X_FORWARDED_SCRIPT_NAME", Category::ScriptName),
    ("HTTP_X_FORWARDED_PROTO", Category::Scheme),
    ("HTTP_X_FORWARDED_SCHEME", Category::Scheme),
    ("HTTP_X_SCHEME", Category::Scheme),
    ("HTTP_X_FORWARDED_HTTPS", Category::Scheme),
    ("HTTP_X_FORWARDED_SSL", Category::Scheme),
    ("HTTP_X_HTTPS", Category::Scheme),
];

/// One header of WSGITrustedProxyHeaders, by its environ name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyHeader {
    pub env_name: &'static str,
    pub category: Category,
}

impl ProxyHeader {
    /// "X-Forwarded-For" (any case; '_' accepted for '-', as mod_wsgi's own
    /// conversion to an environ name does) → HTTP_X_FORWARDED_FOR.
    pub fn parse(name: &str) -> Result<ProxyHeader, String> {
        let env: String = name
            .bytes()
            .map(|b| match b {
                b'-' => '_',
                b => b.to_ascii_uppercase() as char,
            })
            .collect();
        HEADERS
            .iter()
            .find(|(n, _)| n.strip_prefix("HTTP_") == Some(env.as_str()))
            .map(|&(env_name, category)| ProxyHeader { env_name, category })
            .ok_or_else(|| {
                format!(
                    "'{name}' is not a proxy header mod_wsgi knows: use X-Forwarded-For, \
                     X-Client-IP, X-Real-IP, X-Forwarded-Host, X-Host, X-Forwarded-Server, \
                     X-Forwarded-Port, X-Script-Name, X-Forwarded-Script-Name, \
                     X-Forwarded-Proto, X-Forwarded-Scheme, X-Scheme, X-Forwarded-HTTPS, \
                     X-Forwarded-SSL or X-HTTPS."
                )
            })
    }
}

/// An address or subnet of WSGITrustedProxies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet {
    addr: IpAddr,
    prefix: u8,
}

impl Subnet {
    /// "10.0.0.1", "10.0.0.0/8", "10.0.0.0/255.0.0.0", "10.1" (the leading
    /// octets, as APR reads it), "::1", "fd00::/8".
    pub fn parse(s: &str) -> Result<Subnet, String> {
        let bad = |why: &str| {
            format!("Unable to parse trusted proxy IP address/subnet of \"{s}\": {why}.")
        };
        let (ip, mask) = match s.split_once('/') {
            Some((ip, mask)) => (ip, Some(mask)),
            None => (s, None),
        };
        let (addr, max) = match ip.parse::<IpAddr>() {
            Ok(a @ IpAddr::V4(_)) => (a, 32),
            Ok(a @ IpAddr::V6(_)) => (a, 128),
            Err(_) => match (partial_v4(ip), mask) {
                (Some(sub), None) => return Ok(sub),
                _ => return Err(bad("not an IP address")),
            },
        };
        let prefix = match mask {
            None => max,
            Some(m) => match (m.parse::<u8>(), m.parse::<Ipv4Addr>(), addr) {
                (Ok(n), _, _) if n <= max => n,
                (_, Ok(m), IpAddr::V4(_)) => {
                    let bits = u32::from(m);
                    if bits.leading_ones() + bits.trailing_zeros() != 32 {
                        return Err(bad("not a contiguous netmask"));
                    }
                    bits.leading_ones() as u8
                }
                _ => return Err(bad("bad prefix length")),
            },
        };
        Ok(Subnet { addr, prefix })
    }

    /// Whether `ip` is in the subnet (an IPv4-mapped IPv6 address matches
    /// its IPv4 form, as APR's subnet test does).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let (a, b, width) = match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
            _ => return false,
        };
        let shift = width - u32::from(self.prefix);
        shift >= width || (a >> shift) == (b >> shift)
    }
}

/// "10" / "10.1" / "10.1.2": the leading octets of an IPv4 network.
fn partial_v4(s: &str) -> Option<Subnet> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 3 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (o, p) in octets.iter_mut().zip(&parts) {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = p.parse().ok()?;
    }
    Some(Subnet {
        addr: IpAddr::V4(Ipv4Addr::from(octets)),
        prefix: 8 * parts.len() as u8,
    })
}

/// Whether `ip` (text from a request) is a valid address in one of `list`.
pub fn is_trusted(list: &[Subnet], ip: &[u8]) -> bool {
    std::str::from_utf8(ip)
        .ok()
        .and_then(|s| s.trim().parse::<IpAddr>().ok())
        .is_some_and(|ip| list.iter().any(|s| s.contains(ip)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names() {
        let h = ProxyHeader::parse("x-forwarded-for").unwrap();
        assert_eq!(h.env_name, "HTTP_X_FORWARDED_FOR");
        assert_eq!(h.category, Category::ClientIp);
        assert_eq!(
            ProxyHeader::parse("X-Forwarded-SSL").unwrap().category,
            Category::Scheme
        );
        assert_eq!(
            ProxyHeader::parse("X_Script_Name").unwrap().env_name,
            "HTTP_X_SCRIPT_NAME"
        );
        assert!(ProxyHeader::parse("X-Forwarded-Nope")
            .unwrap_err()
            .contains("'X-Forwarded-Nope' is not a proxy header"));
        assert!(ProxyHeader::parse("").is_err());
        assert!(ProxyHeader::parse("HTTP_X_HOST").is_err());
    }

    #[test]
    fn subnets() {
        let t = |list: &[&str], ip: &str| {
            let list: Vec<Subnet> = list.iter().map(|s| Subnet::parse(s).unwrap()).collect();
            is_trusted(&list, ip.as_bytes())
        };
        assert!(t(&["127.0.0.1"], "127.0.0.1"));
        assert!(!t(&["127.0.0.1"], "127.0.0.2"));
        assert!(t(&["10.0.0.0/8"], "10.200.3.4"));
        assert!(!t(&["10.0.0.0/8"], "11.0.0.1"));
        assert!(t(&["192.168.1.0/255.255.255.0"], "192.168.1.77"));
        assert!(t(&["10.1"], "10.1.9.9"));
        assert!(!t(&["10.1"], "10.2.0.1"));
        assert!(t(&["0.0.0.0/0"], "8.8.8.8"));
        assert!(t(&["::1"], "::1"));
        assert!(t(&["fd00::/8"], "fd12::5"));
        assert!(!t(&["fd00::/8"], "fe80::1"));
        assert!(t(&["127.0.0.0/8"], "::ffff:127.0.0.1"));
        assert!(!t(&["127.0.0.1"], "::1"));
        assert!(!t(&["127.0.0.1"], "bogus"));
        assert!(!t(&["127.0.0.1"], ""));
        assert!(!t(&["127.0.0.1"], "\u{ff}"));
    }

    #[test]
    fn bad_subnets() {
        for s in [
            "",
            "nope",
            "10.0.0.0/33",
            "10.0.0.0/x",
            "::1/129",
            "10.0.0.0/255.0.255.0",
            "1.2.3.4.5",
            "10..1",
            "300",
            "::1/255.0.0.0",
            "10/8",
        ] {
            let e = Subnet::parse(s).unwrap_err();
            assert!(e.contains("Unable to parse trusted proxy"), "{s}: {e}");
        }
    }
}
