//! The users of a login rule: an htpasswd-style file (`name:hash` lines, `#` comments) of
//! bcrypt hashes (`htpasswd -B`, `$2y$`/`$2b$`/`$2a$`) or Argon2 hashes in PHC form
//! (`$argon2id$v=19$m=..,t=..,p=..$salt$hash`, as `argon2` and most frameworks write them),
//! read once at start-up.

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use std::collections::HashMap;
use std::path::Path;

/// User names and their password hashes.
#[derive(Debug, Clone, Default)]
pub struct Users {
    hashes: HashMap<String, String>,
    /// The hash an unknown name is checked against: one of the file's own (its costliest
    /// bcrypt hash, else its first), so that a wrong name costs as long as a wrong
    /// password; a decoy of another cost would tell names apart by timing.
    decoy: String,
}

/// The kinds of hash a users file may hold.
const BCRYPT: [&str; 3] = ["$2a$", "$2b$", "$2y$"];
const ARGON2: [&str; 3] = ["$argon2id$", "$argon2i$", "$argon2d$"];

impl Users {
    /// Reads an htpasswd file; every hash must be bcrypt or Argon2.
    pub fn load(path: &Path) -> Result<Users, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Users::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the text of an htpasswd file.
    pub fn parse(text: &str) -> Result<Users, String> {
        let mut hashes = HashMap::new();
        let mut order = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, hash) = line
                .split_once(':')
                .ok_or_else(|| format!("line {}: not name:hash", n + 1))?;
            let known = BCRYPT.iter().any(|p| hash.starts_with(p))
                || (ARGON2.iter().any(|p| hash.starts_with(p)) && PasswordHash::new(hash).is_ok());
            if !known {
                return Err(format!(
                    "line {}: not a bcrypt (htpasswd -B) or Argon2 (PHC) hash",
                    n + 1
                ));
            }
            hashes.insert(name.to_string(), hash.to_string());
            order.push(hash.to_string());
        }
        let costliest = order
            .iter()
            .max_by_key(|h| cost_of(h))
            .filter(|h| cost_of(h).is_some());
        let decoy = costliest.or(order.first()).cloned().unwrap_or_default();
        Ok(Users { hashes, decoy })
    }

    /// Whether `password` is `name`'s; as slow for unknown names as for known ones.
    pub fn check(&self, name: &str, password: &str) -> bool {
        let (hash, known) = match self.hashes.get(name) {
            Some(h) => (h.as_str(), true),
            None => (self.decoy.as_str(), false),
        };
        verify(password, hash) && known
    }
}

/// Whether `password` matches `hash` (bcrypt or Argon2; false for anything else).
fn verify(password: &str, hash: &str) -> bool {
    if ARGON2.iter().any(|p| hash.starts_with(p)) {
        return PasswordHash::new(hash).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        });
    }
    bcrypt::verify(password, hash).unwrap_or(false)
}

/// The cost of a bcrypt hash (`$2b$NN$...`); None for other hashes.
fn cost_of(hash: &str) -> Option<u32> {
    BCRYPT
        .iter()
        .any(|p| hash.starts_with(p))
        .then(|| hash.get(4..6)?.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, SaltString};

    #[test]
    fn bcrypt_hashes_are_checked() {
        let hash = bcrypt::hash("s3cret", 4).expect("hash");
        let cheap = bcrypt::hash("other", 4).expect("hash");
        let dearer = bcrypt::hash("other", 5).expect("hash");
        let text = format!("# readers\nana:{hash}\nbo:{cheap}\ncy:{dearer}\n");
        let users = Users::parse(&text).expect("users");
        assert!(users.check("ana", "s3cret"));
        assert!(!users.check("ana", "s3creT"));
        assert!(!users.check("bob", "s3cret"));
        assert!(
            !users.check("nobody", "other"),
            "the decoy's password opens nothing"
        );
        assert_eq!(
            users.decoy, dearer,
            "the decoy is the file's costliest hash"
        );
    }

    #[test]
    fn argon2_hashes_are_checked() {
        let salt = SaltString::encode_b64(b"a salt of 16 b..").expect("salt");
        let hash = argon2::Argon2::default()
            .hash_password(b"s3cret", &salt)
            .expect("hash")
            .to_string();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let users = Users::parse(&format!("ana:{hash}\n")).expect("users");
        assert!(users.check("ana", "s3cret"));
        assert!(!users.check("ana", "s3creT"));
        assert!(!users.check("bob", "s3cret"));
        assert_eq!(users.decoy, hash);
    }

    #[test]
    fn other_hashes_are_refused() {
        let e = Users::parse("ana:$apr1$xyz$abc").expect_err("md5");
        assert!(e.contains("line 1"), "{e}");
        assert!(Users::parse("ana").is_err());
        assert!(Users::parse("ana:$argon2id$v=19$not a hash").is_err());
    }
}
