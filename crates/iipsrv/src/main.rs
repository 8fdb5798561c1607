//! The `iipsrv` binary: one command line with a subcommand for each job.
//!
//! - `iipsrv [OPTIONS]` or `iipsrv serve [OPTIONS]`: the server ([`serve`]): FastCGI on
//!   `--bind` or an inherited socket on standard input, HTTP on `--http` (127.0.0.1:8080
//!   when there is no FastCGI socket); SIGTERM stops it gracefully, SIGHUP reopens the log
//!   and drops the caches.
//! - `iipsrv check PATH...`: what the server sees in image files ([`check`]).
//! - `iipsrv convert INPUT OUTPUT.tif`: builds a pyramidal TIFF ([`convert`]); with
//!   `--static LAYOUT OUT_DIR`, a static level-0 tile tree.
//! - `iipsrv warm PATH...`: builds the pyramids of large flat images into PYRAMID_CACHE_DIR
//!   ahead of time ([`warm`]).
//! - `iipsrv purge ID...`: purges images across the shared cache tier ([`serve::purge`]).
//! - `iipsrv man`: the manual page generated from the option definitions ([`man`]).
//! - `iipsrv completions SHELL`: shell completions (bash, zsh, fish, ...).
//!
//! `iipsrv --version` names the commit, features and codecs of the build ([`about`]).
//!
//! `convert` uses the format crate only; `serve`, `check`, `warm` and `purge` the server
//! crate too.

mod about;
mod check;
mod convert;
mod man;
mod serve;
mod warm;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use iipsrv_server::settings::{Config, PyramidArgs};
use std::path::PathBuf;
use std::process::ExitCode;

/// The command line: server options, or one subcommand.
#[derive(Debug, Parser)]
#[command(
    name = "iipsrv",
    version,
    about = "IIPImage image server in Rust: IIIF, IIP, DeepZoom and Zoomify from pyramidal TIFF and JPEG2000",
    long_about = None,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// What to do; serving is the default.
    #[command(subcommand)]
    command: Option<Job>,
    /// The server's options, when no subcommand is given (as the original is started).
    #[command(flatten)]
    serve: Config,
}

/// The jobs of the binary.
#[derive(Debug, Subcommand)]
enum Job {
    /// Serve images (the default).
    Serve(Box<Config>),
    /// Report what the server sees in image files and what would make them servable or faster.
    Check {
        /// Image files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The pyramid cache: with PYRAMID_CACHE_DIR, flat images over its threshold say
        /// whether their pyramid is built.
        #[command(flatten)]
        pyramids: PyramidArgs,
    },
    /// Make a tiled pyramidal TIFF from a JPEG, PNG or TIFF (8 or 16-bit), in bounded memory;
    /// or, with --static, a static level-0 tile tree (IIIF, DeepZoom, Zoomify).
    Convert(convert::Args),
    /// Build the pyramids of large flat images into PYRAMID_CACHE_DIR ahead of time, as the
    /// server would on first use.
    Warm(warm::Args),
    /// Purge images across the shared tier (MEMCACHED_SERVERS or REDIS_URL).
    Purge {
        /// Image identifiers, as requests name them.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Print the manual page (roff).
    Man,
    /// Print shell completions for SHELL (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// The command line definition, with the long version text of this build.
fn command() -> clap::Command {
    Cli::command().long_version(about::long_version())
}

fn main() -> ExitCode {
    let matches = command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli.command {
        None => serve::run(cli.serve),
        Some(Job::Serve(config)) => serve::run(*config),
        Some(Job::Check { paths, pyramids }) => match pyramids.settings() {
            Ok(settings) => exit(check::run(&paths, settings.as_ref())),
            Err(e) => report("iipsrv check", Err(e)),
        },
        Some(Job::Convert(args)) => report("iipsrv convert", convert::convert(&args)),
        Some(Job::Warm(args)) => report("iipsrv warm", warm::run(&args)),
        Some(Job::Purge { ids }) => serve::purge(&ids),
        Some(Job::Man) => report("iipsrv", man_page()),
        Some(Job::Completions { shell }) => {
            clap_complete::generate(shell, &mut command(), "iipsrv", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
    }
}

/// Writes the manual page to standard output.
fn man_page() -> Result<(), String> {
    use std::io::Write;
    let page = man::page().map_err(|e| e.to_string())?;
    std::io::stdout()
        .write_all(&page)
        .map_err(|e| e.to_string())
}

/// Success, or the error on standard error and a failing status.
fn report<E: std::fmt::Display>(what: &str, result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{what}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The exit status of a yes-or-no job.
fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
