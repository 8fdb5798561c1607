//! Prometheus metrics (`/metrics`): requests by protocol and status, latency histograms,
//! bytes out, answer-cache hits and misses per tier, requests in flight and refused by
//! admission control. Recorded through the `metrics` facade; rendered by
//! `metrics-exporter-prometheus` (no HTTP listener of its own: the answer goes through our
//! front ends like any other).

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Latency buckets, seconds: from a cached tile to a large render.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The process's recorder, installed on first use; `None` when another recorder was
/// installed first (metrics are then not ours to render).
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("iipsrv_request_duration_seconds".into()),
                    &BUCKETS,
                )
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}

/// How often recorded latencies are folded into the histograms. The exporter keeps every
/// sample until then: without this, a server nobody scrapes grew by every request's sample
/// (about 15 MB a minute under a soak at thousands of requests a second).
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the recorder (at start-up, so the first requests are counted) and starts its
/// upkeep thread (once per process).
pub fn init() {
    static UPKEEP: std::sync::Once = std::sync::Once::new();
    let Some(h) = handle() else { return };
    UPKEEP.call_once(|| {
        let upkeep = move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            h.run_upkeep();
        };
        if let Err(e) = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(upkeep)
        {
            tracing::warn!("metrics upkeep thread not started: {e}");
        }
    });
}

/// The metrics in Prometheus text format.
pub fn render() -> String {
    handle().map(|h| h.render()).unwrap_or_default()
}

/// One answered request.
pub fn request(protocol: &'static str, status: u16, bytes: usize, seconds: f64) {
    let status = status.to_string();
    counter!("iipsrv_requests_total", "protocol" => protocol, "status" => status).increment(1);
    histogram!("iipsrv_request_duration_seconds", "protocol" => protocol).record(seconds);
    counter!("iipsrv_response_bytes_total", "protocol" => protocol).increment(bytes as u64);
}

/// A lookup in one answer-cache tier (`ram` or `memcached`).
pub fn cache(tier: &'static str, hit: bool) {
    let outcome = if hit { "hit" } else { "miss" };
    counter!("iipsrv_cache_lookups_total", "tier" => tier, "outcome" => outcome).increment(1);
}

/// Requests sent to an object store or HTTP image server (`get`: one ranged GET,
/// `head`: one HEAD), so that a deployment sees what its store bills.
#[cfg(feature = "object-storage")]
pub(crate) fn object_request(kind: &'static str) {
    counter!("iipsrv_object_requests_total", "kind" => kind).increment(1);
}

/// Requests being worked on by the handler pool.
pub(crate) fn in_flight(delta: f64) {
    gauge!("iipsrv_requests_in_flight").increment(delta);
}

/// Requests running on a worker thread right now (the decode pool's busy count; those
/// in flight but not working are queued for a thread).
pub(crate) fn working(delta: f64) {
    gauge!("iipsrv_requests_working").increment(delta);
}

/// An answer evicted from a cache tier to make room.
pub(crate) fn evicted(tier: &'static str) {
    counter!("iipsrv_cache_evictions_total", "tier" => tier).increment(1);
}

/// A request refused by admission control (503).
pub(crate) fn rejected() {
    counter!("iipsrv_requests_rejected_total").increment(1);
}

/// Images held open by the registry, and the bytes of pixels the flat ones among them
/// hold in memory.
pub(crate) fn open_images((n, bytes): (usize, u64)) {
    gauge!("iipsrv_open_images").set(n as f64);
    gauge!("iipsrv_open_image_bytes").set(bytes as f64);
}

/// How far the running pyramid build has come, 0-1 (0 when none runs).
pub(crate) fn pyramid_progress(fraction: f64) {
    gauge!("iipsrv_pyramid_build_progress").set(fraction);
}

/// A pyramid build ended: `built`, `failed`, or `elsewhere` (another instance holds it).
pub(crate) fn pyramid_built(outcome: &'static str) {
    counter!("iipsrv_pyramid_builds_total", "outcome" => outcome).increment(1);
}

/// Bytes of the pyramids kept in PYRAMID_CACHE_DIR.
pub(crate) fn pyramid_cache_bytes(bytes: u64) {
    gauge!("iipsrv_pyramid_cache_bytes").set(bytes as f64);
}
