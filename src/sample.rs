//! `sample N% [seed S]` (SPEC §10): which profiles a sample holds, by an
//! integer hash of the id that every engine computes the same way.
//!
//! With `P = 2³¹ − 1` and `K = 48271³ mod P`:
//! `x = ((id mod P) + P) mod P`, `h = ((x + S) mod P) · K mod P`,
//! `bucket = h mod 10 000`; the profile is in an `N%` sample when
//! `bucket < N · 100`. `mod` is the remainder that takes the dividend's sign
//! (SQL's `%`, Rust's `%`). Every intermediate value is below 2⁶³.

/// The modulus: 2³¹ − 1, a prime.
pub const P: i64 = 2_147_483_647;
/// The multiplier: 48271³ mod P.
pub const K: i64 = 1_291_394_886;
/// Buckets: one per hundredth of a percent.
pub const BUCKETS: i64 = 10_000;

/// The bucket of `id` under `seed` (`0 ≤ seed < P`), from 0 to 9 999.
pub fn bucket(id: i64, seed: i64) -> i64 {
    let x = ((id % P) + P) % P;
    let h = ((x + seed) % P) * K % P;
    h % BUCKETS
}

/// Whether `id` is in the sample of `basis_points` hundredths of a percent.
pub fn holds(id: i64, basis_points: u32, seed: i64) -> bool {
    bucket(id, seed) < i64::from(basis_points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_multiplier_is_48271_cubed_mod_p() {
        assert_eq!(48_271i64 * 48_271 % P * 48_271 % P, K);
    }

    #[test]
    fn negative_and_extreme_ids_stay_in_range() {
        for id in [i64::MIN, i64::MIN + 1, -1, 0, 1, P, P - 1, i64::MAX] {
            for seed in [0, 7, P - 1] {
                let b = bucket(id, seed);
                assert!((0..BUCKETS).contains(&b), "{id} {seed} {b}");
            }
        }
        // -1 ≡ P - 1.
        assert_eq!(bucket(-1, 0), bucket(P - 1, 0));
        assert_eq!(bucket(1, 0), K % BUCKETS);
    }

    #[test]
    fn a_sample_is_about_its_share_and_complements_split_exactly() {
        let inside = (0..100_000).filter(|&id| holds(id, 1_000, 3)).count();
        assert!((9_000..11_000).contains(&inside), "{inside}");
        assert!((0..1_000).all(|id| holds(id, 10_000, 0)));
    }
}
