//! The hyperparameter checks: values that llama.cpp does not refuse with an
//! error but asserts on (`GGML_ASSERT` aborts the whole process, a C host
//! included) or divides by, either while loading or at the first decode.
//!
//! Read off the llama.cpp bundled with llama-cpp-sys-2 0.1.161:
//! `llama-model.cpp` (`load_hparams`), `llama-hparams.h` (limits),
//! `llama-model-loader.cpp` (how keys are typed), `llama-vocab.cpp` (the token
//! list) and the graph builders in `models/*.cpp`. Values llama.cpp refuses
//! with an exception (a wrong key type, a missing required key, a tensor of
//! the wrong shape) come back from its loader as an error and need no check
//! here; several are checked anyway where the message is clearer.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::reader::{GgufHeader, MetaValue};

/// llama.cpp's `LLAMA_MAX_LAYERS`: `block_count` must be in `1..=512`.
pub const LLAMA_MAX_LAYERS: u64 = 512;
/// llama.cpp's `LLAMA_MAX_EXPERTS`.
pub const LLAMA_MAX_EXPERTS: u64 = 1024;

/// The architectures this llama.cpp build loads (`LLM_ARCH_NAMES` in
/// `llama-arch.cpp`, without the `clip` placeholder, which is no language
/// model).
const ARCHITECTURES: &[&str] = &[
    "llama",
    "llama4",
    "deci",
    "falcon",
    "grok",
    "gpt2",
    "gptj",
    "gptneox",
    "mpt",
    "baichuan",
    "starcoder",
    "refact",
    "bert",
    "modern-bert",
    "nomic-bert",
    "nomic-bert-moe",
    "neo-bert",
    "jina-bert-v2",
    "jina-bert-v3",
    "eurobert",
    "bloom",
    "stablelm",
    "qwen",
    "qwen2",
    "qwen2moe",
    "qwen2vl",
    "qwen3",
    "qwen3moe",
    "qwen3next",
    "qwen3vl",
    "qwen3vlmoe",
    "qwen35",
    "qwen35moe",
    "clef",
    "qwen4exp",
    "phi2",
    "phi3",
    "phimoe",
    "plamo",
    "plamo2",
    "plamo3",
    "codeshell",
    "orion",
    "internlm2",
    "minicpm",
    "minicpm3",
    "gemma",
    "gemma2",
    "gemma3",
    "gemma3n",
    "gemma4",
    "gemma4-assistant",
    "gemma-embedding",
    "starcoder2",
    "mamba",
    "mamba2",
    "maple",
    "jamba",
    "falcon-h1",
    "xverse",
    "command-r",
    "cohere2",
    "cohere2moe",
    "dbrx",
    "olmo",
    "olmo2",
    "olmoe",
    "muse-glimmer",
    "openelm",
    "arctic",
    "deepseek",
    "deepseek2",
    "deepseek2-ocr",
    "deepseek32",
    "deepseek4",
    "chatglm",
    "glm4",
    "glm4moe",
    "glm-dsa",
    "bitnet",
    "t5",
    "t5encoder",
    "jais",
    "jais2",
    "nemotron",
    "nemotron_h",
    "nemotron_h_moe",
    "exaone",
    "exaone4",
    "exaone-moe",
    "rwkv6",
    "rwkv6qwen2",
    "rwkv7",
    "arwkv7",
    "granite",
    "granitemoe",
    "granitehybrid",
    "graniteswitch",
    "granite_swa",
    "chameleon",
    "wavtokenizer-dec",
    "plm",
    "bailingmoe",
    "bailingmoe2",
    "bailingmoe3",
    "dots1",
    "dots3note",
    "arcee",
    "afmoe",
    "laguna",
    "ernie4_5",
    "ernie4_5-moe",
    "hunyuan-moe",
    "hunyuan-dense",
    "hunyuan_vl",
    "hy_v3",
    "hy_v4",
    "smollm3",
    "gpt-oss",
    "lfm2",
    "lfm2moe",
    "dream",
    "smallthinker",
    "llada",
    "llada-moe",
    "seed_oss",
    "grovemoe",
    "apertus",
    "minimax-01",
    "hrm_text",
    "minimax-m2",
    "minimax-m3",
    "cogvlm",
    "rnd1",
    "pangu-embedded",
    "mistral3",
    "eagle3",
    "dflash",
    "mistral4",
    "paddleocr",
    "mimo2",
    "step35",
    "spark2_5",
    "llama-embed",
    "maincoder",
    "kimi-linear",
    "kimi-k3",
    "glm5-next",
    "talkie",
    "mellum",
    "nanbeige",
    "qwen3tts",
    "pockettts",
];

