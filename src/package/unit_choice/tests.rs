//! The choice rules over candidates with their packages, and the attacks on the
//! annotation: names outside the searched packages, instances that leave their paths.

use super::*;

fn unit(package: &str, name: &str) -> VendorUnit {
    VendorUnit {
        package: package.into(),
        path: PathBuf::from("/lib/systemd/system").join(name),
        only_runs_true: false,
        instances: vec![],
    }
}

fn umbrella(package: &str, name: &str) -> VendorUnit {
    VendorUnit {
        only_runs_true: true,
        ..unit(package, name)
    }
}

fn installed(package: &str, units: Vec<VendorUnit>) -> Installed {
    Installed {
        package: Some(package.into()),
        version: Some("1".into()),
        image_id: format!("{package}=1"),
        newly_installed: false,
        service_units: units,
        added_units: Vec::new(),
        writable_dirs: vec![],
    }
}

fn chosen(i: &Installed, wanted: Option<&str>) -> (String, String, PathBuf) {
    let s = select_vendor_unit(i, wanted).unwrap().unwrap();
    (s.name, s.package, s.path)
}

/// Debian 12's postgresql: the service units of postgresql-common 248 (the umbrella, the
/// cluster template and, trimmed, the templates of its backup helpers).
fn postgresql() -> Installed {
    let mut template = unit("postgresql-common", "postgresql@.service");
    template.instances = vec!["postgresql@15-main.service".into()];
    installed(
        "postgresql",
        vec![
            unit("postgresql-common", "pg_basebackup@.service"),
            unit("postgresql-common", "pg_dump@.service"),
            umbrella("postgresql-common", "postgresql.service"),
            template,
        ],
    )
}

#[test]
fn package_named_unit_preferred_from_a_sibling_package() {
    let i = installed(
        "nginx",
        vec![
            unit("nginx-common", "nginx.service"),
            unit("nginx", "other.service"),
        ],
    );
    assert_eq!(
        chosen(&i, None),
        (
            "nginx.service".into(),
            "nginx-common".into(),
            "/lib/systemd/system/nginx.service".into()
        )
    );
}

#[test]
fn apache2_picks_apache2_service_over_its_helpers() {
    let i = installed(
        "apache2",
        vec![
            unit("apache2", "apache-htcacheclean.service"),
            unit("apache2", "apache-htcacheclean@.service"),
            unit("apache2", "apache2.service"),
            unit("apache2", "apache2@.service"),
        ],
    );
    assert_eq!(chosen(&i, None).0, "apache2.service");
}

#[test]
fn only_unit_chosen_whatever_its_name() {
    let i = installed(
        "openssh-server",
        vec![unit("openssh-server", "ssh.service")],
    );
    assert_eq!(chosen(&i, None).0, "ssh.service");
}

#[test]
fn no_units_is_none() {
    assert_eq!(
        select_vendor_unit(&installed("sl", vec![]), None).unwrap(),
        None
    );
}

#[test]
fn several_units_without_choice_list_their_packages() {
    let i = installed(
        "pkg",
        vec![unit("pkg", "a.service"), unit("pkg-common", "b.service")],
    );
    let err = select_vendor_unit(&i, None).unwrap_err();
    assert!(
        matches!(&err, Error::AmbiguousVendorUnit { candidates, .. }
            if candidates == &["a.service (pkg)", "b.service (pkg-common)"]),
        "{err}"
    );
}

#[test]
fn umbrella_units_are_not_the_daemon_when_a_real_one_exists() {
    let i = installed(
        "foo",
        vec![
            umbrella("foo", "foo.service"),
            unit("foo", "foo-worker.service"),
        ],
    );
    assert_eq!(chosen(&i, None).0, "foo-worker.service");
    // Alone, an umbrella unit is still the package's unit.
    let alone = installed("bar", vec![umbrella("bar", "bar.service")]);
    assert_eq!(chosen(&alone, None).0, "bar.service");
    // Named in the annotation, it is taken: the pod asked.
    assert_eq!(chosen(&i, Some("foo.service")).0, "foo.service");
}

