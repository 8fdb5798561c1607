//! The access policy (AUTH_POLICY): a TOML file of rules matched in order against image
//! ids, each saying how much of its images anyone may see (`open`, `degraded` to a long
//! side, `restricted`) and how fuller access is granted (a login or terms page, kiosk
//! addresses, an identity asserted by a trusted proxy). Parsed once at start-up into the
//! typed [`Policy`]; no I/O after that. The example is `examples/auth-policy.toml`.

use super::users::Users;
use crate::forwarded::Trusted;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The policy file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    session: SessionFile,
    signed_urls: Option<SignedFile>,
    tokens: Option<TokenFile>,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionFile {
    hours: Option<f64>,
    origins: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedFile {
    secret: String,
    max_hours: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    audience: String,
    hs256_secret: Option<String>,
    rs256_public_key: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    name: Option<String>,
    ids: Ids,
    access: String,
    max_size: Option<u32>,
    profile: Option<String>,
    users: Option<PathBuf>,
    addresses: Option<Vec<String>>,
    header: Option<String>,
    label: Option<String>,
    heading: Option<String>,
    note: Option<String>,
    confirm_label: Option<String>,
}

/// One glob or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Ids {
    One(String),
    Many(Vec<String>),
}

/// How much of a rule's images someone without access may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Everything, to everyone.
    Open,
    /// At most this many pixels on the long side.
    Degraded(u32),
    /// Nothing.
    Restricted,
}

/// How a rule grants full access: the profile of its IIIF access service.
#[derive(Debug, Clone)]
pub enum Grantor {
    /// `active`: our login page, checked against an htpasswd file of bcrypt hashes.
    Login(Users),
    /// `active` without users: a page whose button accepts the terms.
    Terms,
    /// `kiosk`: client addresses in these ranges.
    Kiosk(Trusted),
    /// `external`: this header (lower case), believed from TRUSTED_PROXIES only.
    External(String),
}

impl Grantor {
    /// The IIIF AuthAccessService2 profile.
    pub fn profile(&self) -> &'static str {
        match self {
            Grantor::Login(_) | Grantor::Terms => "active",
            Grantor::Kiosk(_) => "kiosk",
            Grantor::External(_) => "external",
        }
    }
}

/// The texts a rule's access service shows (IIIF label, heading, note, confirmLabel).
#[derive(Debug, Clone, Default)]
pub struct Texts {
    /// `label`.
    pub label: String,
    /// `heading`.
    pub heading: Option<String>,
    /// `note`.
    pub note: Option<String>,
    /// `confirmLabel`.
    pub confirm_label: Option<String>,
}

/// One rule of the policy.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its name: in the URLs of its services and its cookie's name.
    pub name: String,
    ids: Vec<glob::Pattern>,
    /// What someone without access sees.
    pub level: Level,
    /// How access is granted (None for open rules).
    pub grantor: Option<Grantor>,
    /// The texts of its access service.
    pub texts: Texts,
}

/// The keys of bearer tokens (JWT) and the audience they must name.
#[derive(Clone)]
pub struct TokenKeys {
    /// The `aud` every token must carry.
    pub audience: String,
    /// HS256 shared secret.
    pub hs256: Option<jsonwebtoken::DecodingKey>,
    /// RS256 public key.
    pub rs256: Option<jsonwebtoken::DecodingKey>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// The parsed policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The rules, in the order they are tried.
    pub rules: Vec<Rule>,
    /// How long a session lasts.
    pub session_ttl: Duration,
    /// Origins the token service answers (None: any).
    pub origins: Option<Vec<String>>,
    /// The shared secret of signed URLs.
    pub signing_secret: Option<Vec<u8>>,
    /// The furthest a signed URL's expiry may lie ahead, in seconds (signed_urls.max_hours,
    /// default a week): a link signed to last for ever is refused.
    pub signed_max_lifetime: u64,
    /// Bearer token keys.
    pub tokens: Option<TokenKeys>,
}

