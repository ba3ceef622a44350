//! The prompt-lookup matcher: an incremental index from n-grams to what
//! followed them.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use augur_core::TokenId;

/// The longest n-gram the index accepts.
pub const MAX_INDEX_NGRAM: usize = 16;

/// The minimum-evidence rule: a continuation is drafted only when it dominates
/// what followed the n-gram so far (llama.cpp's lookup rule).
///
/// Index `n − 1` holds the rule for n-grams of length n; lengths past the end
/// use the last entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The dominant continuation must have been seen at least this often.
    pub min_count: Vec<u32>,
    /// … and make up at least this percentage of the n-gram's occurrences.
    pub min_percent: Vec<u32>,
}

impl Default for Evidence {
    /// llama.cpp's thresholds for the context cache: for n = 1, 2, 3, 4 at
    /// least 2/2/1/1 occurrences and 66/50/50/50 % of them. Short n-grams
    /// match by chance, so they need repeated, consistent evidence.
    fn default() -> Self {
        Self {
            min_count: vec![2, 2, 1, 1],
            min_percent: vec![66, 50, 50, 50],
        }
    }
}

impl Evidence {
    /// No evidence needed: any earlier occurrence is drafted from.
    pub fn none() -> Self {
        Self {
            min_count: vec![1],
            min_percent: vec![0],
        }
    }

    fn rule(&self, n: usize) -> (u32, u32) {
        let pick = |v: &[u32], default: u32| {
            v.get(n.saturating_sub(1))
                .or(v.last())
                .copied()
                .unwrap_or(default)
        };
        (pick(&self.min_count, 1), pick(&self.min_percent, 0))
    }

    /// True when a continuation seen `count` times out of `total` occurrences
    /// of an n-gram of length `n` may be drafted.
    pub fn passes(&self, n: usize, count: u32, total: u32) -> bool {
        let (min_count, min_percent) = self.rule(n);
        count >= min_count.max(1)
            && u64::from(count) * 100 >= u64::from(min_percent) * u64::from(total)
    }
}

/// A match found by [`NgramIndex::find`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NgramMatch {
    /// Length of the matched n-gram.
    pub n: usize,
    /// Position (in the token history) of the first continuation token at the
    /// latest earlier occurrence followed by the dominant continuation.
    pub source: usize,
    /// How often the drafted continuation followed the n-gram.
    pub count: u32,
    /// How often the n-gram occurred with a known continuation.
    pub total: u32,
}

/// What followed one n-gram: per next token, how often and where last.
#[derive(Debug, Clone, Default)]
struct Followers {
    /// (next token, count, latest position of that next token).
    next: Vec<(TokenId, u32, usize)>,
    total: u32,
}

/// Keys are already mixed 64-bit hashes: hash them as themselves.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type KeyMap = HashMap<u64, Followers, BuildHasherDefault<IdentityHasher>>;

/// An index from every n-gram (lengths `ngram_min..=ngram_max`) of a token
/// history to the tokens that followed it, updated incrementally as tokens are
/// appended: [`NgramIndex::update`] only looks at the new tokens.
///
/// Keys are 64-bit hashes of the n-grams; a match is confirmed against the
/// history before it is used, so a hash collision can never produce a draft
/// from a different n-gram (and drafts are verified anyway).
#[derive(Debug, Clone)]
pub struct NgramIndex {
    ngram_min: usize,
    ngram_max: usize,
    /// One map per length, index `n − ngram_min`.
    maps: Vec<KeyMap>,
    /// Continuation positions `1..indexed` are in the index.
    indexed: usize,
}

impl std::fmt::Debug for IdentityHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityHasher")
    }
}

fn hash_ngram(tokens: &[TokenId]) -> u64 {
    // splitmix64-style mixing per token; the length is mixed in too, though
    // lengths live in separate maps anyway.
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15 ^ tokens.len() as u64;
    for &t in tokens {
        h ^= u64::from(t).wrapping_add(0x9e37_79b9_7f4a_7c15);
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
    }
    h
}

impl NgramIndex {
    /// An empty index for n-gram lengths `ngram_min..=ngram_max`, clamped to
    /// `1..=MAX_INDEX_NGRAM`.
    pub fn new(ngram_min: usize, ngram_max: usize) -> Self {
        let ngram_min = ngram_min.clamp(1, MAX_INDEX_NGRAM);
        let ngram_max = ngram_max.clamp(ngram_min, MAX_INDEX_NGRAM);
        Self {
            ngram_min,
            ngram_max,
            maps: (ngram_min..=ngram_max).map(|_| KeyMap::default()).collect(),
            indexed: 0,
        }
    }

    /// The shortest indexed n-gram.
    pub fn ngram_min(&self) -> usize {
        self.ngram_min
    }

