//! The `iipsrv` binary: reads the configuration, sets up logging and the worker pools,
//! and runs the HTTP front end.

use iipsrv::config::Config;
use iipsrv::handler::App;
use std::process::ExitCode;
use std::sync::Arc;

fn init_logging(config: &Config) {
    let level = match config.verbosity {
        0 => return,
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::new(format!("iipsrv={level}"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match config.logfile.as_deref() {
        Some(p) if p.as_os_str() != "syslog" => {
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
            {
                Ok(f) => builder
                    .with_ansi(false)
                    .with_writer(std::sync::Mutex::new(f))
                    .init(),
                Err(e) => {
                    builder.with_writer(std::io::stderr).init();
                    tracing::warn!(
                        "cannot write log file {}: {e}; logging to standard error",
                        p.display()
                    );
                }
            }
        }
        _ => builder.with_writer(std::io::stderr).init(),
    }
}

fn main() -> ExitCode {
    let config = Config::from_env();
    init_logging(&config);
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
    let root = match config.filesystem_prefix.clone() {
        Some(p) => p,
        None => match iipsrv::demo::ensure_demo_dir() {
            Ok(d) => {
                tracing::info!(
                    "no FILESYSTEM_PREFIX: serving the demo image from {}",
                    d.display()
                );
                d
            }
            Err(e) => {
                eprintln!("iipsrv: cannot write the demo image: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let addr = config.http;
    let app = match App::new(config, &root) {
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
    runtime.block_on(async move {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                let local = listener.local_addr().unwrap_or(addr);
                tracing::info!("listening on http://{local}/ (images: {})", root.display());
                eprintln!("iipsrv: serving http://{local}/");
                iipsrv::http::serve(app, listener, threads * 64).await;
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("iipsrv: cannot listen on {addr}: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
