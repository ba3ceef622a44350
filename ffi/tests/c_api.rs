//! The C API from C: builds the programs in `tests/c` (and the example in
//! `examples/c`) against the freshly built libaugur with
//! `-Wall -Wextra -Werror`, runs them under AddressSanitizer,
//! UndefinedBehaviorSanitizer and LeakSanitizer, and compares what they
//! generate with the Rust API's output for the same settings.
//!
//! Sanitizers rather than valgrind: ggml is built for the host CPU
//! (`target-cpu=native`), and valgrind cannot run AVX-512 code. The
//! sanitizers instrument the C side (the callers' buffers and callbacks) and
//! LeakSanitizer sees every allocation in the process, Rust's included.
//!
//! Needs a C and C++ compiler (`cc`, `c++`; override with CC and CXX),
//! `pkg-config`, and the SmolLM2-135M test model (`augur models pull smollm2-135m`).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};

use augur_facade::llama::GgufModel;
use augur_facade::{Engine, EngineOptions, GenerateParams, SamplingParams, StopReason, TokenId};

const CHAT_PROMPT: &str = "List the colors of the rainbow, then list them again in the same order.";
const RAW_PROMPT: &str = "The three primary colors are red, yellow and";
const MAX_TOKENS: usize = 24;

/// The C programs share two cores with everything else: one runs at a time.
static RUN_LOCK: Mutex<()> = Mutex::new(());

struct Layout {
    /// `target/<profile>`: libaugur.so, libaugur.a.
    lib_dir: PathBuf,
    /// `ffi/`.
    ffi_dir: PathBuf,
    /// Where the C programs are built.
    out_dir: PathBuf,
}

/// Builds libaugur (cargo does not build a cdylib for integration tests) into
/// the target directory this test runs from, once per test binary.
fn layout() -> &'static Layout {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        // <target>/<profile>/deps/c_api-<hash>
        let lib_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
        let target_dir = lib_dir.parent().unwrap();
        let profile = match lib_dir.file_name().unwrap().to_str().unwrap() {
            "debug" => "dev".to_string(),
            other => other.to_string(),
        };
        let ffi_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "augur-ffi", "--lib", "--profile", &profile])
            .arg("--target-dir")
            .arg(target_dir)
            .current_dir(&ffi_dir)
            .status()
            .unwrap();
        assert!(status.success(), "building libaugur failed");
        for lib in ["libaugur.so", "libaugur.a"] {
            assert!(lib_dir.join(lib).is_file(), "{lib} missing in {lib_dir:?}");
        }
        let out_dir = lib_dir.join("augur-ffi-c-tests");
        std::fs::create_dir_all(&out_dir).unwrap();
        Layout {
            lib_dir,
            ffi_dir,
            out_dir,
        }
    })
}

fn model_path() -> PathBuf {
    augur_facade::models::path_of("smollm2-135m")
        .unwrap_or_else(|e| panic!("the C API tests need the SmolLM2 test model: {e}"))
}

fn model() -> Arc<GgufModel> {
    static MODEL: OnceLock<Arc<GgufModel>> = OnceLock::new();
    Arc::clone(MODEL.get_or_init(|| augur_facade::load_model(&model_path(), 0).unwrap()))
}

