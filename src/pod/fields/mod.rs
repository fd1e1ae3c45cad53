//! The table of pod fields: every field of `PodSpec`, `Container` (app, init and
//! ephemeral), `VolumeMount`, `Volume` and both security contexts, each honoured, refused
//! (the pod is rejected at admission) or ignored with a warning (the pod runs, and one
//! `Warning` event names the field and what systemk does instead). The walkers
//! destructure each struct without `..`, and every binding is used: a field a new
//! k8s-openapi adds does not compile until it is classified here. Refusals that the unit
//! layer already makes from the spec alone (`securityContext`, volume kinds, mount
//! options) are not repeated here: [`review`] runs those checks, so admission refuses
//! what building the unit would. README "Pod fields" is this table in words.
//! Pure. Layer 4.

mod container;
mod spec;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};

use super::probe;
use crate::unit;

/// The reason of a pod refused at admission for a field systemk cannot honour.
pub const UNSUPPORTED_POD_SPEC: &str = "UnsupportedPodSpec";
/// The reason of the one Warning event naming the fields systemk ignores.
pub const UNSUPPORTED_FIELD: &str = "UnsupportedField";

/// A field systemk does not honour as the kubelet would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Where it is, as the kubelet names fields: `spec.containers{web}.livenessProbe`.
    pub field: String,
    /// Why it is refused, or what systemk does instead.
    pub why: String,
}

/// What a pod asks that systemk does not honour as the kubelet would.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Review {
    /// Fields the pod cannot run with: it is rejected.
    pub refused: Vec<Finding>,
    /// Fields systemk ignores: the pod runs, and is told once.
    pub ignored: Vec<Finding>,
}

impl Review {
    /// The rejection message, when a field is refused.
    pub fn refusal(&self) -> Option<String> {
        (!self.refused.is_empty())
            .then(|| format!("systemk cannot honour {}", listed(&self.refused)))
    }

    /// The Warning event's message, when a field is ignored.
    pub fn warning(&self) -> Option<String> {
        (!self.ignored.is_empty()).then(|| format!("systemk ignores {}", listed(&self.ignored)))
    }
}

/// The findings on one line: names from a manifest could hold a line break, which would
/// forge a line of the log, of `systemk pods` or of a rendered comment.
fn listed(findings: &[Finding]) -> String {
    let text = findings
        .iter()
        .map(|f| format!("{} ({})", f.field, f.why))
        .collect::<Vec<_>>()
        .join("; ");
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Classifies every set field of `pod`.
pub fn review(pod: &Pod) -> Review {
    let mut walk = Walk::new("spec");
    if let Some(spec) = &pod.spec {
        spec::pod_spec(spec, &mut walk);
        unit_checks(pod, spec, &mut walk.review);
    }
    walk.review
}

/// The unit layer's refusals that depend on the spec alone, run before anything is
/// installed.
fn unit_checks(pod: &Pod, spec: &PodSpec, review: &mut Review) {
    let mut refuse = |field: String, why: String| {
        review.refused.push(Finding { field, why });
    };
    for volume in spec.volumes.iter().flatten() {
        if let Err(err) = unit::check_volume(volume) {
            refuse(format!("spec.volumes{{{}}}", volume.name), err.to_string());
        }
    }
    let lists: [(&str, &[Container]); 2] = [
        (
            "initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
        ),
        ("containers", &spec.containers),
    ];
    for (list, containers) in lists {
        for container in containers {
            let at = format!("spec.{list}{{{}}}", container.name);
            if let Err(err) = unit::check_spec_confinement(pod, container) {
                refuse(format!("{at}.securityContext"), err.to_string());
            }
            for mount in container.volume_mounts.iter().flatten() {
                if let Err(err) = unit::check_mount(mount) {
                    refuse(
                        format!("{at}.volumeMounts{{{}}}", mount.name),
                        err.to_string(),
                    );
                }
            }
            if let Err((kind, invalid)) = probe::container_plans(container) {
                refuse(
                    format!("{at}.{}.{}", kind.field(), invalid.field),
                    invalid.reason,
                );
            }
        }
    }
}

/// Field names each struct has, as the walkers know them: what README's table must name.
#[cfg(test)]
pub(crate) fn catalog() -> Vec<(&'static str, Vec<&'static str>)> {
    use k8s_openapi::api::core::v1::{
        EphemeralContainer, PodSecurityContext, SecurityContext, Volume, VolumeMount,
    };
    let names = |run: &dyn Fn(&mut Walk)| {
        let mut walk = Walk::new("spec");
        run(&mut walk);
        walk.names
    };
    vec![
        (
            "PodSpec",
            names(&|w| spec::pod_spec(&PodSpec::default(), w)),
        ),
        (
            "Container",
            names(&|w| container::container(&Container::default(), false, w)),
        ),
        (
            "EphemeralContainer",
            names(&|w| container::ephemeral(&EphemeralContainer::default(), w)),
        ),
        (
            "VolumeMount",
            names(&|w| container::volume_mount(&VolumeMount::default(), w)),
        ),
        ("Volume", names(&|w| spec::volume(&Volume::default(), w))),
        (
            "PodSecurityContext",
            names(&|w| spec::pod_security_context(&PodSecurityContext::default(), w)),
        ),
        (
            "SecurityContext",
            names(&|w| container::security_context(&SecurityContext::default(), w)),
        ),
    ]
}

/// A walk over one struct: where it is and what was found.
struct Walk {
    at: String,
    review: Review,
    /// Every field name met, set or not.
    names: Vec<&'static str>,
}

impl Walk {
    fn new(at: &str) -> Self {
        Self {
            at: at.to_owned(),
            review: Review::default(),
            names: Vec::new(),
        }
    }

    /// A field systemk honours.
    fn honoured<T>(&mut self, name: &'static str, _value: &T) {
        self.names.push(name);
    }

    /// A field honoured or refused by the unit layer's check that [`review`] runs
    /// (`check_volume`, `check_mount`, `check_spec_confinement`).
    fn by_unit<T>(&mut self, name: &'static str, _value: &T) {
        self.names.push(name);
    }

    /// A field of a container systemk does not run: an ephemeral container, which the pod's
    /// warning names as a whole.
    fn not_run(&mut self, name: &'static str) {
        self.names.push(name);
    }

    /// A field systemk ignores when `set`; `instead` says what it does.
    fn ignored(&mut self, name: &'static str, set: bool, instead: &str) {
        self.names.push(name);
        if set {
            self.review.ignored.push(self.finding(name, instead));
        }
    }

    /// A field the pod cannot run with when `set`.
    fn refused(&mut self, name: &'static str, set: bool, why: &str) {
        self.names.push(name);
        if set {
            self.review.refused.push(self.finding(name, why));
        }
    }

    fn finding(&self, name: &str, why: &str) -> Finding {
        Finding {
            field: format!("{}.{name}", self.at),
            why: why.to_owned(),
        }
    }

    /// Walks a nested struct at `at` below this one, keeping what it finds.
    fn nested(&mut self, at: String, run: impl FnOnce(&mut Walk)) {
        let mut inner = Walk::new(&at);
        run(&mut inner);
        self.review.refused.append(&mut inner.review.refused);
        self.review.ignored.append(&mut inner.review.ignored);
    }
}

/// Whether an optional list has entries.
fn has<T>(list: &Option<Vec<T>>) -> bool {
    list.as_ref().is_some_and(|l| !l.is_empty())
}

#[cfg(test)]
mod tests;
