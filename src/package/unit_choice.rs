//! The choice of the one vendor unit a container runs, among the service units of the
//! searched packages (see `depends.rs`), and the checks on the pod's annotation that
//! names one. Pure. Layer 1.
//!
//! Rules: the annotation's unit (a unit or an instance `name@inst.service` of a template
//! the packages ship) when set. Else the units are looked at in three groups, the first
//! that is not empty decides: daemons (not templates), then templates, then units that
//! only run `true` (umbrella `Type=oneshot` units such as `postgresql.service`, taken
//! only when nothing else is shipped). In the group, `<image package>.service` wins, else
//! `<image package>@.service`, else the only unit; several are ambiguous. A template is
//! no choice by itself: the pod must name an instance, and the error lists those that
//! exist.
//!
//! The annotation value becomes a unit name and, through `%i`/`%I`, part of paths in the
//! unit, so it is checked against systemd's unit-name rules and more: no `\` escapes,
//! and no instance whose unescaped form (`-` → `/`) has an empty, `.` or `..` part.

use std::path::PathBuf;

use super::error::{Error, Result};
use super::manager::{Installed, VendorUnit};

/// Pod annotation naming the vendor unit of one container when its package ships several:
/// key `systemk.io/vendor-unit.<container-name>`, value a unit file name, e.g. `ssh.service`,
/// or an instance of a template unit, e.g. `postgresql@15-main.service`.
pub const VENDOR_UNIT_ANNOTATION_PREFIX: &str = "systemk.io/vendor-unit.";

/// systemd's limit on unit names (`UNIT_NAME_MAX`).
const UNIT_NAME_MAX: usize = 255;

const SERVICE_SUFFIX: &str = ".service";

/// The unit a container runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedUnit {
    /// The file to read (the template's, for an instance).
    pub path: PathBuf,
    /// The unit's name as systemd would know it: `nginx.service`, or the instance
    /// `postgresql@15-main.service`. Its specifiers (`%n`, `%i`, …) take their values
    /// from this name.
    pub name: String,
    /// The package that ships the file.
    pub package: String,
}

/// A validated annotation value, split.
#[derive(Debug, PartialEq, Eq)]
struct Wanted<'a> {
    /// `postgresql@.service` for an instance or the template, else the name itself.
    file: String,
    /// The instance; `Some("")` when the template itself was named.
    instance: Option<&'a str>,
}

/// The vendor unit a container runs. `wanted` (from the annotation
/// [`VENDOR_UNIT_ANNOTATION_PREFIX`]`<container>`) must be one of the searched packages'
/// units or an instance of one of their templates; without it see the module doc.
/// No unit at all is `Ok(None)`.
pub fn select_vendor_unit(
    installed: &Installed,
    wanted: Option<&str>,
) -> Result<Option<SelectedUnit>> {
    let package = installed.package.as_deref().unwrap_or_default();
    let units = &installed.service_units;
    let selected = |unit: &VendorUnit, name: String| SelectedUnit {
        path: unit.path.clone(),
        name,
        package: unit.package.clone(),
    };
    let find = |file: &str| units.iter().find(|u| u.name() == file);
    if let Some(wanted) = wanted {
        let parsed = parse_wanted(wanted)?;
        let unit = find(&parsed.file).ok_or_else(|| Error::NoSuchVendorUnit {
            package: package.to_owned(),
            wanted: wanted.to_owned(),
            candidates: units.iter().map(described).collect(),
        })?;
        return match parsed.instance {
            Some("") => Err(needs_instance(unit)),
            _ => Ok(Some(selected(unit, wanted.to_owned()))),
        };
    }
    // Daemons first, then templates (which need an instance), and umbrella units only
    // when nothing else is shipped: they stand for the daemons and run none.
    let kinds: [fn(&VendorUnit) -> bool; 3] = [
        |u| !u.only_runs_true && !u.is_template(),
        |u| !u.only_runs_true && u.is_template(),
        |u| u.only_runs_true,
    ];
    let own = format!("{package}{SERVICE_SUFFIX}");
    // `postgresql@.service` beside the umbrella `postgresql.service`: the daemon is an
    // instance of the package-named template, whatever other templates ship with it.
    let own_template = format!("{package}@{SERVICE_SUFFIX}");
    for kind in kinds {
        let pool: Vec<&VendorUnit> = units.iter().filter(|u| kind(u)).collect();
        if let Some(unit) = pool.iter().find(|u| u.name() == own) {
            return Ok(Some(selected(unit, unit.name())));
        }
        if let Some(template) = pool.iter().find(|u| u.name() == own_template) {
            return Err(needs_instance(template));
        }
        match pool.as_slice() {
            [] => continue,
            [only] if only.is_template() => return Err(needs_instance(only)),
            [only] => return Ok(Some(selected(only, only.name()))),
            _ => {
                return Err(Error::AmbiguousVendorUnit {
                    package: package.to_owned(),
                    candidates: pool.iter().map(|u| described(u)).collect(),
                    annotation: VENDOR_UNIT_ANNOTATION_PREFIX,
                });
            }
        }
    }
    Ok(None)
}

