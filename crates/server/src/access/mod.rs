//! Access control (AUTH_POLICY): who may see how much of which image. [`Access::decide`]
//! is the one decision, made from the request alone (address, headers, cookie, bearer
//! token, signed URL) before any file is opened or any cache is asked, so that a
//! restricted id costs the same whether it exists or not, and no cache ever hands an
//! answer to someone who may not have it. What it checks:
//!
//! - the rule's own grant: kiosk addresses, an identity header from TRUSTED_PROXIES, or a
//!   session made by the rule's access service (cookie, or its IIIF access token);
//! - a signed URL ([`signed`]) or a bearer JWT ([`bearer`]), for any non-open rule.
//!
//! Without a policy nothing here runs: the handler holds an `Option` of it.

pub(crate) mod bearer;
pub mod policy;
pub(crate) mod sessions;
pub mod signed;
pub(crate) mod users;

use crate::forwarded::Trusted;
use policy::{Grantor, Level, Policy, Rule};
use sessions::{SessionStore, Sessions};
use std::net::IpAddr;
use std::sync::Arc;

/// The prefix of the session cookies' names, the rule's name follows.
pub(crate) const COOKIE_PREFIX: &str = "iipsrv-auth-";

/// What the decision sees of a request.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The TCP peer (or REMOTE_ADDR).
    pub peer: Option<IpAddr>,
    /// The path, still percent-encoded.
    pub path: &'a str,
    /// The query string.
    pub query: &'a str,
    /// The headers, names in lower case.
    pub headers: &'a [(String, String)],
}

impl<'a> Caller<'a> {
    fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of cookie `name`.
    pub(crate) fn cookie(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "cookie")
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// The bearer token of the Authorization header.
    pub(crate) fn bearer(&self) -> Option<&'a str> {
        self.header("authorization")?
            .strip_prefix("Bearer ")
            .map(str::trim)
    }
}

/// What a caller may see of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'a> {
    /// Everything.
    Full,
    /// At most this long side; the rule says how to get more.
    Limited(u32, &'a Rule),
    /// Nothing; the rule says how to get access.
    Denied(&'a Rule),
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.name == other.name
    }
}

impl Eq for Rule {}

/// The policy with the sessions its services made.
#[derive(Debug)]
pub struct Access {
    policy: Policy,
    sessions: Sessions,
    proxies: Trusted,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Access {
    /// The access control of `policy`, its sessions kept in this instance; identity
    /// headers are believed from `proxies`.
    pub fn new(policy: Policy, proxies: Trusted) -> Access {
        Access::shared(policy, proxies, None)
    }

    /// The same, its sessions shared through `tier` (the shared cache tier, when there is
    /// one) with the other instances using it.
    pub(crate) fn shared(
        policy: Policy,
        proxies: Trusted,
        tier: Option<Arc<dyn SessionStore>>,
    ) -> Access {
        Access {
            policy,
            sessions: Sessions::new(tier),
            proxies,
        }
    }

    /// The policy.
    pub(crate) fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The sessions.
    pub(crate) fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// The rule of `id` when it is not open.
    pub(crate) fn guarded_rule(&self, id: &str) -> Option<&Rule> {
        self.policy.rule_for(id).filter(|r| r.level != Level::Open)
    }

    /// What `caller` may see of image `id` when asking the probe service: as
    /// [`Access::decide`], and a session's access token counts too. Access tokens are
    /// posted to any viewer's origin, so they open nothing but the probe (IIIF
    /// Authorization Flow 2.0: the images themselves go by the cookie).
    pub fn decide_probe(&self, caller: &Caller, id: &str) -> Decision<'_> {
        let Some(rule) = self.guarded_rule(id) else {
            return Decision::Full;
        };
        let by_token = caller
            .bearer()
            .is_some_and(|t| self.sessions.token_grants(t, &rule.name));
        match by_token {
            true => Decision::Full,
            false => self.decide(caller, id),
        }
    }

