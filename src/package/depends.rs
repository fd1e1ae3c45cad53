//! Which installed packages are searched for an image's vendor unit. Debian splits one
//! daemon across the binary packages of one source: `nginx.service` is in `nginx-common`,
//! `postgresql@.service` in `postgresql-common` (a dependency of `postgresql-15`, which
//! `postgresql` depends on). Pure: parses `dpkg-query --show` output of every package
//! (see [`GRAPH_FORMAT`]) into a dependency graph and walks it. Layer 1.
//!
//! The search has two tiers, and only the first that ships a service unit counts:
//!
//! 1. the image package and every installed package built from the same source package
//!    that the image depends on (`Depends`/`Pre-Depends`, at any depth, through any
//!    package): they are one piece of software;
//! 2. the image's other direct dependencies.
//!
//! Nothing else: a pod can only run a unit of a package its image names or pulls in.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// `dpkg-query --show --showformat` giving one package a line: status, name, source,
/// provides, pre-depends, depends (tab-separated).
pub(crate) const GRAPH_FORMAT: &str =
    "${db:Status-Status}\t${Package}\t${source:Package}\t${Provides}\t${Pre-Depends}\t${Depends}\n";

/// One installed package as the dependency walk needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Node {
    source: String,
    /// Each dependency as its alternatives (`a | b`), names only.
    depends: Vec<Vec<String>>,
}

/// The installed packages, their sources and dependencies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PackageGraph {
    nodes: BTreeMap<String, Node>,
    /// Virtual package name → installed packages providing it.
    providers: BTreeMap<String, BTreeSet<String>>,
}

