//! Copy tracking for prompt lookup: where in the earlier text the output is
//! being copied from, kept across small edits, and which edits repeat.
//!
//! Why: when a model returns given code with a change ("rename `x` to
//! `total`"), the output is the source with a token replaced here and there.
//! An n-gram lookup loses the copy at every change, because the n-grams
//! ending in the new token (" total") never occurred before, and finds it
//! again only a few tokens later. The cursor instead keeps the alignment:
//! after a mismatch it goes on copying after the source token the output
//! diverged at (a substitution), and re-aligns on the first later output
//! token found in the source from that point up to a little ahead (an
//! insertion resumes at the diverging token, a replacement after it, a
//! deletion further on). After several mismatches in a row it lets go, and
//! the n-gram index finds the next copy.
//!
//! A replacement of one source token by one to four tokens is remembered
//! ("` x` becomes ` total`") and applied to the rest of the copy, so a rename
//! costs one miss, not one per occurrence. A remembered replacement that the
//! output does not make at some occurrence is forgotten.

use std::collections::HashMap;

use augur_core::TokenId;

use crate::budget::CopyStats;

/// How far past the substitution point a mismatching token is looked for in
/// the source (a deletion of up to this many tokens is followed).
pub const RESYNC_WINDOW: usize = 8;

/// Mismatches in a row after which the cursor lets go of the copy.
pub const MAX_MISSES: usize = 4;

/// The longest replacement of one source token that is remembered.
pub const MAX_REPLACEMENT: usize = 4;

/// Follows the copy the output is making of earlier text (see the module
/// documentation). Positions are indices into the token history.
///
/// It also keeps [`CopyStats`]: every token it predicted is an observation,
/// right or wrong, at the run length it was predicted with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CopyCursor {
    /// The history position whose token is expected next (after `queue`).
    next: Option<usize>,
    /// Tokens of a remembered replacement still expected before `next`.
    queue: Vec<TokenId>,
    /// How much of `queue` has been emitted.
    queued: usize,
    /// The source position `queue` replaces.
    replaced: usize,
    /// The edit under way: the source position of the first mismatch and the
    /// tokens emitted since.
    edit: Option<(usize, Vec<TokenId>)>,
    /// Remembered replacements: source token → what the output writes.
    replacements: HashMap<TokenId, Vec<TokenId>>,
    /// Tokens predicted right in a row (or the matched n-gram's length after
    /// [`CopyCursor::follow`]).
    run: usize,
    /// Mismatches in a row.
    misses: usize,
    /// History tokens already followed.
    seen: usize,
    /// How often predictions came true, by run length.
    stats: CopyStats,
    /// The statistics a new generation starts from.
    initial: CopyStats,
}

impl CopyCursor {
    /// A cursor that follows nothing yet, with default statistics.
    pub fn new() -> Self {
        Self::default()
    }

    /// A cursor whose statistics start (and restart at every
    /// [`CopyCursor::clear`]) from `stats`.
    pub fn with_stats(stats: CopyStats) -> Self {
        Self {
            stats,
            initial: stats,
            ..Self::default()
        }
    }

    /// Forgets the copy, the history and what was learned (a new
    /// generation).
    pub fn clear(&mut self) {
        *self = Self::with_stats(self.initial);
    }

    /// How often the cursor's predictions came true, by run length.
    pub fn stats(&self) -> &CopyStats {
        &self.stats
    }

    /// The history position the copy continues from, if any (after any
    /// tokens of a replacement under way).
    pub fn position(&self) -> Option<usize> {
        self.next
    }

    /// The remembered replacement of source token `t`, if any.
    pub fn replacement(&self, t: TokenId) -> Option<&[TokenId]> {
        self.replacements.get(&t).map(Vec::as_slice)
    }

    /// Tokens the copy has predicted right in a row: 0 right after a
    /// mismatch, when the position is a guess.
    pub fn run(&self) -> usize {
        self.run
    }

    /// Starts following a copy of `source` onwards, found by an n-gram match
    /// of `matched` tokens. Remembered replacements are kept.
    pub fn follow(&mut self, source: usize, matched: usize) {
        self.next = Some(source);
        self.queue.clear();
        self.queued = 0;
        self.edit = None;
        self.run = matched;
        self.misses = 0;
    }

