//! Images in object storage: rules that map ids to objects in S3-compatible stores or on
//! HTTP(S) servers with Range support (OBJECT_MAP, or FILESYSTEM_PREFIX given as a URL),
//! the clients (`object_store`), and the small runtime their requests run on.
//!
//! S3 settings come from the usual AWS environment variables (AWS_ACCESS_KEY_ID,
//! AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL, …) and, for what
//! they leave unset, from the AWS shared files (AWS_SHARED_CREDENTIALS_FILE or
//! ~/.aws/credentials, AWS_CONFIG_FILE or ~/.aws/config; profile AWS_PROFILE or default).
//! With no credentials at all, requests go unsigned (public buckets).

pub mod blocks;
pub mod remote;

use crate::error::{Error, Result};
use blocks::BlockCache;
use iipsrv_formats::bytes::ByteSource;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::http::HttpBuilder;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};
use remote::{ObjectAt, RemoteBytes};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::runtime::{Handle, Runtime};

/// One rule: ids starting with `id_prefix/` (every id for an empty prefix) are objects
/// under `base`.
struct Rule {
    id_prefix: String,
    /// The rule's URL with a trailing slash (object URLs are this plus the key's rest).
    base: String,
    store: Arc<dyn ObjectStore>,
    /// The key prefix inside the store (the URL's path).
    key_prefix: String,
}

/// An id resolved to an object (no request made yet).
#[derive(Clone)]
pub(crate) struct ObjectRef {
    /// The object's URL: its identity in every cache key and in purges.
    pub url: String,
    store: Arc<dyn ObjectStore>,
    path: Path,
}

/// What a HEAD request says of an object.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ObjectStat {
    /// Length in bytes.
    pub len: u64,
    /// ETag, when the store gives one.
    pub e_tag: Option<String>,
    /// Last modification time.
    pub mtime: SystemTime,
}

impl ObjectStat {
    /// What tells this version of the object from another: the ETag, else the time.
    pub fn tag(&self) -> String {
        match &self.e_tag {
            Some(t) => t.clone(),
            None => super::nanos(self.mtime).to_string(),
        }
    }
}

/// The object rules, their clients and the cache of object blocks.
pub(crate) struct ObjectStores {
    rules: Vec<Rule>,
    /// Owned so that it lives as long as the stores; shut down without waiting on drop.
    runtime: Option<Runtime>,
    handle: Handle,
    blocks: Arc<BlockCache>,
}

