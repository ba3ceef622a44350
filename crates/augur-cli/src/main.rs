//! `augur`: exact, faster local LLM decoding from the command line.

mod bench_cmd;
mod calibrate_cmd;
mod chat_cmd;
mod models_cmd;
mod run_cmd;
mod serve_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exact, faster local LLM decoding for GGUF models.
///
/// augur runs a llama.cpp model under a decoding strategy (plain, speculative
/// with a draft model, lookahead, prompt lookup). Every strategy emits exactly
/// what the model would: the same tokens under greedy decoding, the same
/// distribution under sampling.
#[derive(Debug, Parser)]
#[command(name = "augur", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate text from a prompt, streaming it to stdout.
    ///
    /// Exit status: 0 when generation ends, also when stdout is closed early
    /// (`augur run ... | head -c 100` stops generating and ends quietly); 1 on
    /// an error (one `error:` line on stderr); 130 after Ctrl-C, which stops
    /// generation at the next token (the text so far and the stats line are
    /// still printed) or, during model loading, right after the load; a
    /// second Ctrl-C exits at once.
    Run(Box<run_cmd::RunArgs>),
    /// Serve a model over an OpenAI-compatible HTTP API (one generation at a time).
    #[command(long_about = serve_cmd::ABOUT)]
    Serve(Box<serve_cmd::ServeArgs>),
    /// Chat with a model in the terminal.
    #[command(long_about = chat_cmd::ABOUT)]
    Chat(Box<chat_cmd::ChatArgs>),
    /// Compare strategies on the same prompts and models (speed, acceptance, exactness).
    Bench(Box<bench_cmd::BenchArgs>),
    /// Measure this machine's pass costs and bit-exact pass size; predict speedups.
    Calibrate(Box<calibrate_cmd::CalibrateArgs>),
    /// Describe a GGUF file without loading its weights, and say whether
    /// augur would load it (exit status 1 when not).
    Inspect(InspectArgs),
    /// Fetch, list and convert models.
    #[command(subcommand)]
    Models(models_cmd::ModelsCommand),
    /// Loads a model and decodes a few tokens: the pre-flight check that
    /// runs in a child process (see `preflight`).
    #[command(name = "__probe", hide = true)]
    Probe {
        /// The model file.
        file: std::path::PathBuf,
    },
}

/// Checks, in a child process (this binary's hidden `__probe` command), that
/// loading `path` cannot end this process, unless a check of the file as it
/// is now passed before (see `augur::preflight`); returns the path.
pub fn preflight(path: std::path::PathBuf) -> anyhow::Result<std::path::PathBuf> {
    // Refusals the validator gives need no child.
    augur::gguf::validate(&path)?;
    let exe = std::env::current_exe()?;
    let mut child = std::process::Command::new(exe);
    child.arg("__probe").arg(&path);
    augur::preflight::check(&path, child)?;
    Ok(path)
}

/// Arguments of `augur inspect`.
#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// The GGUF file, or a catalog name such as qwen2.5-coder-1.5b.
    file: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Describes the file, then gives the verdict of the validation that `run`
/// applies before loading: a file `run` refuses is described as far as its
/// header allows, and the command fails with `run`'s reason.
fn inspect(args: &InspectArgs) -> anyhow::Result<()> {
    let path = augur::models::resolve(&args.file)?;
    let info = augur::gguf::inspect(&path)?;
    let verdict = augur::gguf::validate(&path).map(|_| ());
    if args.json {
        let mut value = serde_json::to_value(&info)?;
        if let Some(map) = value.as_object_mut() {
            map.insert("loadable".into(), verdict.is_ok().into());
            let problem = verdict.as_ref().err().map(ToString::to_string);
            map.insert("problem".into(), problem.into());
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", info.render_text());
        println!(
            "{:<16}{}",
            "Loadable:",
            if verdict.is_ok() { "yes" } else { "no" }
        );
    }
    Ok(verdict?)
}

/// Asks llama.cpp for its logs (before any model loads) and prints them on
/// stderr; without it llama.cpp stays silent.
pub fn init_logs(verbose: bool) {
    augur::llama::set_verbose(verbose);
    // A first run with a model calibrates it: say so, it takes a minute.
    augur::calibration::set_progress(|line| eprintln!("augur: {line}"));
    if verbose {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// Writes `text` to stdout; a closed pipe (the reader exited, as `head` does)
/// is not an error: the text has nowhere to go and the command ends quietly.
pub fn print_ignoring_closed_pipe(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Set by Ctrl-C: generation stops at the next token (worker threads are
/// joined and the stats still printed), and the command exits with status
/// 130; a second Ctrl-C exits at once. Installed before models load, so that
/// Ctrl-C during a load ends the command cleanly after it.
pub fn interrupt_flag() -> &'static std::sync::atomic::AtomicBool {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::OnceLock;
    static FLAG: AtomicBool = AtomicBool::new(false);
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // Without a handler Ctrl-C still ends the process, just less politely.
        let _ = ctrlc::set_handler(|| {
            if FLAG.swap(true, Ordering::SeqCst) {
                eprintln!("\naugur: interrupted");
                std::process::exit(INTERRUPTED);
            }
        });
    });
    &FLAG
}

/// llama.cpp's multi-letter single-dash flags, rewritten to their long forms
/// (clap would read `-md` as `-m d`).
const LLAMA_STYLE_FLAGS: &[(&str, &str)] = &[
    ("-md", "--model-draft"),
    ("-ngl", "--n-gpu-layers"),
    ("-ngld", "--n-gpu-layers-draft"),
    ("-td", "--threads-draft"),
];

fn rewrite_llama_flags(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    args.map(|a| {
        LLAMA_STYLE_FLAGS
            .iter()
            .find(|(short, _)| a == *short)
            .map_or(a, |(_, long)| (*long).into())
    })
    .collect()
}

/// The exit status after Ctrl-C (128 + SIGINT, as shells report it).
const INTERRUPTED: i32 = 130;

fn main() -> ExitCode {
    let cli = Cli::parse_from(rewrite_llama_flags(std::env::args_os()));
    // `run` watches Ctrl-C from the start: a SIGINT during the model load
    // would otherwise kill the process by the signal, with no message.
    let watch_interrupts = matches!(cli.command, Command::Run(_));
    if watch_interrupts {
        interrupt_flag();
    }
    let result = match &cli.command {
        Command::Run(args) => run_cmd::run(args),
        Command::Serve(args) => serve_cmd::run(args),
        Command::Chat(args) => chat_cmd::run(args),
        Command::Bench(args) => bench_cmd::run(args),
        Command::Calibrate(args) => calibrate_cmd::run(args),
        Command::Inspect(args) => inspect(args),
        Command::Models(cmd) => models_cmd::run(cmd),
        Command::Probe { file } => augur::preflight::probe(file).map_err(Into::into),
    };
    if let Some(warning) = augur::calibration::take_store_failure() {
        eprintln!("augur: warning: {warning}");
    }
    let interrupted =
        watch_interrupts && interrupt_flag().load(std::sync::atomic::Ordering::SeqCst);
    match result {
        Ok(()) if interrupted => {
            eprintln!("augur: interrupted");
            ExitCode::from(INTERRUPTED as u8)
        }
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
