//! Shared pieces of the conformance tests: models loaded once per test binary,
//! the prompt corpus, a recording wrapper around the target, and the check that
//! a strategy's greedy output equals the baseline's except at flips the kernels
//! explain (see the README's exactness contract).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use augur::core::{SeqId, StepContext};
use augur::llama::{ContextParams, GgufModel, LlamaSession};
use augur::{
    Batch, CoreError, GenerateParams, Generation, LogitRows, Model, SamplingParams, StopReason,
    Strategy, TokenId,
};

/// Loads a catalog model once per test binary. A missing model fails the test
/// with the command that fetches it.
pub fn model(name: &str) -> Arc<GgufModel> {
    static MODELS: OnceLock<Mutex<HashMap<String, Arc<GgufModel>>>> = OnceLock::new();
    let mut map = MODELS.get_or_init(Default::default).lock().unwrap();
    if let Some(m) = map.get(name) {
        return Arc::clone(m);
    }
    let path = augur::models::path_of(name).unwrap_or_else(|e| panic!("{e}"));
    let m = augur::load_model(&path, 0).unwrap_or_else(|e| panic!("loading {name}: {e}"));
    map.insert(name.to_string(), Arc::clone(&m));
    m
}

/// A context over `model` with `n_seq` sequence ids, on every core.
pub fn session(model: &Arc<GgufModel>, n_ctx: usize, n_seq: usize) -> LlamaSession {
    session_with_threads(model, n_ctx, n_seq, 0)
}

/// A context with `threads` threads (0 = every core).
pub fn session_with_threads(
    model: &Arc<GgufModel>,
    n_ctx: usize,
    n_seq: usize,
    threads: usize,
) -> LlamaSession {
    model
        .new_session(&ContextParams {
            n_ctx,
            n_threads: threads,
            n_seq_max: n_seq,
            ..ContextParams::default()
        })
        .unwrap()
}

/// One prompt of the corpus.
#[derive(Debug, Clone)]
pub struct CorpusPrompt {
    pub id: String,
    pub kind: String,
    pub chat: bool,
    pub prompt: String,
}