    /// What `caller` may see of image `id`.
    pub fn decide(&self, caller: &Caller, id: &str) -> Decision<'_> {
        let Some(rule) = self.guarded_rule(id) else {
            return Decision::Full;
        };
        if self.granted(rule, caller, id) {
            return Decision::Full;
        }
        match rule.level {
            Level::Degraded(n) => Decision::Limited(n, rule),
            _ => Decision::Denied(rule),
        }
    }

    /// Whether `caller` has full access to `id` under `rule`.
    fn granted(&self, rule: &Rule, caller: &Caller, id: &str) -> bool {
        let by_rule = match &rule.grantor {
            Some(Grantor::Kiosk(nets)) => nets.trusts(self.client(caller)),
            Some(Grantor::External(header)) => self.identity(caller, header).is_some(),
            _ => false,
        };
        by_rule
            || caller
                .cookie(&format!("{COOKIE_PREFIX}{}", rule.name))
                .is_some_and(|c| self.sessions.cookie_grants(c, &rule.name))
            || caller.bearer().is_some_and(|t| self.bearer_opens(t, id))
            || self.policy.signing_secret.as_deref().is_some_and(|key| {
                signed::is_signed(caller.query)
                    && signed::verify(
                        key,
                        caller.path,
                        caller.query,
                        now_secs(),
                        self.policy.signed_max_lifetime,
                    )
            })
    }

    /// Whether a bearer token (a JWT; a session's access token opens only the probe) opens
    /// `id`.
    fn bearer_opens(&self, token: &str, id: &str) -> bool {
        self.policy
            .tokens
            .as_ref()
            .is_some_and(|keys| bearer::opens(keys, token, id))
    }

    /// The identity a trusted proxy asserts in `header` (non-empty).
    pub(crate) fn identity<'a>(&self, caller: &Caller<'a>, header: &str) -> Option<&'a str> {
        if !self.proxies.trusts(caller.peer) {
            return None;
        }
        caller
            .header(header)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// The client's address: the peer, or, when the peer is a trusted proxy, the last
    /// X-Forwarded-For address that is not one (proxies append to the header: the addresses
    /// before the first untrusted one from the right are the client's to write). An
    /// unreadable address on the way gives none.
    pub(crate) fn client(&self, caller: &Caller) -> Option<IpAddr> {
        if !self.proxies.trusts(caller.peer) {
            return caller.peer;
        }
        let Some(chain) = caller.header("x-forwarded-for") else {
            return caller.peer;
        };
        let mut client = caller.peer;
        for hop in chain.rsplit(',') {
            let addr: IpAddr = hop.trim().parse().ok()?;
            client = Some(addr);
            if !self.proxies.trusts(client) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn access() -> Access {
        let policy = Policy::parse(
            r#"
            [signed_urls]
            secret = "0123456789abcdef0123"
            [[rule]]
            name = "kiosk"
            ids = "k/*"
            access = "restricted"
            profile = "kiosk"
            addresses = ["192.0.2.0/24"]
            [[rule]]
            name = "ext"
            ids = "e/*"
            access = "degraded"
            max_size = 300
            profile = "external"
            [[rule]]
            name = "room"
            ids = "r/*"
            access = "restricted"
            profile = "active"
            "#,
            Path::new("."),
        )
        .expect("policy");
        Access::new(policy, Trusted::parse("127.0.0.1").expect("proxies"))
    }

    fn caller<'a>(peer: &str, headers: &'a [(String, String)]) -> Caller<'a> {
        Caller {
            peer: peer.parse().ok(),
            path: "/iiif/x/info.json",
            query: "",
            headers,
        }
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kiosk_addresses_are_granted() {
        let a = access();
        assert_eq!(
            a.decide(&caller("192.0.2.9", &[]), "k/a.tif"),
            Decision::Full
        );
        let outside = a.decide(&caller("198.51.100.1", &[]), "k/a.tif");
        assert!(matches!(outside, Decision::Denied(r) if r.name == "kiosk"));
        // behind a trusted proxy, its X-Forwarded-For counts; from others it does not
        let xff = h(&[("x-forwarded-for", "192.0.2.7")]);
        assert_eq!(
            a.decide(&caller("127.0.0.1", &xff), "k/a.tif"),
            Decision::Full
        );
        assert!(matches!(
            a.decide(&caller("198.51.100.1", &xff), "k/a.tif"),
            Decision::Denied(_)
        ));
        assert_eq!(
            a.decide(&caller("198.51.100.1", &[]), "open.tif"),
            Decision::Full
        );
    }

    #[test]
    fn external_identity_only_from_trusted_proxies() {
        let a = access();
        let user = h(&[("x-remote-user", "ana")]);
        assert_eq!(
            a.decide(&caller("127.0.0.1", &user), "e/a.tif"),
            Decision::Full
        );
        assert!(matches!(
            a.decide(&caller("198.51.100.1", &user), "e/a.tif"),
            Decision::Limited(300, _)
        ));
        let empty = h(&[("x-remote-user", " ")]);
        assert!(matches!(
            a.decide(&caller("127.0.0.1", &empty), "e/a.tif"),
            Decision::Limited(300, _)
        ));
    }

    #[test]
    fn sessions_open_their_own_rule_only() {
        let a = access();
        let c = a
            .sessions
            .open(
                "room",
                std::time::Duration::from_secs(60),
                sessions::Pool::Login,
                None,
            )
            .expect("session");
        let mine = h(&[("cookie", &format!("x=1; iipsrv-auth-room={c}"))]);
        assert_eq!(
            a.decide(&caller("198.51.100.1", &mine), "r/a.tif"),
            Decision::Full
        );
        let theirs = h(&[("cookie", &format!("iipsrv-auth-kiosk={c}"))]);
        assert!(matches!(
            a.decide(&caller("198.51.100.1", &theirs), "k/a.tif"),
            Decision::Denied(_)
        ));
        let (token, _) = a.sessions.token_of(&c, "room").expect("token");
        let bearer = h(&[("authorization", &format!("Bearer {token}"))]);
        // The session's access token opens its probe, not its images.
        assert_eq!(
            a.decide_probe(&caller("198.51.100.1", &bearer), "r/a.tif"),
            Decision::Full
        );
        assert!(matches!(
            a.decide(&caller("198.51.100.1", &bearer), "r/a.tif"),
            Decision::Denied(_)
        ));
    }

    #[test]
    fn signed_urls_open_what_they_sign() {
        let a = access();
        let path = "/iiif/r/a.tif/full/max/0/default.jpg";
        let query = signed::sign(
            b"0123456789abcdef0123",
            path,
            &format!("expires={}", now_secs() + 60),
        );
        let c = Caller {
            peer: None,
            path,
            query: &query,
            headers: &[],
        };
        assert_eq!(a.decide(&c, "r/a.tif"), Decision::Full);
        let other = Caller {
            path: "/iiif/r/b.tif/full/max/0/default.jpg",
            ..c
        };
        assert!(matches!(a.decide(&other, "r/b.tif"), Decision::Denied(_)));
    }
}