/// Architectures whose graph asserts that the key and value head sizes and
/// the rotary dimension are all equal (`GGML_ASSERT(n_embd_head ==
/// hparams.n_embd_head_k())` and `GGML_ASSERT(n_embd_head == n_rot)` in
/// their `models/*.cpp`, unconditionally). Others (MLA, partial rotary)
/// legitimately differ.
const EQUAL_HEAD_SIZES: &[&str] = &[
    "llama",
    "qwen2",
    "qwen2moe",
    "qwen3",
    "qwen3moe",
    "mistral3",
    "smollm3",
    "starcoder2",
    "olmo2",
    "granite",
    "internlm2",
];

/// Rope scaling types llama.cpp knows (`LLAMA_ROPE_SCALING_TYPES`); any other
/// string is an assert.
const ROPE_SCALING_TYPES: &[&str] = &["none", "linear", "yarn", "longrope"];

/// Reads one architecture's keys the way llama.cpp does.
struct Keys<'a> {
    h: &'a GgufHeader,
    arch: &'a str,
}

impl Keys<'_> {
    fn name(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.arch)
    }

    fn value(&self, suffix: &str) -> Option<&MetaValue> {
        self.h.metadata.get(&self.name(suffix))
    }

    fn type_of(&self, suffix: &str) -> &'static str {
        self.h
            .metadata_types
            .get(&self.name(suffix))
            .copied()
            .unwrap_or("missing")
    }

    /// A key llama.cpp reads as a `u32` scalar (it refuses any other type).
    fn u32(&self, suffix: &str) -> Result<Option<u64>, String> {
        match self.value(suffix) {
            None => Ok(None),
            Some(v) => match (self.type_of(suffix), v.as_u64()) {
                ("u32", Some(n)) => Ok(Some(n)),
                (t, _) => Err(format!(
                    "{} is {t}, but llama.cpp reads it as u32",
                    self.name(suffix)
                )),
            },
        }
    }

    fn required_u32(&self, suffix: &str) -> Result<u64, String> {
        self.u32(suffix)?
            .ok_or_else(|| format!("{} is missing", self.name(suffix)))
    }

    /// A required size that llama.cpp's API returns as an `int32_t` (the
    /// bindings panic on a negative one).
    fn required_size(&self, suffix: &str) -> Result<u64, String> {
        let n = self.required_u32(suffix)?;
        if n > i32::MAX as u64 {
            return Err(format!("{} is {n}, above 2^31 - 1", self.name(suffix)));
        }
        Ok(n)
    }

    /// A per-layer key: a `u32` for every layer, or an array with one value
    /// per layer (`get_key_or_arr`). `None` when absent.
    fn per_layer(&self, suffix: &str, n_layer: u64) -> Result<Option<Vec<u64>>, String> {
        let Some(v) = self.value(suffix) else {
            return Ok(None);
        };
        if let MetaValue::Array {
            item_type,
            len,
            values,
        } = v
        {
            if *len != n_layer {
                return Err(format!(
                    "{} has {len} values for {n_layer} layers",
                    self.name(suffix)
                ));
            }
            if !matches!(*item_type, "u32" | "i32" | "bool") {
                return Err(format!(
                    "{} is an array of {item_type}, but llama.cpp reads u32",
                    self.name(suffix)
                ));
            }
            // llama.cpp copies i32 elements into u32 as they are.
            return Ok(Some(
                values
                    .iter()
                    .map(|v| match *v {
                        MetaValue::Int(i) => u64::from(i as u32),
                        MetaValue::Uint(u) => u,
                        MetaValue::Bool(b) => u64::from(b),
                        _ => 0,
                    })
                    .collect(),
            ));
        }
        let n = self.required_u32(suffix)?;
        Ok(Some(vec![n; n_layer as usize]))
    }
}

