//! Proxy awareness: behind a load balancer the Host and scheme a server sees are the
//! balancer's, not the public ones. X-Forwarded-Proto, X-Forwarded-Host and
//! X-Forwarded-Prefix are believed only from proxies listed in TRUSTED_PROXIES (anyone
//! else could set them to poison cached info.json ids); BASE_URL, when set, wins over all.

use crate::error::{Error, Result};
use std::net::IpAddr;

/// The proxies whose forwarded headers are believed.
#[derive(Debug, Clone, Default)]
pub struct Trusted {
    nets: Vec<(IpAddr, u8)>,
    any: bool,
}

impl Trusted {
    /// Parses a comma list of IP addresses and CIDR ranges ("*" for any peer).
    pub fn parse(list: &str) -> Result<Trusted> {
        let mut t = Trusted::default();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "*" {
                t.any = true;
                continue;
            }
            let (addr, bits) = item.split_once('/').unwrap_or((item, ""));
            let addr: IpAddr = addr.parse().map_err(|_| {
                Error::bad(format!("TRUSTED_PROXIES entry {item:?} is not an address"))
            })?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                "" => max,
                b => b.parse().ok().filter(|&b| b <= max).ok_or_else(|| {
                    Error::bad(format!(
                        "TRUSTED_PROXIES entry {item:?} has a bad prefix length"
                    ))
                })?,
            };
            t.nets.push((addr, bits));
        }
        Ok(t)
    }

    /// Whether every peer is trusted (`*`, or a range of prefix length 0): then anyone can
    /// write the forwarded headers.
    pub(crate) fn trusts_everyone(&self) -> bool {
        self.any || self.nets.iter().any(|&(_, bits)| bits == 0)
    }

    /// Whether a request from `peer` may set the forwarded headers.
    pub(crate) fn trusts(&self, peer: Option<IpAddr>) -> bool {
        let Some(peer) = peer.map(|p| p.to_canonical()) else {
            return false;
        };
        self.any || self.nets.iter().any(|&(net, bits)| within(peer, net, bits))
    }
}

/// Whether `addr` is inside `net`/`bits`.
fn within(addr: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (a, n, width) = match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u32::from(a) as u128, u32::from(n) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    let shift = width - bits as u32;
    shift >= width || (a >> shift) == (n >> shift)
}

/// The first value of a comma-separated forwarded header (the client-most proxy's),
/// refused when it holds characters no scheme, host or path prefix has.
pub(crate) fn first_value(v: &str) -> Option<&str> {
    let v = v.split(',').next()?.trim();
    let clean = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'<' | b'>' | b'\\'));
    clean.then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_addresses() {
        let t = Trusted::parse("10.0.0.0/8, 127.0.0.1, ::1").expect("ok");
        let ip = |s: &str| Some(s.parse::<IpAddr>().expect("ip"));
        assert!(t.trusts(ip("10.2.3.4")));
        assert!(t.trusts(ip("127.0.0.1")));
        assert!(t.trusts(ip("::ffff:127.0.0.1")));
        assert!(t.trusts(ip("::1")));
        assert!(!t.trusts(ip("127.0.0.2")));
        assert!(!t.trusts(ip("11.0.0.1")));
        assert!(!t.trusts(None));
        assert!(Trusted::parse("*").expect("ok").trusts(ip("8.8.8.8")));
        assert!(!Trusted::parse("").expect("ok").trusts(ip("127.0.0.1")));
        assert!(Trusted::parse("10.0.0.0/33").is_err());
        assert!(Trusted::parse("host.example").is_err());
    }

    #[test]
    fn header_values() {
        assert_eq!(first_value("https, http"), Some("https"));
        assert_eq!(first_value(" iiif.example.org "), Some("iiif.example.org"));
        assert_eq!(first_value("a b"), None);
        assert_eq!(first_value("\"><script>"), None);
    }
}