fn tool(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

const SANITIZE: &[&str] = &[
    "-g",
    "-fno-omit-frame-pointer",
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
];

/// Compiles `source` into `name`, linked against libaugur.so (found at run
/// time through the rpath), under the sanitizers.
fn build_c(name: &str, source: &Path, cxx: bool) -> PathBuf {
    let l = layout();
    let exe = l.out_dir.join(name);
    let mut cmd = Command::new(if cxx {
        tool("CXX", "c++")
    } else {
        tool("CC", "cc")
    });
    cmd.arg(if cxx { "-std=c++17" } else { "-std=c11" })
        .args(["-Wall", "-Wextra", "-Wpedantic", "-Werror"])
        .args(SANITIZE)
        .arg("-I")
        .arg(l.ffi_dir.join("include"))
        .arg("-I")
        .arg(l.ffi_dir.join("tests").join("c"))
        .arg(source)
        .arg("-L")
        .arg(&l.lib_dir)
        .arg("-laugur")
        .arg(format!("-Wl,-rpath,{}", l.lib_dir.display()))
        .arg("-lm")
        .arg("-o")
        .arg(&exe);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "compiling {name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// Runs a C program (one at a time) with the sanitizers set to fail it on
/// any finding, leaks included; panics with its output if it fails.
fn run(exe: &Path, args: &[&str]) -> String {
    let _lock = RUN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let out: Output = Command::new(exe)
        .args(args)
        .env(
            "ASAN_OPTIONS",
            "detect_leaks=1:halt_on_error=1:abort_on_error=0",
        )
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} {args:?} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        exe.display(),
        out.status
    );
    for finding in [
        "ERROR: AddressSanitizer",
        "ERROR: LeakSanitizer",
        "runtime error:",
    ] {
        assert!(!stderr.contains(finding), "{finding}:\n{stderr}");
    }
    stdout
}

/// "name: N passed, 0 failed" from a C test program, with N at least `min`.
fn assert_passed(stdout: &str, name: &str, min: usize) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no summary line from {name}:\n{stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let passed: usize = words[1].parse().unwrap();
    assert_eq!(words[3], "0", "{line}");
    assert!(passed >= min, "only {passed} checks ran: {line}");
}

/// A GGUF header with a three-token vocabulary and no tensors.
fn tiny_gguf() -> Vec<u8> {
    fn s(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    }
    let mut w = b"GGUF".to_vec();
    w.extend_from_slice(&3u32.to_le_bytes());
    w.extend_from_slice(&0u64.to_le_bytes());
    w.extend_from_slice(&4u64.to_le_bytes());
    for (k, v) in [
        ("general.architecture", "llama"),
        ("tokenizer.ggml.model", "gpt2"),
    ] {
        s(&mut w, k.as_bytes());
        w.extend_from_slice(&8u32.to_le_bytes());
        s(&mut w, v.as_bytes());
    }
    s(&mut w, b"tokenizer.ggml.tokens");
    w.extend_from_slice(&9u32.to_le_bytes());
    w.extend_from_slice(&8u32.to_le_bytes());
    w.extend_from_slice(&3u64.to_le_bytes());
    for t in [&b"<s>"[..], b"hello", b"world"] {
        s(&mut w, t);
    }
    s(&mut w, b"tokenizer.ggml.bos_token_id");
    w.extend_from_slice(&4u32.to_le_bytes());
    w.extend_from_slice(&0u32.to_le_bytes());
    w
}

#[test]
fn every_error_path_returns_its_status() {
    let exe = build_c("errors", &layout().ffi_dir.join("tests/c/errors.c"), false);
    let dir = layout().out_dir.join("errors-files");
    std::fs::create_dir_all(&dir).unwrap();
    let not_gguf = dir.join("not-a-model.txt");
    std::fs::write(&not_gguf, "this is not a model\n").unwrap();
    let other = dir.join("other-vocab.gguf");
    std::fs::write(&other, tiny_gguf()).unwrap();
    let missing = dir.join("no-such-dir").join("model.gguf");
    let model = model_path();
    let stdout = run(
        &exe,
        &[
            model.to_str().unwrap(),
            not_gguf.to_str().unwrap(),
            other.to_str().unwrap(),
            missing.to_str().unwrap(),
        ],
    );
    assert_passed(&stdout, "errors", 150);
}

