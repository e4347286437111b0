//! Which documents go into the mix, and how often.
//!
//! A component with `A` available tokens and a target `T` takes
//! `k = floor(T / A)` whole passes over its documents (capped by
//! `max_epochs`), then samples the remaining `T - k·A` tokens without
//! replacement: documents are ordered by a hash of (seed, component,
//! epoch, document index) and taken in that order until the remainder is
//! reached, so the target is met within one document's tokens and the
//! choice is the same for the same seed on every machine. A fractional
//! `max_epochs` caps that last partial pass at `(max_epochs - k)·A`.
//!
//! When `A · max_epochs < T` the component falls short. Without `--rescale`
//! the mix fails with a table of what is missing; with it, the shortfall is
//! spread over the components that still have room, in proportion to their
//! shares, repeated until every target fits (a component that becomes
//! short in turn gives up its extra as well).

use anyhow::{bail, Result};
use std::fmt::Write as _;

/// One selected document occurrence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pick {
    pub component: u32,
    pub doc: u32,
    pub epoch: u32,
}

/// What a component's sources hold.
pub struct Available<'a> {
    pub name: &'a str,
    pub share: f64,
    pub max_epochs: f64,
    /// Tokens of each document, in source order.
    pub tokens: &'a [u32],
}

impl Available<'_> {
    fn total(&self) -> u64 {
        self.tokens.iter().map(|&t| t as u64).sum()
    }

    /// The most tokens this component can give, whole documents aside.
    fn cap(&self) -> f64 {
        self.total() as f64 * self.max_epochs
    }
}

/// The sampling key of a document occurrence. DETERMINISM: a pure function
/// of the seed and the document's position, never of thread timing.
pub fn key(seed: u64, p: Pick) -> u64 {
    let mut b = [0u8; 20];
    b[..8].copy_from_slice(&seed.to_le_bytes());
    b[8..12].copy_from_slice(&p.component.to_le_bytes());
    b[12..16].copy_from_slice(&p.doc.to_le_bytes());
    b[16..20].copy_from_slice(&p.epoch.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64(&b)
}

/// Targets after `--rescale` (or the plan's, checked). Errors with the
/// shortfall table when a target cannot be met and `rescale` is off.
pub fn settle_targets(avail: &[Available], targets: &[u64], rescale: bool) -> Result<Vec<u64>> {
    let short: Vec<usize> = (0..avail.len())
        .filter(|&i| avail[i].cap() < targets[i] as f64)
        .collect();
    if short.is_empty() {
        return Ok(targets.to_vec());
    }
    if !rescale {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{:<24} {:>16} {:>16} {:>10} {:>16}",
            "component", "target", "available", "max_epochs", "missing"
        );
        for &i in &short {
            let a = &avail[i];
            let _ = writeln!(
                t,
                "{:<24} {:>16} {:>16} {:>10} {:>16}",
                a.name,
                targets[i],
                a.total(),
                a.max_epochs,
                targets[i] - a.cap().floor() as u64
            );
        }
        bail!(
            "the sources cannot meet the plan's targets:\n{t}add sources, raise max_epochs, lower total_tokens, or pass --rescale to spread the shortfall over the other components"
        );
    }
    let mut out = targets.to_vec();
    let mut fixed = vec![false; avail.len()];
    loop {
        let mut deficit = 0u64;
        for i in 0..avail.len() {
            if !fixed[i] && avail[i].cap() < out[i] as f64 {
                let cap = avail[i].cap().floor() as u64;
                deficit += out[i] - cap;
                out[i] = cap;
                fixed[i] = true;
            }
        }
        if deficit == 0 {
            return Ok(out);
        }
        let open: Vec<usize> = (0..avail.len()).filter(|&i| !fixed[i]).collect();
        if open.is_empty() {
            bail!(
                "--rescale: every component is short; the sources hold {} tokens at most, the plan wants {}",
                out.iter().sum::<u64>(),
                targets.iter().sum::<u64>()
            );
        }
        let share_sum: f64 = open.iter().map(|&i| avail[i].share).sum();
        let mut given = 0u64;
        for (n, &i) in open.iter().enumerate() {
            let extra = if n + 1 == open.len() {
                deficit - given
            } else {
                (deficit as f64 * avail[i].share / share_sum).round() as u64
            };
            given += extra;
            out[i] += extra;
        }
    }
}

