//! `iipsrv` and `iipsrv serve`: sets up logging and the worker pools, opens the image
//! root (the generated demo image when FILESYSTEM_PREFIX is unset), builds the application
//! and runs the front ends until a stop signal; and `iipsrv purge`, which builds the same
//! application to reach the shared tier.

use iipsrv_server::front::dispatch::Dispatcher;
use iipsrv_server::front::lifecycle::{self, Lifecycle};
use iipsrv_server::front::{fastcgi, http};
use iipsrv_server::handler::App;
use iipsrv_server::settings::Config;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// The default HTTP address when there is no FastCGI socket.
const DEFAULT_HTTP: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);

/// Runs the server with `config` until it is stopped.
pub(crate) fn run(config: Config) -> ExitCode {
    // Before any thread starts: SVT-AV1 logs every encode to standard error unless told.
    iipsrv_formats::codec::avif::quiet_svt();
    iipsrv_server::logging::init(config.verbosity, config.logfile.as_deref());
    match start(&config) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("iipsrv: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Checks the settings, builds the pools and the application, then serves.
fn start(config: &Config) -> Result<ExitCode, String> {
    let settings = config.settings().map_err(|e| e.to_string())?;
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let threads = config
        .omp_num_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    iipsrv_server::front::arenas::limit(threads);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .start_handler(|_| iipsrv_server::front::priority::render_thread())
        .build_global()
        .map_err(|e| format!("cannot start worker threads: {e}"))?;
    let root = image_root(config)?;
    let fronts = Fronts {
        http: config.http,
        bind: config.bind.clone(),
        backlog: config.backlog,
        fcgi_limits: config.fastcgi.limits(),
        fcgi_patience: config.fastcgi.read_timeout(),
        viewer_page: viewer_page(settings.web.viewer, config.filesystem_prefix.is_none()),
    };
    let app = Arc::new(App::new(settings, root.as_deref()).map_err(|e| e.to_string())?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .max_blocking_threads(threads * 4)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let dispatcher = Dispatcher::new(app.clone(), threads * 64);
    let code = runtime.block_on(fronts.serve(dispatcher, app));
    // The requests in flight have drained (or their grace period is over): a worker still
    // blocked in a read must not hold the exit up, as dropping the runtime would.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

/// The image directory: FILESYSTEM_PREFIX when it is one, none when it is a URL, else the
/// demo directory (written on first use).
fn image_root(config: &Config) -> Result<Option<PathBuf>, String> {
    match (config.local_prefix(), &config.filesystem_prefix) {
        (Some(p), _) => Ok(Some(p.to_path_buf())),
        (None, Some(_)) => Ok(None),
        (None, None) => {
            let dir = iipsrv_server::demo::ensure_demo_dir()
                .map_err(|e| format!("cannot write the demo image: {e}"))?;
            tracing::info!("no FILESYSTEM_PREFIX: serving the generated demo image");
            Ok(Some(dir))
        }
    }
}

/// Where a person should point a browser, printed once the address is known: the demo
/// image in the viewer, or the index page; nothing with the viewer off.
fn viewer_page(viewer: bool, demo: bool) -> Option<String> {
    match (viewer, demo) {
        (false, _) => None,
        (true, true) => Some(format!("viewer/{}", iipsrv_server::demo::DEMO_NAME)),
        (true, false) => Some(String::new()),
    }
}

/// What the front ends listen on.
struct Fronts {
    http: Option<SocketAddr>,
    bind: Option<String>,
    backlog: i32,
    fcgi_limits: iipsrv_core::fastcgi::Limits,
    fcgi_patience: std::time::Duration,
    viewer_page: Option<String>,
}

impl Fronts {
    /// Serves until a stop signal, then waits for the requests in flight.
    async fn serve(self, dispatcher: Dispatcher, app: Arc<App>) -> Result<ExitCode, String> {
        let lifecycle = Lifecycle::new();
        let fcgi = match &self.bind {
            Some(spec) => Some(
                fastcgi::bind(spec, self.backlog)
                    .map_err(|e| format!("cannot bind FastCGI socket {spec}: {e}"))?,
            ),
            None => fastcgi::inherited(),
        };
        let http_addr = match (self.http, &fcgi) {
            (Some(a), _) => Some(a),
            (None, None) => Some(DEFAULT_HTTP),
            (None, Some(_)) => None,
        };
        let mut servers = tokio::task::JoinSet::new();
        if let Some(listener) = fcgi {
            tracing::info!("FastCGI on {}", listener.describe());
            eprintln!("iipsrv: FastCGI on {}", listener.describe());
            let stop = lifecycle.stop_handle();
            servers.spawn(fastcgi::serve(
                dispatcher.clone(),
                listener,
                self.fcgi_limits,
                self.fcgi_patience,
                stop,
            ));
        }
        if let Some(addr) = http_addr {
            let listener = self.listen(addr).await?;
            servers.spawn(http::serve(dispatcher, listener, lifecycle.stop_handle()));
        }
        lifecycle::handle_signals(&lifecycle, app).await;
        while servers.join_next().await.is_some() {}
        if !lifecycle.drained(lifecycle::DRAIN_TIMEOUT).await {
            tracing::warn!("stopped with {} connections still open", lifecycle.live());
        }
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    }

    /// The HTTP listener on `addr`, announced on standard error with the viewer's page.
    async fn listen(&self, addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr().unwrap_or(addr);
        tracing::info!("listening on http://{local}/");
        eprintln!("iipsrv: serving http://{local}/");
        if let Some(page) = &self.viewer_page {
            eprintln!("iipsrv: in a browser: http://{local}/{page}");
        }
        Ok(listener)
    }
}

/// `iipsrv purge ID...`: purges images across the shared tier configured in the
/// environment (MEMCACHED_SERVERS or REDIS_URL, with the same FILESYSTEM_PREFIX, OBJECT_MAP
/// and FILESYSTEM_SUFFIX as the servers, so that ids resolve to the same files and objects).
pub(crate) fn purge(ids: &[String]) -> ExitCode {
    let config = match Config::from_args(["iipsrv"]) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("iipsrv purge: {e}");
            return ExitCode::from(2);
        }
    };
    let settings = match config.settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("iipsrv purge: {e}");
            return ExitCode::from(2);
        }
    };
    let root = config.local_prefix().map(|p| p.to_path_buf());
    let app = match App::new(settings, root.as_deref()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("iipsrv purge: {e}");
            return ExitCode::FAILURE;
        }
    };
    if app.cache().tier_name().is_none() {
        eprintln!("iipsrv purge: no shared tier: set MEMCACHED_SERVERS or REDIS_URL as the servers have it");
        return ExitCode::from(2);
    }
    let failed = ids.iter().filter(|id| !purge_one(&app, id)).count();
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Purges one image, saying so on standard output (or why not on standard error).
fn purge_one(app: &App, id: &str) -> bool {
    match app.purge(id) {
        Ok(generation) => {
            println!("purged {id}: generation {}", generation.unwrap_or(0));
            true
        }
        Err(e) => {
            eprintln!("iipsrv purge {id}: {e}");
            false
        }
    }
}
