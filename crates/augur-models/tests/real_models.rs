//! The four catalog models in the real models directory: found by name, and
//! verified against the catalog's size and sha256 (hashed once, then via marker).
#![allow(clippy::unwrap_used)]

use augur_models::{catalog, check, models_dir, path_of, read_marker, FileCheck};

#[test]
fn all_catalog_models_are_present_and_verified() {
    let dir = models_dir();
    for entry in catalog() {
        let path = path_of(entry.name).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(path, dir.join(entry.file_name));
        match check(entry, &dir, &mut |_| {}).unwrap() {
            FileCheck::Verified { size, .. } => assert_eq!(size, entry.size, "{}", entry.name),
            other => panic!("{}: {other:?}", entry.name),
        }
        // The check leaves a marker (unless the directory is read-only) that
        // later runs rely on; it must agree with the catalog.
        if let Some(marker) = read_marker(&path) {
            assert_eq!(marker.size, entry.size, "{}", entry.name);
            assert_eq!(marker.sha256, entry.sha256, "{}", entry.name);
        }
        assert_eq!(std::fs::metadata(&path).unwrap().len(), entry.size);
    }
}