    /// Follows the tokens appended to `history` since the last call. The
    /// history must only grow between calls; if it became shorter, the cursor
    /// starts over.
    pub fn update(&mut self, history: &[TokenId]) {
        if history.len() < self.seen {
            self.clear();
        }
        for i in self.seen..history.len() {
            self.step(history, i);
        }
        self.seen = history.len();
    }

    /// Writes into `out` (cleared first) up to `max_len` tokens the copy
    /// predicts next: the rest of a replacement under way, then the source
    /// from the cursor on with remembered replacements applied. Without
    /// replacements the copy may run on into the tokens it has just written
    /// ([`copy_from`]).
    pub fn draft(&self, history: &[TokenId], max_len: usize, out: &mut Vec<TokenId>) {
        out.clear();
        let Some(mut p) = self.next else {
            return;
        };
        if self.replacements.is_empty() && self.queued >= self.queue.len() {
            copy_from(history, p, max_len, out);
            return;
        }
        out.extend(
            self.queue[self.queued.min(self.queue.len())..]
                .iter()
                .take(max_len),
        );
        while out.len() < max_len && p < history.len() {
            match self.replacements.get(&history[p]) {
                Some(r) => out.extend(r.iter().take(max_len - out.len())),
                None => out.push(history[p]),
            }
            p += 1;
        }
    }

    /// The token the copy expects at history position `i`, opening a
    /// remembered replacement when the source token has one.
    fn expected(&mut self, history: &[TokenId], i: usize) -> Option<TokenId> {
        let c = self.next?;
        if self.queued >= self.queue.len() && c < i {
            if let Some(r) = self.replacements.get(&history[c]) {
                self.queue.clone_from(r);
                self.queued = 0;
                self.replaced = c;
                self.next = Some(c + 1);
            }
        }
        match self.queue.get(self.queued) {
            Some(&t) => Some(t),
            None => (c < i).then(|| history[c]),
        }
    }

    /// Follows token `i` of `history`.
    fn step(&mut self, history: &[TokenId], i: usize) {
        let x = history[i];
        let expected = self.expected(history, i);
        let Some(c) = self.next else {
            return;
        };
        self.stats.observe(self.run, expected == Some(x));
        if expected == Some(x) {
            if self.queued < self.queue.len() {
                self.queued += 1;
            } else {
                self.next = Some(c + 1);
                self.resynced(history, c);
            }
            self.run += 1;
            self.misses = 0;
            return;
        }
        let mut c = c;
        if self.queued < self.queue.len() {
            let (r, first) = (self.replaced, self.queued == 0);
            self.queue.clear();
            self.queued = 0;
            if first {
                // The output did not make a remembered replacement here: it
                // copied the original token (the replacement is forgotten),
                // or diverged from the source at that token.
                if history[r] == x {
                    self.replacements.remove(&x);
                    self.next = Some(r + 1);
                    self.run += 1;
                    self.misses = 0;
                    return;
                }
                c = r;
                self.next = Some(r);
            }
        }
        self.run = 0;
        self.misses += 1;
        if self.misses > MAX_MISSES || c >= i {
            self.next = None;
            self.edit = None;
            return;
        }
        let start = self.edit.as_ref().map_or(c, |(c0, _)| *c0);
        let end = (c + 1 + RESYNC_WINDOW).min(i);
        match (start..end).find(|&p| history[p] == x) {
            // Back on the source: an insertion, a replacement or a deletion
            // ended.
            Some(p) => {
                self.next = Some(p + 1);
                self.resynced(history, p);
                self.run = 1;
                self.misses = 0;
            }
            // Still diverging: assume a substitution and copy on after it.
            None => {
                self.edit.get_or_insert_with(|| (c, Vec::new())).1.push(x);
                self.next = Some(c + 1);
            }
        }
    }

