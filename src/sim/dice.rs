//! Deterministic pseudo-random numbers from a seed and labels: every "random" choice of the
//! simulator (faults, sizes, default durations, ids) comes from here, so a run repeats.

/// A stable 64-bit hash of the seed and the parts (FNV-1a folded through SplitMix64).
pub(crate) fn roll(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ splitmix(seed);
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separate parts so ("ab","c") and ("a","bc") differ.
        hash = splitmix(hash ^ part.len() as u64);
    }
    splitmix(hash)
}

/// A number in `[0, 1)` from the seed and the parts.
pub(crate) fn unit(seed: u64, parts: &[&[u8]]) -> f64 {
    (roll(seed, parts) >> 11) as f64 / (1u64 << 53) as f64
}

/// A whole number in `[low, high]` from the seed and the parts.
pub(crate) fn between(seed: u64, parts: &[&[u8]], low: u64, high: u64) -> u64 {
    if high <= low {
        return low;
    }
    low + roll(seed, parts) % (high - low + 1)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolls_repeat_and_depend_on_every_input() {
        assert_eq!(roll(1, &[b"a", b"b"]), roll(1, &[b"a", b"b"]));
        assert_ne!(roll(1, &[b"a", b"b"]), roll(2, &[b"a", b"b"]));
        assert_ne!(roll(1, &[b"ab", b"c"]), roll(1, &[b"a", b"bc"]));
        let u = unit(9, &[b"x"]);
        assert!((0.0..1.0).contains(&u));
        assert!((5..=9).contains(&between(3, &[b"y"], 5, 9)));
    }

    #[test]
    fn units_are_spread_evenly_enough() {
        let below = (0..10_000u32)
            .filter(|n| unit(42, &[&n.to_le_bytes()]) < 0.25)
            .count();
        assert!((2_200..2_800).contains(&below), "{below}");
    }
}
