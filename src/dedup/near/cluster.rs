//! Clustering: union-find over verified edges, then one star per kept file.
//!
//! Plain union-find over similar pairs has a known failure: similarity is not
//! transitive, so a chain A~B~C~D of pairs each just above the threshold
//! merges A with D although A and D may share little, and one survivor for
//! the whole chain removes files that duplicate nothing that is kept. We
//! therefore cluster in two steps:
//!
//! 1. **Components.** Union-find (union by size, path halving; Tarjan 1975)
//!    over the verified candidate edges groups documents that are connected
//!    at all. Components bound the work of step 2 and never decide a removal.
//! 2. **Stars.** Inside a component, members are sorted by preference
//!    ([`crate::rank::Preference`]: allowed license, then more stars, then
//!    the xxh3 of repo and path, then the record id). The best member not yet
//!    assigned is *kept* and becomes a centre; every later unassigned member
//!    that verifies against it at the threshold joins its cluster and is
//!    removed. Repeat with the next unassigned member. This is greedy star
//!    clustering in the spirit of the "leader" algorithm (Hartigan 1975).
//!
//! Every removed file is thus verified-similar to the one file kept for it,
//! and a cluster is never joined through a chain: in the chain above with A
//! preferred, A keeps B, C becomes a centre and keeps D; A and D are never in
//! one cluster. Two members of one cluster are within Jaccard distance
//! `2 (1 - t)` of each other (the Jaccard distance is a metric), so at the
//! default `t = 0.75` no cluster holds two files with Jaccard below 0.5.
//!
//! Cost: [`stars`] compares each unassigned member with each centre, so a
//! component of `k` members with `c` kept centres costs `k * c`
//! comparisons. It stays as the reference; the steps run
//! [`super::star_index`], which gives the same stars while comparing a centre
//! only with members that could pass (a prefix filter for exact Jaccard,
//! pigeonhole blocks for signatures), linear in the component's size.
//!
//! DETERMINISM: components do not depend on the order of unions; members and
//! components are ordered by preference, so the clusters are the same for any
//! thread count, batch size or input order.

use crate::rank::Preference;
use rayon::prelude::*;

/// Disjoint sets over `0..n` with union by size and path halving.
pub struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    pub fn new(n: usize) -> UnionFind {
        UnionFind {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize];
            x = self.parent[x as usize];
        }
        x
    }

    /// Joins the sets of `a` and `b`; returns whether they were apart.
    pub fn union(&mut self, a: u32, b: u32) -> bool {
        let (mut ra, mut rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        if self.size[ra as usize] < self.size[rb as usize] {
            std::mem::swap(&mut ra, &mut rb);
        }
        self.parent[rb as usize] = ra;
        self.size[ra as usize] += self.size[rb as usize];
        true
    }

    pub fn len(&self) -> usize {
        self.parent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// Components of two or more members, each sorted by preference, the
    /// list sorted by each component's most preferred member.
    pub fn components(mut self, prefs: &[Preference]) -> Vec<Vec<u32>> {
        let n = self.len();
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        for k in 0..n as u32 {
            let r = self.find(k);
            if self.size[r as usize] > 1 {
                pairs.push((r, k));
            }
        }
        drop(self);
        pairs.sort_unstable();
        let mut comps: Vec<Vec<u32>> = Vec::new();
        let mut i = 0;
        while i < pairs.len() {
            let root = pairs[i].0;
            let mut c = Vec::new();
            while i < pairs.len() && pairs[i].0 == root {
                c.push(pairs[i].1);
                i += 1;
            }
            comps.push(c);
        }
        comps
            .par_iter_mut()
            .for_each(|c| c.sort_unstable_by(|&a, &b| prefs[a as usize].cmp(&prefs[b as usize])));
        comps.sort_unstable_by(|a, b| prefs[a[0] as usize].cmp(&prefs[b[0] as usize]));
        comps
    }
}

/// One star inside a component: positions into the component's member list.
#[derive(Clone, Debug, PartialEq)]
pub struct Star {
    pub centre: usize,
    /// Members removed for the centre, with their verified similarity.
    pub members: Vec<(usize, f64)>,
}

/// Greedy star clustering of one component whose members are already in
/// preference order. `similar(i, j)` returns the verified similarity of
/// members `i` (the centre) and `j` when it reaches the threshold.
/// Stars without members are not returned.
pub fn stars(len: usize, mut similar: impl FnMut(usize, usize) -> Option<f64>) -> Vec<Star> {
    let mut assigned = vec![false; len];
    let mut out = Vec::new();
    for c in 0..len {
        if assigned[c] {
            continue;
        }
        assigned[c] = true;
        let mut members = Vec::new();
        for (m, done) in assigned.iter_mut().enumerate().skip(c + 1) {
            if *done {
                continue;
            }
            if let Some(s) = similar(c, m) {
                *done = true;
                members.push((m, s));
            }
        }
        if !members.is_empty() {
            out.push(Star { centre: c, members });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordId;

    fn pref(row: u64) -> Preference {
        Preference {
            license_allowed: true,
            stars: 0,
            tiebreak: 0,
            id: RecordId { shard: 0, row },
        }
    }

    #[test]
    fn components_ignore_union_order() {
        let prefs: Vec<Preference> = (0..6).map(pref).collect();
        let mut a = UnionFind::new(6);
        a.union(0, 1);
        a.union(4, 5);
        a.union(1, 3);
        let mut b = UnionFind::new(6);
        b.union(5, 4);
        b.union(3, 0);
        b.union(3, 1);
        assert_eq!(a.components(&prefs), vec![vec![0, 1, 3], vec![4, 5]]);
        assert_eq!(b.components(&prefs), vec![vec![0, 1, 3], vec![4, 5]]);
    }

    #[test]
    fn components_follow_preference_order() {
        // Row 2 is preferred over row 0 here by stars.
        let mut prefs: Vec<Preference> = (0..3).map(pref).collect();
        prefs[2].stars = 10;
        let mut u = UnionFind::new(3);
        u.union(0, 2);
        assert_eq!(u.components(&prefs), vec![vec![2, 0]]);
    }

    #[test]
    fn a_weak_chain_does_not_merge_its_ends() {
        // A~B, B~C, C~D above threshold; A~C, B~D, A~D below.
        let sim = |i: usize, j: usize| -> Option<f64> {
            let (a, b) = (i.min(j), i.max(j));
            (b - a == 1).then_some(0.8)
        };
        let s = stars(4, sim);
        assert_eq!(
            s,
            vec![
                Star {
                    centre: 0,
                    members: vec![(1, 0.8)]
                },
                Star {
                    centre: 2,
                    members: vec![(3, 0.8)]
                },
            ]
        );
    }

    #[test]
    fn each_member_joins_exactly_one_star() {
        let s = stars(5, |_, _| Some(1.0));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].centre, 0);
        assert_eq!(s[0].members.len(), 4);
        assert!(stars(5, |_, _| None).is_empty());
    }
}