/// The picks of component `c` for `target` tokens, and the tokens they hold.
pub fn pick(seed: u64, c: u32, a: &Available, target: u64) -> (Vec<Pick>, u64) {
    let total = a.total();
    let mut picks = Vec::new();
    if total == 0 || target == 0 {
        return (picks, 0);
    }
    let whole_cap = a.max_epochs.floor() as u64;
    let full = (target / total).min(whole_cap);
    for epoch in 0..full as u32 {
        picks.extend((0..a.tokens.len() as u32).map(|doc| Pick {
            component: c,
            doc,
            epoch,
        }));
    }
    let mut got = full * total;
    // The last, partial pass: no more than the epochs left allow.
    let allowance = ((a.max_epochs - full as f64) * total as f64).floor() as u64;
    let rest = (target - got).min(allowance);
    if rest > 0 {
        let epoch = full as u32;
        let mut order: Vec<(u64, u32)> = (0..a.tokens.len() as u32)
            .map(|doc| {
                let p = Pick {
                    component: c,
                    doc,
                    epoch,
                };
                (key(seed, p), doc)
            })
            .collect();
        order.sort_unstable();
        let mut taken = 0u64;
        for (_, doc) in order {
            if taken >= rest {
                break;
            }
            taken += a.tokens[doc as usize] as u64;
            picks.push(Pick {
                component: c,
                doc,
                epoch,
            });
        }
        got += taken;
    }
    (picks, got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avail(tokens: &[u32], share: f64, max_epochs: f64) -> Available<'_> {
        Available {
            name: "c",
            share,
            max_epochs,
            tokens,
        }
    }

    #[test]
    fn sampling_meets_the_target_within_one_document() {
        let tokens: Vec<u32> = (0..1000).map(|i| 10 + i % 90).collect();
        let a = avail(&tokens, 1.0, 1.0);
        let (picks, got) = pick(7, 0, &a, 20_000);
        assert!((20_000..20_000 + 100).contains(&got), "{got}");
        let mut docs: Vec<u32> = picks.iter().map(|p| p.doc).collect();
        docs.sort();
        docs.dedup();
        assert_eq!(docs.len(), picks.len(), "without replacement");
        assert_eq!(pick(7, 0, &a, 20_000).0, picks, "same seed, same picks");
        assert_ne!(pick(8, 0, &a, 20_000).0, picks, "another seed, other picks");
    }

    #[test]
    fn repeats_up_to_max_epochs() {
        let tokens = [100u32; 10];
        let a = avail(&tokens, 1.0, 2.5);
        let (picks, got) = pick(0, 0, &a, 2_300);
        assert_eq!(got, 2_300);
        assert_eq!(picks.iter().filter(|p| p.epoch == 2).count(), 3);
    }

    #[test]
    fn shortfall_fails_or_rescales_by_share() {
        let small = [100u32; 10];
        let big = [100u32; 1000];
        let a = [
            avail(&small, 0.5, 1.0),
            avail(&big, 0.3, 1.0),
            avail(&big, 0.2, 1.0),
        ];
        let targets = [5_000, 3_000, 2_000];
        let err = settle_targets(&a, &targets, false).unwrap_err().to_string();
        assert!(err.contains("missing") && err.contains("4000"), "{err}");
        let t = settle_targets(&a, &targets, true).unwrap();
        assert_eq!(t, [1_000, 5_400, 3_600]);
        assert_eq!(t.iter().sum::<u64>(), 10_000);
    }
}
