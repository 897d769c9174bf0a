//! Seeded choices. Every random decision of the proxy is a pure function of the seed and of
//! *where* it is made: for TCP the connection's number, the direction and the byte offset; for
//! UDP the client, the direction and the datagram's number in that direction. Nothing depends on the clock, on thread scheduling, or on how
//! `read` happened to split the bytes, so the same seed and the same traffic give the same
//! decisions, on any machine.
//!
//! The mixing function is SplitMix64's (Steele, Lea and Flood, "Fast splittable pseudorandom
//! number generators", 2014), applied to the seed and then to each part of the key in turn: a
//! hash, not a generator with state, so a choice never depends on the choices made before it.

/// What a choice is for, mixed into its key: two choices made at the same place (the same
/// datagram) must not share their randomness.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    Delay = 1,
    Drop = 2,
    Duplicate = 3,
    Reorder = 4,
}

/// The seed, and every choice made from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dice {
    seed: u64,
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

fn splitmix64(value: u64) -> u64 {
    let mut z = value.wrapping_add(GOLDEN_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Dice {
    pub(crate) fn new(seed: u64) -> Dice {
        Dice { seed }
    }

    /// 64 random bits for `purpose` at `key` (e.g. `[connection, direction, offset]`).
    pub(crate) fn roll(&self, purpose: Purpose, key: &[u64]) -> u64 {
        let mut hash = splitmix64(self.seed ^ splitmix64(purpose as u64));
        for &part in key {
            hash = splitmix64(hash ^ part);
        }
        hash
    }

    /// True for a share `rate` (0.0 to 1.0) of all keys.
    pub(crate) fn chance(&self, purpose: Purpose, key: &[u64], rate: f64) -> bool {
        if rate <= 0.0 {
            return false;
        }
        // The top 53 bits as a number in [0, 1): exactly representable, the same everywhere.
        let unit = (self.roll(purpose, key) >> 11) as f64 / (1u64 << 53) as f64;
        unit < rate
    }
}

/// A seed for a run without `--seed`: six digits, easy to type back.
pub(crate) fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_nanos() as u64)
        .unwrap_or(0);
    splitmix64(nanos ^ (u64::from(std::process::id()) << 32)) % 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_and_key_give_the_same_roll() {
        let dice = Dice::new(7);
        assert_eq!(
            dice.roll(Purpose::Delay, &[1, 0, 40]),
            Dice::new(7).roll(Purpose::Delay, &[1, 0, 40])
        );
        assert_ne!(
            dice.roll(Purpose::Delay, &[1, 0, 40]),
            dice.roll(Purpose::Delay, &[1, 0, 41])
        );
        assert_ne!(
            dice.roll(Purpose::Delay, &[1, 0, 40]),
            Dice::new(8).roll(Purpose::Delay, &[1, 0, 40])
        );
        assert_ne!(
            dice.roll(Purpose::Drop, &[3]),
            dice.roll(Purpose::Duplicate, &[3])
        );
    }

    /// Pinned values: a change here changes every recorded transcript.
    #[test]
    fn rolls_are_pinned() {
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
        let dice = Dice::new(42);
        let drops: String = (1..=20)
            .map(|i| {
                if dice.chance(Purpose::Drop, &[i], 0.3) {
                    'x'
                } else {
                    '.'
                }
            })
            .collect();
        assert_eq!(drops, ".xx...x.x..xx..x....");
    }

    #[test]
    fn chances_come_out_near_their_rate() {
        let dice = Dice::new(1);
        let hits = (0..10_000)
            .filter(|&i| dice.chance(Purpose::Drop, &[i], 0.25))
            .count();
        assert!((2300..2700).contains(&hits), "{hits} of 10000 at 25%");
        assert!(!dice.chance(Purpose::Drop, &[0], 0.0));
        assert!(dice.chance(Purpose::Drop, &[0], 1.0));
    }

    #[test]
    fn random_seeds_are_short() {
        assert!(random_seed() < 1_000_000);
    }
}
