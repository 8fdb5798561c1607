//! Signed URLs, for portals that authorise their users themselves: the URL's path and
//! query (ending in `expires=<unix seconds>`) followed by `&signature=<hex>`, the
//! HMAC-SHA256 of `path?query` under a shared secret. Checked in constant time; a changed
//! path, query or expiry, or a past expiry, is refused.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The parameter carrying the signature; it must be the query's last.
const SIGNATURE: &str = "signature=";

/// Signs `path` with `query` (which the signer ends with `expires=N`): the query to send.
pub fn sign(secret: &[u8], path: &str, query: &str) -> String {
    let mac = mac(secret, path, query).finalize().into_bytes();
    format!("{query}&{SIGNATURE}{}", hex::encode(mac))
}

fn mac(secret: &[u8], path: &str, query: &str) -> HmacSha256 {
    // Any key length is accepted by HMAC.
    let mut mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(path.as_bytes());
    mac.update(b"?");
    mac.update(query.as_bytes());
    mac
}

/// Whether the request at `path` with `query` carries a valid signature, unexpired at
/// `now` (unix seconds) and expiring within `max_lifetime` seconds of it (a leaked link
/// that never expires is refused).
pub fn verify(secret: &[u8], path: &str, query: &str, now: u64, max_lifetime: u64) -> bool {
    let Some((signed, hex_sig)) = query.rsplit_once(&format!("&{SIGNATURE}")) else {
        return false;
    };
    let Ok(given) = hex::decode(hex_sig) else {
        return false;
    };
    let expires = signed
        .split('&')
        .filter_map(|p| p.strip_prefix("expires="))
        .next_back()
        .and_then(|e| e.parse::<u64>().ok());
    match expires {
        Some(t) if t > now && t - now <= max_lifetime => {
            mac(secret, path, signed).verify_slice(&given).is_ok()
        }
        _ => false,
    }
}

/// Whether a query carries a signature at all (only then is it checked).
pub fn is_signed(query: &str) -> bool {
    query.contains(&format!("&{SIGNATURE}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"a shared secret of some length";

    #[test]
    fn a_signed_url_verifies_until_it_expires() {
        let q = sign(KEY, "/iiif/a.tif/full/max/0/default.jpg", "expires=2000");
        assert!(is_signed(&q));
        assert!(verify(
            KEY,
            "/iiif/a.tif/full/max/0/default.jpg",
            &q,
            1999,
            u64::MAX
        ));
        assert!(!verify(
            KEY,
            "/iiif/a.tif/full/max/0/default.jpg",
            &q,
            2000,
            u64::MAX
        ));
        // expiring further out than the policy allows
        assert!(!verify(
            KEY,
            "/iiif/a.tif/full/max/0/default.jpg",
            &q,
            1000,
            999
        ));
        assert!(verify(
            KEY,
            "/iiif/a.tif/full/max/0/default.jpg",
            &q,
            1000,
            1000
        ));
    }

    #[test]
    fn changes_are_refused() {
        let path = "/iiif/a.tif/full/200,/0/default.jpg";
        let q = sign(KEY, path, "expires=2000");
        assert!(!verify(
            KEY,
            "/iiif/b.tif/full/200,/0/default.jpg",
            &q,
            1,
            u64::MAX
        ));
        assert!(!verify(
            KEY,
            "/iiif/a.tif/full/max/0/default.jpg",
            &q,
            1,
            u64::MAX
        ));
        let later = q.replace("expires=2000", "expires=9000");
        assert!(!verify(KEY, path, &later, 1, u64::MAX));
        assert!(!verify(b"another secret entirely", path, &q, 1, u64::MAX));
        let mut flipped = q.clone();
        let last = flipped
            .pop()
            .map_or('0', |c| if c == '0' { '1' } else { '0' });
        flipped.push(last);
        assert!(!verify(KEY, path, &flipped, 1, u64::MAX));
        assert!(!verify(KEY, path, "expires=2000", 1, u64::MAX));
        assert!(!verify(KEY, path, "expires=2000&signature=zz", 1, u64::MAX));
        // a signature without an expiry never verifies
        let q = sign(KEY, path, "FIF=a.tif");
        assert!(!verify(KEY, path, &q, 1, u64::MAX));
    }
}
