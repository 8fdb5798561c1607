//! The `iipsrv` binary: reads the configuration, sets up logging and the worker pools,
//! and runs the front ends: FastCGI on `--bind` or an inherited socket on standard input,
//! HTTP on `--http` (127.0.0.1:8080 when there is no FastCGI socket); SIGTERM stops it
//! gracefully, SIGHUP reopens the log and drops the caches (`iipsrv::lifecycle`).
//! `iipsrv check PATH...` reports on image files instead (`iipsrv::check`), `iipsrv convert
//! INPUT OUTPUT.tif` builds a pyramidal TIFF (`iipsrv::convert`); `iipsrv purge ID...`
//! purges images across the shared cache tier; `iipsrv man` prints the manual page
//! generated from the option definitions.

use iipsrv::config::Config;
use iipsrv::dispatch::Dispatcher;
use iipsrv::handler::App;
use iipsrv::lifecycle::Lifecycle;
use iipsrv::{fastcgi, http};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("man") {
        return match Config::man_page() {
            Ok(page) => {
                use std::io::Write;
                let _ = std::io::stdout().write_all(&page);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("iipsrv: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.get(1).map(String::as_str) == Some("check") {
        if args.len() < 3 {
            eprintln!("usage: iipsrv check PATH...");
            return ExitCode::from(2);
        }
        return match iipsrv::check::run(&args[2..]) {
            true => ExitCode::SUCCESS,
            false => ExitCode::FAILURE,
        };
    }
    if args.get(1).map(String::as_str) == Some("convert") {
        return match iipsrv::convert::run(&args[2..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("iipsrv convert: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.get(1).map(String::as_str) == Some("purge") {
        return purge(&args[2..]);
    }
    let config = Config::from_env();
    iipsrv::logging::init(config.verbosity, config.logfile.as_deref());
    let threads = config
        .omp_num_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
    {
        eprintln!("iipsrv: cannot start worker threads: {e}");
        return ExitCode::FAILURE;
    }
    let root = match (config.local_prefix(), &config.filesystem_prefix) {
        (Some(p), _) => Some(p.to_path_buf()),
        (None, Some(_)) => None,
        (None, None) => match iipsrv::demo::ensure_demo_dir() {
            Ok(d) => {
                tracing::info!("no FILESYSTEM_PREFIX: serving the generated demo image");
                Some(d)
            }
            Err(e) => {
                eprintln!("iipsrv: cannot write the demo image: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let (http_addr, bind, backlog) = (config.http, config.bind.clone(), config.backlog);
    // Where a person should point a browser, printed once the address is known.
    let viewer_page = match (config.viewer, config.filesystem_prefix.is_none()) {
        (0, _) => None,
        (_, true) => Some(format!("viewer/{}", iipsrv::demo::DEMO_NAME)),
        (_, false) => Some(String::new()),
    };
    let app = match App::new(config, root.as_deref()) {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("iipsrv: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .max_blocking_threads(threads * 4)
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("iipsrv: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dispatcher = Dispatcher::new(app.clone(), threads * 64);
    let lifecycle = Lifecycle::new();
    runtime.block_on(async move {
        let fcgi = match bind {
            Some(spec) => match fastcgi::bind(&spec, backlog) {
                Ok(l) => Some(l),
                Err(e) => {
                    eprintln!("iipsrv: cannot bind FastCGI socket {spec}: {e}");
                    return ExitCode::FAILURE;
                }
            },
            None => fastcgi::inherited(),
        };
        let http_addr = match (http_addr, &fcgi) {
            (Some(a), _) => Some(a),
            (None, None) => Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            (None, Some(_)) => None,
        };
        let mut servers = tokio::task::JoinSet::new();
        if let Some(listener) = fcgi {
            tracing::info!("FastCGI on {}", listener.describe());
            eprintln!("iipsrv: FastCGI on {}", listener.describe());
            servers.spawn(fastcgi::serve(
                dispatcher.clone(),
                listener,
                lifecycle.stop_handle(),
            ));
        }
        if let Some(addr) = http_addr {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => {
                    let local = listener.local_addr().unwrap_or(addr);
                    tracing::info!("listening on http://{local}/");
                    eprintln!("iipsrv: serving http://{local}/");
                    if let Some(page) = &viewer_page {
                        eprintln!("iipsrv: in a browser: http://{local}/{page}");
                    }
                    servers.spawn(http::serve(
                        dispatcher.clone(),
                        listener,
                        lifecycle.stop_handle(),
                    ));
                }
                Err(e) => {
                    eprintln!("iipsrv: cannot listen on {addr}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        iipsrv::lifecycle::handle_signals(&lifecycle, app).await;
        while servers.join_next().await.is_some() {}
        if !lifecycle.drained(iipsrv::lifecycle::DRAIN_TIMEOUT).await {
            tracing::warn!("stopped with {} connections still open", lifecycle.live());
        }
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

/// `iipsrv purge ID...`: purges images across the shared tier configured in the
/// environment (MEMCACHED_SERVERS or REDIS_URL, with the same FILESYSTEM_PREFIX, OBJECT_MAP
/// and FILESYSTEM_SUFFIX as the servers, so that ids resolve to the same files and objects).
fn purge(ids: &[String]) -> ExitCode {
    if ids.is_empty() {
        eprintln!("usage: iipsrv purge ID...");
        return ExitCode::from(2);
    }
    let config = match Config::from_args(["iipsrv"]) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("iipsrv purge: {e}");
            return ExitCode::from(2);
        }
    };
    let root = config.local_prefix().map(|p| p.to_path_buf());
    let app = match App::new(config, root.as_deref()) {
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
    let mut ok = true;
    for id in ids {
        match app.purge(id) {
            Ok(generation) => println!("purged {id}: generation {}", generation.unwrap_or(0)),
            Err(e) => {
                eprintln!("iipsrv purge {id}: {e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
