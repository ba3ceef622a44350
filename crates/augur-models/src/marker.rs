//! The small `<file>.sha256` marker that records a completed hash check, so that
//! a file is hashed once and later checks only compare its size and mtime.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use crate::ModelsError;

/// What a marker file records about the file it sits next to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// sha256 of the file, lowercase hex, as computed.
    pub sha256: String,
    /// The file's size when it was hashed.
    pub size: u64,
    /// The file's modification time when it was hashed, in nanoseconds since the epoch.
    pub mtime_ns: u128,
}

/// The marker path for `file`: `file` with `.sha256` appended.
pub fn marker_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".sha256");
    PathBuf::from(s)
}

/// Size and mtime of `file` as recorded in markers.
fn stamp(file: &Path) -> std::io::Result<(u64, u128)> {
    let meta = fs::metadata(file)?;
    let mtime = meta
        .modified()?
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok((meta.len(), mtime))
}

/// Reads the marker next to `file`, if there is a well-formed one.
pub fn read_marker(file: &Path) -> Option<Marker> {
    let text = fs::read_to_string(marker_path(file)).ok()?;
    let mut sha256 = None;
    let mut size = None;
    let mut mtime_ns = None;
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("sha256", v)) => sha256 = Some(v.trim().to_string()),
            Some(("size", v)) => size = v.trim().parse().ok(),
            Some(("mtime_ns", v)) => mtime_ns = v.trim().parse().ok(),
            _ => {}
        }
    }
    Some(Marker {
        sha256: sha256?,
        size: size?,
        mtime_ns: mtime_ns?,
    })
}

/// Whether the marker next to `file` says it was hashed to `sha256` with `size`
/// bytes, and the file has not changed since (same size and mtime).
pub fn marker_confirms(file: &Path, sha256: &str, size: u64) -> bool {
    let (Some(m), Ok((now_size, now_mtime))) = (read_marker(file), stamp(file)) else {
        return false;
    };
    m.sha256.eq_ignore_ascii_case(sha256)
        && m.size == size
        && now_size == size
        && m.mtime_ns == now_mtime
}

/// Records that `file`, as it is now, hashes to `sha256`.
pub(crate) fn write_marker(file: &Path, sha256: &str) -> Result<(), ModelsError> {
    let (size, mtime_ns) = stamp(file).map_err(ModelsError::io("cannot stat", file))?;
    let path = marker_path(file);
    let text = format!("sha256 {sha256}\nsize {size}\nmtime_ns {mtime_ns}\n");
    // Written aside and renamed, so a reader never sees half a marker.
    let tmp = marker_path(&path);
    fs::write(&tmp, text).map_err(ModelsError::io("cannot write", &tmp))?;
    fs::rename(&tmp, &path).map_err(ModelsError::io("cannot rename to", &path))
}

/// Removes the marker next to `file`, if any.
pub(crate) fn remove_marker(file: &Path) -> Result<(), ModelsError> {
    let path = marker_path(file);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(ModelsError::io("cannot remove", path)(e))
        }
        _ => Ok(()),
    }
}

/// Lowercase hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// sha256 of a whole file, calling `on_bytes(done)` as it goes.
pub(crate) fn hash_file(file: &Path, on_bytes: &mut dyn FnMut(u64)) -> Result<String, ModelsError> {
    let mut f = fs::File::open(file).map_err(ModelsError::io("cannot open", file))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    let mut last_report = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(ModelsError::io("cannot read", file))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
        if done - last_report >= crate::pull::REPORT_EVERY {
            on_bytes(done);
            last_report = done;
        }
    }
    on_bytes(done);
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hex_of_known_digest() {
        // sha256("abc") from FIPS 180-2.
        assert_eq!(
            hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn marker_round_trip_and_invalidation() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.gguf");
        fs::write(&file, b"abc").unwrap();
        let sha = hash_file(&file, &mut |_| {}).unwrap();
        assert!(!marker_confirms(&file, &sha, 3));
        write_marker(&file, &sha).unwrap();
        let m = read_marker(&file).unwrap();
        assert_eq!(m.sha256, sha);
        assert_eq!(m.size, 3);
        assert!(marker_confirms(&file, &sha, 3));
        assert!(
            !marker_confirms(&file, &sha, 4),
            "size differs from the catalog"
        );
        assert!(
            !marker_confirms(&file, &"0".repeat(64), 3),
            "hash differs from the catalog"
        );
        // Rewrite with the same size but another mtime: the marker no longer vouches.
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        fs::write(&file, b"abd").unwrap();
        fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(!marker_confirms(&file, &sha, 3));
        remove_marker(&file).unwrap();
        assert!(read_marker(&file).is_none());
        remove_marker(&file).unwrap();
    }
}
