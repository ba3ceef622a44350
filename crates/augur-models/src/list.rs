//! What is in the models directory.

use std::path::{Path, PathBuf};

use crate::marker::marker_confirms;
use crate::{catalog, models_dir, CatalogEntry};

/// What [`list`] knows about a model file without hashing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelState {
    /// A catalog model whose marker confirms size and sha256.
    Verified,
    /// A catalog model of the right size, not hashed yet (`augur models pull`
    /// verifies it).
    Unverified,
    /// A catalog model of the wrong size (e.g. an interrupted copy).
    WrongSize,
    /// A catalog model that is not there.
    Missing,
    /// A `.gguf` file that is not in the catalog (e.g. a converted model).
    Local,
}

/// One row of [`list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelStatus {
    /// Catalog name, or the file name for files outside the catalog.
    pub name: String,
    /// The catalog entry, if any.
    pub entry: Option<&'static CatalogEntry>,
    /// Where the file is (or would be).
    pub path: PathBuf,
    /// Size on disk, if the file exists.
    pub size: Option<u64>,
    /// See [`ModelState`].
    pub state: ModelState,
}

impl ModelStatus {
    /// Whether a file is there.
    pub fn present(&self) -> bool {
        self.size.is_some()
    }
}

/// Every catalog model (present or not), then the other `.gguf` files in
/// [`models_dir()`], sorted by name.
pub fn list() -> Vec<ModelStatus> {
    list_in(&models_dir())
}

/// [`list`] for an explicit directory.
pub fn list_in(dir: &Path) -> Vec<ModelStatus> {
    let mut rows: Vec<ModelStatus> = catalog()
        .iter()
        .map(|entry| {
            let path = entry.path_in(dir);
            let size = std::fs::metadata(&path)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len());
            let state = match size {
                None => ModelState::Missing,
                Some(s) if s != entry.size => ModelState::WrongSize,
                Some(_) if marker_confirms(&path, entry.sha256, entry.size) => ModelState::Verified,
                Some(_) => ModelState::Unverified,
            };
            ModelStatus {
                name: entry.name.to_string(),
                entry: Some(entry),
                path,
                size,
                state,
            }
        })
        .collect();
    let mut local: Vec<ModelStatus> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            let file_name = path.file_name()?.to_str()?.to_string();
            let is_gguf = path
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("gguf"));
            if !is_gguf || catalog().iter().any(|c| c.file_name == file_name) {
                return None;
            }
            let meta = e.metadata().ok().filter(|m| m.is_file())?;
            Some(ModelStatus {
                name: file_name,
                entry: None,
                path,
                size: Some(meta.len()),
                state: ModelState::Local,
            })
        })
        .collect();
    local.sort_by(|a, b| a.name.cmp(&b.name));
    rows.extend(local);
    rows
}
