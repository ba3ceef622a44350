//! Where augur keeps models and other cached data.

use std::ffi::OsString;
use std::path::PathBuf;

/// The two cache locations augur uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheDirs {
    /// Root of augur's cache (datasets, measured costs, ...).
    pub cache: PathBuf,
    /// Where GGUF models live.
    pub models: PathBuf,
}

/// Resolves the cache locations from explicit environment lookups, so the rules
/// can be tested without touching the process environment (which is global and
/// shared by tests running in parallel).
///
/// - cache: `$AUGUR_CACHE_DIR`, else `$XDG_CACHE_HOME/augur`, else `<home>/.cache/augur`,
///   else `<tmp>/augur-cache` when there is no home directory;
/// - models: `$AUGUR_MODELS_DIR`, else `<cache>/models` with the XDG/home rule above
///   (`$AUGUR_CACHE_DIR` moves the models too).
///
/// Empty variables count as unset, as the XDG specification asks.
pub fn resolve_dirs(env: impl Fn(&str) -> Option<OsString>, home: Option<PathBuf>) -> CacheDirs {
    let var = |key: &str| env(key).filter(|v| !v.is_empty()).map(PathBuf::from);
    let cache = var("AUGUR_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|x| x.join("augur")))
        .or_else(|| home.map(|h| h.join(".cache").join("augur")))
        .unwrap_or_else(|| std::env::temp_dir().join("augur-cache"));
    let models = var("AUGUR_MODELS_DIR").unwrap_or_else(|| cache.join("models"));
    CacheDirs { cache, models }
}

/// The cache locations for this process's environment.
pub fn cache_dirs() -> CacheDirs {
    resolve_dirs(|k| std::env::var_os(k), dirs::home_dir())
}

/// The models directory: `$AUGUR_MODELS_DIR`, else `$XDG_CACHE_HOME/augur/models`,
/// else `~/.cache/augur/models`.
pub fn models_dir() -> PathBuf {
    cache_dirs().models
}

/// augur's cache root (`~/.cache/augur` by default) for data other than models,
/// such as datasets and measured costs.
pub fn cache_dir() -> PathBuf {
    cache_dirs().cache
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn home_default() {
        let d = resolve_dirs(env_of(&[]), Some(PathBuf::from("/home/u")));
        assert_eq!(d.cache, PathBuf::from("/home/u/.cache/augur"));
        assert_eq!(d.models, PathBuf::from("/home/u/.cache/augur/models"));
    }

    #[test]
    fn xdg_cache_home_wins_over_home() {
        let d = resolve_dirs(
            env_of(&[("XDG_CACHE_HOME", "/x")]),
            Some(PathBuf::from("/home/u")),
        );
        assert_eq!(d.cache, PathBuf::from("/x/augur"));
        assert_eq!(d.models, PathBuf::from("/x/augur/models"));
    }

    #[test]
    fn models_dir_override_only_moves_models() {
        let d = resolve_dirs(
            env_of(&[("AUGUR_MODELS_DIR", "/m"), ("XDG_CACHE_HOME", "/x")]),
            Some(PathBuf::from("/home/u")),
        );
        assert_eq!(d.models, PathBuf::from("/m"));
        assert_eq!(d.cache, PathBuf::from("/x/augur"));
    }

    #[test]
    fn cache_dir_override_moves_both() {
        let d = resolve_dirs(
            env_of(&[("AUGUR_CACHE_DIR", "/c"), ("XDG_CACHE_HOME", "/x")]),
            Some(PathBuf::from("/home/u")),
        );
        assert_eq!(d.cache, PathBuf::from("/c"));
        assert_eq!(d.models, PathBuf::from("/c/models"));
    }

    #[test]
    fn empty_variables_are_unset() {
        let d = resolve_dirs(
            env_of(&[("AUGUR_MODELS_DIR", ""), ("XDG_CACHE_HOME", "")]),
            Some(PathBuf::from("/home/u")),
        );
        assert_eq!(d.models, PathBuf::from("/home/u/.cache/augur/models"));
    }

    #[test]
    fn no_home_falls_back_to_temp() {
        let d = resolve_dirs(env_of(&[]), None);
        assert_eq!(d.cache, std::env::temp_dir().join("augur-cache"));
    }
}
