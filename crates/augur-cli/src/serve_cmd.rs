//! `augur serve`: an OpenAI-compatible HTTP server.

use anyhow::Context;
use augur::{StrategyConfig, StrategyKind};

use crate::run_cmd::{DraftArgs, LookupArgs, ModelArgs, SamplingArgs};

/// `augur serve --help`'s description.
pub const ABOUT: &str = "\
Serve a model over an OpenAI-compatible HTTP API.

Endpoints: POST /v1/chat/completions and POST /v1/completions (whole answers, or \
streamed as server-sent events with \"stream\": true), GET /v1/models, GET /health. \
Point an editor or any OpenAI client at http://HOST:PORT/v1.

One generation runs at a time per model: requests wait in a queue of --max-queue \
places, and beyond it are answered 503. A client that disconnects cancels its \
generation at the next token. The model's cache is kept between requests, so a \
request that continues the previous one (the next turn of a conversation, the same \
file with a new instruction) evaluates only its new tokens; each answer reports how \
many prompt tokens were evaluated and reused (usage.prompt_tokens_details.cached_tokens \
and the \"augur\" statistics field). An answer that reused the cache is kernel-level \
exact: the reused entries came from passes of other sizes than a fresh prompt pass, \
which round differently on most builds. For bit-identical answers (those of `augur \
run`), send \"exact\": true in a request, or start the server with --exact or \
--no-prompt-reuse.

Requests take OpenAI's fields (messages or prompt, max_tokens, temperature, top_p, \
seed, stop, stream, stream_options.include_usage) plus top_k and min_p, and augur's \
own strategy, draft_max and exact. The sampling options below are the defaults of \
requests that leave those fields out (greedy unless --temp is set), and the strategy \
options are the defaults of requests that name no strategy. A chat request's messages \
go through the model's own chat template, as `augur run --chat` does.

Ctrl-C or SIGTERM stops accepting, cancels running generations and exits.";

/// Arguments of `augur serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Address to listen on. The default serves this machine only; to open
    /// the server to a network, set --api-key too.
    #[arg(long, default_value = "127.0.0.1", help_heading = "Server")]
    pub host: String,
    /// Port to listen on (0 picks a free one and prints it).
    #[arg(long, default_value_t = 8080, help_heading = "Server")]
    pub port: u16,
    /// Require `Authorization: Bearer KEY` on every /v1 request (401
    /// otherwise); /health stays open.
    #[arg(long = "api-key", value_name = "KEY", help_heading = "Server")]
    pub api_key: Option<String>,
    /// Requests that may wait while one generates (one generation runs at a
    /// time per model); more are answered 503.
    #[arg(long = "max-queue", default_value_t = 8, help_heading = "Server")]
    pub max_queue: usize,
    /// Largest request body in bytes; larger ones are answered 413.
    #[arg(long = "max-body", value_name = "BYTES", default_value_t = 4 << 20, help_heading = "Server")]
    pub max_body: usize,
    /// The model's name in /v1/models and in answers [default: the file's
    /// name without .gguf]. Requests may name the model by it or by its file
    /// name, or leave it out; any other name is answered 404.
    #[arg(long, value_name = "NAME", help_heading = "Server")]
    pub alias: Option<String>,
    /// Evaluate every prompt from the start instead of reusing the cache of
    /// the previous request: slower on conversations, but every answer is
    /// bit-identical to `augur run`'s (with reuse, kernel-level exact).
    #[arg(long = "no-prompt-reuse", help_heading = "Server")]
    pub no_prompt_reuse: bool,
    /// Default decoding strategy (a request's "strategy" field overrides it):
    /// auto (each step the drafter expected to pay best; uses the draft model
    /// when there is one), baseline, speculative (needs a draft model, -md),
    /// lookahead (greedy only), prompt-lookup.
    #[arg(long, default_value = "auto", help_heading = "Strategy defaults")]
    pub strategy: String,
    #[command(flatten, next_help_heading = "Strategy defaults")]
    pub draft: DraftArgs,
    #[command(flatten, next_help_heading = "Strategy defaults")]
    pub lookup: LookupArgs,
    #[command(flatten, next_help_heading = "Request defaults (sampling)")]
    pub sampling: SamplingArgs,
}

/// Runs `augur serve` until Ctrl-C or SIGTERM.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let sampling = args.sampling.params()?;
    let kind: StrategyKind = args.strategy.parse()?;
    crate::init_logs(args.model.verbose);
    let target = args.model.target_path()?;

    // The one settings table, as `augur run` applies it.
    let settings = crate::run_cmd::flag_settings(&args.draft, &args.lookup);
    let mut strategy = StrategyConfig::new(kind);
    strategy.apply(&settings)?;
    strategy.validate()?;
    // A draft given explicitly is loaded even when the default strategy does
    // not use it, so that requests may ask for speculative decoding.
    let draft = args.draft.draft_for(kind, &target, true)?;
    let engine =
        crate::run_cmd::engine_options(&args.model, &args.draft, target.clone(), strategy, draft);
    let config = augur_server::ServerConfig {
        host: args.host.clone(),
        port: args.port,
        api_key: args.api_key.clone(),
        max_queue: args.max_queue,
        max_body_bytes: args.max_body,
        model_name: args.alias.clone(),
        prompt_reuse: !args.no_prompt_reuse,
        sampling,
        settings,
        ..augur_server::ServerConfig::new(engine)
    };
    eprintln!("augur: loading {}", target.display());
    augur_server::serve(config, |addr| {
        eprintln!(
            "augur: serving on http://{addr} (OpenAI API: http://{addr}/v1), strategy {kind}; \
             Ctrl-C stops"
        );
    })
    .context("augur serve")?;
    eprintln!("augur: stopped");
    Ok(())
}