/// Checks the hyperparameters of `h` (whose `general.architecture` is set).
/// `Err` holds the reason, worded for a user.
pub(crate) fn check(h: &GgufHeader) -> Result<(), String> {
    let arch = match h.metadata.get("general.architecture") {
        Some(MetaValue::Str(s)) => s.as_str(),
        Some(_) => return Err("general.architecture is not a string".to_string()),
        None => return Err("general.architecture is missing".to_string()),
    };
    if !ARCHITECTURES.contains(&arch) {
        return Err(format!(
            "architecture '{arch}' is not one this llama.cpp build can load"
        ));
    }
    let k = Keys { h, arch };
    if arch == "wavtokenizer-dec" {
        // An audio decoder: its sizes live under other keys, and augur has
        // no use for it.
        return Err(
            "architecture 'wavtokenizer-dec' is an audio decoder, not a language model".to_string(),
        );
    }

    let n_ctx_train = k.required_size("context_length")?;
    if n_ctx_train == 0 {
        return Err(format!("{} is 0", k.name("context_length")));
    }
    let n_embd = k.required_size("embedding_length")?;
    if n_embd == 0 {
        return Err(format!("{} is 0", k.name("embedding_length")));
    }
    let n_layer = k.required_u32("block_count")?;
    if n_layer == 0 || n_layer > LLAMA_MAX_LAYERS {
        return Err(format!(
            "{} is {n_layer}, llama.cpp supports 1 to {LLAMA_MAX_LAYERS} layers",
            k.name("block_count")
        ));
    }
    if let Some(nextn) = k.u32("nextn_predict_layers")? {
        if nextn > n_layer {
            return Err(format!(
                "{} is {nextn}, more than the {n_layer} layers",
                k.name("nextn_predict_layers")
            ));
        }
    }

    check_experts(&k, n_layer)?;
    check_heads(&k, n_embd, n_layer)?;
    check_floats(&k)?;

    if let Some(v) = k.value("rope.scaling.type") {
        match v.as_str() {
            Some(s) if ROPE_SCALING_TYPES.contains(&s) => {}
            Some(s) => {
                return Err(format!(
                    "{} is '{s}', not one of {}",
                    k.name("rope.scaling.type"),
                    ROPE_SCALING_TYPES.join(", ")
                ))
            }
            None => return Err(format!("{} is not a string", k.name("rope.scaling.type"))),
        }
    }

    check_tokens(h)?;
    check_embedding_shape(h, n_embd)?;
    Ok(())
}

/// `load_hparams`'s expert asserts: at most 1024 experts; experts used only
/// with experts, at least one and no more than there are; groups dividing
/// the experts.
fn check_experts(k: &Keys<'_>, n_layer: u64) -> Result<(), String> {
    let n_expert = k.u32("expert_count")?.unwrap_or(0);
    if n_expert > LLAMA_MAX_EXPERTS {
        return Err(format!(
            "{} is {n_expert}, llama.cpp supports at most {LLAMA_MAX_EXPERTS}",
            k.name("expert_count")
        ));
    }
    let used = k
        .per_layer("expert_used_count", n_layer)?
        .map_or(0, |v| v.into_iter().max().unwrap_or(0));
    let groups = k.u32("expert_group_count")?.unwrap_or(0);
    let group_used = k.u32("expert_group_used_count")?.unwrap_or(0);
    if n_expert == 0 {
        if used > 0 {
            return Err(format!(
                "{} is {used} but the model has no experts ({} is not set or 0)",
                k.name("expert_used_count"),
                k.name("expert_count")
            ));
        }
        if groups > 0 {
            return Err(format!(
                "{} is {groups} but the model has no experts",
                k.name("expert_group_count")
            ));
        }
        return Ok(());
    }
    if used == 0 {
        return Err(format!(
            "{} is {n_expert} but {} is not set or 0 (a dense model with expert_count set?)",
            k.name("expert_count"),
            k.name("expert_used_count")
        ));
    }
    if used > n_expert {
        return Err(format!(
            "{} is {used}, more than the {n_expert} experts",
            k.name("expert_used_count")
        ));
    }
    if groups >= n_expert {
        return Err(format!(
            "{} is {groups}, not fewer than the {n_expert} experts",
            k.name("expert_group_count")
        ));
    }
    if groups > 1 && (n_expert % groups != 0 || group_used == 0 || group_used >= groups) {
        return Err(format!(
            "{} {groups} and {} {group_used} do not fit {n_expert} experts",
            k.name("expert_group_count"),
            k.name("expert_group_used_count")
        ));
    }
    Ok(())
}