impl Drop for ObjectStores {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl ObjectStores {
    /// The stores of `rules` (id prefix, URL), blocks of `block_kb` KB cached up to
    /// `cache_mb` MB; `None` without rules.
    pub fn new(
        rules: &[(String, String)],
        cache_mb: f64,
        block_kb: u64,
    ) -> Result<Option<ObjectStores>> {
        if rules.is_empty() {
            return Ok(None);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("iipsrv-objects")
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the object-store runtime: {e}")))?;
        let rules = rules
            .iter()
            .map(|(prefix, url)| rule(prefix, url))
            .collect::<Result<Vec<Rule>>>()?;
        Ok(Some(ObjectStores {
            rules,
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            blocks: BlockCache::new(cache_mb, block_kb * 1024),
        }))
    }

    /// The object an id names (id + `suffix` under the first rule whose prefix it has),
    /// or `None` when no rule takes it; an error when it cannot be an object key. Makes no
    /// request. The id has been checked for traversal by the caller.
    pub(crate) fn route(&self, id: &str, suffix: &str) -> Option<Result<ObjectRef>> {
        let id = id.trim_start_matches('/');
        let rule = self.rules.iter().find(|r| {
            r.id_prefix.is_empty()
                || id
                    .strip_prefix(r.id_prefix.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })?;
        let rest = id[rule.id_prefix.len()..].trim_start_matches('/');
        let key = format!("{}{rest}{suffix}", rule.key_prefix);
        Some(match Path::parse(&key) {
            Ok(path) if !rest.is_empty() => Ok(ObjectRef {
                url: format!("{}{rest}{suffix}", rule.base),
                store: rule.store.clone(),
                path,
            }),
            _ => Err(Error::image_not_found(id)),
        })
    }

    /// Asks the store what the object is now (one HEAD request).
    pub fn stat(&self, object: &ObjectRef) -> Result<ObjectStat> {
        let (store, path) = (object.store.clone(), object.path.clone());
        crate::telemetry::object_request("head");
        let meta = remote::run(&self.handle, async move { store.head(&path).await })?;
        match meta {
            Ok(m) => Ok(ObjectStat {
                len: m.size,
                e_tag: m.e_tag,
                mtime: m.last_modified.into(),
            }),
            Err(object_store::Error::NotFound { .. }) => {
                Err(Error::image_not_found(object.path.as_ref()))
            }
            Err(e) => Err(remote::remote_error(e).into()),
        }
    }

    /// The bytes of the object as `stat` found it, read through the block cache.
    pub fn bytes(&self, object: &ObjectRef, stat: &ObjectStat) -> Arc<dyn ByteSource> {
        let version =
            xxhash_rust::xxh3::xxh3_64(format!("{}|{}", object.url, stat.tag()).as_bytes());
        let at = ObjectAt {
            store: object.store.clone(),
            path: object.path.clone(),
            len: stat.len,
            e_tag: stat.e_tag.clone(),
            version,
        };
        Arc::new(RemoteBytes::new(
            at,
            self.blocks.clone(),
            self.handle.clone(),
        ))
    }

    /// Drops every cached block (SIGHUP).
    pub fn clear(&self) {
        self.blocks.clear();
    }
}

/// The client of one rule.
fn rule(id_prefix: &str, url: &str) -> Result<Rule> {
    let bad = |e: String| Error::bad(format!("object store {url}: {e}"));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("not a URL".into()))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() {
        return Err(bad("names no bucket or host".into()));
    }
    let key_prefix = match path.trim_matches('/') {
        "" => String::new(),
        p => format!("{p}/"),
    };
    let options = ClientOptions::new()
        .with_timeout(Duration::from_secs(30))
        .with_connect_timeout(Duration::from_secs(5));
    let retry = RetryConfig {
        max_retries: 2,
        retry_timeout: Duration::from_secs(10),
        ..RetryConfig::default()
    };
    let store: Arc<dyn ObjectStore> = if scheme == "s3" {
        Arc::new(
            s3_builder(&aws_shared_settings(), options)
                .with_bucket_name(authority)
                .with_retry(retry)
                .build()
                .map_err(|e| bad(e.to_string()))?,
        )
    } else {
        Arc::new(
            HttpBuilder::new()
                .with_url(format!("{scheme}://{authority}"))
                .with_retry(retry)
                .with_client_options(options.with_allow_http(scheme == "http"))
                .build()
                .map_err(|e| bad(e.to_string()))?,
        )
    };
    Ok(Rule {
        id_prefix: id_prefix.to_string(),
        base: format!("{scheme}://{authority}/{key_prefix}"),
        store,
        key_prefix,
    })
}

/// An S3 builder with client `options`, the shared files' `settings` (name, value), then
/// the environment's AWS_* variables over them; plain HTTP allowed for an http://
/// endpoint; unsigned when no credentials are found anywhere.
fn s3_builder(settings: &[(String, String)], options: ClientOptions) -> AmazonS3Builder {
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let mut builder = AmazonS3Builder::new().with_client_options(options);
    for (name, value) in settings.iter().chain(&env) {
        if let Ok(key) = name.parse::<AmazonS3ConfigKey>() {
            builder = builder.with_config(key, value);
        }
    }
    let endpoint = builder.get_config_value(&AmazonS3ConfigKey::Endpoint);
    if endpoint.is_some_and(|e| e.starts_with("http://")) {
        builder = builder.with_allow_http(true);
    }
    let keyed = builder
        .get_config_value(&AmazonS3ConfigKey::AccessKeyId)
        .is_some();
    let roles = env.iter().any(|(k, _)| {
        k.starts_with("aws_container_credentials") || k == "aws_web_identity_token_file"
    });
    if !keyed && !roles {
        builder = builder.with_skip_signature(true);
    }
    builder
}

/// The settings of the AWS profile (AWS_PROFILE, else `default`) in the shared
/// credentials and config files, as (name, value) in lower case.
fn aws_shared_settings() -> Vec<(String, String)> {
    let home = std::env::var("HOME").unwrap_or_default();
    let file = |var: &str, default: &str| {
        std::env::var(var).unwrap_or_else(|_| format!("{home}/.aws/{default}"))
    };
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let read = |path: String| std::fs::read_to_string(path).unwrap_or_default();
    let mut settings = ini_section(&read(file("AWS_CONFIG_FILE", "config")), &profile, true);
    settings.extend(ini_section(
        &read(file("AWS_SHARED_CREDENTIALS_FILE", "credentials")),
        &profile,
        false,
    ));
    settings
}

/// The `name = value` lines of section `profile` of an AWS INI file (`[profile NAME]` in
/// the config file, except for `default`; `[NAME]` in the credentials file).
fn ini_section(text: &str, profile: &str, config_file: bool) -> Vec<(String, String)> {
    let wanted = if config_file && profile != "default" {
        format!("profile {profile}")
    } else {
        profile.to_string()
    };
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == wanted;
        } else if let (true, Some((k, v))) = (inside, line.split_once('=')) {
            if !k.trim_start().starts_with(['#', ';']) {
                out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_route_to_keys_without_requests() {
        let rules = vec![
            ("web".to_string(), "http://127.0.0.1:9/base".to_string()),
            (String::new(), "s3://bucket/pre/fix/".to_string()),
        ];
        let stores = ObjectStores::new(&rules, 1.0, 64)
            .expect("ok")
            .expect("some");
        let o = stores
            .route("web/a/b", ".tif")
            .expect("routed")
            .expect("valid");
        assert_eq!(o.url, "http://127.0.0.1:9/base/a/b.tif");
        assert_eq!(o.path.as_ref(), "base/a/b.tif");
        let o = stores.route("/webx/c", "").expect("routed").expect("valid");
        assert_eq!(o.url, "s3://bucket/pre/fix/webx/c");
        assert_eq!(o.path.as_ref(), "pre/fix/webx/c");
        assert!(stores.route("a//b", "").expect("routed").is_err());
    }

    #[test]
    fn aws_files_sections() {
        let text = "[default]\naws_access_key_id = A\n# c\n[profile x]\nregion=eu\n[x]\naws_secret_access_key=S\n";
        assert_eq!(
            ini_section(text, "default", false),
            vec![("aws_access_key_id".into(), "A".into())]
        );
        assert_eq!(
            ini_section(text, "x", true),
            vec![("region".into(), "eu".into())]
        );
        assert_eq!(
            ini_section(text, "x", false),
            vec![("aws_secret_access_key".into(), "S".into())]
        );
    }

    #[test]
    fn a_dead_store_is_a_clear_error() {
        let rules = vec![(String::new(), "http://127.0.0.1:1/".to_string())];
        let stores = ObjectStores::new(&rules, 1.0, 64)
            .expect("ok")
            .expect("some");
        let o = stores.route("a.tif", "").expect("routed").expect("valid");
        let e = stores.stat(&o).err().expect("fails");
        assert_eq!(e.status(), 502, "{e}");
    }
}
