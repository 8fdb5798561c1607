//! Sessions made by the access services: each has a cookie value (sent by browsers with
//! image requests) and an access token (sent by IIIF clients to the probe), both naming
//! the rule that granted them, both forgotten at expiry or logout.
//!
//! **Where they live.** In this process's memory, and, when a shared tier is configured
//! (MEMCACHED_SERVERS or REDIS_URL), in the tier too, with the session's own expiry, so
//! that a login on one instance is valid on all and a logout on one ends it on all. The
//! tier holds no secret: its keys are SHA-256 hashes of the cookie and of the token, its
//! values the rule and the expiry. A local copy of a tier session is believed for
//! [`RECHECK`] (one second) and then asked of the tier again. A tier lookup costs about
//! 20 µs on the loopback (measured against memcached; more across a network), as much as
//! answering a tile from the RAM cache, and a viewer asks for dozens of tiles a second:
//! so this costs one lookup a second per session and instance instead of one per tile,
//! and a logout elsewhere takes effect here within a second.
//! When the tier cannot be asked (down, or backing off after a failure: its timeouts are
//! short), the local copy is believed, a login is kept here only (logged), and a logout
//! reports that it could not reach the other instances.
//!
//! **Bounds** (so that nobody can fill the table or push out real sessions cheaply):
//! sessions go to one of two [`Pool`]s of at most [`MAX_PER_POOL`] each. Login sessions
//! need a password, so an attacker cannot mint them; the free ones (terms, kiosk,
//! external) anyone can mint, and a flood of them pushes out only other free sessions,
//! whose users get theirs back with one click. Within a pool the least recently used goes
//! first. One client (an IPv4 address, an IPv6 /64) holds at most [`MAX_FREE_PER_CLIENT`]
//! free sessions; its oldest goes for a new one, so filling the free pool takes about two
//! hundred addresses, not one (behind a reverse proxy the client is told apart only when
//! the proxy is in TRUSTED_PROXIES). Expired sessions are swept every [`SWEEP_EVERY`], at
//! the next login: one pass over the table a minute, not one per login.

use crate::access::policy::{Grantor, Rule};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Most sessions of one pool held in this process.
const MAX_PER_POOL: usize = 50_000;
/// Most free sessions one client holds.
const MAX_FREE_PER_CLIENT: usize = 256;
/// How often expired sessions are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How long a local copy of a tier session is believed before the tier is asked again.
const RECHECK: Duration = Duration::from_secs(1);

/// The store could not be asked (down, slow, or backing off after a failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unavailable;

/// Where sessions are shared between instances: the shared tier
/// (`storage::tier::SharedTier`). Keys and values are made here; the store never makes a
/// request wait long or fail.
pub(crate) trait SessionStore: Send + Sync + std::fmt::Debug {
    /// The store's name, for logs.
    fn name(&self) -> &'static str;
    /// The value under `key`: `Ok(None)` when there is none.
    fn fetch(&self, key: &str) -> Result<Option<Vec<u8>>, Unavailable>;
    /// Stores `value` under `key` for `expiry`: whether the store took it.
    fn store(&self, key: &str, value: &[u8], expiry: Duration) -> bool;
    /// Removes `key`: whether the store confirmed it is gone.
    fn delete(&self, key: &str) -> bool;
}

/// Which bound a session counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pool {
    /// Granted by a password check: an attacker cannot mint these.
    Login = 0,
    /// Granted without a credential (terms, kiosk, external): anyone can mint these.
    Free = 1,
}

impl Pool {
    /// The pool of the sessions `rule` grants.
    pub(crate) fn of(rule: &Rule) -> Pool {
        match rule.grantor {
            Some(Grantor::Login(_)) => Pool::Login,
            _ => Pool::Free,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Pool::Login => "login",
            Pool::Free => "free",
        }
    }
}

#[derive(Debug, Clone)]
struct Session {
    rule: String,
    token: String,
    pool: Pool,
    expires: Instant,
    /// When the tier last confirmed it; None when it lives in this process only.
    checked: Option<Instant>,
    /// The client that opened it, for its free sessions' bound.
    client: Option<IpAddr>,
    /// Its place in its pool's least-recently-used order.
    used: u64,
}