/// Whether a glob matches an id: `*` within a path segment, `**` across them.
pub(crate) const MATCH: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl Policy {
    /// Reads and parses a policy file; the error is a one-line reason.
    pub fn load(path: &Path) -> Result<Policy, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Policy::parse(&text, base)
    }

    /// Parses the text of a policy file; files it names are relative to `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Policy, String> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| one_line(&e.to_string()))?;
        let mut rules = Vec::with_capacity(file.rules.len());
        for (i, r) in file.rules.into_iter().enumerate() {
            let rule = rule(r, i + 1, base).map_err(|e| format!("rule {}: {e}", i + 1))?;
            if rules.iter().any(|o: &Rule| o.name == rule.name) {
                return Err(format!("rule {}: the name {:?} is taken", i + 1, rule.name));
            }
            rules.push(rule);
        }
        let hours = file.session.hours.unwrap_or(8.0);
        if !(hours.is_finite() && hours > 0.0 && hours <= 24.0 * 366.0) {
            return Err("session.hours must be above 0 and at most a year".into());
        }
        let (signing_secret, signed_max_lifetime) = signed_urls(file.signed_urls)?;
        Ok(Policy {
            rules,
            session_ttl: Duration::from_secs_f64(hours * 3600.0),
            origins: file.session.origins,
            signing_secret,
            signed_max_lifetime,
            tokens: file.tokens.map(|t| token_keys(t, base)).transpose()?,
        })
    }

    /// The first rule whose globs match `id` in any of its [`forms`] (None: the id is
    /// open).
    pub fn rule_for(&self, id: &str) -> Option<&Rule> {
        let forms = forms(id);
        self.rules.iter().find(|r| {
            r.ids
                .iter()
                .any(|g| forms.iter().any(|f| g.matches_with(f, MATCH)))
        })
    }

    /// Whether a rule believes what a proxy says of the client (its address for a kiosk,
    /// its identity for external access).
    pub fn believes_proxies(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.grantor, Some(Grantor::Kiosk(_) | Grantor::External(_))))
    }

    /// The rule named `name`.
    pub fn rule_named(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn token_keys(t: TokenFile, base: &Path) -> Result<TokenKeys, String> {
    let hs256 = t
        .hs256_secret
        .map(|s| match s.len() {
            0..32 => Err("tokens.hs256_secret must be at least 32 characters".to_string()),
            _ => Ok(jsonwebtoken::DecodingKey::from_secret(s.as_bytes())),
        })
        .transpose()?;
    let rs256 = t
        .rs256_public_key
        .map(|p| {
            let path = base.join(p);
            let pem =
                std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            jsonwebtoken::DecodingKey::from_rsa_pem(&pem)
                .map_err(|e| format!("{} is not an RSA public key: {e}", path.display()))
        })
        .transpose()?;
    if hs256.is_none() && rs256.is_none() {
        return Err("tokens needs hs256_secret or rs256_public_key".into());
    }
    Ok(TokenKeys {
        audience: t.audience,
        hs256,
        rs256,
    })
}

/// The level a rule's `access` and `max_size` give.
fn level_of(access: &str, max_size: Option<u32>) -> Result<Level, String> {
    match (access, max_size) {
        ("open", None) => Ok(Level::Open),
        ("degraded", Some(n)) if n > 0 => Ok(Level::Degraded(n)),
        ("degraded", _) => Err("degraded needs max_size (pixels, above 0)".into()),
        ("restricted", None) => Ok(Level::Restricted),
        ("open" | "restricted", Some(_)) => Err("max_size is for degraded rules".into()),
        (a, _) => Err(format!("access {a:?}: open, degraded or restricted")),
    }
}

/// How a rule of `level` grants access, from its `profile` and the settings of that
/// profile (the users file is read here).
fn grantor_of(level: Level, r: &RuleFile, base: &Path) -> Result<Option<Grantor>, String> {
    Ok(match (level, r.profile.as_deref()) {
        (Level::Open, None) => None,
        (Level::Open, Some(_)) => return Err("an open rule grants nothing: no profile".into()),
        (_, Some("active")) => Some(match &r.users {
            Some(u) => Grantor::Login(Users::load(&base.join(u))?),
            None => Grantor::Terms,
        }),
        (_, Some("kiosk")) => {
            let list = r.addresses.as_deref().unwrap_or_default().join(",");
            if list.trim().is_empty() {
                return Err("kiosk needs addresses (CIDR ranges)".into());
            }
            let nets = Trusted::parse(&list).map_err(|e| format!("addresses: {e}"))?;
            Some(Grantor::Kiosk(nets))
        }
        (_, Some("external")) => Some(Grantor::External(
            r.header
                .as_deref()
                .unwrap_or("x-remote-user")
                .to_ascii_lowercase(),
        )),
        (_, p) => {
            return Err(format!(
                "profile {:?}: active, kiosk or external",
                p.unwrap_or("")
            ))
        }
    })
}

/// The secret of signed URLs and the longest lifetime they may claim (seconds).
fn signed_urls(file: Option<SignedFile>) -> Result<(Option<Vec<u8>>, u64), String> {
    let Some(file) = file else {
        return Ok((None, 0));
    };
    if file.secret.len() < 16 {
        return Err("signed_urls.secret must be at least 16 characters".into());
    }
    let hours = file.max_hours.unwrap_or(24.0 * 7.0);
    if !(hours.is_finite() && hours > 0.0 && hours <= 24.0 * 3660.0) {
        return Err("signed_urls.max_hours must be above 0 and at most ten years".into());
    }
    Ok((Some(file.secret.into_bytes()), (hours * 3600.0) as u64))
}

fn rule(r: RuleFile, number: usize, base: &Path) -> Result<Rule, String> {
    let name = r.name.clone().unwrap_or_else(|| format!("rule{number}"));
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "name {name:?}: letters, digits, - and _ only (at most 64)"
        ));
    }
    let globs = match &r.ids {
        Ids::One(g) => std::slice::from_ref(g),
        Ids::Many(g) => g.as_slice(),
    };
    let ids = globs
        .iter()
        .map(|g| glob::Pattern::new(g).map_err(|e| format!("ids {g:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let level = level_of(&r.access, r.max_size)?;
    let grantor = grantor_of(level, &r, base)?;
    let default_label = match &grantor {
        Some(Grantor::Login(_)) => "Log in",
        Some(Grantor::Terms) => "Accept the terms",
        _ => "Access",
    };
    let texts = Texts {
        label: r.label.unwrap_or_else(|| default_label.into()),
        heading: r.heading,
        note: r.note,
        confirm_label: r.confirm_label,
    };
    Ok(Rule {
        name,
        ids,
        level,
        grantor,
        texts,
    })
}

/// The spellings of `id` a rule must see: the id as the file system reads it (no leading
/// `/`, no empty or `.` segments: `/a//./b.tif` opens `a/b.tif`), and, for a slide's
/// associated image or a page (`a.svs;label`, `a.tif;3`), the image it belongs to. A rule
/// written for the image covers every spelling of it.
fn forms(id: &str) -> Vec<String> {
    let canonical = id
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect::<Vec<_>>()
        .join("/");
    let owner = canonical
        .rsplit_once(';')
        .map(|(image, _)| image.to_string());
    let mut forms = vec![canonical];
    forms.extend(owner);
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Policy, String> {
        Policy::parse(text, Path::new("."))
    }

    #[test]
    fn rules_match_in_order_with_globs() {
        let p = parse(
            r#"
            [[rule]]
            ids = "public/**"
            access = "open"
            [[rule]]
            name = "reading-room"
            ids = ["ms/*.tif", "ms/*.jp2"]
            access = "degraded"
            max_size = 400
            profile = "active"
            [[rule]]
            ids = "**"
            access = "restricted"
            profile = "kiosk"
            addresses = ["10.0.0.0/8"]
            "#,
        )
        .expect("policy");
        assert_eq!(
            p.rule_for("public/a/b.tif").map(|r| r.level),
            Some(Level::Open)
        );
        let ms = p.rule_for("ms/x.tif").expect("rule");
        assert_eq!(
            (ms.name.as_str(), ms.level),
            ("reading-room", Level::Degraded(400))
        );
        assert!(matches!(ms.grantor, Some(Grantor::Terms)));
        // `*` stays within a segment
        assert_eq!(
            p.rule_for("ms/sub/x.tif").map(|r| r.name.as_str()),
            Some("rule3")
        );
        assert_eq!(
            p.rule_for("other.tif").map(|r| r.level),
            Some(Level::Restricted)
        );
        assert_eq!(p.session_ttl, Duration::from_secs(8 * 3600));
    }

    #[test]
    fn no_rule_means_open() {
        let p = parse("[[rule]]\nids = \"a/*\"\naccess = \"restricted\"\nprofile = \"external\"")
            .expect("policy");
        assert!(p.rule_for("b/c.tif").is_none());
        match &p.rule_for("a/c.tif").and_then(|r| r.grantor.clone()) {
            Some(Grantor::External(h)) => assert_eq!(h, "x-remote-user"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        for (text, says) in [
            ("[[rule]]\nids = \"a\"\naccess = \"degraded\"\nprofile = \"active\"", "max_size"),
            ("[[rule]]\nids = \"a\"\naccess = \"secret\"", "open, degraded or restricted"),
            ("[[rule]]\nids = \"a\"\naccess = \"restricted\"\nprofile = \"psychic\"", "profile"),
            ("[[rule]]\nids = \"[\"\naccess = \"open\"", "ids"),
            ("[[rule]]\nname = \"a b\"\nids = \"a\"\naccess = \"open\"", "name"),
            ("[signed_urls]\nsecret = \"short\"", "16 characters"),
            ("[tokens]\naudience = \"x\"", "hs256_secret"),
            ("[[rule]]\nids = \"a\"\naccess = \"restricted\"\nprofile = \"kiosk\"\naddresses = [\"nowhere\"]", "addresses"),
            ("[[rule]]\nids = \"a\"\naccess = \"open\"\nbogus = 1", "bogus"),
            ("[[rule]]\nids = \"a\"\naccess = \"restricted\"\nprofile = \"kiosk\"", "addresses"),
            ("[[rule]]\nids = \"a\"\naccess = \"restricted\"\nprofile = \"active\"\nusers = \"/no/such/file\"", "cannot read"),
        ] {
            let e = parse(text).expect_err(text);
            assert!(e.contains(says), "{text:?}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
