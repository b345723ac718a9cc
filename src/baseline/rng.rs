//! A tiny deterministic generator for reproducible operation streams.

/// SplitMix64 (Steele, Lea and Flood): 64 bits of state, one multiply-xorshift per output.
/// Not for cryptography; good enough to drive benchmarks and differential tests identically
/// on every machine.
///
/// ```
/// use tierwheel::baseline::SplitMix64;
///
/// let mut a = SplitMix64::new(42);
/// let mut b = SplitMix64::new(42);
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!(a.below(10) < 10);
/// ```
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose stream is fixed by `seed`.
    ///
    /// ```
    /// let mut rng = tierwheel::baseline::SplitMix64::new(0);
    /// assert_ne!(rng.next_u64(), rng.next_u64());
    /// ```
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    ///
    /// ```
    /// let mut rng = tierwheel::baseline::SplitMix64::new(1);
    /// let _bits: u64 = rng.next_u64();
    /// ```
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (multiply-shift, no division; `0` when `bound` is `0`).
    ///
    /// ```
    /// let mut rng = tierwheel::baseline::SplitMix64::new(7);
    /// assert!((0..1000).all(|_| rng.below(3) < 3));
    /// assert_eq!(rng.below(0), 0);
    /// ```
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}