/// The sessions of this process, under one lock: the maps below always agree.
#[derive(Debug)]
struct Table {
    by_cookie: HashMap<String, Session>,
    /// Access token to cookie value.
    by_token: HashMap<String, String>,
    /// Per pool, cookie values by last use (oldest first).
    lru: [BTreeMap<u64, String>; 2],
    /// Free sessions per client, oldest first.
    by_client: HashMap<IpAddr, VecDeque<String>>,
    tick: u64,
    next_sweep: Instant,
    per_pool: usize,
    per_client: usize,
}

impl Table {
    fn new(per_pool: usize, per_client: usize) -> Table {
        Table {
            by_cookie: HashMap::new(),
            by_token: HashMap::new(),
            lru: [BTreeMap::new(), BTreeMap::new()],
            by_client: HashMap::new(),
            tick: 0,
            next_sweep: Instant::now() + SWEEP_EVERY,
            per_pool,
            per_client,
        }
    }

    /// Adds (or replaces) a session, then evicts what is over the bounds.
    fn insert(&mut self, cookie: String, mut s: Session) {
        self.remove(&cookie);
        self.tick += 1;
        s.used = self.tick;
        self.lru[s.pool as usize].insert(s.used, cookie.clone());
        self.by_token.insert(s.token.clone(), cookie.clone());
        if let (Pool::Free, Some(client)) = (s.pool, s.client) {
            let mine = self.by_client.entry(client).or_default();
            mine.push_back(cookie.clone());
            let over: Vec<String> = mine
                .drain(..mine.len().saturating_sub(self.per_client))
                .collect();
            over.iter().for_each(|c| drop(self.remove(c)));
        }
        let pool = s.pool as usize;
        self.by_cookie.insert(cookie, s);
        while self.lru[pool].len() > self.per_pool {
            if let Some((_, oldest)) = self.lru[pool].pop_first() {
                self.remove(&oldest);
            }
        }
    }

    /// Notes that the tier holds session `s` of `cookie`: the local copy is refreshed
    /// (keeping its client), or added.
    fn confirm(&mut self, cookie: &str, s: &Session) {
        match self.by_cookie.get_mut(cookie) {
            Some(held) => {
                held.checked = s.checked;
                held.expires = s.expires;
            }
            None => self.insert(cookie.to_string(), s.clone()),
        }
    }

    /// Removes a session from every map.
    fn remove(&mut self, cookie: &str) -> Option<Session> {
        let s = self.by_cookie.remove(cookie)?;
        self.by_token.remove(&s.token);
        self.lru[s.pool as usize].remove(&s.used);
        if let Some(client) = s.client {
            if let Some(mine) = self.by_client.get_mut(&client) {
                mine.retain(|c| c != cookie);
                if mine.is_empty() {
                    self.by_client.remove(&client);
                }
            }
        }
        Some(s)
    }

    /// The live session of a cookie value, marked as just used (an expired one goes).
    fn touch(&mut self, cookie: &str, now: Instant) -> Option<Session> {
        let s = self.by_cookie.get_mut(cookie)?;
        if s.expires <= now {
            self.remove(cookie);
            return None;
        }
        self.tick += 1;
        let lru = &mut self.lru[s.pool as usize];
        lru.remove(&s.used);
        lru.insert(self.tick, cookie.to_string());
        s.used = self.tick;
        Some(s.clone())
    }

    /// Removes the expired sessions, when a sweep is due.
    fn sweep(&mut self, now: Instant) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + SWEEP_EVERY;
        let expired: Vec<String> = self
            .by_cookie
            .iter()
            .filter(|(_, s)| s.expires <= now)
            .map(|(c, _)| c.clone())
            .collect();
        for c in expired {
            self.remove(&c);
        }
    }
}

/// The live sessions.
#[derive(Debug)]
pub struct Sessions {
    table: Mutex<Table>,
    tier: Option<Arc<dyn SessionStore>>,
}

impl Default for Sessions {
    fn default() -> Sessions {
        Sessions::new(None)
    }
}

/// 32 random bytes as hex.
fn secret() -> Option<String> {
    let mut b = [0u8; 32];
    // The system's generator only fails where nothing would work.
    if getrandom::fill(&mut b).is_err() {
        tracing::error!("no system random numbers: sessions cannot be made");
        return None;
    }
    Some(hex::encode(b))
}