    /// The longest indexed n-gram.
    pub fn ngram_max(&self) -> usize {
        self.ngram_max
    }

    /// How many tokens of the history have been indexed.
    pub fn indexed_len(&self) -> usize {
        self.indexed
    }

    /// Forgets everything (a new history).
    pub fn clear(&mut self) {
        self.maps.iter_mut().for_each(HashMap::clear);
        self.indexed = 0;
    }

    /// Indexes the tokens of `history` appended since the last call. The
    /// history must only grow between calls; if it became shorter, the index is
    /// rebuilt from scratch.
    pub fn update(&mut self, history: &[TokenId]) {
        if history.len() < self.indexed {
            self.clear();
        }
        // Position e is a continuation: of the n-gram history[e-n..e] for every
        // indexed n with n <= e.
        for e in self.indexed.max(1)..history.len() {
            let next = history[e];
            for n in self.ngram_min..=self.ngram_max.min(e) {
                let key = hash_ngram(&history[e - n..e]);
                let f = self.maps[n - self.ngram_min].entry(key).or_default();
                f.total += 1;
                match f.next.iter_mut().find(|(t, _, _)| *t == next) {
                    Some(entry) => {
                        entry.1 += 1;
                        entry.2 = e;
                    }
                    None => f.next.push((next, 1, e)),
                }
            }
        }
        self.indexed = self.indexed.max(history.len());
    }

    /// The longest n-gram ending `history` (from `ngram_max` down to
    /// `ngram_min`) that occurred earlier with a continuation that passes
    /// `evidence`. The chosen continuation is the most frequent one (ties: the
    /// most recent), and `source` is its latest occurrence.
    ///
    /// Only the indexed part of `history` is searched: call [`Self::update`]
    /// first.
    pub fn find(&self, history: &[TokenId], evidence: &Evidence) -> Option<NgramMatch> {
        let len = history.len();
        for n in (self.ngram_min..=self.ngram_max.min(len)).rev() {
            let suffix = &history[len - n..];
            let Some(f) = self.maps[n - self.ngram_min].get(&hash_ngram(suffix)) else {
                continue;
            };
            let Some(&(_, count, source)) =
                f.next.iter().max_by_key(|(_, count, pos)| (*count, *pos))
            else {
                continue;
            };
            if !evidence.passes(n, count, f.total) {
                continue;
            }
            // Confirm against the history: a hash collision must not draft.
            if source < n || source > len || history[source - n..source] != *suffix {
                continue;
            }
            return Some(NgramMatch {
                n,
                source,
                count,
                total: f.total,
            });
        }
        None
    }

