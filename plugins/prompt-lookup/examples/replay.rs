//! Replays recorded greedy runs against prompt lookup, offline: how many
//! target passes of which sizes the drafter would make on real text, and the
//! speedup those passes predict with measured pass costs.
//!
//! Greedy decoding is deterministic, so a recorded baseline run (prompt and
//! output token ids) says what the target would pick after every correct
//! prefix. A stand-in model answers each position with the recorded next
//! token; the real [`PromptLookup`] strategy runs against it through the real
//! driver, and every pass is charged what a pass of that size costs on the
//! measured machine. Drafting policies can so be compared in a second, on the
//! text the model really writes, without running the model.
//!
//! Run:
//! ```text
//! augur bench --workload edit --strategies baseline -n 160 --json runs.json
//! cargo run --release -p augur-prompt-lookup --example replay -- runs.json \
//!     ~/.cache/augur/calibration/<model>-t2-<hash>.json
//! ```
//! The second file (an `augur calibrate` cache entry, or any JSON object with
//! a `pass_seconds` array) gives the cost of passes of 1, 2, … tokens; without
//! it, passes cost 1 + 0.69 (k − 1).
//!
//! `REPLAY_TRACE=<id part>` prints each matching run's passes (drafted/right);
//! `REPLAY_ORACLE=1` replaces the draft-length policy by one that knows the
//! text (an upper bound for the same candidates).

use std::collections::HashMap;

use augur_core::testing::ScriptedModel;
use augur_core::{
    generate, CoreError, CostModel, GenerateParams, Proposal, SamplingParams, StepContext,
    Strategy, TokenId,
};
use augur_prompt_lookup::{PromptLookup, PromptLookupConfig};

/// An upper bound for the draft-length policy: prompt lookup's own
/// candidates, cut to the longest draft that pays among those that would be
/// accepted (it knows the text). Shows how much a better length policy could
/// still gain over the real one with the same candidates.
struct Oracle {
    inner: PromptLookup,
    text: Vec<TokenId>,
    costs: Vec<f64>,
    draft: Vec<TokenId>,
}

impl Strategy for Oracle {
    fn name(&self) -> &'static str {
        "oracle"
    }
    fn step(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
        let len = ctx.tokens.len();
        self.inner
            .drafter_mut()
            .candidate(ctx.tokens, 15, &mut self.draft);
        let right = self
            .draft
            .iter()
            .enumerate()
            .take_while(|&(i, t)| self.text.get(len + i) == Some(t))
            .count()
            .min(ctx.max_drafts());
        // The accepted length with the best tokens per cost.
        let k = (0..=right)
            .max_by(|&a, &b| {
                let v = |k: usize| (k + 1) as f64 / cost(&self.costs, k + 1);
                v(a).total_cmp(&v(b))
            })
            .unwrap_or(0);
        ctx.verify(
            &Proposal::deterministic(&self.draft[..k]),
            1,
            &mut CostModel::prior(),
        )?;
        Ok(())
    }
}

/// One recorded run: prompt and output ids, and whether it ended at an
/// end-of-generation token.
struct Trace {
    id: String,
    prompt: Vec<TokenId>,
    output: Vec<TokenId>,
    ended: bool,
}

fn load_traces(path: &str) -> Result<Vec<Trace>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    let baseline = v["baseline"].as_str().unwrap_or("baseline").to_string();
    let ids = |x: &serde_json::Value| -> Vec<TokenId> {
        x.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_u64())
                    .map(|t| t as TokenId)
                    .collect()
            })
            .unwrap_or_default()
    };
    let runs = v["runs"].as_array().ok_or(format!("{path}: no runs[]"))?;
    let traces: Vec<Trace> = runs
        .iter()
        .filter(|r| r["strategy"] == baseline.as_str() && r["repeat"] == 0)
        .map(|r| Trace {
            id: format!(
                "{}/{}",
                r["workload"].as_str().unwrap_or("?"),
                r["prompt"].as_str().unwrap_or("?")
            ),
            prompt: ids(&r["prompt_tokens"]),
            output: ids(&r["tokens"]),
            ended: r["stop"] == "end-of-generation",
        })
        .filter(|t| !t.prompt.is_empty() && !t.output.is_empty())
        .collect();
    if traces.is_empty() {
        return Err(format!(
            "{path}: no baseline runs with token ids (record them with `augur bench --json`)"
        ));
    }
    Ok(traces)
}

