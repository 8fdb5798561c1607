//! Names the build for `iipsrv --version`: the git commit it was built from (IIPSRV_COMMIT
//! when set, as a package build from a source tarball sets it; else `git rev-parse`; else
//! "unknown").

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=IIPSRV_COMMIT");
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=../../.git/refs/heads");
    let commit = std::env::var("IIPSRV_COMMIT").ok().or_else(git_commit);
    println!(
        "cargo:rustc-env=IIPSRV_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
}

/// The short hash of HEAD, with `-dirty` when the tree has uncommitted changes.
fn git_commit() -> Option<String> {
    let run = |args: &[&str]| {
        let out = Command::new("git").args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let hash = run(&["rev-parse", "--short=12", "HEAD"])?;
    let dirty =
        run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{hash}-dirty") } else { hash })
}