    /// Writes into `out` (cleared first) up to `max_len` tokens copied from
    /// `m.source` onwards ([`crate::copy_cursor::copy_from`]: the copy may run
    /// past the end of `history` into the tokens it has just written, so a
    /// periodic text is continued periodically).
    pub fn draft(history: &[TokenId], m: &NgramMatch, max_len: usize, out: &mut Vec<TokenId>) {
        crate::copy_cursor::copy_from(history, m.source, max_len, out);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn indexed(min: usize, max: usize, h: &[TokenId]) -> NgramIndex {
        let mut ix = NgramIndex::new(min, max);
        ix.update(h);
        ix
    }

    fn draft_of(h: &[TokenId], min: usize, max: usize, ev: &Evidence, k: usize) -> Vec<TokenId> {
        let ix = indexed(min, max, h);
        let mut out = Vec::new();
        if let Some(m) = ix.find(h, ev) {
            NgramIndex::draft(h, &m, k, &mut out);
        }
        out
    }

    #[test]
    fn empty_and_single_token_histories_have_no_match() {
        let ix = indexed(1, 4, &[]);
        assert_eq!(ix.find(&[], &Evidence::none()), None);
        let ix = indexed(1, 4, &[5]);
        assert_eq!(ix.find(&[5], &Evidence::none()), None);
    }

    #[test]
    fn no_earlier_occurrence_no_match() {
        let h = [1, 2, 3, 4, 5];
        assert_eq!(indexed(1, 3, &h).find(&h, &Evidence::none()), None);
    }

    #[test]
    fn latest_occurrence_is_used() {
        // 7 occurs at 0 (followed by 1) and at 3 (followed by 2).
        let h = [7, 1, 9, 7, 2, 9, 7];
        let m = indexed(1, 1, &h).find(&h, &Evidence::none()).unwrap();
        assert_eq!(m.n, 1);
        assert_eq!(m.source, 4);
        assert_eq!(draft_of(&h, 1, 1, &Evidence::none(), 3), vec![2, 9, 7]);
    }

    #[test]
    fn longest_match_is_preferred() {
        // The 1-gram "3" was last followed by 9, but the 2-gram "2 3" by 4.
        let h = [2, 3, 4, 5, 8, 3, 9, 1, 2, 3];
        let m = indexed(1, 3, &h).find(&h, &Evidence::none()).unwrap();
        assert_eq!(m.n, 2);
        assert_eq!(m.source, 2);
        assert_eq!(draft_of(&h, 1, 3, &Evidence::none(), 2), vec![4, 5]);
        // With 1-grams only, the latest "3" wins.
        assert_eq!(draft_of(&h, 1, 1, &Evidence::none(), 2), vec![9, 1]);
    }

    #[test]
    fn match_at_the_very_end_copies_into_its_own_draft() {
        // "4 5" occurred just before the end: the continuation starts at the
        // last token and runs on into the draft.
        let h = [1, 4, 5, 4, 5];
        let m = indexed(2, 2, &h).find(&h, &Evidence::none()).unwrap();
        assert_eq!(m.source, 3);
        assert_eq!(
            draft_of(&h, 2, 2, &Evidence::none(), 5),
            vec![4, 5, 4, 5, 4]
        );
    }

    #[test]
    fn all_the_same_token() {
        let h = [6; 10];
        let m = indexed(1, 4, &h).find(&h, &Evidence::default()).unwrap();
        assert_eq!(m.n, 4);
        // The latest earlier "6 6 6 6" ends at 9: it continues with the last token.
        assert_eq!(m.source, 9);
        assert_eq!(m.count, 6);
        assert_eq!(draft_of(&h, 1, 4, &Evidence::default(), 4), vec![6; 4]);
    }

    #[test]
    fn evidence_rule_needs_a_dominant_continuation() {
        // 1-gram "5" followed by 1, 2, 3: no continuation has 2 occurrences.
        let h = [5, 1, 5, 2, 5, 3, 5];
        let ix = indexed(1, 1, &h);
        assert_eq!(ix.find(&h, &Evidence::default()), None);
        assert!(ix.find(&h, &Evidence::none()).is_some());
        // Followed by 1 twice and 2 once: 66 % share and count 2 pass.
        let h = [5, 1, 5, 1, 5, 2, 5];
        let m = indexed(1, 1, &h).find(&h, &Evidence::default()).unwrap();
        assert_eq!((m.count, m.total), (2, 3));
        // The dominant continuation is drafted, from its own latest occurrence.
        assert_eq!(m.source, 3);
    }

    #[test]
    fn evidence_falls_back_to_shorter_ngrams() {
        // The 2-gram "8 5" occurred once (followed by 1): with a 2-gram rule of
        // 2 occurrences it fails; the 1-gram "5" (followed by 2 twice) passes.
        let h = [8, 5, 1, 0, 5, 2, 3, 5, 2, 8, 5];
        let ev = Evidence {
            min_count: vec![2, 2],
            min_percent: vec![50, 50],
        };
        let m = indexed(1, 2, &h).find(&h, &ev).unwrap();
        assert_eq!(m.n, 1);
        assert_eq!(draft_of(&h, 1, 2, &ev, 2), vec![2, 8]);
    }

    #[test]
    fn incremental_updates_equal_a_full_build() {
        let h: Vec<TokenId> = (0..200u32).map(|i| (i * 7 + i / 13) % 11).collect();
        let mut inc = NgramIndex::new(1, 4);
        for end in 0..=h.len() {
            inc.update(&h[..end]);
            let full = indexed(1, 4, &h[..end]);
            for ev in [Evidence::none(), Evidence::default()] {
                assert_eq!(
                    inc.find(&h[..end], &ev),
                    full.find(&h[..end], &ev),
                    "at {end}"
                );
            }
        }
        assert_eq!(inc.indexed_len(), h.len());
    }

    #[test]
    fn shorter_history_rebuilds() {
        let mut ix = NgramIndex::new(1, 2);
        ix.update(&[1, 2, 1, 2, 1]);
        // A new, unrelated history.
        ix.update(&[3, 4]);
        assert_eq!(ix.indexed_len(), 2);
        assert_eq!(ix.find(&[3, 4], &Evidence::none()), None);
        ix.update(&[3, 4, 3]);
        assert_eq!(ix.find(&[3, 4, 3], &Evidence::none()).unwrap().source, 1);
    }

    #[test]
    fn evidence_rule_table() {
        let ev = Evidence::default();
        assert!(!ev.passes(1, 1, 1));
        assert!(ev.passes(1, 2, 3));
        assert!(!ev.passes(1, 2, 4));
        assert!(ev.passes(3, 1, 2));
        assert!(!ev.passes(3, 1, 3));
        // Lengths past the table use its last entry.
        assert!(ev.passes(9, 1, 2));
        assert!(Evidence::none().passes(2, 1, 100));
    }
}
