//! The users of a login rule: an htpasswd-style file (`name:hash` lines, `#` comments) of
//! bcrypt hashes (`htpasswd -B`, `$2y$`/`$2b$`), read once at start-up.

use std::collections::HashMap;
use std::path::Path;

/// User names and their bcrypt hashes.
#[derive(Debug, Clone, Default)]
pub struct Users {
    hashes: HashMap<String, String>,
    /// A hash of a random password at the file's highest cost, checked when the user is
    /// unknown so that a wrong name costs as long as a wrong password (a decoy of another
    /// cost would tell names apart by timing).
    decoy: String,
}

impl Users {
    /// Reads an htpasswd file; every hash must be bcrypt.
    pub fn load(path: &Path) -> Result<Users, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Users::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the text of an htpasswd file.
    pub fn parse(text: &str) -> Result<Users, String> {
        let mut hashes = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, hash) = line
                .split_once(':')
                .ok_or_else(|| format!("line {}: not name:hash", n + 1))?;
            if !["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
                return Err(format!("line {}: not a bcrypt hash (htpasswd -B)", n + 1));
            }
            hashes.insert(name.to_string(), hash.to_string());
        }
        let cost = hashes.values().filter_map(|h| cost_of(h)).max();
        let decoy = bcrypt::hash(secret_text(), cost.unwrap_or(bcrypt::DEFAULT_COST))
            .map_err(|e| format!("cannot make a bcrypt hash: {e}"))?;
        Ok(Users { hashes, decoy })
    }

    /// Whether `password` is `name`'s; as slow for unknown names as for known ones.
    pub fn check(&self, name: &str, password: &str) -> bool {
        let (hash, known) = match self.hashes.get(name) {
            Some(h) => (h.as_str(), true),
            None => (self.decoy.as_str(), false),
        };
        bcrypt::verify(password, hash).unwrap_or(false) && known
    }
}

/// The cost of a bcrypt hash (`$2b$NN$...`).
fn cost_of(hash: &str) -> Option<u32> {
    hash.get(4..6)?.parse().ok()
}

/// A password nobody knows, for the decoy hash.
fn secret_text() -> String {
    let mut b = [0u8; 16];
    // Without system randomness the decoy is still a hash nobody has a password for.
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_hashes_are_checked() {
        let hash = bcrypt::hash("s3cret", 4).expect("hash");
        let users = Users::parse(&format!("# readers\nana:{hash}\n")).expect("users");
        assert!(users.check("ana", "s3cret"));
        assert!(!users.check("ana", "s3creT"));
        assert!(!users.check("bob", "s3cret"));
        assert_eq!(
            cost_of(&users.decoy),
            Some(4),
            "the decoy costs what the file's hashes do"
        );
    }

    #[test]
    fn other_hashes_are_refused() {
        let e = Users::parse("ana:$apr1$xyz$abc").expect_err("md5");
        assert!(e.contains("line 1"), "{e}");
        assert!(Users::parse("ana").is_err());
    }
}
