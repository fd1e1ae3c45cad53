//! First claim wins: claimants (pods, manifest files) each claim a few keys (a UID, a
//! namespace/name), and in the claimants' order the first to claim a key holds it. A
//! claimant holds all its keys or none: one whose key an earlier holder has is set aside,
//! and claims nothing. Changing one claimant decides again only the claimants linked to it
//! through shared keys (in practice: itself), so the work of one change does not grow
//! with the number of claimants. Pure.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::Hash;

/// Where a claimant stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing<K, C> {
    /// It holds all its keys.
    Holds,
    /// `key` is held by the earlier claimant `by`.
    SetAside {
        /// The first key found taken.
        key: K,
        /// Who holds it.
        by: C,
    },
}

/// Every claimant's keys and standing.
#[derive(Debug)]
pub struct Claims<C, K> {
    keys_of: HashMap<C, Vec<K>>,
    claimants_of: HashMap<K, BTreeSet<C>>,
    standing: HashMap<C, Standing<K, C>>,
}

impl<C, K> Default for Claims<C, K> {
    fn default() -> Self {
        Claims {
            keys_of: HashMap::new(),
            claimants_of: HashMap::new(),
            standing: HashMap::new(),
        }
    }
}

impl<C, K> Claims<C, K>
where
    C: Ord + Hash + Clone,
    K: Hash + Eq + Clone,
{
    /// Sets what each claimant claims (`None`: it claims nothing any more and is
    /// forgotten), then decides again every claimant these changes may concern. Returns
    /// those claimants, in order; their standing may or may not have changed.
    pub fn update(&mut self, changes: impl IntoIterator<Item = (C, Option<Vec<K>>)>) -> Vec<C> {
        let mut touched_keys: Vec<K> = Vec::new();
        let mut touched: BTreeSet<C> = BTreeSet::new();
        for (claimant, keys) in changes {
            if let Some(old) = self.keys_of.remove(&claimant) {
                for key in &old {
                    if let Some(claimants) = self.claimants_of.get_mut(key) {
                        claimants.remove(&claimant);
                        if claimants.is_empty() {
                            self.claimants_of.remove(key);
                        }
                    }
                }
                touched_keys.extend(old);
            }
            self.standing.remove(&claimant);
            if let Some(keys) = keys {
                for key in &keys {
                    self.claimants_of
                        .entry(key.clone())
                        .or_default()
                        .insert(claimant.clone());
                }
                touched_keys.extend(keys.iter().cloned());
                self.keys_of.insert(claimant.clone(), keys);
                touched.insert(claimant);
            }
        }
        let linked = self.linked(touched, touched_keys);
        self.decide(&linked);
        linked
    }

    /// Where `claimant` stands; `None` when it claims nothing.
    pub fn standing(&self, claimant: &C) -> Option<&Standing<K, C>> {
        self.standing.get(claimant)
    }

    /// Every claimant that shares a key, directly or through others, with `claimants` or
    /// with `keys`, in order.
    fn linked(&self, claimants: BTreeSet<C>, keys: Vec<K>) -> Vec<C> {
        let mut found = claimants;
        let mut keys_seen: HashSet<K> = HashSet::new();
        let mut to_visit: Vec<K> = keys;
        for claimant in &found {
            to_visit.extend(self.keys_of.get(claimant).into_iter().flatten().cloned());
        }
        while let Some(key) = to_visit.pop() {
            if !keys_seen.insert(key.clone()) {
                continue;
            }
            for claimant in self.claimants_of.get(&key).into_iter().flatten() {
                if found.insert(claimant.clone()) {
                    to_visit.extend(self.keys_of.get(claimant).into_iter().flatten().cloned());
                }
            }
        }
        found.into_iter().collect()
    }

    /// Decides `claimants` (sorted, and closed under shared keys) in order.
    fn decide(&mut self, claimants: &[C]) {
        let mut held: HashMap<&K, &C> = HashMap::new();
        let mut decided = Vec::with_capacity(claimants.len());
        for claimant in claimants {
            let keys = self.keys_of.get(claimant).map_or(&[][..], Vec::as_slice);
            let taken = keys
                .iter()
                .find_map(|key| held.get(key).map(|by| (key, *by)));
            let standing = match taken {
                Some((key, by)) => Standing::SetAside {
                    key: key.clone(),
                    by: by.clone(),
                },
                None => {
                    for key in keys {
                        held.insert(key, claimant);
                    }
                    Standing::Holds
                }
            };
            decided.push((claimant.clone(), standing));
        }
        self.standing.extend(decided);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(all: &[(u32, &[&'static str])]) -> Claims<u32, &'static str> {
        let mut claims = Claims::default();
        claims.update(all.iter().map(|(c, keys)| (*c, Some(keys.to_vec()))));
        claims
    }

    fn aside(key: &'static str, by: u32) -> Option<&'static Standing<&'static str, u32>> {
        Some(Box::leak(Box::new(Standing::SetAside { key, by })))
    }

    #[test]
    fn the_first_claimant_holds_and_a_set_aside_one_claims_nothing() {
        let claims = claims(&[(1, &["a"]), (2, &["a", "b"]), (3, &["b"])]);
        assert_eq!(claims.standing(&1), Some(&Standing::Holds));
        assert_eq!(claims.standing(&2), aside("a", 1));
        // 2 is set aside, so 3 holds b.
        assert_eq!(claims.standing(&3), Some(&Standing::Holds));
        assert_eq!(claims.standing(&4), None);
    }

    #[test]
    fn order_not_arrival_decides() {
        let mut claims = claims(&[(2, &["a"])]);
        let decided = claims.update([(1, Some(vec!["a"]))]);
        assert_eq!(decided, [1, 2]);
        assert_eq!(claims.standing(&1), Some(&Standing::Holds));
        assert_eq!(claims.standing(&2), aside("a", 1));
    }

    #[test]
    fn a_withdrawn_or_changed_claim_frees_its_keys() {
        let mut claims = claims(&[(1, &["a"]), (2, &["a"]), (3, &["c"])]);
        assert_eq!(claims.update([(1, None)]), [2]);
        assert_eq!(claims.standing(&1), None);
        assert_eq!(claims.standing(&2), Some(&Standing::Holds));
        // 2 moves from a to c, which 3 held: 2 sorts first and takes it.
        assert_eq!(claims.update([(2, Some(vec!["c"]))]), [2, 3]);
        assert_eq!(claims.standing(&3), aside("c", 2));
        assert!(!claims.claimants_of.contains_key("a"));
    }

    #[test]
    fn a_change_decides_only_the_claimants_linked_to_it() {
        let mut claims = Claims::default();
        claims.update((0..1000).map(|c| (c, Some(vec![c]))));
        assert_eq!(claims.update([(5000, Some(vec![5000]))]), [5000]);
        assert_eq!(claims.update([(7, Some(vec![7, 8]))]), [7, 8]);
        assert_eq!(
            claims.standing(&8),
            Some(&Standing::SetAside { key: 8, by: 7 })
        );
    }
}
