//! `augur chat`: an interactive chat in the terminal.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context};
use augur::{
    Engine, Exactness, GenerateParams, RunStats, StopReason, StrategyConfig, StrategyKind,
};
use rustyline::error::ReadlineError;

use crate::run_cmd::{DraftArgs, LookupArgs, ModelArgs, SamplingArgs};

/// `augur chat --help`'s description.
pub const ABOUT: &str = "\
Chat with a model in the terminal.

Type a message and press Enter; the answer streams as it is generated, in the model's \
own chat template. The conversation is kept, and the model's cache with it: each turn \
evaluates only its new tokens (which makes answers kernel-level exact; with --exact \
every turn is evaluated afresh and bit-identical). One generation runs at a time.

Commands: /reset starts a new conversation (keeping --system), /stats shows the last \
answer's numbers (speed, prompt tokens evaluated and reused, drafting), /help lists \
these, /exit quits. Ctrl-C stops the answer being written (not the program); Ctrl-D \
on an empty line exits.";

/// Arguments of `augur chat`.
#[derive(Debug, clap::Args)]
pub struct ChatArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A system prompt, sent before the conversation (kept by /reset).
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// The most tokens per answer [default: until the model ends it or the
    /// context is full].
    #[arg(short = 'n', long = "n-predict", value_name = "N")]
    pub n_predict: Option<usize>,
    /// Decoding strategy: auto (each step the drafter expected to pay best),
    /// baseline, speculative (draft model), lookahead (greedy only),
    /// prompt-lookup.
    #[arg(long, default_value = "auto")]
    pub strategy: String,
    #[command(flatten)]
    pub draft: DraftArgs,
    #[command(flatten)]
    pub lookup: LookupArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

/// Set by Ctrl-C while an answer is being written. At the prompt the
/// terminal is in raw mode and Ctrl-C arrives as a key instead.
static STOP: AtomicBool = AtomicBool::new(false);

struct Last {
    stats: RunStats,
    exactness: Exactness,
    stop: StopReason,
}

/// The conversation so far: its user turns and the context tokens it holds.
struct Conversation {
    turns: usize,
    tokens: usize,
}

fn print_stats(last: Option<&Last>, strategy: &str, conversation: &Conversation, n_ctx: usize) {
    println!(
        "conversation: {} user turn(s), {} of {n_ctx} context tokens",
        conversation.turns, conversation.tokens
    );
    let Some(l) = last else {
        println!("no answer yet");
        return;
    };
    let s = &l.stats;
    println!(
        "last answer: {} tokens in {:.2} s ({:.1} tokens/s), stopped: {}",
        s.n_generated,
        s.decode_seconds,
        s.tokens_per_second(),
        match l.stop {
            StopReason::EndOfGeneration => "end of answer",
            StopReason::MaxTokens => "token limit (-n)",
            StopReason::ContextFull => "context full",
            StopReason::Cancelled => "stopped by you",
        }
    );
    println!(
        "prompt: {} tokens, {} evaluated in {:.2} s, {} reused from the cache",
        s.n_prompt,
        s.n_prompt - s.n_reused,
        s.prefill_seconds,
        s.n_reused
    );
    let mut line = format!(
        "strategy {strategy}, {}, {} target passes ({:.2} tokens per pass)",
        l.exactness.label(),
        s.target_passes,
        s.tokens_per_target_pass()
    );
    if s.drafted > 0 {
        line.push_str(&format!(
            ", accepted {}/{} drafts ({:.1} %)",
            s.accepted,
            s.drafted,
            100.0 * s.acceptance_rate()
        ));
    }
    println!("{line}");
}