/// The conformance corpus (tests/corpus/prompts.jsonl).
pub fn corpus() -> Vec<CorpusPrompt> {
    include_str!("../corpus/prompts.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            CorpusPrompt {
                id: v["id"].as_str().unwrap().to_string(),
                kind: v["kind"].as_str().unwrap().to_string(),
                chat: v["chat"].as_bool().unwrap(),
                prompt: v["prompt"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

/// A corpus prompt's tokens for `model`.
pub fn tokens(model: &GgufModel, p: &CorpusPrompt) -> Vec<TokenId> {
    let text = if p.chat {
        model.apply_chat_template(&p.prompt).unwrap()
    } else {
        p.prompt.clone()
    };
    model.tokenize(&text, true).unwrap()
}

/// The best logits of one output row, and where it was computed.
#[derive(Debug, Clone)]
pub struct RowRecord {
    pub position: usize,
    pub token: TokenId,
    pub first_seq: SeqId,
    pub batch_len: usize,
    /// The 8 largest logits, best first.
    pub top: Vec<(TokenId, f32)>,
}

impl RowRecord {
    fn logit(&self, t: TokenId) -> Option<f32> {
        self.top.iter().find(|(id, _)| *id == t).map(|(_, l)| *l)
    }
}

fn top8(row: &[f32]) -> Vec<(TokenId, f32)> {
    let mut top: Vec<(TokenId, f32)> = Vec::with_capacity(9);
    for (i, &l) in row.iter().enumerate() {
        if top.len() < 8 || l > top[top.len() - 1].1 {
            let at = top.partition_point(|(_, x)| *x >= l);
            top.insert(at, (i as TokenId, l));
            top.truncate(8);
        }
    }
    top
}

/// A target wrapper that records the top logits of every row it computes.
pub struct Recorder<M: Model> {
    pub inner: M,
    pub rows: Vec<RowRecord>,
}

impl<M: Model> Recorder<M> {
    pub fn new(inner: M) -> Self {
        Self {
            inner,
            rows: Vec::new(),
        }
    }
}

impl<M: Model> Model for Recorder<M> {
    fn n_vocab(&self) -> usize {
        self.inner.n_vocab()
    }
    fn n_ctx(&self) -> usize {
        self.inner.n_ctx()
    }
    fn n_seq_max(&self) -> usize {
        self.inner.n_seq_max()
    }
    fn is_eog(&self, token: TokenId) -> bool {
        self.inner.is_eog(token)
    }
    fn eval(&mut self, batch: &Batch, out: &mut LogitRows) -> Result<(), augur::core::ModelError> {
        self.inner.eval(batch, out)?;
        let mut r = 0;
        for i in 0..batch.len() {
            if batch.wants_logits(i) {
                self.rows.push(RowRecord {
                    position: batch.position(i),
                    token: batch.token(i),
                    first_seq: batch.seqs(i)[0],
                    batch_len: batch.len(),
                    top: top8(out.row(r)),
                });
                r += 1;
            }
        }
        Ok(())
    }
    fn remove_from(&mut self, seq: SeqId, from: usize) -> Result<(), augur::core::ModelError> {
        self.inner.remove_from(seq, from)
    }
    fn copy_seq(
        &mut self,
        src: SeqId,
        dst: SeqId,
        from: usize,
    ) -> Result<(), augur::core::ModelError> {
        self.inner.copy_seq(src, dst, from)
    }
    fn keep_only(&mut self, seq: SeqId) -> Result<(), augur::core::ModelError> {
        self.inner.keep_only(seq)
    }
    fn clear(&mut self) -> Result<(), augur::core::ModelError> {
        self.inner.clear()
    }
    fn supports_rollback(&self) -> bool {
        self.inner.supports_rollback()
    }
}

/// Plain decoding through the same driver (the reference).
pub struct Plain;

impl Strategy for Plain {
    fn name(&self) -> &'static str {
        "baseline"
    }
    fn needs_rollback(&self) -> bool {
        false
    }
    fn step(&mut self, ctx: &mut StepContext<'_>) -> Result<(), CoreError> {
        ctx.verify(
            &augur::core::Proposal::new(),
            1,
            &mut augur::core::CostModel::prior(),
        )?;
        Ok(())
    }
}

/// Greedy generation of up to `n` tokens, recording the target's rows.
pub fn run_recorded(
    target: &mut Recorder<&mut LlamaSession>,
    strategy: &mut dyn Strategy,
    prompt: &[TokenId],
    n: usize,
) -> Result<Generation, CoreError> {
    target.rows.clear();
    let params = GenerateParams {
        max_tokens: n,
        sampling: SamplingParams::greedy(),
    };
    augur::generate(target, strategy, prompt, &params, &mut |_| true)
}

/// How far a batched pass's logits may stray from a one-token pass's and still
/// count as the kernels' rounding: the largest difference calibration measured
/// for this model and build, with a margin (calibration samples positions).
pub fn kernel_tolerance(calibration: &augur::calibration::Calibration) -> f32 {
    let measured = calibration
        .max_logit_diff
        .iter()
        .copied()
        .fold(0.0f32, f32::max);
    (measured * 1.5).max(0.05)
}

/// Model, context size, sequence ids, prefix and tokens asked for.
type BaselineKey = (usize, usize, usize, Vec<TokenId>, usize);
type BaselineRun = (Generation, Vec<RowRecord>);

/// The baseline's greedy output and rows for a prefix, cached within the test
/// binary per model, context shape and prefix: every strategy of a
/// conformance file is compared with the same baseline, and plain decoding
/// clears the cache first, so a second run of it would only repeat the first
/// (the conformance file ran it once per strategy and prompt, a third of its
/// time).
fn baseline_cached(
    rec: &mut Recorder<&mut LlamaSession>,
    prefix: &[TokenId],
    n: usize,
) -> Result<(Generation, Vec<RowRecord>), String> {
    static CACHE: OnceLock<Mutex<HashMap<BaselineKey, BaselineRun>>> = OnceLock::new();
    let key = (
        Arc::as_ptr(rec.inner.model()) as usize,
        rec.inner.n_ctx(),
        rec.inner.n_seq_max(),
        prefix.to_vec(),
        n,
    );
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().unwrap().get(&key) {
        return Ok(hit.clone());
    }
    let g = run_recorded(rec, &mut Plain, prefix, n).map_err(|e| e.to_string())?;
    let rows = std::mem::take(&mut rec.rows);
    cache.lock().unwrap().insert(key, (g.clone(), rows.clone()));
    Ok((g, rows))
}

/// The outcome of comparing a strategy with the baseline.
#[derive(Debug, Default)]
pub struct Comparison {
    /// Flips explained by the kernels (replayed and checked).
    pub flips: usize,
    /// Tokens compared.
    pub compared: usize,
}

/// Greedy output `seq` plus an end marker when it stopped at end of generation.
fn with_end(g: &Generation) -> Vec<Option<TokenId>> {
    let mut v: Vec<Option<TokenId>> = g.tokens.iter().copied().map(Some).collect();
    if g.stop == StopReason::EndOfGeneration {
        v.push(None);
    }
    v
}

fn deciding_row<'a>(
    rows: &'a [RowRecord],
    position: usize,
    token: TokenId,
    wants: impl Fn(&RowRecord) -> bool,
    seq_ok: &dyn Fn(SeqId) -> bool,
) -> Option<&'a RowRecord> {
    rows.iter()
        .rev()
        .find(|r| r.position == position && r.token == token && seq_ok(r.first_seq) && wants(r))
}

