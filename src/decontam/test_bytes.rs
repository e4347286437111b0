//! Seeded random bytes for the byte-level tests of the scan (xorshift64,
//! Marsaglia, "Xorshift RNGs", Journal of Statistical Software 8(14), 2003):
//! the same inputs on every run.

pub struct Xorshift(u64);

impl Xorshift {
    /// A generator from `seed` (any value: zero is mapped away from the
    /// fixed point).
    pub fn new(seed: u64) -> Xorshift {
        Xorshift(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut s = self.0;
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        self.0 = s;
        s
    }

    /// `n` bytes drawn uniformly from `alphabet`.
    pub fn bytes(&mut self, n: usize, alphabet: &[u8]) -> Vec<u8> {
        (0..n)
            .map(|_| alphabet[(self.next_u64() % alphabet.len() as u64) as usize])
            .collect()
    }
}
