//! The users of a login rule: an htpasswd-style file (`name:hash` lines, `#` comments) of
//! bcrypt hashes (`htpasswd -B`, `$2y$`/`$2b$`), read once at start-up.

use std::collections::HashMap;
use std::path::Path;

/// User names and their bcrypt hashes.
#[derive(Debug, Clone, Default)]
pub struct Users {
    hashes: HashMap<String, String>,
}

/// A hash of no password, checked when the user is unknown so that a wrong name costs as
/// long as a wrong password.
const DECOY: &str = "$2b$10$abcdefghijklmnopqrstuu5Lr0Jw7p6X7ijQ4mZ0FZfVJqP1hY1fW";

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
        Ok(Users { hashes })
    }

    /// Whether `password` is `name`'s; as slow for unknown names as for known ones.
    pub fn check(&self, name: &str, password: &str) -> bool {
        let (hash, known) = match self.hashes.get(name) {
            Some(h) => (h.as_str(), true),
            None => (DECOY, false),
        };
        bcrypt::verify(password, hash).unwrap_or(false) && known
    }
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
    }

    #[test]
    fn other_hashes_are_refused() {
        let e = Users::parse("ana:$apr1$xyz$abc").expect_err("md5");
        assert!(e.contains("line 1"), "{e}");
        assert!(Users::parse("ana").is_err());
    }
}
