//! Why `iipsrv convert` failed: building the pyramid (the format crate's
//! [`BuildError`]), or making a static tile tree. Each error is printed as one line after
//! "iipsrv convert: ".

pub(crate) use iipsrv_formats::pyramid::error::{BuildError, InputError, OutputStep};
use std::path::{Path, PathBuf};

/// Why a conversion failed. No output is left behind, whatever the error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConvertError {
    /// Reading the input or writing the pyramid or a file of the tree failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// `--static`: the input's file name gives no name for the tree (none, `.` or `..`).
    #[error("{}: no file name to name the static tree after", .path.display())]
    Name {
        /// The input, as given on the command line.
        path: PathBuf,
    },
    /// `--static`: the tree would replace the input (an input without extension exported
    /// into its own directory).
    #[error("{}: the static tree would replace the input: choose another output directory", .path.display())]
    Replaces {
        /// The input, as given on the command line.
        path: PathBuf,
    },
    /// `--id` is not an absolute http:// or https:// URL.
    #[error("--id {id}: an absolute http:// or https:// URL")]
    Id {
        /// The value given.
        id: String,
    },
    /// `--static`: the in-process server could not be set up (a server setting from the
    /// environment it cannot use).
    #[error("static export: {what}")]
    Server {
        /// Why, as the server's settings say it.
        what: String,
    },
    /// `--static`: the in-process server did not answer a URL of the tree with 200, or
    /// answered a descriptor the tree cannot be made from. The URL is the server's (the
    /// protocol prefix and the image's name), never a file path.
    #[error("static export: {url}: {what}")]
    Export {
        /// The URL asked, relative to the server.
        url: String,
        /// What went wrong: the status and the server's one-line reason, or what the
        /// descriptor lacks.
        what: String,
    },
}

impl ConvertError {
    /// [`BuildError::Open`] for the input at `path`.
    pub(crate) fn open(path: &Path, cause: impl Into<InputError>) -> Self {
        ConvertError::Build(BuildError::open(path, cause))
    }

    /// [`BuildError::Output`]: `step` on the file at `path` failed with `error`.
    pub(crate) fn output(path: &Path, step: OutputStep, error: std::io::Error) -> Self {
        ConvertError::Build(BuildError::output(path, step, error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sys() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::PermissionDenied, "Permission denied")
    }

    #[test]
    fn static_export_errors_are_one_line_and_name_urls_not_server_paths() {
        let input = Path::new("in/scan");
        let cases = [
            (
                ConvertError::Name {
                    path: "in/..".into(),
                },
                "in/..: no file name to name the static tree after".to_string(),
            ),
            (
                ConvertError::Replaces {
                    path: input.to_owned(),
                },
                "in/scan: the static tree would replace the input: choose another output \
                 directory"
                    .to_string(),
            ),
            (
                ConvertError::Id {
                    id: "ftp://x".into(),
                },
                "--id ftp://x: an absolute http:// or https:// URL".to_string(),
            ),
            (
                ConvertError::Export {
                    url: "/iiif/3/scan.tif/info.json".into(),
                    what: "answered 404: not found".into(),
                },
                "static export: /iiif/3/scan.tif/info.json: answered 404: not found".to_string(),
            ),
            (
                ConvertError::output(Path::new("out/a/info.json"), OutputStep::Write, sys()),
                format!("cannot write out/a/info.json: {}", sys()),
            ),
            (
                ConvertError::output(Path::new("out/a"), OutputStep::Remove, sys()),
                format!("cannot replace out/a: {}", sys()),
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text, "{e:?}");
        }
    }
}