/// SHA-256 of `domain` and `text`, hex.
fn digest(domain: &str, text: &str) -> String {
    hex::encode(
        Sha256::new()
            .chain_update(domain)
            .chain_update(text)
            .finalize(),
    )
}

/// The access token of a cookie value: derived one way, so that any instance knows it
/// from the cookie, and a token (posted to viewers' origins) does not reveal the cookie.
fn token_for(cookie: &str) -> String {
    digest("iipsrv access token\n", cookie)
}

/// The tier key of a session by its cookie value.
fn cookie_key(cookie: &str) -> String {
    format!("iipsrv-session-{}", digest("iipsrv session\n", cookie))
}

/// The tier key of a session by its access token.
fn token_key(token: &str) -> String {
    format!("iipsrv-token-{}", digest("iipsrv token\n", token))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A session as the tier holds it: `expiry (Unix seconds)\npool\nrule`.
fn encode(s: &Session, now: Instant) -> Vec<u8> {
    let left = s.expires.saturating_duration_since(now).as_secs();
    format!("{}\n{}\n{}", unix_now() + left, s.pool.name(), s.rule).into_bytes()
}

/// A session read from the tier (None when unreadable or expired).
fn decode(value: &[u8], cookie: &str, now: Instant) -> Option<Session> {
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.splitn(3, '\n');
    let expiry: u64 = parts.next()?.parse().ok()?;
    let pool = match parts.next()? {
        "login" => Pool::Login,
        "free" => Pool::Free,
        _ => return None,
    };
    let left = expiry.checked_sub(unix_now()).filter(|l| *l > 0)?;
    Some(Session {
        rule: parts.next()?.to_string(),
        token: token_for(cookie),
        pool,
        expires: now + Duration::from_secs(left),
        checked: Some(now),
        client: None,
        used: 0,
    })
}

impl Sessions {
    /// The sessions, shared through `tier` when there is one.
    pub(crate) fn new(tier: Option<Arc<dyn SessionStore>>) -> Sessions {
        Sessions {
            table: Mutex::new(Table::new(MAX_PER_POOL, MAX_FREE_PER_CLIENT)),
            tier,
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session for `rule`, lasting `ttl`, counted against `pool` and, for a free
    /// one, against `client`: its cookie value.
    pub(crate) fn open(
        &self,
        rule: &str,
        ttl: Duration,
        pool: Pool,
        client: Option<IpAddr>,
    ) -> Option<String> {
        let cookie = secret()?;
        let now = Instant::now();
        let mut s = Session {
            rule: rule.to_string(),
            token: token_for(&cookie),
            pool,
            expires: now + ttl,
            checked: None,
            client: client.map(client_key),
            used: 0,
        };
        if let Some(tier) = &self.tier {
            let value = encode(&s, now);
            let shared = tier.store(&cookie_key(&cookie), &value, ttl)
                && tier.store(&token_key(&s.token), &value, ttl);
            match shared {
                true => s.checked = Some(now),
                false => tracing::warn!(
                    rule,
                    "{} unavailable: session kept in this instance only",
                    tier.name()
                ),
            }
        }
        let mut table = self.table();
        table.sweep(now);
        table.insert(cookie.clone(), s);
        Some(cookie)
    }

    /// The live session of a cookie value: the local copy while it is fresh, else the
    /// tier's (the local copy when the tier cannot be asked).
    fn live(&self, cookie: &str) -> Option<Session> {
        let now = Instant::now();
        let local = self.table().touch(cookie, now);
        if let Some(s) = &local {
            if s.checked.is_none_or(|c| now.duration_since(c) < RECHECK) {
                return local;
            }
        }
        let tier = self.tier.as_ref()?;
        match tier.fetch(&cookie_key(cookie)) {
            Err(_) => local,
            Ok(found) => {
                let found = found.and_then(|v| decode(&v, cookie, now));
                let mut table = self.table();
                match &found {
                    Some(s) => table.confirm(cookie, s),
                    None => drop(table.remove(cookie)),
                }
                found
            }
        }
    }

    /// Whether the cookie value is a live session of `rule`.
    pub fn cookie_grants(&self, cookie: &str, rule: &str) -> bool {
        self.live(cookie).is_some_and(|s| s.rule == rule)
    }

    /// The access token of a live session of `rule`, and its seconds left.
    pub fn token_of(&self, cookie: &str, rule: &str) -> Option<(String, u64)> {
        let s = self.live(cookie).filter(|s| s.rule == rule)?;
        let left = s.expires.saturating_duration_since(Instant::now());
        Some((s.token, left.as_secs()))
    }

    /// Whether the access token belongs to a live session of `rule`: a local one, else
    /// one in the tier (asked every time: probes are few).
    pub fn token_grants(&self, token: &str, rule: &str) -> bool {
        let cookie = self.table().by_token.get(token).cloned();
        if let Some(c) = cookie {
            return self.cookie_grants(&c, rule);
        }
        let Some(Ok(Some(value))) = self.tier.as_ref().map(|t| t.fetch(&token_key(token))) else {
            return false;
        };
        decode(&value, "", Instant::now()).is_some_and(|s| s.rule == rule)
    }

    /// Ends the session of a cookie value, here and in the tier: whether it is ended
    /// everywhere (false when the tier could not be told, so that it lives on in other
    /// instances until it expires).
    pub fn close(&self, cookie: &str) -> bool {
        self.table().remove(cookie);
        let Some(tier) = &self.tier else {
            return true;
        };
        let ended = tier.delete(&cookie_key(cookie)) && tier.delete(&token_key(&token_for(cookie)));
        if !ended {
            tracing::warn!(
                "{} unavailable: logout reached this instance only",
                tier.name()
            );
        }
        ended
    }
}

/// The address a client's free sessions are counted under: an IPv4 address (also when
/// written as IPv6), an IPv6 /64 (one subscriber's usual share).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn small(per_pool: usize, per_client: usize) -> Sessions {
        Sessions {
            table: Mutex::new(Table::new(per_pool, per_client)),
            tier: None,
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn a_session_grants_its_rule_until_closed_or_expired() {
        let s = Sessions::default();
        let c = s
            .open("room", Duration::from_secs(60), Pool::Login, None)
            .expect("session");
        assert_eq!(c.len(), 64);
        assert!(s.cookie_grants(&c, "room"));
        assert!(!s.cookie_grants(&c, "other"), "a session of another rule");
        let (token, left) = s.token_of(&c, "room").expect("token");
        assert!(left > 50 && token != c);
        assert!(s.token_grants(&token, "room"));
        assert!(!s.token_grants(&c, "room"), "a cookie is not a token");
        assert!(s.close(&c), "no tier: ended everywhere");
        assert!(!s.cookie_grants(&c, "room"));
        assert!(!s.token_grants(&token, "room"));
        let gone = s
            .open("room", Duration::ZERO, Pool::Login, None)
            .expect("session");
        assert!(!s.cookie_grants(&gone, "room"));
        assert!(
            s.table().by_cookie.is_empty(),
            "an expired session goes when asked for"
        );
    }

    /// Every map agrees with `by_cookie`.
    fn consistent(t: &Table) {
        assert_eq!(t.by_token.len(), t.by_cookie.len());
        assert_eq!(t.lru[0].len() + t.lru[1].len(), t.by_cookie.len());
        let listed: usize = t.by_client.values().map(VecDeque::len).sum();
        let free_with_client = t
            .by_cookie
            .values()
            .filter(|s| s.pool == Pool::Free && s.client.is_some())
            .count();
        assert_eq!(listed, free_with_client);
    }

    #[test]
    fn expired_sessions_are_swept_once_a_minute_not_at_every_login() {
        let s = Sessions::default();
        let old: Vec<String> = (0..50)
            .map(|_| s.open("room", Duration::from_secs(30), Pool::Free, ip("192.0.2.1")))
            .map(|c| c.expect("session"))
            .collect();
        let kept = s.open("room", HOUR, Pool::Login, None).expect("session");
        let mut t = s.table();
        let later = Instant::now() + Duration::from_secs(31);
        t.sweep(later);
        assert_eq!(t.by_cookie.len(), 51, "no sweep is due yet");
        t.sweep(Instant::now() + SWEEP_EVERY + Duration::from_secs(1));
        assert_eq!(t.by_cookie.keys().collect::<Vec<_>>(), [&kept]);
        assert!(old.iter().all(|c| !t.by_cookie.contains_key(c)));
        consistent(&t);
        assert!(t.by_client.is_empty());
    }

    #[test]
    fn one_client_holds_a_bounded_number_of_free_sessions() {
        let s = small(1000, 3);
        let open = |pool, from| s.open("terms", HOUR, pool, ip(from)).expect("session");
        let login = open(Pool::Login, "192.0.2.1");
        let other = open(Pool::Free, "198.51.100.7");
        let mine: Vec<String> = (0..5).map(|_| open(Pool::Free, "192.0.2.1")).collect();
        let live: Vec<bool> = mine.iter().map(|c| s.cookie_grants(c, "terms")).collect();
        assert_eq!(
            live,
            [false, false, true, true, true],
            "the oldest go first"
        );
        assert!(
            s.cookie_grants(&login, "terms"),
            "login sessions are not counted"
        );
        assert!(
            s.cookie_grants(&other, "terms"),
            "other clients are not touched"
        );
        // an IPv6 /64 is one client; its IPv4-mapped form is the IPv4 address
        let v6: Vec<String> = [
            "2001:db8::1",
            "2001:db8::2",
            "2001:db8::ffff",
            "2001:db8:0:0:1::9",
        ]
        .iter()
        .map(|a| open(Pool::Free, a))
        .collect();
        assert!(!s.cookie_grants(&v6[0], "terms"));
        assert!(s.cookie_grants(&v6[1], "terms"));
        assert_eq!(
            client_key("::ffff:192.0.2.1".parse().expect("ip")),
            ip("192.0.2.1").expect("ip")
        );
        consistent(&s.table());
    }

    #[test]
    fn a_flood_of_free_sessions_evicts_the_least_recently_used_free_ones_only() {
        let s = small(4, 100);
        let open = |pool, from: &str| s.open("r", HOUR, pool, ip(from)).expect("session");
        let logins: Vec<String> = (0..4).map(|_| open(Pool::Login, "192.0.2.1")).collect();
        let free: Vec<String> = (0..4)
            .map(|i| open(Pool::Free, &format!("192.0.2.{i}")))
            .collect();
        // the first free session is used, so the second is now the least recently used
        assert!(s.cookie_grants(&free[0], "r"));
        let flood: Vec<String> = (0..3)
            .map(|i| open(Pool::Free, &format!("203.0.113.{i}")))
            .collect();
        let live = |cs: &[String]| {
            cs.iter()
                .map(|c| s.cookie_grants(c, "r"))
                .collect::<Vec<_>>()
        };
        assert_eq!(live(&free), [true, false, false, false]);
        assert_eq!(live(&flood), [true, true, true]);
        assert_eq!(
            live(&logins),
            [true; 4],
            "free sessions never push out logins"
        );
        // logins beyond the bound push out the least recently used login
        let newest = open(Pool::Login, "192.0.2.1");
        assert_eq!(live(&logins), [false, true, true, true]);
        assert!(s.cookie_grants(&newest, "r"));
        consistent(&s.table());
    }

    #[test]
    fn tier_values_hold_no_secret_and_read_back() {
        let now = Instant::now();
        let s = Session {
            rule: "room".into(),
            token: token_for("c00kie"),
            pool: Pool::Login,
            expires: now + HOUR,
            checked: None,
            client: None,
            used: 0,
        };
        let value = encode(&s, now);
        let text = String::from_utf8(value.clone()).expect("text");
        assert!(
            !text.contains("c00kie") && !text.contains(&s.token),
            "{text}"
        );
        let back = decode(&value, "c00kie", now).expect("session");
        assert_eq!(
            (back.rule.as_str(), back.pool, back.token),
            ("room", Pool::Login, s.token)
        );
        assert!(back.expires > now + HOUR - Duration::from_secs(2));
        let stale = format!("{}\nlogin\nroom", unix_now() - 1);
        assert!(decode(stale.as_bytes(), "c00kie", now).is_none());
        assert!(decode(b"soon\nlogin\nroom", "c00kie", now).is_none());
        // keys are hashes: neither the cookie nor the token, distinct for each
        let (k, t) = (cookie_key("c00kie"), token_key(&token_for("c00kie")));
        assert!(!k.contains("c00kie") && k != t && k.len() < 250);
    }

    /// A shared store in memory, which can be taken down.
    #[derive(Debug, Default)]
    struct Memory {
        map: Mutex<HashMap<String, Vec<u8>>>,
        down: std::sync::atomic::AtomicBool,
    }

    impl Memory {
        fn up(&self) -> bool {
            !self.down.load(std::sync::atomic::Ordering::Relaxed)
        }
        fn map(&self) -> MutexGuard<'_, HashMap<String, Vec<u8>>> {
            self.map.lock().expect("map")
        }
    }

    impl SessionStore for Memory {
        fn name(&self) -> &'static str {
            "memory"
        }
        fn fetch(&self, key: &str) -> Result<Option<Vec<u8>>, Unavailable> {
            self.up()
                .then(|| self.map().get(key).cloned())
                .ok_or(Unavailable)
        }
        fn store(&self, key: &str, value: &[u8], _: Duration) -> bool {
            self.up() && {
                self.map().insert(key.into(), value.into());
                true
            }
        }
        fn delete(&self, key: &str) -> bool {
            self.up() && {
                self.map().remove(key);
                true
            }
        }
    }

    /// Makes the local copy of `cookie` due for a recheck.
    fn age(s: &Sessions, cookie: &str) {
        let mut t = s.table();
        let held = t.by_cookie.get_mut(cookie).expect("held");
        held.checked = Instant::now().checked_sub(RECHECK);
    }

    #[test]
    fn instances_sharing_a_store_share_logins_and_logouts() {
        let store = Arc::new(Memory::default());
        let shared = || Sessions::new(Some(store.clone() as Arc<dyn SessionStore>));
        let (a, b, c) = (shared(), shared(), shared());
        let cookie = a
            .open("room", HOUR, Pool::Login, ip("192.0.2.1"))
            .expect("session");
        let (token, left) = b.token_of(&cookie, "room").expect("B knows A's session");
        assert!(left > 3590);
        assert!(
            c.token_grants(&token, "room"),
            "C asks the store for the token"
        );
        assert!(!c.token_grants(&token, "other"));
        assert!(!b.cookie_grants(&cookie, "other"));
        // the store holds neither the cookie nor the token
        for (k, v) in store.map().iter() {
            let v = String::from_utf8_lossy(v);
            for secret in [&cookie, &token] {
                assert!(
                    !k.contains(secret.as_str()) && !v.contains(secret.as_str()),
                    "{k}"
                );
            }
        }
        assert!(b.close(&cookie));
        assert!(store.map().is_empty(), "both keys are gone");
        assert!(!b.cookie_grants(&cookie, "room"));
        assert!(
            a.cookie_grants(&cookie, "room"),
            "A believes its copy for a second"
        );
        age(&a, &cookie);
        assert!(!a.cookie_grants(&cookie, "room"), "then asks the store");
        assert!(!c.token_grants(&token, "room"));
        consistent(&a.table());
    }

    #[test]
    fn while_the_store_is_down_sessions_stay_local_and_logouts_say_so() {
        let store = Arc::new(Memory::default());
        let s = Sessions::new(Some(store.clone() as Arc<dyn SessionStore>));
        let before = s.open("room", HOUR, Pool::Login, None).expect("session");
        store.down.store(true, std::sync::atomic::Ordering::Relaxed);
        age(&s, &before);
        assert!(
            s.cookie_grants(&before, "room"),
            "the local copy is believed"
        );
        let during = s.open("room", HOUR, Pool::Login, None).expect("session");
        assert!(s.cookie_grants(&during, "room"));
        assert!(!s.cookie_grants("unknown", "room"));
        assert!(!s.close(&before), "the store was not told");
        assert!(
            !s.cookie_grants(&before, "room"),
            "but this instance forgot it"
        );
        store
            .down
            .store(false, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            store.map().len(),
            2,
            "the first session is still in the store"
        );
        assert!(
            s.cookie_grants(&during, "room"),
            "a local-only session stays local"
        );
        assert!(s.close(&during));
    }
}