#[test]
fn template_alone_needs_an_instance_and_lists_the_clusters() {
    let err = select_vendor_unit(&postgresql(), None).unwrap_err();
    assert!(
        matches!(&err, Error::TemplateNeedsInstance { template, package, instances, .. }
            if template == "postgresql@.service" && package == "postgresql-common"
            && instances == &["postgresql@15-main.service"]),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("postgresql@15-main.service"), "{text}");
    assert!(
        text.contains("systemk.io/vendor-unit.<container>"),
        "{text}"
    );
    // Naming the template itself is the same error.
    let err = select_vendor_unit(&postgresql(), Some("postgresql@.service")).unwrap_err();
    assert!(matches!(err, Error::TemplateNeedsInstance { .. }), "{err}");
}

#[test]
fn a_lone_template_needs_an_instance_too() {
    let i = installed("foo", vec![unit("foo-common", "bar@.service")]);
    let err = select_vendor_unit(&i, None).unwrap_err();
    assert!(
        err.to_string().contains("shows no existing instance"),
        "{err}"
    );
    // Templates other than `<package>@.service` among several stay ambiguous.
    let i = installed(
        "foo",
        vec![unit("foo", "a@.service"), unit("foo", "b@.service")],
    );
    let err = select_vendor_unit(&i, None).unwrap_err();
    assert!(matches!(err, Error::AmbiguousVendorUnit { .. }), "{err}");
}

#[test]
fn an_instance_of_a_shipped_template_is_chosen() {
    assert_eq!(
        chosen(&postgresql(), Some("postgresql@15-main.service")),
        (
            "postgresql@15-main.service".into(),
            "postgresql-common".into(),
            "/lib/systemd/system/postgresql@.service".into()
        )
    );
    // An instance that does not exist yet is the pod's business (pg_ctlcluster fails).
    assert_eq!(
        chosen(&postgresql(), Some("postgresql@16-other.service")).0,
        "postgresql@16-other.service"
    );
}

#[test]
fn wanted_unit_missing_is_an_error_listing_candidates_with_packages() {
    let err = select_vendor_unit(&postgresql(), Some("b.service")).unwrap_err();
    assert!(
        matches!(&err, Error::NoSuchVendorUnit { candidates, .. }
            if candidates == &["pg_basebackup@.service (postgresql-common)",
                               "pg_dump@.service (postgresql-common)",
                               "postgresql.service (postgresql-common)",
                               "postgresql@.service (postgresql-common)"]),
        "{err}"
    );
}

/// Attack: a pod names a unit the host has but the searched packages do not ship
/// (the host's own daemons, systemk itself, another template).
#[test]
fn attack_units_outside_the_searched_packages_are_refused() {
    for outside in [
        "ssh.service",
        "systemk.service",
        "getty@tty1.service",
        "systemd-journald.service",
        "postgresql@15-main.socket",
    ] {
        let err = select_vendor_unit(&postgresql(), Some(outside)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NoSuchVendorUnit { .. } | Error::InvalidVendorUnitName { .. }
            ),
            "{outside}: {err}"
        );
    }
}

/// Attack: instances that would leave the template's paths through `%i`/`%I`, or that are
/// no unit names at all.
#[test]
fn attack_instances_that_escape_are_refused() {
    for bad in [
        "postgresql@../../etc.service",
        "postgresql@..-..-etc.service",
        "postgresql@15-...service",
        "postgresql@15/main.service",
        "postgresql@-etc-shadow.service",
        "postgresql@15-main-.service",
        "postgresql@15--main.service",
        "postgresql@.-x.service",
        "postgresql@15-main@x.service",
        "postgresql@15\\x2dmain.service",
        "postgresql@15-%I.service",
        "postgresql@15 main.service",
        "postgresql@15-main.service\nExecStart=/bin/sh",
        "postgresql@$HOME.service",
        "postgresql@15-main",
        "@15-main.service",
        "-x.service",
        "",
        &format!("postgresql@{}.service", "a".repeat(250)),
    ] {
        let err = select_vendor_unit(&postgresql(), Some(bad)).unwrap_err();
        assert!(
            matches!(err, Error::InvalidVendorUnitName { .. }),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn instances_with_dots_and_colons_inside_parts_pass() {
    for good in ["15-main", "9.6-main", "a:b", "x_y.z", "main"] {
        assert_eq!(check_instance(good), Ok(()), "{good}");
    }
}
