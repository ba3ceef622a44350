//! The summary of a model that `augur inspect` shows.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

use crate::reader::{GgufHeader, MetaValue};
use crate::types::{file_type_name, ggml_type_name};
use crate::vocab::group;

/// What a GGUF header says about a model. Serialises to JSON with the field
/// names below.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// The file.
    #[serde(serialize_with = "path_lossy")]
    pub path: PathBuf,
    /// Size of the file in bytes.
    pub file_size: u64,
    /// GGUF format version.
    pub gguf_version: u32,
    /// `general.architecture` (`qwen2`, `llama`, `gemma3`, …).
    pub architecture: Option<String>,
    /// `general.name`.
    pub name: Option<String>,
    /// Sum over tensors of the product of their dimensions.
    pub parameter_count: u64,
    /// `general.file_type` as llama.cpp names it (`Q4_K_M`), `unknown (N)` for
    /// values it does not know; `None` without the key.
    pub quantization: Option<String>,
    /// The raw `general.file_type`.
    pub file_type: Option<u32>,
    /// Number of tensors of each ggml type (`Q4_K` → 169).
    pub tensor_types: BTreeMap<String, u64>,
    /// Number of tensors.
    pub tensor_count: u64,
    /// Number of metadata keys.
    pub metadata_count: u64,
    /// `tokenizer.ggml.model`.
    pub tokenizer_model: Option<String>,
    /// Length of `tokenizer.ggml.tokens`.
    pub vocab_size: Option<u64>,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos_token_id: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos_token_id: Option<u32>,
    /// `tokenizer.ggml.eot_token_id`.
    pub eot_token_id: Option<u32>,
    /// `{arch}.context_length`: the training context.
    pub context_length: Option<u64>,
    /// `{arch}.block_count`: number of layers.
    pub block_count: Option<u64>,
    /// `{arch}.embedding_length`: hidden size.
    pub embedding_length: Option<u64>,
    /// Whether `tokenizer.chat_template` is present.
    pub has_chat_template: bool,
}

fn path_lossy<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

impl ModelInfo {
    pub(crate) fn from_header(h: &GgufHeader) -> Self {
        let str_of = |key: &str| {
            h.metadata
                .get(key)
                .and_then(MetaValue::as_str)
                .map(str::to_string)
        };
        let architecture = str_of("general.architecture");
        let arch_u64 = |suffix: &str| {
            let arch = architecture.as_deref()?;
            h.metadata
                .get(&format!("{arch}.{suffix}"))
                .and_then(MetaValue::as_u64)
        };
        let file_type = h
            .metadata
            .get("general.file_type")
            .and_then(MetaValue::as_u64)
            .and_then(|v| u32::try_from(v).ok());
        let mut tensor_types = BTreeMap::new();
        // Shapes were checked to fit in i64 each; a sum of many can still
        // overflow in a hostile file, hence saturating.
        let mut parameter_count = 0u64;
        for t in &h.tensors {
            *tensor_types.entry(ggml_type_name(t.ggml_type)).or_insert(0) += 1;
            parameter_count = parameter_count.saturating_add(t.n_elements());
        }
        ModelInfo {
            path: h.path.clone(),
            file_size: h.file_size,
            gguf_version: h.version,
            architecture: architecture.clone(),
            name: str_of("general.name"),
            parameter_count,
            quantization: file_type.map(file_type_name),
            file_type,
            tensor_types,
            tensor_count: h.tensors.len() as u64,
            metadata_count: h.metadata.len() as u64,
            tokenizer_model: h.vocab.model.clone(),
            vocab_size: h.vocab.size(),
            bos_token_id: h.vocab.bos,
            eos_token_id: h.vocab.eos,
            eot_token_id: h.vocab.eot,
            context_length: arch_u64("context_length"),
            block_count: arch_u64("block_count"),
            embedding_length: arch_u64("embedding_length"),
            has_chat_template: h.metadata.contains_key("tokenizer.chat_template"),
        }
    }

    /// A multi-line human-readable summary, one `Label: value` per line.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let mut line = |label: &str, value: String| {
            let _ = writeln!(out, "{:<16}{value}", format!("{label}:"));
        };
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not set)".to_string());
        let opt_n = |v: Option<u64>| v.map(group).unwrap_or_else(|| "(not set)".to_string());

        line("File", self.path.display().to_string());
        line(
            "Size",
            format!(
                "{} ({} bytes)",
                human_bytes(self.file_size),
                group(self.file_size)
            ),
        );
        line(
            "Format",
            format!(
                "GGUF v{}, {} tensors, {} metadata keys",
                self.gguf_version,
                group(self.tensor_count),
                group(self.metadata_count)
            ),
        );
        if let Some(name) = &self.name {
            line("Name", name.clone());
        }
        line("Architecture", opt(&self.architecture));
        line(
            "Parameters",
            format!(
                "{} ({})",
                human_count(self.parameter_count),
                group(self.parameter_count)
            ),
        );
        line(
            "Quantization",
            match (&self.quantization, self.file_type) {
                (Some(q), Some(ft)) => format!("{q} (file type {ft})"),
                _ => "(not set)".to_string(),
            },
        );
        let mut types: Vec<(&String, &u64)> = self.tensor_types.iter().collect();
        types.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let types: Vec<String> = types.iter().map(|(t, n)| format!("{t} ×{n}")).collect();
        line("Tensor types", types.join(", "));
        line("Context length", opt_n(self.context_length));
        line("Layers", opt_n(self.block_count));
        line("Embedding size", opt_n(self.embedding_length));
        line(
            "Tokenizer",
            match self.vocab_size {
                Some(n) => format!("{}, {} tokens", opt(&self.tokenizer_model), group(n)),
                None => format!("{}, no token list", opt(&self.tokenizer_model)),
            },
        );
        let special: Vec<String> = [
            ("BOS", self.bos_token_id),
            ("EOS", self.eos_token_id),
            ("EOT", self.eot_token_id),
        ]
        .iter()
        .filter_map(|(n, id)| id.map(|id| format!("{n} {id}")))
        .collect();
        line(
            "Special tokens",
            if special.is_empty() {
                "(none)".to_string()
            } else {
                special.join(", ")
            },
        );
        line(
            "Chat template",
            if self.has_chat_template { "yes" } else { "no" }.to_string(),
        );
        out
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}

fn human_count(n: u64) -> String {
    let v = n as f64;
    if n >= 1_000_000_000 {
        format!("{:.2} B", v / 1e9)
    } else if n >= 1_000_000 {
        format!("{:.1} M", v / 1e6)
    } else if n >= 1_000 {
        format!("{:.1} K", v / 1e3)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(1_117_320_768), "1.04 GiB");
        assert_eq!(human_count(1_543_714_304), "1.54 B");
        assert_eq!(human_count(134_515_008), "134.5 M");
        assert_eq!(human_count(12), "12");
    }
}
