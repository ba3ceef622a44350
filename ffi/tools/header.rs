//! Generates include/augur.h from the crate's sources with cbindgen (shared
//! by the `augur-gen-header` binary and the header test).

use std::path::{Path, PathBuf};

/// The crate's directory (where Cargo.toml, cbindgen.toml and src/ live).
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The committed header's path.
pub fn header_path() -> PathBuf {
    crate_dir().join("include").join("augur.h")
}

/// The header cbindgen generates from `crate_dir`'s sources.
pub fn generate(crate_dir: &Path) -> Result<Vec<u8>, String> {
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .map_err(|e| format!("cbindgen.toml: {e}"))?;
    // Parsing the source tree directly (not `cargo metadata`) keeps this
    // independent of the workspace and its lock.
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src").join("lib.rs"))
        .generate()
        .map_err(|e| format!("cbindgen: {e}"))?;
    let mut out = Vec::new();
    bindings.write(&mut out);
    Ok(out)
}
