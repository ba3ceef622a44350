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
    /// Describe a GGUF file without loading its weights.
    Inspect(InspectArgs),
    /// Fetch, list and convert models.
    #[command(subcommand)]
    Models(models_cmd::ModelsCommand),
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

fn inspect(args: &InspectArgs) -> anyhow::Result<()> {
    let path = augur::models::resolve(&args.file)?;
    let info = augur::gguf::inspect(&path)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        print!("{}", info.render_text());
    }
    Ok(())
}

/// Asks llama.cpp for its logs (before any model loads) and prints them on
/// stderr; without it llama.cpp stays silent.
pub fn init_logs(verbose: bool) {
    augur::llama::set_verbose(verbose);
    if verbose {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// Set by Ctrl-C: generation stops at the next token (worker threads are
/// joined and the stats still printed); a second Ctrl-C exits at once.
pub fn interrupt_flag() -> &'static std::sync::atomic::AtomicBool {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::OnceLock;
    static FLAG: AtomicBool = AtomicBool::new(false);
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // Without a handler Ctrl-C still ends the process, just less politely.
        let _ = ctrlc::set_handler(|| {
            if FLAG.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
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

fn main() -> ExitCode {
    let cli = Cli::parse_from(rewrite_llama_flags(std::env::args_os()));
    let result = match &cli.command {
        Command::Run(args) => run_cmd::run(args),
        Command::Serve(args) => serve_cmd::run(args),
        Command::Chat(args) => chat_cmd::run(args),
        Command::Bench(args) => bench_cmd::run(args),
        Command::Calibrate(args) => calibrate_cmd::run(args),
        Command::Inspect(args) => inspect(args),
        Command::Models(cmd) => models_cmd::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
