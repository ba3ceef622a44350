//! The model interface a strategy talks to.

use crate::error::ModelError;

/// A token id. Backends convert to their own representation at the boundary.
pub type TokenId = u32;

/// A KV-cache sequence id. Sequence 0 is the committed text.
pub type SeqId = i32;

/// One batch of tokens to evaluate in a single forward pass.
///
/// Each entry has a token, its position, the set of sequences its KV cell joins
/// (as a query it attends to the first sequence in the set) and whether logits
/// are wanted for it.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    tokens: Vec<TokenId>,
    positions: Vec<usize>,
    seq_ranges: Vec<(u32, u32)>,
    seq_ids: Vec<SeqId>,
    want_logits: Vec<bool>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes all entries, keeping the allocations.
    pub fn clear(&mut self) {
        self.tokens.clear();
        self.positions.clear();
        self.seq_ranges.clear();
        self.seq_ids.clear();
        self.want_logits.clear();
    }

    /// Adds a token at `position` joining `seqs`; `logits` requests an output row.
    pub fn add(&mut self, token: TokenId, position: usize, seqs: &[SeqId], logits: bool) {
        let start = self.seq_ids.len() as u32;
        self.seq_ids.extend_from_slice(seqs);
        self.seq_ranges.push((start, self.seq_ids.len() as u32));
        self.tokens.push(token);
        self.positions.push(position);
        self.want_logits.push(logits);
    }

    /// Adds consecutive tokens on sequence 0 starting at `first_position`.
    /// `logits` selects which get output rows: none, the last, or all.
    pub fn add_run(&mut self, tokens: &[TokenId], first_position: usize, logits: RunLogits) {
        let n = tokens.len();
        for (i, &t) in tokens.iter().enumerate() {
            let want = match logits {
                RunLogits::None => false,
                RunLogits::Last => i + 1 == n,
                RunLogits::All => true,
            };
            self.add(t, first_position + i, &[0], want);
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True when the batch has no entries.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Number of entries that request logits (= rows in the result).
    pub fn n_outputs(&self) -> usize {
        self.want_logits.iter().filter(|&&w| w).count()
    }

    /// The token of entry `i`.
    pub fn token(&self, i: usize) -> TokenId {
        self.tokens[i]
    }

    /// The position of entry `i`.
    pub fn position(&self, i: usize) -> usize {
        self.positions[i]
    }

    /// The sequences of entry `i`.
    pub fn seqs(&self, i: usize) -> &[SeqId] {
        let (a, b) = self.seq_ranges[i];
        &self.seq_ids[a as usize..b as usize]
    }

    /// Whether entry `i` requests logits.
    pub fn wants_logits(&self, i: usize) -> bool {
        self.want_logits[i]
    }

    /// The largest position in the batch, if any.
    pub fn max_position(&self) -> Option<usize> {
        self.positions.iter().copied().max()
    }
}

/// Which tokens of a run get logits, for [`Batch::add_run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunLogits {
    /// No output rows (prompt prefill).
    None,
    /// Only the last token.
    Last,
    /// Every token (verification).
    All,
}

/// Logit rows returned by [`Model::eval`], one per entry that requested logits,
/// in batch order.
#[derive(Debug, Clone, Default)]
pub struct LogitRows {
    n_vocab: usize,
    data: Vec<f32>,
}

impl LogitRows {
    /// Empty rows for a vocabulary of `n_vocab`.
    pub fn new(n_vocab: usize) -> Self {
        Self {
            n_vocab,
            data: Vec::new(),
        }
    }

    /// Removes all rows, keeping the allocation.
    pub fn clear(&mut self) {
        self.data.clear();
    }

    /// Appends one row; it must have `n_vocab` entries.
    pub fn push_row(&mut self, row: &[f32]) {
        debug_assert_eq!(row.len(), self.n_vocab);
        self.data.extend_from_slice(row);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.n_vocab).unwrap_or(0)
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Row `i` (the i-th entry that requested logits).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.n_vocab..(i + 1) * self.n_vocab]
    }

    /// The vocabulary size.
    pub fn n_vocab(&self) -> usize {
        self.n_vocab
    }
}

/// A language model as a strategy sees it.
///
/// Implementations keep a KV cache per sequence; evaluating a batch appends its
/// entries to the cache. Positions must continue the cache of each sequence.
pub trait Model {
    /// Vocabulary size (length of a logits row).
    fn n_vocab(&self) -> usize;