#[test]
fn hostile_files_end_a_child_with_a_status_never_a_signal() {
    let exe = build_c(
        "hostile",
        &layout().ffi_dir.join("tests/c/hostile.c"),
        false,
    );
    // The files that aborted llama.cpp (or panicked the bindings) before
    // validation refused them, and a truncated copy of the real model.
    let corpus = layout().ffi_dir.join("../tests/fuzz-corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    let bytes = std::fs::read(model_path()).unwrap();
    let dir = layout().out_dir.join("hostile-files");
    std::fs::create_dir_all(&dir).unwrap();
    let cut = dir.join("truncated.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    files.push(cut);
    let model = model_path();
    let mut args = vec![model.to_str().unwrap().to_string()];
    args.extend(files.iter().map(|f| f.to_str().unwrap().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stdout = run(&exe, &args);
    assert_passed(&stdout, "hostile", files.len() + 10);
}

#[test]
fn loading_and_freeing_in_a_loop_leaks_nothing() {
    let exe = build_c("leak", &layout().ffi_dir.join("tests/c/leak.c"), false);
    let model = model_path();
    let stdout = run(&exe, &[model.to_str().unwrap(), "4"]);
    assert_passed(&stdout, "leak", 28);
}

#[test]
fn the_header_works_from_cpp() {
    let exe = build_c(
        "header_cpp",
        &layout().ffi_dir.join("tests/c/header_cpp.cpp"),
        true,
    );
    assert_eq!(run(&exe, &[]).trim(), "c++: ok");
}

/// One run's results as the C program printed them.
#[derive(Debug, Default)]
struct CRun {
    fields: HashMap<String, u64>,
    tokens: Vec<TokenId>,
    text: String,
    /// Per drafter: its name and its counters.
    drafters: Vec<(String, HashMap<String, u64>)>,
}

impl CRun {
    fn get(&self, key: &str) -> u64 {
        *self
            .fields
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in {self:?}"))
    }
}

fn parse_runs(stdout: &str) -> HashMap<String, CRun> {
    let mut runs: HashMap<String, CRun> = HashMap::new();
    for line in stdout.lines() {
        let mut words = line.split(' ');
        let (Some(kind), Some(label)) = (words.next(), words.next()) else {
            continue;
        };
        let run = runs.entry(label.to_string()).or_default();
        match kind {
            "RUN" => {
                for w in words {
                    let (k, v) = w.split_once('=').unwrap();
                    run.fields.insert(k.to_string(), v.parse().unwrap());
                }
            }
            "TOKENS" => run.tokens = words.map(|w| w.parse().unwrap()).collect(),
            "DRAFTER" => {
                let name = words.next().unwrap_or("").to_string();
                let fields = words
                    .map(|w| {
                        let (k, v) = w.split_once('=').unwrap();
                        (k.to_string(), v.parse().unwrap())
                    })
                    .collect();
                run.drafters.push((name, fields));
            }
            "TEXT" => {
                let hex = words.next().unwrap_or("");
                let bytes: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect();
                run.text = String::from_utf8(bytes).unwrap();
            }
            _ => {}
        }
    }
    runs
}

/// What the Rust API generates with the baseline strategy and the C API's
/// default session settings.
fn rust_generation(
    prompt: &str,
    chat: bool,
    sampling: SamplingParams,
) -> (Vec<TokenId>, String, StopReason) {
    let model = model();
    // llama.cpp contexts must not be created concurrently.
    let _lock = RUN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let options = EngineOptions::new(model.path());
    let mut engine = Engine::with_models(model, None, options).unwrap();
    let tokens = engine.tokenize_prompt(prompt, chat).unwrap();
    let mut text = String::new();
    let params = GenerateParams {
        max_tokens: MAX_TOKENS,
        sampling,
    };
    let g = engine
        .generate(&tokens, &params, &mut |_, piece| {
            text.push_str(piece);
            true
        })
        .unwrap();
    (g.tokens, text, g.stop)
}

fn stop_code(s: StopReason) -> u64 {
    match s {
        StopReason::EndOfGeneration => 0,
        StopReason::MaxTokens => 1,
        StopReason::ContextFull => 2,
        StopReason::Cancelled => 3,
    }
}

#[test]
fn generation_from_c_matches_the_rust_api() {
    let exe = build_c(
        "generate",
        &layout().ffi_dir.join("tests/c/generate.c"),
        false,
    );
    let model_file = model_path();
    let max = MAX_TOKENS.to_string();
    let stdout = run(
        &exe,
        &[model_file.to_str().unwrap(), CHAT_PROMPT, RAW_PROMPT, &max],
    );
    assert_passed(&stdout, "generate", 100);
    let runs = parse_runs(&stdout);

    // Greedy: the C baseline is the Rust API's output, tokens and text.
    let (tokens, text, stop) = rust_generation(CHAT_PROMPT, true, SamplingParams::greedy());
    assert!(!tokens.is_empty());
    let base = &runs["baseline"];
    assert_eq!(base.tokens, tokens);
    assert_eq!(base.text, text);
    assert_eq!(base.get("stop"), stop_code(stop));
    assert_eq!(base.get("n_generated"), tokens.len() as u64);
    assert_eq!(model().detokenize(&base.tokens), text);

    // The default strategy, auto, with the model as its own draft: the
    // baseline's output, and per-drafter statistics that add up.
    let auto = &runs["auto"];
    assert_eq!(auto.tokens, tokens, "auto departs from the baseline");
    assert!(!auto.drafters.is_empty(), "{auto:?}");
    let emitted: u64 = auto.drafters.iter().map(|(_, f)| f["tokens"]).sum();
    let drafted: u64 = auto.drafters.iter().map(|(_, f)| f["drafted"]).sum();
    assert_eq!(drafted, auto.get("drafted"), "{auto:?}");
    assert!(emitted >= auto.get("n_generated"), "{auto:?}");
    assert!(
        auto.drafters
            .iter()
            .all(|(n, _)| ["none", "prompt-lookup", "draft-model"].contains(&n.as_str())),
        "{auto:?}"
    );

    // Every strategy, and the C drafter, gives exactly the baseline's output.
    for label in [
        "prompt-lookup",
        "lookahead",
        "speculative",
        "c-drafter",
        "c-drafter-again",
    ] {
        let r = &runs[label];
        assert_eq!(r.get("status"), 0, "{label}");
        assert_eq!(r.tokens, tokens, "{label} departs from the baseline");
        assert_eq!(r.text, text, "{label}");
        assert_eq!(r.get("stop"), stop_code(stop), "{label}");
        // Kernel-level mode was asked for: a run that made passes of several
        // tokens (whenever it drafted: lookahead only takes a step with a
        // candidate to verify) reports the weaker guarantee. Whether prompt
        // lookup and lookahead draft here depends on this machine's measured
        // pass costs.
        let big_passes = r.get("drafted") > 0;
        assert_eq!(r.get("exactness"), u64::from(big_passes), "{label}: {r:?}");
    }

    // The C drafter was consulted on every step and reset once per generation.
    let cd = &runs["c-drafter"];
    assert!(cd.get("calls") > 0);
    assert_eq!(cd.get("resets"), 1);
    let again = &runs["c-drafter-again"];
    assert_eq!(again.get("resets"), 2);
    assert_eq!(again.get("calls"), 2 * cd.get("calls"));
    // Drafts were verified.
    assert!(cd.get("drafted") > 0, "{cd:?}");
    let spec = &runs["speculative"];
    // The target drafting for itself: every greedy draft is accepted.
    assert!(spec.get("drafted") > 0, "{spec:?}");
    assert_eq!(spec.get("accepted"), spec.get("drafted"), "{spec:?}");
    assert!(spec.get("target_passes") < tokens.len() as u64, "{spec:?}");

    // Stopped by the callback after three pieces: a prefix of the baseline.
    let cancel = &runs["cancel"];
    assert_eq!(cancel.get("stop"), 3);
    assert!(!cancel.tokens.is_empty() && cancel.tokens.len() < tokens.len());
    assert_eq!(cancel.tokens[..], tokens[..cancel.tokens.len()]);
    assert!(text.starts_with(&cancel.text) && !cancel.text.is_empty());

    // Sampling with a seed: the same draws as the Rust API.
    let sampling = SamplingParams {
        temperature: 0.8,
        seed: 42,
        ..SamplingParams::default()
    };
    let (sampled, sampled_text, _) = rust_generation(CHAT_PROMPT, true, sampling);
    assert_eq!(runs["sampled"].tokens, sampled);
    assert_eq!(runs["sampled"].text, sampled_text);

    // A prompt passed as token ids, without the chat template.
    let (raw, raw_text, _) = rust_generation(RAW_PROMPT, false, SamplingParams::greedy());
    assert!(!raw.is_empty());
    assert_eq!(runs["raw-tokens"].tokens, raw);
    assert_eq!(runs["raw-tokens"].text, raw_text);
}

/// The example's link lines, as ffi/README.md gives them: against the shared
/// library through pkg-config, and against the static library.
#[test]
fn the_example_links_shared_through_pkg_config_and_static() {
    let l = layout();
    let source = l.ffi_dir.parent().unwrap().join("examples/c/generate.c");

    // augur.pc from the template, pointing at this build.
    let template = std::fs::read_to_string(l.ffi_dir.join("augur.pc.in")).unwrap();
    let pc_dir = l.out_dir.join("pkgconfig");
    std::fs::create_dir_all(&pc_dir).unwrap();
    let pc = template
        .replace("@LIBDIR@", l.lib_dir.to_str().unwrap())
        .replace("@INCLUDEDIR@", l.ffi_dir.join("include").to_str().unwrap())
        .replace("@VERSION@", env!("CARGO_PKG_VERSION"));
    std::fs::write(pc_dir.join("augur.pc"), pc).unwrap();
    let flags = |extra: &[&str]| -> Vec<String> {
        let out = Command::new(tool("PKG_CONFIG", "pkg-config"))
            .args(extra)
            .args(["--cflags", "--libs", "augur"])
            .env("PKG_CONFIG_PATH", &pc_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let version = Command::new(tool("PKG_CONFIG", "pkg-config"))
        .args(["--modversion", "augur"])
        .env("PKG_CONFIG_PATH", &pc_dir)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        env!("CARGO_PKG_VERSION")
    );

    let shared = l.out_dir.join("example-shared");
    let status = Command::new(tool("CC", "cc"))
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .arg(&source)
        .args(flags(&[]))
        .arg(format!("-Wl,-rpath,{}", l.lib_dir.display()))
        .arg("-o")
        .arg(&shared)
        .status()
        .unwrap();
    assert!(status.success(), "linking the example against libaugur.so");

    // Static: the archive itself plus its private libraries.
    let statik = l.out_dir.join("example-static");
    let private: Vec<String> = flags(&["--static"])
        .into_iter()
        .filter(|f| f.starts_with("-l") && f != "-laugur")
        .collect();
    assert!(private.contains(&"-lstdc++".to_string()), "{private:?}");
    let status = Command::new(tool("CC", "cc"))
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(l.ffi_dir.join("include"))
        .arg(&source)
        .arg(l.lib_dir.join("libaugur.a"))
        .args(&private)
        .arg("-o")
        .arg(&statik)
        .status()
        .unwrap();
    assert!(status.success(), "linking the example against libaugur.a");
    let needed = Command::new("ldd").arg(&statik).output();
    if let Ok(needed) = needed {
        let needed = String::from_utf8_lossy(&needed.stdout);
        assert!(!needed.contains("libaugur"), "not static: {needed}");
    }

    // Both print the Rust API's greedy answer.
    let (_, text, _) = rust_generation(CHAT_PROMPT, true, SamplingParams::greedy());
    let model = model_path();
    let n = MAX_TOKENS.to_string();
    for exe in [&shared, &statik] {
        let _lock = RUN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let out = Command::new(exe)
            .args([model.to_str().unwrap(), CHAT_PROMPT, "baseline", &n])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}: {stderr}", exe.display());
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{text}\n"));
        assert!(stderr.contains("baseline"), "{stderr}");
    }
}