impl PackageGraph {
    /// Parses [`GRAPH_FORMAT`] output; packages not in state `installed` are left out.
    pub(crate) fn parse(stdout: &str) -> Self {
        let mut graph = Self::default();
        for line in stdout.lines() {
            let mut fields = line.split('\t');
            let (Some("installed"), Some(name), Some(source)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let provides = fields.next().unwrap_or_default();
            let depends = fields
                .flat_map(relations)
                .filter(|alternatives| !alternatives.is_empty())
                .collect();
            for provided in relations(provides).into_iter().flatten() {
                graph
                    .providers
                    .entry(provided)
                    .or_default()
                    .insert(name.to_owned());
            }
            // dpkg prints an empty source when it equals the package name.
            let source = if source.is_empty() { name } else { source };
            graph.nodes.insert(
                name.to_owned(),
                Node {
                    source: source.to_owned(),
                    depends,
                },
            );
        }
        graph
    }

    /// The packages to search, tier by tier (see the module doc), each tier sorted and
    /// without duplicates; the image package is first in tier 1. An image the graph does
    /// not know is searched alone.
    pub(crate) fn search_tiers(&self, image: &str) -> [Vec<String>; 2] {
        let Some(node) = self.nodes.get(image) else {
            return [vec![image.to_owned()], Vec::new()];
        };
        let mut same_source = BTreeSet::new();
        let mut seen = BTreeSet::from([image.to_owned()]);
        let mut queue = VecDeque::from([image.to_owned()]);
        while let Some(name) = queue.pop_front() {
            for dep in self.direct(&name) {
                if seen.insert(dep.clone()) {
                    if self
                        .nodes
                        .get(&dep)
                        .is_some_and(|n| n.source == node.source)
                    {
                        same_source.insert(dep.clone());
                    }
                    queue.push_back(dep);
                }
            }
        }
        let mut first = vec![image.to_owned()];
        first.extend(same_source.iter().cloned());
        let other = self
            .direct(image)
            .into_iter()
            .filter(|d| d != image && !same_source.contains(d))
            .collect();
        [first, other]
    }

    /// The installed packages that satisfy `name`'s dependencies: every installed
    /// alternative, and the installed providers of virtual packages.
    fn direct(&self, name: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let Some(node) = self.nodes.get(name) else {
            return found;
        };
        for alternative in node.depends.iter().flatten() {
            if self.nodes.contains_key(alternative) {
                found.insert(alternative.clone());
            }
            if let Some(providers) = self.providers.get(alternative) {
                found.extend(providers.iter().cloned());
            }
        }
        found
    }
}

/// `a (>= 1), b:any | c` → `[[a], [b, c]]`: names without versions or architectures.
fn relations(field: &str) -> Vec<Vec<String>> {
    field
        .split(',')
        .map(|dep| {
            dep.split('|')
                .filter_map(|alt| {
                    let word = alt.split_whitespace().next()?;
                    let word = word.split('(').next().unwrap_or_default();
                    let name = word.split(':').next().unwrap_or_default();
                    (!name.is_empty()).then(|| name.to_owned())
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as `dpkg-query -W -f GRAPH_FORMAT` prints them on Debian 12 (trimmed).
    const DEBIAN: &str = "\
installed\tnginx\t\t\t\tlibc6 (>= 2.34), iproute2, nginx-common (<< 1.22.1-9+deb12u12.1~), nginx-common (>= 1.22.1-9+deb12u12)
installed\tnginx-common\tnginx\t\t\tdebconf (>= 0.5) | debconf-2.0
installed\tlibc6\tglibc\t\t\tlibgcc-s1
installed\tlibgcc-s1\tgcc-12\t\t\tgcc-12-base (= 12.2.0-14), libc6 (>= 2.35)
installed\tgcc-12-base\tgcc-12\t\t\t
installed\tiproute2\t\t\t\tlibc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0
installed\tdebconf\t\tdebconf-2.0\tperl-base (>= 5.20.1-3~)\t
installed\tpostgresql\tpostgresql-common\t\t\tpostgresql-15
installed\tpostgresql-15\t\tpostgresql-contrib-15, postgresql-server-dev\t\tlocales | locales-all, postgresql-client-15, postgresql-common (>= 241~), libc6 (>= 2.34)
installed\tpostgresql-client-15\tpostgresql-15\t\t\tlibpq5 (>= 15.18), postgresql-client-common (>= 182~)
installed\tpostgresql-common\t\t\tinit-system-helpers (>= 1.54~)\tadduser, postgresql-client-common (= 248+deb12u1), perl:any
installed\tpostgresql-client-common\tpostgresql-common\t\t\tnetbase, perl:any
installed\tlocales\tglibc\t\t\tlibc-bin (>> 2.36)
installed\tperl\t\t\t\tperl-base (= 5.36.0-7+deb12u1)
deinstall\tpostgresql-doc\tpostgresql-common\t\t\t
installed\tapache2\t\t\tinit-system-helpers (>= 1.54~)\tapache2-bin (= 2.4.71-1~deb12u1), apache2-data (= 2.4.71-1~deb12u1), perl:any, procps
installed\tapache2-bin\tapache2\t\t\tperl:any, libc6 (>= 2.36)
installed\tapache2-data\tapache2\t\t\t
installed\tprocps\t\t\t\tlibc6
";

    fn tiers(image: &str) -> [Vec<String>; 2] {
        PackageGraph::parse(DEBIAN).search_tiers(image)
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nginx_finds_nginx_common_first() {
        assert_eq!(
            tiers("nginx"),
            [
                names(&["nginx", "nginx-common"]),
                names(&["iproute2", "libc6"])
            ]
        );
    }

    #[test]
    fn postgresql_reaches_postgresql_common_through_postgresql_15() {
        // postgresql (source postgresql-common) depends only on postgresql-15 (its own
        // source); postgresql-common is a dependency of that one.
        let [first, other] = tiers("postgresql");
        assert_eq!(
            first,
            names(&[
                "postgresql",
                "postgresql-client-common",
                "postgresql-common"
            ])
        );
        assert_eq!(other, names(&["postgresql-15"]));
    }

    #[test]
    fn postgresql_15_falls_back_to_its_direct_dependencies() {
        let [first, other] = tiers("postgresql-15");
        assert_eq!(first, names(&["postgresql-15", "postgresql-client-15"]));
        assert_eq!(
            other,
            names(&["libc6", "locales", "postgresql-common"]),
            "direct dependencies only: postgresql-client-common is not one"
        );
    }

    #[test]
    fn apache2_with_its_bin_and_data() {
        assert_eq!(
            tiers("apache2")[0],
            names(&["apache2", "apache2-bin", "apache2-data"])
        );
    }

    #[test]
    fn virtual_packages_and_arch_qualifiers_resolve() {
        let graph = PackageGraph::parse(DEBIAN);
        assert!(graph.direct("nginx-common").contains("debconf"));
        assert!(
            graph
                .direct("postgresql-common")
                .contains("postgresql-client-common")
        );
        assert!(!graph.direct("postgresql-common").contains("perl:any"));
    }

    #[test]
    fn removed_packages_and_unknown_images() {
        let graph = PackageGraph::parse(DEBIAN);
        assert!(!graph.nodes.contains_key("postgresql-doc"));
        assert_eq!(
            graph.search_tiers("sl"),
            [names(&["sl"]), Vec::<String>::new()]
        );
    }

    #[test]
    fn relations_drop_versions_and_architectures() {
        assert_eq!(
            relations("a (>= 1), b:any | c:amd64 (= 2),, d"),
            vec![
                names(&["a"]),
                names(&["b", "c"]),
                Vec::<String>::new(),
                names(&["d"])
            ]
        );
    }
}