/// `name (package)`, as errors list a unit.
fn described(unit: &VendorUnit) -> String {
    format!("{} ({})", unit.name(), unit.package)
}

fn needs_instance(template: &VendorUnit) -> Error {
    Error::TemplateNeedsInstance {
        template: template.name(),
        package: template.package.clone(),
        annotation: VENDOR_UNIT_ANNOTATION_PREFIX,
        instances: template.instances.clone(),
    }
}

/// Checks an annotation value and splits off a template instance.
fn parse_wanted(wanted: &str) -> Result<Wanted<'_>> {
    let invalid = |why: &'static str| Error::InvalidVendorUnitName {
        wanted: wanted.to_owned(),
        why,
    };
    if wanted.len() > UNIT_NAME_MAX {
        return Err(invalid("it is longer than 255 characters"));
    }
    let stem = wanted
        .strip_suffix(SERVICE_SUFFIX)
        .ok_or_else(|| invalid("it must end in .service"))?;
    if !stem.bytes().all(is_plain_unit_byte) {
        return Err(invalid("only A-Z a-z 0-9 : _ . - @ are allowed"));
    }
    let (prefix, instance) = match stem.split_once('@') {
        Some((prefix, instance)) => (prefix, Some(instance)),
        None => (stem, None),
    };
    if prefix.is_empty() || prefix.starts_with(['.', '-']) {
        return Err(invalid("it must start with a letter, digit, ':' or '_'"));
    }
    if let Some(instance) = instance
        && !instance.is_empty()
    {
        check_instance(instance).map_err(invalid)?;
    }
    Ok(Wanted {
        file: match instance {
            Some(_) => format!("{prefix}@{SERVICE_SUFFIX}"),
            None => wanted.to_owned(),
        },
        instance,
    })
}

/// An instance must give `%i` and `%I` values that stay inside the paths a template puts
/// them in: `%I` turns `-` into `/`, so no part between `-` may be empty, `.` or `..`,
/// and `..` is refused anywhere. Returns why not.
pub(crate) fn check_instance(instance: &str) -> std::result::Result<(), &'static str> {
    if !instance.bytes().all(is_plain_unit_byte) || instance.contains('@') {
        return Err("an instance may only hold A-Z a-z 0-9 : _ . -");
    }
    if instance.contains("..") {
        return Err("an instance must not contain '..'");
    }
    if instance
        .split('-')
        .any(|part| part.is_empty() || part == ".")
    {
        return Err(
            "an instance must not have an empty or '.' part between '-' (%I makes them path components)",
        );
    }
    Ok(())
}

/// systemd's unit-name bytes without `\`: systemk takes no escaped names from pods.
fn is_plain_unit_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.' | b'-' | b'@')
}

#[cfg(test)]
#[path = "unit_choice/tests.rs"]
mod tests;