    /// The output is back on the source at position `p`: an edit under way
    /// ended there. One replaced source token is remembered.
    fn resynced(&mut self, history: &[TokenId], p: usize) {
        if let Some((c0, written)) = self.edit.take() {
            if p == c0 + 1 && (1..=MAX_REPLACEMENT).contains(&written.len()) {
                self.replacements.insert(history[c0], written);
            }
        }
    }
}

/// Writes into `out` (cleared first) up to `max_len` tokens copied from
/// `history[source..]`. The copy may run past the end of `history` into the
/// tokens it has just written (as an LZ77 copy does), so a periodic text is
/// continued periodically. Nothing is written when `source` is not inside
/// `history`.
pub fn copy_from(history: &[TokenId], source: usize, max_len: usize, out: &mut Vec<TokenId>) {
    out.clear();
    let len = history.len();
    if source >= len {
        return;
    }
    for k in 0..max_len {
        let at = source + k;
        let t = if at < len { history[at] } else { out[at - len] };
        out.push(t);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A cursor that has seen `history` and follows a copy of it from
    /// `source` on, found with `matched` tokens of context.
    fn following(history: &[TokenId], source: usize, matched: usize) -> CopyCursor {
        let mut c = CopyCursor::new();
        c.update(history);
        c.follow(source, matched);
        c
    }

    /// Follows `output` appended to `source`, starting the copy at 0; returns
    /// the predicted position after each token.
    fn trace(source: &[TokenId], output: &[TokenId]) -> Vec<Option<usize>> {
        let mut h = source.to_vec();
        let mut c = following(&h, 0, 1);
        output
            .iter()
            .map(|&t| {
                h.push(t);
                c.update(&h);
                c.position()
            })
            .collect()
    }

    #[test]
    fn nothing_is_followed_until_told() {
        let mut c = CopyCursor::new();
        c.update(&[1, 2, 3, 1, 2]);
        assert_eq!(c.position(), None);
        assert_eq!(c.run(), 0);
    }

    #[test]
    fn a_verbatim_copy_advances_and_counts() {
        let src = [10, 11, 12, 13];
        assert_eq!(trace(&src, &[10, 11, 12]), vec![Some(1), Some(2), Some(3)]);
        let mut c = following(&src, 0, 2);
        c.update(&[10, 11, 12, 13, 10, 11]);
        assert_eq!(c.run(), 4);
    }

    #[test]
    fn a_substitution_keeps_the_copy_going() {
        // Source 10 11 12 13 14; output 10 99 12 13: 99 replaced 11.
        let p = trace(&[10, 11, 12, 13, 14], &[10, 99, 12, 13]);
        assert_eq!(p, vec![Some(1), Some(2), Some(3), Some(4)]);
    }

    #[test]
    fn an_insertion_is_recognized_on_the_next_token() {
        // Output 10 99 11 12: 99 was inserted before 11.
        let p = trace(&[10, 11, 12, 13, 14], &[10, 99, 11, 12]);
        assert_eq!(p, vec![Some(1), Some(2), Some(2), Some(3)]);
    }

    #[test]
    fn a_deletion_jumps_ahead() {
        // Output 10 13 14: 11 and 12 were left out.
        let p = trace(&[10, 11, 12, 13, 14, 15], &[10, 13, 14]);
        assert_eq!(p, vec![Some(1), Some(4), Some(5)]);
    }

    #[test]
    fn a_two_token_replacement_is_followed() {
        // 11 becomes 98 97: substitution guess, then the insertion guess
        // matches 12 again.
        let p = trace(&[10, 11, 12, 13, 14], &[10, 98, 97, 12, 13]);
        assert_eq!(p.last(), Some(&Some(4)));
    }

    #[test]
    fn the_copy_is_dropped_after_repeated_misses() {
        let p = trace(&[10, 11, 12, 13, 14, 15, 16, 17], &[10, 90, 91, 92, 93, 94]);
        assert_eq!(p[..5].iter().filter(|x| x.is_some()).count(), 5);
        assert_eq!(p[5], None);
    }

    #[test]
    fn the_source_is_only_earlier_text() {
        // Following position 2 of a 3-token history: the token appended at
        // position 3 may equal history[2] (a copy of the latest token).
        let mut c = following(&[5, 6, 7], 2, 1);
        c.update(&[5, 6, 7, 7]);
        assert_eq!(c.position(), Some(3));
        // Now it predicts position 3 (itself just written): the next token
        // copies it, periodically.
        c.update(&[5, 6, 7, 7, 7]);
        assert_eq!(c.position(), Some(4));
    }

    #[test]
    fn a_shorter_history_starts_over() {
        let mut c = following(&[1, 2, 3], 0, 1);
        c.update(&[1, 2]);
        assert_eq!(
            c,
            CopyCursor {
                seen: 2,
                ..CopyCursor::default()
            }
        );
    }

    #[test]
    fn every_prediction_is_an_observation_at_its_run_length() {
        let mut h = vec![10, 11, 12, 13, 14, 15];
        let mut c = following(&h, 0, 16);
        let before = *c.stats();
        // Three right at runs 16, 17, 18, then a miss at 19: all in one class.
        h.extend([10, 11, 12, 99]);
        c.update(&h);
        let mut want = before;
        for hit in [true, true, true, false] {
            want.observe(16, hit);
        }
        assert_eq!(*c.stats(), want);
        // The guess after the miss is observed at run 0.
        h.push(14);
        c.update(&h);
        want.observe(0, true);
        assert_eq!(*c.stats(), want);
        // A new generation starts from the initial statistics.
        c.clear();
        assert_eq!(*c.stats(), before);
    }

    #[test]
    fn a_replacement_is_remembered_applied_and_forgotten() {
        // The source uses 7 three times; the output renames it to 9.
        let src = [1, 7, 2, 3, 7, 4, 5, 7, 6];
        let mut h = src.to_vec();
        let mut c = following(&h, 0, 1);
        h.extend([1, 9, 2, 3]);
        c.update(&h);
        assert_eq!(c.replacement(7), Some(&[9][..]));
        assert_eq!(c.position(), Some(4));
        let mut out = Vec::new();
        c.draft(&h, 5, &mut out);
        assert_eq!(out, vec![9, 4, 5, 9, 6]);
        // The output makes the replacement: the copy goes on without a miss.
        h.extend([9, 4]);
        c.update(&h);
        assert_eq!(c.position(), Some(6));
        assert!(c.run() >= 2);
        // At the next occurrence it keeps the original: forgotten, and the
        // copy goes on after it.
        h.extend([5, 7]);
        c.update(&h);
        assert_eq!(c.replacement(7), None);
        assert_eq!(c.position(), Some(8));
        c.draft(&h, 3, &mut out);
        assert_eq!(out, vec![6, 1, 9]);
    }

    #[test]
    fn a_replacement_in_progress_is_drafted_from_where_it_stands() {
        // 7 becomes 8 9 (two tokens).
        let mut h = vec![1, 7, 2, 3, 7, 4];
        let mut c = following(&h, 0, 1);
        h.extend([1, 8, 9, 2, 3]);
        c.update(&h);
        assert_eq!(c.replacement(7), Some(&[8, 9][..]));
        h.push(8);
        c.update(&h);
        let mut out = Vec::new();
        c.draft(&h, 4, &mut out);
        assert_eq!(out, vec![9, 4, 1, 8]);
    }

    #[test]
    fn an_insertion_is_not_remembered_as_a_replacement() {
        let p = {
            let mut h = vec![1, 2, 3, 4, 2, 5];
            let mut c = following(&h, 0, 1);
            // 8 9 inserted before 2.
            h.extend([1, 8, 9, 2, 3]);
            c.update(&h);
            (c.replacement(2).is_none(), c.position())
        };
        assert_eq!(p, (true, Some(3)));
    }

    #[test]
    fn copies_run_on_periodically() {
        let mut out = Vec::new();
        copy_from(&[1, 2, 3], 1, 5, &mut out);
        assert_eq!(out, vec![2, 3, 2, 3, 2]);
        copy_from(&[1, 2, 3], 3, 5, &mut out);
        assert!(out.is_empty());
        copy_from(&[], 0, 5, &mut out);
        assert!(out.is_empty());
    }
}