/// Head counts: the key/value heads divide the query heads in every layer,
/// the head size is whole, and on architectures whose graph asserts it, key
/// and value heads and the rotary dimension have one size.
fn check_heads(k: &Keys<'_>, n_embd: u64, n_layer: u64) -> Result<(), String> {
    let Some(n_head) = k.per_layer("attention.head_count", n_layer)? else {
        return Ok(());
    };
    let n_head_kv = k
        .per_layer("attention.head_count_kv", n_layer)?
        .unwrap_or_else(|| n_head.clone());
    for (il, (&q, &kv)) in n_head.iter().zip(&n_head_kv).enumerate() {
        if q > i32::MAX as u64 || kv > i32::MAX as u64 {
            return Err(format!(
                "layer {il}: head count {} above 2^31 - 1",
                q.max(kv)
            ));
        }
        if q > 0 && kv > 0 && q % kv != 0 {
            return Err(format!(
                "layer {il}: {q} attention heads are not a multiple of {kv} key/value heads"
            ));
        }
        if q == 0 && kv > 0 {
            return Err(format!(
                "layer {il}: {kv} key/value heads but no attention heads"
            ));
        }
    }
    let n_head0 = n_head[0];
    if n_head0 == 0 {
        return Ok(());
    }
    let key_length = k.u32("attention.key_length")?;
    let value_length = k.u32("attention.value_length")?;
    if key_length.is_none() && !n_embd.is_multiple_of(n_head0) {
        return Err(format!(
            "embedding size {n_embd} is not a multiple of {n_head0} attention heads"
        ));
    }
    let head_k = key_length.unwrap_or(n_embd / n_head0);
    let head_v = value_length.unwrap_or(n_embd / n_head0);
    if head_k == 0 || head_v == 0 {
        return Err("attention head size 0".to_string());
    }
    let n_rot = k.u32("rope.dimension_count")?.unwrap_or(head_k);
    if n_rot > head_k {
        return Err(format!(
            "{} is {n_rot}, more than the head size {head_k}",
            k.name("rope.dimension_count")
        ));
    }
    if EQUAL_HEAD_SIZES.contains(&k.arch) && (head_k != head_v || n_rot != head_k) {
        return Err(format!(
            "{} needs equal key head size, value head size and rotary dimension, \
             got {head_k}, {head_v} and {n_rot}",
            k.arch
        ));
    }
    Ok(())
}

/// Every epsilon of the architecture (normalisation layers divide by
/// `sqrt(var + eps)`, and ggml asserts `eps >= 0`) must be a finite positive
/// number.
fn check_floats(k: &Keys<'_>) -> Result<(), String> {
    let prefix = format!("{}.", k.arch);
    for (key, v) in k.h.metadata.range(prefix.clone()..) {
        if !key.starts_with(&prefix) {
            break;
        }
        if !key.ends_with("epsilon") && !key.ends_with("_eps") {
            continue;
        }
        match v.as_f64() {
            Some(x) if x.is_finite() && x > 0.0 => {}
            Some(x) => return Err(format!("{key} is {x}, it must be a finite number above 0")),
            None => return Err(format!("{key} is not a number")),
        }
    }
    Ok(())
}

/// llama.cpp asserts that token texts are unique (an empty one is renamed
/// `[EMPTY_<id>]`, which must not collide either).
fn check_tokens(h: &GgufHeader) -> Result<(), String> {
    let Some(n) = h.vocab.size() else {
        return Ok(());
    };
    if !h.vocab.has_texts() {
        return Ok(());
    }
    let mut seen: HashSet<Cow<'_, [u8]>> = HashSet::with_capacity(n as usize);
    for id in 0..n as usize {
        let text = h.vocab.text(id).unwrap_or_default();
        let text = if text.is_empty() {
            Cow::Owned(format!("[EMPTY_{id}]").into_bytes())
        } else {
            Cow::Borrowed(text)
        };
        if !seen.insert(text) {
            return Err(format!(
                "token {id} ('{}') appears twice in the token list",
                String::from_utf8_lossy(h.vocab.text(id).unwrap_or_default())
            ));
        }
    }
    Ok(())
}

/// `token_embd.weight` is `[embedding size, vocabulary size]`.
fn check_embedding_shape(h: &GgufHeader, n_embd: u64) -> Result<(), String> {
    let Some(t) = h.tensors.iter().find(|t| t.name == "token_embd.weight") else {
        return Ok(());
    };
    let vocab = h.vocab.size();
    let ok_embd = t.dims.first() == Some(&n_embd);
    let ok_vocab = vocab.is_none_or(|v| t.dims.get(1) == Some(&v));
    if t.dims.len() != 2 || !ok_embd || !ok_vocab {
        return Err(format!(
            "token_embd.weight has shape {:?}, expected [{n_embd}, {}]",
            t.dims,
            vocab.map_or("vocabulary size".to_string(), |v| v.to_string())
        ));
    }
    Ok(())
}