/// Cost of a pass over k tokens relative to one token, from `pass_seconds`.
fn load_costs(path: Option<&String>) -> Result<Vec<f64>, String> {
    let Some(path) = path else {
        return Ok((1..=64).map(|k| 1.0 + 0.69 * (k as f64 - 1.0)).collect());
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    let secs: Vec<f64> = v["pass_seconds"]
        .as_array()
        .ok_or(format!("{path}: no pass_seconds"))?
        .iter()
        .filter_map(|x| x.as_f64())
        .collect();
    let one = *secs.first().ok_or(format!("{path}: empty pass_seconds"))?;
    Ok(secs.iter().map(|s| s / one).collect())
}

fn cost(costs: &[f64], k: usize) -> f64 {
    match costs.get(k - 1) {
        Some(&c) => c,
        // Past the table: the last measured per-token increment.
        None => {
            let n = costs.len();
            let step = if n >= 2 {
                costs[n - 1] - costs[n - 2]
            } else {
                1.0
            };
            costs[n - 1] + step.max(0.0) * (k - n) as f64
        }
    }
}

/// Replays `trace` with `config`; returns (tokens, passes, modeled cost).
fn replay(trace: &Trace, config: &PromptLookupConfig, costs: &[f64]) -> (usize, usize, f64) {
    let model_costs = CostModel::calibrated(costs, 0.0, 0);
    // Compact ids keep the one-hot rows short.
    let mut map: HashMap<TokenId, TokenId> = HashMap::new();
    let mut compact = |t: TokenId| {
        let n = map.len() as TokenId;
        *map.entry(t).or_insert(n)
    };
    let mut text: Vec<TokenId> = trace.prompt.iter().map(|&t| compact(t)).collect();
    text.extend(trace.output.iter().map(|&t| compact(t)));
    let eog = trace.ended.then(|| compact(TokenId::MAX));
    if let Some(e) = eog {
        text.push(e);
    }
    let mut model = ScriptedModel::new(text, map.len().max(1), eog);
    let prompt = model.text()[..trace.prompt.len()].to_vec();
    let inner = match PromptLookup::with_costs(config.clone(), model_costs) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("replay: {e}");
            std::process::exit(2);
        }
    };
    let mut oracle;
    let mut plain;
    let strategy: &mut dyn Strategy = if std::env::var("REPLAY_ORACLE").is_ok() {
        oracle = Oracle {
            inner,
            text: model.text().to_vec(),
            costs: costs.to_vec(),
            draft: Vec::new(),
        };
        &mut oracle
    } else {
        plain = inner;
        &mut plain
    };
    let params = GenerateParams {
        max_tokens: trace.output.len(),
        sampling: SamplingParams::greedy(),
    };
    let g = match generate(&mut model, strategy, &prompt, &params, &mut |_| true) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("replay: {}: {e}", trace.id);
            std::process::exit(1);
        }
    };
    let want = &model.text()[trace.prompt.len()..trace.prompt.len() + trace.output.len()];
    assert_eq!(
        g.tokens, want,
        "{}: the replay must reproduce the run",
        trace.id
    );
    // The first pass is the prompt's.
    let passes = &model.passes[1..];
    let total: f64 = passes.iter().map(|&(k, _)| cost(costs, k)).sum();
    if std::env::var("REPLAY_TRACE").is_ok_and(|v| trace.id.contains(&v)) {
        // Each pass as drafted/right, plain passes as "."
        let steps: Vec<String> = passes
            .iter()
            .map(|&(k, r)| {
                if k == 1 {
                    ".".into()
                } else {
                    format!("{}/{r}", k - 1)
                }
            })
            .collect();
        eprintln!("{}: {}", trace.id, steps.join(" "));
    }
    (g.tokens.len(), passes.len(), total)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(runs) = args.first() else {
        eprintln!("usage: replay RUNS.json [CALIBRATION.json]");
        std::process::exit(2);
    };
    let (traces, costs) = match (load_traces(runs), load_costs(args.get(1))) {
        (Ok(t), Ok(c)) => (t, c),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("replay: {e}");
            std::process::exit(2);
        }
    };
    let config = PromptLookupConfig::default();
    println!("pass costs: {:?}", &costs[..costs.len().min(24)]);
    let (mut tokens, mut spent) = (0usize, 0.0f64);
    // Per workload (the id's part before '/'): tokens and modeled cost.
    let mut workloads: Vec<(String, usize, f64, Vec<f64>)> = Vec::new();
    for t in &traces {
        let (n, passes, c) = replay(t, &config, &costs);
        tokens += n;
        spent += c;
        let w = t.id.split('/').next().unwrap_or("").to_string();
        match workloads.iter_mut().find(|(name, _, _, _)| *name == w) {
            Some(entry) => {
                entry.1 += n;
                entry.2 += c;
                entry.3.push(n as f64 / c);
            }
            None => workloads.push((w, n, c, vec![n as f64 / c])),
        }
        println!(
            "{:32} {n:4} tokens {passes:4} passes  {:.2} tok/pass  modeled {:.2}×",
            t.id,
            n as f64 / passes as f64,
            n as f64 / c
        );
    }
    for (w, n, c, ratios) in &mut workloads {
        ratios.sort_by(f64::total_cmp);
        let mid = ratios.len() / 2;
        let median = if ratios.len() % 2 == 1 {
            ratios[mid]
        } else {
            (ratios[mid - 1] + ratios[mid]) / 2.0
        };
        println!(
            "{w}: modeled {:.3}× (median over prompts {median:.3}×)",
            *n as f64 / *c
        );
    }
    println!("all: modeled {:.3}×", tokens as f64 / spent);
}
