//! Bearer tokens: JWTs (HS256 with a shared secret, or RS256 with the issuer's public
//! key) whose `aud` must be the policy's audience, whose `exp` must be to come and whose
//! `nbf`, when present, must be past. An
//! optional `ids` claim (a glob) narrows the images a token opens.

use super::policy::TokenKeys;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Claims {
    ids: Option<String>,
}

/// Whether `token` is valid and opens image `id`.
pub fn opens(keys: &TokenKeys, token: &str, id: &str) -> bool {
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return false;
    };
    let key = match header.alg {
        jsonwebtoken::Algorithm::HS256 => keys.hs256.as_ref(),
        jsonwebtoken::Algorithm::RS256 => keys.rs256.as_ref(),
        _ => None,
    };
    let Some(key) = key else {
        return false;
    };
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[&keys.audience]);
    validation.set_required_spec_claims(&["exp", "aud"]);
    validation.leeway = 0;
    validation.validate_nbf = true;
    match jsonwebtoken::decode::<Claims>(token, key, &validation) {
        Ok(data) => data.claims.ids.is_none_or(|g| {
            glob::Pattern::new(&g).is_ok_and(|p| p.matches_with(id, super::policy::MATCH))
        }),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};

    const SECRET: &str = "a shared secret that is long enough for HS256";

    fn keys() -> TokenKeys {
        TokenKeys {
            audience: "https://images.example.org".into(),
            hs256: Some(jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes())),
            rs256: None,
        }
    }

    fn token(claims: serde_json::Value, secret: &str) -> String {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("token")
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    #[test]
    fn valid_tokens_open_their_images() {
        let aud = "https://images.example.org";
        let t = token(serde_json::json!({"aud": aud, "exp": now() + 60}), SECRET);
        assert!(opens(&keys(), &t, "a.tif"));
        let t = token(
            serde_json::json!({"aud": aud, "exp": now() + 60, "ids": "ms/*"}),
            SECRET,
        );
        assert!(opens(&keys(), &t, "ms/a.tif"));
        assert!(!opens(&keys(), &t, "other/a.tif"));
    }

    #[test]
    fn expired_tampered_and_foreign_tokens_are_refused() {
        let aud = "https://images.example.org";
        let expired = token(serde_json::json!({"aud": aud, "exp": now() - 1}), SECRET);
        assert!(!opens(&keys(), &expired, "a.tif"));
        let other_aud = token(
            serde_json::json!({"aud": "https://else.example", "exp": now() + 60}),
            SECRET,
        );
        assert!(!opens(&keys(), &other_aud, "a.tif"));
        let no_exp = token(serde_json::json!({"aud": aud}), SECRET);
        assert!(!opens(&keys(), &no_exp, "a.tif"));
        let wrong_key = token(
            serde_json::json!({"aud": aud, "exp": now() + 60}),
            "another secret that is long enough for HS256",
        );
        assert!(!opens(&keys(), &wrong_key, "a.tif"));
        let early = token(
            serde_json::json!({"aud": aud, "exp": now() + 120, "nbf": now() + 60}),
            SECRET,
        );
        assert!(!opens(&keys(), &early, "a.tif"), "not yet valid (nbf)");
        let begun = token(
            serde_json::json!({"aud": aud, "exp": now() + 120, "nbf": now() - 1}),
            SECRET,
        );
        assert!(opens(&keys(), &begun, "a.tif"));
        let good = token(serde_json::json!({"aud": aud, "exp": now() + 60}), SECRET);
        let parts: Vec<&str> = good.split('.').collect();
        let forged_claims = serde_json::json!({"aud": aud, "exp": now() + 60, "ids": "**"});
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            base64url(&forged_claims.to_string()),
            parts[2]
        );
        assert!(!opens(&keys(), &forged, "a.tif"));
        assert!(!opens(&keys(), "not a token", "a.tif"));
        // alg none is never accepted
        let none = format!("{}.{}.", base64url(r#"{"alg":"none"}"#), parts[1]);
        assert!(!opens(&keys(), &none, "a.tif"));
    }

    fn base64url(s: &str) -> String {
        const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let b = s.as_bytes();
        let mut out = String::new();
        for c in b.chunks(3) {
            let n = c
                .iter()
                .enumerate()
                .fold(0u32, |a, (i, &v)| a | (v as u32) << (16 - 8 * i));
            for i in 0..=c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }
}
