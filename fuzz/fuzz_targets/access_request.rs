//! The parts of a request the access policy reads (AUTH_POLICY), as a hostile client sends
//! them: path, query (a signed URL's `expires` and `signature`), cookies, a bearer token,
//! X-Forwarded-For and the peer. The decision never panics, an open id is always open, and
//! nothing but a valid signature, session or token opens a restricted one.
#![no_main]

use iipsrv_server::access::policy::Policy;
use iipsrv_server::access::{Access, Caller, Decision};
use iipsrv_server::forwarded::Trusted;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const POLICY: &str = r#"
[signed_urls]
secret = "a fuzzing secret of some length"
[tokens]
audience = "https://images.example.org"
hs256_secret = "a fuzzing secret that is long enough for HS256"
[[rule]]
name = "room"
ids = "r/**"
access = "restricted"
profile = "active"
[[rule]]
name = "shown"
ids = "d/*"
access = "degraded"
max_size = 100
profile = "external"
[[rule]]
name = "ward"
ids = "k/*"
access = "restricted"
profile = "kiosk"
addresses = ["192.0.2.0/24"]
"#;

fn access() -> &'static Access {
    static ACCESS: OnceLock<Access> = OnceLock::new();
    ACCESS.get_or_init(|| {
        let policy = Policy::parse(POLICY, std::path::Path::new(".")).expect("policy");
        Access::new(policy, Trusted::parse("127.0.0.1").expect("proxies"))
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\u{1}');
    let mut next = || parts.next().unwrap_or("").to_string();
    let (path, query, cookie, auth, xff, user, id) =
        (next(), next(), next(), next(), next(), next(), next());
    let peer = if data.first().is_some_and(|b| b % 2 == 0) {
        "127.0.0.1"
    } else {
        "203.0.113.1"
    };
    let headers: Vec<(String, String)> = [
        ("cookie", cookie),
        ("authorization", auth),
        ("x-forwarded-for", xff),
        ("x-remote-user", user),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v))
    .collect();
    let caller = Caller {
        peer: peer.parse().ok(),
        path: &path,
        query: &query,
        headers: &headers,
    };
    let decision = access().decide(&caller, &id);
    // Rules see the id as the file system reads it (`/r//a` is `r/a`).
    let canon = id
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect::<Vec<_>>()
        .join("/");
    if !canon.starts_with("r/") && !canon.starts_with("d/") && !canon.starts_with("k/") {
        assert_eq!(decision, Decision::Full);
    }
    if canon.starts_with("r/") && decision == Decision::Full {
        // only a signature or a token can open it here (no session was ever made)
        assert!(query.contains("&signature=") || headers[1].1.starts_with("Bearer "));
    }
});