/// Runs `augur chat` until Ctrl-D or /exit.
pub fn run(args: &ChatArgs) -> anyhow::Result<()> {
    let sampling = args.sampling.params()?;
    let kind: StrategyKind = args.strategy.parse()?;
    if args.n_predict == Some(0) {
        bail!("-n must be at least 1");
    }
    crate::init_logs(args.model.verbose);
    let target = args.model.target_path()?;
    // The one settings table, as `augur run` applies it.
    let settings = crate::run_cmd::flag_settings(&args.draft, &args.lookup);
    let mut strategy = StrategyConfig::new(kind);
    strategy.apply(&settings)?;
    strategy.validate()?;
    let draft = args.draft.draft_for(kind, &target, false)?;
    let options =
        crate::run_cmd::engine_options(&args.model, &args.draft, target.clone(), strategy, draft);
    // Bit-exact output needs every prompt evaluated afresh (reused cache
    // entries make a run kernel-level exact).
    let reuse = options.exact != augur::ExactMode::Bit;
    let mut engine = Engine::new(options)?;
    engine.set_prompt_reuse(reuse);
    let model = std::sync::Arc::clone(engine.target_model());
    if !model.has_chat_template() {
        bail!(
            "{} has no chat template; use `augur run` for plain completion",
            target.display()
        );
    }

    let name = target
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model");
    eprintln!(
        "augur chat: {name}, strategy {}. /reset starts over, /stats shows numbers, \
         Ctrl-C stops an answer, Ctrl-D exits.",
        engine.strategy_name()
    );
    let system: Vec<(String, String)> = args
        .system
        .iter()
        .map(|s| ("system".to_owned(), s.clone()))
        .collect();
    let mut messages = system.clone();
    let mut last: Option<Last> = None;
    let mut conversation = Conversation {
        turns: 0,
        tokens: 0,
    };
    let mut editor = rustyline::DefaultEditor::new().context("opening the terminal")?;
    // After the editor, which sets a SIGINT handler of its own: while it
    // reads a line the terminal is raw and Ctrl-C arrives as a key; while an
    // answer is written it is a signal, and this handler stops the answer.
    ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;
    let stdout = std::io::stdout();
    let n_ctx = engine.options().n_ctx;
    loop {
        let line = match editor.readline("> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                println!("(Ctrl-D or /exit quits)");
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("reading the terminal"),
        };
        let input = line.trim();
        if input.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(input);
        match input {
            "/exit" | "/quit" => break,
            "/reset" => {
                messages.clone_from(&system);
                conversation = Conversation {
                    turns: 0,
                    tokens: 0,
                };
                println!("(new conversation)");
                continue;
            }
            "/stats" => {
                print_stats(last.as_ref(), engine.strategy_name(), &conversation, n_ctx);
                continue;
            }
            "/help" => {
                println!("/reset: new conversation; /stats: last answer's numbers; /exit: quit");
                println!("Ctrl-C stops an answer; Ctrl-D exits");
                continue;
            }
            _ if input.starts_with('/') && !input.contains(' ') => {
                println!("unknown command {input}; /help lists them");
                continue;
            }
            _ => {}
        }

        messages.push(("user".to_owned(), input.to_owned()));
        let pairs: Vec<(&str, &str)> = messages
            .iter()
            .map(|(r, c)| (r.as_str(), c.as_str()))
            .collect();
        let prompt = model
            .apply_chat_messages(&pairs, true)
            .map_err(anyhow::Error::from)
            .and_then(|text| Ok(model.tokenize(&text, true)?));
        let prompt = match prompt {
            Ok(p) if p.len() < n_ctx => p,
            Ok(p) => {
                messages.pop();
                println!(
                    "the conversation ({} tokens) no longer fits the context of {n_ctx} tokens: \
                     /reset to start over, or run with a larger -c",
                    p.len()
                );
                continue;
            }
            Err(e) => {
                messages.pop();
                println!("error: {e:#}");
                continue;
            }
        };
        let params = GenerateParams {
            max_tokens: args.n_predict.unwrap_or(n_ctx - prompt.len()),
            sampling: sampling.clone(),
        };
        STOP.store(false, Ordering::SeqCst);
        let mut answer = String::new();
        let result = engine.generate(&prompt, &params, &mut |_, piece| {
            answer.push_str(piece);
            let mut out = stdout.lock();
            let _ = out.write_all(piece.as_bytes()).and_then(|()| out.flush());
            !STOP.load(Ordering::SeqCst)
        });
        match result {
            Ok(g) => {
                if g.stop == StopReason::Cancelled {
                    println!(" [stopped]");
                } else {
                    println!();
                }
                // A stopped answer stays in the conversation as far as it got.
                messages.push(("assistant".to_owned(), answer));
                conversation.turns += 1;
                conversation.tokens = g.stats.n_prompt + g.stats.n_generated;
                last = Some(Last {
                    stats: g.stats,
                    exactness: g.exactness,
                    stop: g.stop,
                });
            }
            Err(e) => {
                messages.pop();
                println!("\nerror: {e}");
            }
        }
    }
    Ok(())
}
