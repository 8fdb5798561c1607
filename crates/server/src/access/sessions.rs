//! Sessions made by the access services: each has a cookie value (sent by browsers with
//! image requests) and an access token (sent by IIIF clients to the probe), both random,
//! both naming the rule that granted them, both forgotten at expiry or logout. Kept in
//! this process's memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most sessions held; beyond it the expired go, then the oldest.
const MAX_SESSIONS: usize = 100_000;

#[derive(Debug, Clone)]
struct Session {
    rule: String,
    token: String,
    expires: Instant,
}

/// The live sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    by_cookie: Mutex<HashMap<String, Session>>,
    by_token: Mutex<HashMap<String, String>>,
}

/// 32 random bytes as hex.
fn secret() -> String {
    let mut b = [0u8; 32];
    // The system's generator only fails where nothing would work.
    if getrandom::fill(&mut b).is_err() {
        tracing::error!("no system random numbers: sessions cannot be made");
        return String::new();
    }
    hex::encode(b)
}

impl Sessions {
    /// A new session for `rule`, lasting `ttl`: its cookie value.
    pub fn open(&self, rule: &str, ttl: Duration) -> Option<String> {
        let (cookie, token) = (secret(), secret());
        if cookie.is_empty() || token.is_empty() {
            return None;
        }
        let mut by_cookie = self.by_cookie.lock().unwrap_or_else(|p| p.into_inner());
        let mut by_token = self.by_token.lock().unwrap_or_else(|p| p.into_inner());
        if by_cookie.len() >= MAX_SESSIONS {
            let now = Instant::now();
            by_cookie.retain(|_, s| s.expires > now);
            if by_cookie.len() >= MAX_SESSIONS {
                if let Some(oldest) = by_cookie.iter().min_by_key(|(_, s)| s.expires) {
                    let oldest = oldest.0.clone();
                    by_cookie.remove(&oldest);
                }
            }
            by_token.retain(|_, c| by_cookie.contains_key(c));
        }
        let session = Session {
            rule: rule.to_string(),
            token: token.clone(),
            expires: Instant::now() + ttl,
        };
        by_cookie.insert(cookie.clone(), session);
        by_token.insert(token, cookie.clone());
        Some(cookie)
    }

    /// The live session of a cookie value: its rule, access token and seconds left.
    fn live(&self, cookie: &str) -> Option<Session> {
        let by_cookie = self.by_cookie.lock().unwrap_or_else(|p| p.into_inner());
        by_cookie
            .get(cookie)
            .filter(|s| s.expires > Instant::now())
            .cloned()
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

    /// Whether the access token belongs to a live session of `rule`.
    pub fn token_grants(&self, token: &str, rule: &str) -> bool {
        let cookie = {
            let by_token = self.by_token.lock().unwrap_or_else(|p| p.into_inner());
            by_token.get(token).cloned()
        };
        cookie.is_some_and(|c| self.cookie_grants(&c, rule))
    }

    /// Ends the session of a cookie value.
    pub fn close(&self, cookie: &str) {
        let mut by_cookie = self.by_cookie.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = by_cookie.remove(cookie) {
            let mut by_token = self.by_token.lock().unwrap_or_else(|p| p.into_inner());
            by_token.remove(&s.token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_grants_its_rule_until_closed_or_expired() {
        let s = Sessions::default();
        let c = s.open("room", Duration::from_secs(60)).expect("session");
        assert_eq!(c.len(), 64);
        assert!(s.cookie_grants(&c, "room"));
        assert!(!s.cookie_grants(&c, "other"), "a session of another rule");
        let (token, left) = s.token_of(&c, "room").expect("token");
        assert!(left > 50 && token != c);
        assert!(s.token_grants(&token, "room"));
        assert!(!s.token_grants(&c, "room"), "a cookie is not a token");
        s.close(&c);
        assert!(!s.cookie_grants(&c, "room"));
        assert!(!s.token_grants(&token, "room"));
        let gone = s.open("room", Duration::ZERO).expect("session");
        assert!(!s.cookie_grants(&gone, "room"));
    }
}
