//! Tables from ggml and llama.cpp: tensor element types (block size and
//! bytes per block) and the `general.file_type` names.
//!
//! Figures were read off the llama.cpp bundled with llama-cpp-sys-2 0.1.161
//! (`ggml.h` `enum ggml_type`, `sizeof(block_*)` from `ggml-common.h`, and
//! `llama.h` `enum llama_ftype`).

/// Layout of one ggml tensor element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GgmlType {
    /// The numeric id stored in a GGUF tensor info.
    pub id: u32,
    /// Conventional name, e.g. `Q4_K`.
    pub name: &'static str,
    /// Number of elements in one block.
    pub block_size: u64,
    /// Number of bytes one block takes.
    pub type_size: u64,
}

/// `(id, name, elements per block, bytes per block)`. Ids missing here are
/// either removed from ggml (4, 5, 31–33, 36–38: ggml gives them block size 0
/// and llama.cpp refuses them) or newer than this table.
const GGML_TYPES: &[(u32, &str, u64, u64)] = &[
    (0, "F32", 1, 4),
    (1, "F16", 1, 2),
    (2, "Q4_0", 32, 18),
    (3, "Q4_1", 32, 20),
    (6, "Q5_0", 32, 22),
    (7, "Q5_1", 32, 24),
    (8, "Q8_0", 32, 34),
    (9, "Q8_1", 32, 36),
    (10, "Q2_K", 256, 84),
    (11, "Q3_K", 256, 110),
    (12, "Q4_K", 256, 144),
    (13, "Q5_K", 256, 176),
    (14, "Q6_K", 256, 210),
    (15, "Q8_K", 256, 292),
    (16, "IQ2_XXS", 256, 66),
    (17, "IQ2_XS", 256, 74),
    (18, "IQ3_XXS", 256, 98),
    (19, "IQ1_S", 256, 50),
    (20, "IQ4_NL", 32, 18),
    (21, "IQ3_S", 256, 110),
    (22, "IQ2_S", 256, 82),
    (23, "IQ4_XS", 256, 136),
    (24, "I8", 1, 1),
    (25, "I16", 1, 2),
    (26, "I32", 1, 4),
    (27, "I64", 1, 8),
    (28, "F64", 1, 8),
    (29, "IQ1_M", 256, 56),
    (30, "BF16", 1, 2),
    (34, "TQ1_0", 256, 54),
    (35, "TQ2_0", 256, 66),
    (39, "MXFP4", 32, 17),
    (40, "NVFP4", 64, 36),
    (41, "Q1_0", 128, 18),
    (42, "Q2_0", 64, 18),
];

impl GgmlType {
    /// The type with this id, or `None` for removed or unknown ids.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        GGML_TYPES
            .iter()
            .find(|t| t.0 == id)
            .map(|&(id, name, block_size, type_size)| GgmlType {
                id,
                name,
                block_size,
                type_size,
            })
    }
}

/// Display name of a ggml tensor type id: its name, or `type N` when unknown.
pub fn ggml_type_name(id: u32) -> String {
    match GgmlType::from_id(id) {
        Some(t) => t.name.to_string(),
        None => format!("type {id}"),
    }
}

/// Name of a `general.file_type` value, following llama.cpp's `llama_ftype`
/// enum (`LLAMA_FTYPE_MOSTLY_Q4_K_M` → `Q4_K_M`); `unknown (N)` otherwise.
///
/// The value is what the converter wrote; the tensors may be of other types
/// (see [`crate::ModelInfo::tensor_types`] for what the file really holds).
pub fn file_type_name(file_type: u32) -> String {
    let name = match file_type {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        39 => "NVFP4",
        40 => "Q1_0",
        41 => "Q2_0",
        _ => return format!("unknown ({file_type})"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_ids_are_unique_and_layouts_sane() {
        for (i, a) in GGML_TYPES.iter().enumerate() {
            assert!(a.2 > 0 && a.3 > 0, "{a:?}");
            for b in &GGML_TYPES[i + 1..] {
                assert_ne!(a.0, b.0);
                assert_ne!(a.1, b.1);
            }
        }
    }

    #[test]
    fn removed_and_unknown_types_have_no_layout() {
        for id in [4, 5, 31, 32, 33, 36, 37, 38, 43, 1000, u32::MAX] {
            assert_eq!(GgmlType::from_id(id), None, "{id}");
        }
        assert_eq!(ggml_type_name(99), "type 99");
        assert_eq!(ggml_type_name(12), "Q4_K");
    }

    #[test]
    fn file_type_names() {
        assert_eq!(file_type_name(15), "Q4_K_M");
        assert_eq!(file_type_name(7), "Q8_0");
        assert_eq!(file_type_name(32), "BF16");
        assert_eq!(file_type_name(5), "unknown (5)");
        assert_eq!(file_type_name(1024), "unknown (1024)");
    }
}