    /// Context size: positions must stay below it.
    fn n_ctx(&self) -> usize;

    /// How many sequence ids a batch may use (ids `0..n_seq_max`).
    fn n_seq_max(&self) -> usize {
        1
    }

    /// True if `token` ends generation (EOS, EOT and the like).
    fn is_eog(&self, token: TokenId) -> bool;

    /// Evaluates `batch` in one forward pass and writes the requested logit rows
    /// into `out` (cleared first), in batch order.
    fn eval(&mut self, batch: &Batch, out: &mut LogitRows) -> Result<(), ModelError>;

    /// Removes positions `[from, ∞)` of sequence `seq` from the cache
    /// (`seq < 0` means every sequence).
    fn remove_from(&mut self, seq: SeqId, from: usize) -> Result<(), ModelError>;

    /// Copies positions `[from, ∞)` of `src` into `dst` (cells join both sequences).
    fn copy_seq(&mut self, src: SeqId, dst: SeqId, from: usize) -> Result<(), ModelError> {
        let _ = (src, dst, from);
        Err(ModelError::Cache(
            "sequence copy is not supported by this model".into(),
        ))
    }

    /// Removes every sequence but `seq` from the cache.
    fn keep_only(&mut self, seq: SeqId) -> Result<(), ModelError> {
        let _ = seq;
        Err(ModelError::Cache(
            "sequence keep is not supported by this model".into(),
        ))
    }

    /// Clears the whole cache.
    fn clear(&mut self) -> Result<(), ModelError> {
        self.remove_from(-1, 0)
    }

    /// False for models whose cache cannot drop a tail (recurrent, hybrid).
    fn supports_rollback(&self) -> bool {
        true
    }

    /// A stable identity of the weights (file path and size, say), used to key
    /// cached measurements; `None` when there is nothing stable to key on.
    fn identity(&self) -> Option<String> {
        None
    }
}

impl<M: Model + ?Sized> Model for &mut M {
    fn n_vocab(&self) -> usize {
        (**self).n_vocab()
    }
    fn n_ctx(&self) -> usize {
        (**self).n_ctx()
    }
    fn n_seq_max(&self) -> usize {
        (**self).n_seq_max()
    }
    fn is_eog(&self, token: TokenId) -> bool {
        (**self).is_eog(token)
    }
    fn eval(&mut self, batch: &Batch, out: &mut LogitRows) -> Result<(), ModelError> {
        (**self).eval(batch, out)
    }
    fn remove_from(&mut self, seq: SeqId, from: usize) -> Result<(), ModelError> {
        (**self).remove_from(seq, from)
    }
    fn copy_seq(&mut self, src: SeqId, dst: SeqId, from: usize) -> Result<(), ModelError> {
        (**self).copy_seq(src, dst, from)
    }
    fn keep_only(&mut self, seq: SeqId) -> Result<(), ModelError> {
        (**self).keep_only(seq)
    }
    fn clear(&mut self) -> Result<(), ModelError> {
        (**self).clear()
    }
    fn supports_rollback(&self) -> bool {
        (**self).supports_rollback()
    }
    fn identity(&self) -> Option<String> {
        (**self).identity()
    }
}

impl<M: Model + ?Sized> Model for Box<M> {
    fn n_vocab(&self) -> usize {
        (**self).n_vocab()
    }
    fn n_ctx(&self) -> usize {
        (**self).n_ctx()
    }
    fn n_seq_max(&self) -> usize {
        (**self).n_seq_max()
    }
    fn is_eog(&self, token: TokenId) -> bool {
        (**self).is_eog(token)
    }
    fn eval(&mut self, batch: &Batch, out: &mut LogitRows) -> Result<(), ModelError> {
        (**self).eval(batch, out)
    }
    fn remove_from(&mut self, seq: SeqId, from: usize) -> Result<(), ModelError> {
        (**self).remove_from(seq, from)
    }
    fn copy_seq(&mut self, src: SeqId, dst: SeqId, from: usize) -> Result<(), ModelError> {
        (**self).copy_seq(src, dst, from)
    }
    fn keep_only(&mut self, seq: SeqId) -> Result<(), ModelError> {
        (**self).keep_only(seq)
    }
    fn clear(&mut self) -> Result<(), ModelError> {
        (**self).clear()
    }
    fn supports_rollback(&self) -> bool {
        (**self).supports_rollback()
    }
    fn identity(&self) -> Option<String> {
        (**self).identity()
    }
}