/// Runs `strategy` and the baseline on `prompt` and checks the strategy's
/// greedy tokens equal the baseline's. A difference is accepted only if the
/// kernels explain it: at the first differing position the strategy's own
/// (batched) row picks its token, the one-token row picks the baseline's, and
/// the two tokens are a near tie in both rows (within `tolerance`, see
/// [`kernel_tolerance`]).
/// After an explained flip the baseline is re-run from the strategy's prefix
/// and the comparison continues. With `bit_exact`, any difference fails.
/// `seq_ok` says which sequence ids carry deciding rows (0 for most strategies).
pub fn compare_with_baseline(
    session: &mut LlamaSession,
    strategy: &mut dyn Strategy,
    prompt: &[TokenId],
    n: usize,
    bit_exact: bool,
    tolerance: f32,
    seq_ok: &dyn Fn(SeqId) -> bool,
) -> Result<Comparison, String> {
    let mut rec = Recorder::new(session);
    let strat = run_recorded(&mut rec, strategy, prompt, n).map_err(|e| e.to_string())?;
    let strat_rows = std::mem::take(&mut rec.rows);
    let s = with_end(&strat);
    let model = Arc::clone(rec.inner.model());
    let is_eog = |t: TokenId| model.is_eog(t);

    let mut cmp = Comparison::default();
    let mut start = 0usize; // tokens of `s` already matched
    loop {
        // Baseline from the prompt plus the strategy's first `start` tokens.
        let mut prefix = prompt.to_vec();
        prefix.extend(s[..start].iter().map(|t| t.expect("end marker only last")));
        let (base, base_rows) = baseline_cached(&mut rec, &prefix, n - start)?;
        let b = with_end(&base);
        let rest = &s[start..];
        let common = rest.len().min(b.len());
        let diff = (0..common).find(|&i| rest[i] != b[i]);
        let diff = match diff {
            Some(i) => i,
            None => {
                cmp.compared += common;
                if rest.len() == b.len() || common == n - start {
                    return Ok(cmp);
                }
                return Err(format!(
                    "outputs have different lengths with no differing token: strategy {}, baseline {}",
                    rest.len(),
                    b.len()
                ));
            }
        };
        cmp.compared += diff;
        let at = start + diff; // index in the generated tokens
        let position = prompt.len() + at - 1; // the row that decided token `at`
        let prev = if at == 0 {
            *prompt.last().unwrap()
        } else {
            s[at - 1].unwrap()
        };
        let describe = |t: Option<TokenId>| t.map_or("end".to_string(), |t| t.to_string());
        if bit_exact {
            return Err(format!(
                "bit-exact mode: token {at} differs (strategy {}, baseline {})",
                describe(rest[diff]),
                describe(b[diff])
            ));
        }
        let matches = |r: &RowRecord, want: Option<TokenId>| match want {
            Some(t) => r.top[0].0 == t,
            None => is_eog(r.top[0].0),
        };
        let srow = deciding_row(&strat_rows, position, prev, |r| matches(r, rest[diff]), seq_ok)
            .ok_or_else(|| {
                format!(
                    "token {at}: no row of the strategy's own passes picks its token {} — an unexplained difference",
                    describe(rest[diff])
                )
            })?;
        let brow = deciding_row(&base_rows, position, prev, |r| matches(r, b[diff]), &|s| {
            s == 0
        })
        .ok_or_else(|| format!("token {at}: the baseline's row is missing"))?;
        let (st, bt) = (srow.top[0].0, brow.top[0].0);
        let near_tie = match (
            srow.logit(bt),
            brow.logit(st),
            srow.logit(st),
            brow.logit(bt),
        ) {
            (Some(s_b), Some(b_s), Some(s_s), Some(b_b)) => {
                s_s - s_b <= tolerance && b_b - b_s <= tolerance && (s_b - b_b).abs() <= tolerance
            }
            _ => false,
        };
        if !near_tie {
            return Err(format!(
                "token {at}: strategy picked {st}, baseline {bt}, and the logits are not a near tie \
                 (strategy row {:?} from a pass of {}, baseline row {:?}) — an unexplained difference",
                &srow.top[..3],
                srow.batch_len,
                &brow.top[..3]
            ));
        }
        cmp.flips += 1;
        if rest[diff].is_none() {
            return Ok(cmp);
        }
        start = at + 1;
        if start >= n {
            return Ok(cmp);
        }
    }
}
