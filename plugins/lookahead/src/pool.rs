//! The n-gram pool of lookahead decoding.

use std::collections::HashMap;

use augur_core::TokenId;

/// For each key token, up to `capacity` stored continuations of
/// `continuation_len` tokens (an n-gram is the key plus its continuation).
///
/// Insertion is a FIFO ring per key: when a key is full, the oldest stored
/// continuation is overwritten. A continuation already stored under the key is
/// skipped, so the candidates verified in one step are distinct.
#[derive(Debug, Clone)]
pub struct NgramPool {
    continuation_len: usize,
    capacity: usize,
    slots: HashMap<TokenId, Slot>,
    total: usize,
}

#[derive(Debug, Clone, Default)]
struct Slot {
    /// `count` continuations back to back, `continuation_len` tokens each.
    tokens: Vec<TokenId>,
    count: usize,
    /// The ring slot the next insertion overwrites once the key is full.
    head: usize,
}

impl NgramPool {
    /// An empty pool of continuations of `continuation_len` tokens (N − 1 for
    /// n-grams of length N), at most `capacity` per key.
    pub fn new(continuation_len: usize, capacity: usize) -> Self {
        Self {
            continuation_len,
            capacity,
            slots: HashMap::new(),
            total: 0,
        }
    }

    /// Length of every stored continuation.
    pub fn continuation_len(&self) -> usize {
        self.continuation_len
    }

    /// The most continuations kept per key.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Stores `continuation` under `key`. Returns false (and stores nothing)
    /// when it is already stored under `key`, when its length is not
    /// [`Self::continuation_len`], or when the capacity is 0.
    pub fn insert(&mut self, key: TokenId, continuation: &[TokenId]) -> bool {
        let len = self.continuation_len;
        if continuation.len() != len || self.capacity == 0 || len == 0 {
            return false;
        }
        let slot = self.slots.entry(key).or_default();
        if slot.tokens.chunks_exact(len).any(|c| c == continuation) {
            return false;
        }
        if slot.count < self.capacity {
            slot.tokens.extend_from_slice(continuation);
            slot.count += 1;
            self.total += 1;
        } else {
            let at = slot.head * len;
            slot.tokens[at..at + len].copy_from_slice(continuation);
        }
        slot.head = (slot.head + 1) % self.capacity;
        true
    }

    /// The continuations stored under `key`, in ring-slot order.
    pub fn get(&self, key: TokenId) -> impl Iterator<Item = &[TokenId]> + '_ {
        let len = self.continuation_len.max(1);
        self.slots
            .get(&key)
            .map(|s| s.tokens.as_slice())
            .unwrap_or(&[])
            .chunks_exact(len)
    }

    /// How many continuations are stored under `key`.
    pub fn count(&self, key: TokenId) -> usize {
        self.slots.get(&key).map_or(0, |s| s.count)
    }

    /// Total number of stored continuations.
    pub fn len(&self) -> usize {
        self.total
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.total = 0;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entries(p: &NgramPool, key: TokenId) -> Vec<Vec<TokenId>> {
        p.get(key).map(|c| c.to_vec()).collect()
    }

    #[test]
    fn empty_pool_has_nothing() {
        let p = NgramPool::new(2, 3);
        assert!(p.is_empty());
        assert_eq!(p.count(5), 0);
        assert_eq!(p.get(5).count(), 0);
    }

    #[test]
    fn stores_per_key_in_order() {
        let mut p = NgramPool::new(2, 3);
        assert!(p.insert(1, &[2, 3]));
        assert!(p.insert(1, &[4, 5]));
        assert!(p.insert(7, &[2, 3]));
        assert_eq!(entries(&p, 1), vec![vec![2, 3], vec![4, 5]]);
        assert_eq!(entries(&p, 7), vec![vec![2, 3]]);
        assert_eq!(p.len(), 3);
        assert_eq!(p.count(1), 2);
    }

    #[test]
    fn duplicates_are_skipped() {
        let mut p = NgramPool::new(2, 3);
        assert!(p.insert(1, &[2, 3]));
        assert!(!p.insert(1, &[2, 3]));
        assert_eq!(p.count(1), 1);
        // A duplicate does not advance the ring either.
        assert!(p.insert(1, &[4, 4]));
        assert!(p.insert(1, &[5, 5]));
        assert!(!p.insert(1, &[4, 4]));
        assert!(p.insert(1, &[6, 6]));
        assert_eq!(entries(&p, 1), vec![vec![6, 6], vec![4, 4], vec![5, 5]]);
    }

    #[test]
    fn full_key_evicts_the_oldest_first() {
        let mut p = NgramPool::new(3, 2);
        p.insert(0, &[1, 1, 1]);
        p.insert(0, &[2, 2, 2]);
        p.insert(0, &[3, 3, 3]); // evicts [1,1,1]
        assert_eq!(entries(&p, 0), vec![vec![3, 3, 3], vec![2, 2, 2]]);
        p.insert(0, &[4, 4, 4]); // evicts [2,2,2]
        assert_eq!(entries(&p, 0), vec![vec![3, 3, 3], vec![4, 4, 4]]);
        assert_eq!(p.len(), 2);
        // An evicted continuation can come back.
        assert!(p.insert(0, &[1, 1, 1]));
        assert_eq!(entries(&p, 0), vec![vec![1, 1, 1], vec![4, 4, 4]]);
    }

    #[test]
    fn wrong_length_and_zero_capacity_are_refused() {
        let mut p = NgramPool::new(2, 1);
        assert!(!p.insert(0, &[1]));
        assert!(!p.insert(0, &[1, 2, 3]));
        assert!(p.is_empty());
        let mut z = NgramPool::new(2, 0);
        assert!(!z.insert(0, &[1, 2]));
        assert!(z.is_empty());
    }

    #[test]
    fn capacity_one_replaces() {
        let mut p = NgramPool::new(1, 1);
        p.insert(9, &[1]);
        p.insert(9, &[2]);
        assert_eq!(entries(&p, 9), vec![vec![2]]);
        p.clear();
        assert!(p.is_empty());
        assert_eq!(p.count(9), 0);
    }
}
