//! [`IdMap`]: a map keyed by request id, hashed with a multiply instead of SipHash (a few hundred
//! instructions per call on each side, for keys that are sequential numbers).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by request id.
pub type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// Hashes a request id by multiplying it with 2^64 / φ (Fibonacci hashing): sequential ids
/// spread evenly over the table, in both the low bits (bucket) and the high bits (tag).
///
/// Not flood-resistant: a peer choosing its ids can make them collide. Each connection's map
/// holds at most `--max-in-flight` (256 by default) of them, which bounds the damage to a slower
/// lookup on that peer's own connection.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are expected; anything else still hashes, just more slowly.
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x100_0000_01B3);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_ids_spread_over_buckets_and_tags() {
        let hash = |id: u64| {
            let mut hasher = IdHasher::default();
            hasher.write_u64(id);
            hasher.finish()
        };
        let mut buckets = [0u32; 64];
        let mut tags = std::collections::HashSet::new();
        for id in 0..6400 {
            buckets[(hash(id) & 63) as usize] += 1;
            tags.insert(hash(id) >> 57);
        }
        assert!(buckets.iter().all(|&n| n == 100), "{buckets:?}");
        assert_eq!(tags.len(), 128, "every 7-bit tag is used");
    }
}
