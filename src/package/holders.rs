//! Which holder (a container of a pod, to the layers above; opaque here) uses which
//! version of which package, so one host never has a package's version changed under a
//! holder that needs another: the first holder of a pinned version keeps it, a later one
//! pinning another version is refused, naming the holder. Pure data, no I/O. Layer 1.
//!
//! The rules, for a request by one holder for a package that others hold:
//! - another holder pinned version V: a pin of another version is refused; an unpinned
//!   request takes V (no upgrade, whatever its pull policy);
//! - others hold it unpinned (at the version they were prepared with): a pin of another
//!   version goes ahead only if it is newer (the caller compares, with dpkg); a downgrade
//!   under them is refused. An unpinned `Always` upgrade goes ahead: the others keep the
//!   process they started and run the new version when they restart.

use std::collections::BTreeMap;

/// Who holds a package: `key` identifies the holder (stable across renames, e.g. a pod
/// UID and a container name), `name` is what an error shows (e.g. `namespace/name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The pod the holder belongs to; all its holds go at once with [`Holders::release`].
    pub owner: String,
    /// The holder within its owner (a container name).
    pub slot: String,
    /// How errors name the holder's owner.
    pub name: String,
}

/// One holder's use of a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hold {
    pub package: String,
    pub version: String,
    /// The holder asked for exactly this version.
    pub pinned: bool,
    /// How errors name the holder.
    pub name: String,
}

/// What a request may do, given the other holders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing held stands in the way.
    Free,
    /// Another holder pinned this version: an unpinned request uses it as it is.
    UseHeld { version: String },
    /// Another holder pinned another version: refused.
    Conflict { holder: String, version: String },
    /// Holders without a pin run `version`; a pin of another version may only upgrade.
    OnlyUpgrade { holder: String, version: String },
}

/// The holds of every holder, by (owner, slot).
#[derive(Debug, Default)]
pub(crate) struct Holders {
    holds: BTreeMap<(String, String), Hold>,
}

impl Holders {
    /// What `holder` may do with `package` at `pin` (`None`: any version).
    pub(crate) fn check(&self, holder: &Holder, package: &str, pin: Option<&str>) -> Verdict {
        let others: Vec<&Hold> = self
            .holds
            .iter()
            .filter(|((owner, slot), hold)| {
                hold.package == package && (*owner != holder.owner || *slot != holder.slot)
            })
            .map(|(_, hold)| hold)
            .collect();
        if let Some(held) = others.iter().find(|hold| hold.pinned) {
            return match pin {
                Some(pin) if pin != held.version => Verdict::Conflict {
                    holder: held.name.clone(),
                    version: held.version.clone(),
                },
                _ => Verdict::UseHeld {
                    version: held.version.clone(),
                },
            };
        }
        match (
            pin,
            others
                .iter()
                .find(|hold| Some(hold.version.as_str()) != pin),
        ) {
            (Some(_), Some(other)) => Verdict::OnlyUpgrade {
                holder: other.name.clone(),
                version: other.version.clone(),
            },
            _ => Verdict::Free,
        }
    }

    /// Records that `holder` uses `package` at `version`, replacing what it held before.
    pub(crate) fn claim(&mut self, holder: &Holder, package: &str, version: &str, pinned: bool) {
        self.holds.insert(
            (holder.owner.clone(), holder.slot.clone()),
            Hold {
                package: package.to_owned(),
                version: version.to_owned(),
                pinned,
                name: holder.name.clone(),
            },
        );
    }

    /// Every package some holder uses.
    pub(crate) fn packages(&self) -> std::collections::BTreeSet<String> {
        self.holds
            .values()
            .map(|hold| hold.package.clone())
            .collect()
    }

    /// Forgets every hold of `owner`.
    pub(crate) fn release(&mut self, owner: &str) {
        self.holds.retain(|(held_by, _), _| held_by != owner);
    }

    /// Forgets the holds of `owner`'s holders not in `slots` (containers that left it).
    pub(crate) fn retain_slots(&mut self, owner: &str, slots: &[&str]) {
        self.holds
            .retain(|(held_by, slot), _| held_by != owner || slots.contains(&slot.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(owner: &str, slot: &str) -> Holder {
        Holder {
            owner: owner.into(),
            slot: slot.into(),
            name: format!("ns/{owner}"),
        }
    }

    #[test]
    fn nothing_held_is_free() {
        let holders = Holders::default();
        assert_eq!(
            holders.check(&holder("a", "c"), "p", Some("1")),
            Verdict::Free
        );
    }

    #[test]
    fn a_pin_of_another_version_is_refused_naming_the_holder() {
        let mut holders = Holders::default();
        holders.claim(&holder("a", "c"), "p", "1", true);
        assert_eq!(
            holders.check(&holder("b", "c"), "p", Some("2")),
            Verdict::Conflict {
                holder: "ns/a".into(),
                version: "1".into()
            }
        );
        assert_eq!(
            holders.check(&holder("b", "c"), "p", Some("1")),
            Verdict::UseHeld {
                version: "1".into()
            }
        );
        // Other packages are not affected.
        assert_eq!(
            holders.check(&holder("b", "c"), "q", Some("2")),
            Verdict::Free
        );
    }

    #[test]
    fn unpinned_request_takes_the_held_pin() {
        let mut holders = Holders::default();
        holders.claim(&holder("a", "c"), "p", "1", true);
        assert_eq!(
            holders.check(&holder("b", "c"), "p", None),
            Verdict::UseHeld {
                version: "1".into()
            }
        );
    }

    #[test]
    fn a_holder_may_change_its_own_pin() {
        let mut holders = Holders::default();
        holders.claim(&holder("a", "c"), "p", "1", true);
        assert_eq!(
            holders.check(&holder("a", "c"), "p", Some("2")),
            Verdict::Free
        );
        holders.claim(&holder("a", "c"), "p", "2", true);
        holders.claim(&holder("a", "d"), "q", "9", true);
        holders.retain_slots("a", &["c"]);
        assert_eq!(
            holders.check(&holder("b", "c"), "q", Some("8")),
            Verdict::Free
        );
        assert_eq!(holders.packages().into_iter().collect::<Vec<_>>(), ["p"]);
        holders.release("a");
        assert!(holders.packages().is_empty());
        assert_eq!(
            holders.check(&holder("b", "c"), "p", Some("1")),
            Verdict::Free
        );
    }

    #[test]
    fn unpinned_holders_allow_only_upgrades_by_pins() {
        let mut holders = Holders::default();
        holders.claim(&holder("a", "c"), "p", "1", false);
        assert_eq!(
            holders.check(&holder("b", "c"), "p", Some("2")),
            Verdict::OnlyUpgrade {
                holder: "ns/a".into(),
                version: "1".into()
            }
        );
        assert_eq!(
            holders.check(&holder("b", "c"), "p", Some("1")),
            Verdict::Free
        );
        assert_eq!(holders.check(&holder("b", "c"), "p", None), Verdict::Free);
    }
}
