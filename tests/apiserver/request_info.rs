//! What an authorizer sees of a request: kube-apiserver's `RequestInfoFactory.NewRequestInfo`
//! (`staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`) turned into RBAC
//! request attributes. Pure; used to record what authenticated users do (`audit`), which
//! `rbac` and `node_authorizer` then judge.
//!
//! The real rules, step by step:
//! - only `/api/<version>/…` (groupless) and `/apis/<group>/<version>/…` are resource
//!   requests; anything shorter, or any other prefix, is a non-resource request (`None` here);
//! - a leading `watch` or `proxy` segment is the verb (`/api/v1/watch/pods`);
//! - otherwise POST → create, GET/HEAD → get, PUT → update, PATCH → patch, DELETE → delete;
//! - `namespaces/<ns>/<resource>/…` gives the namespace, unless the segment after the
//!   namespace is one of its own subresources (`status`, `finalize`);
//! - the parts are `resource/name/subresource` (`proxy` takes no subresource);
//! - a GET without a name is `watch` when the `watch` parameter is set to anything but
//!   `false`/`0`, else `list`; then a `fieldSelector` requiring `metadata.name=<x>` makes
//!   `<x>` the name (a valid path segment only), which is what lets the Node authorizer
//!   allow a watch of one Secret;
//! - a DELETE without a name is `deletecollection`;
//! - for list, watch and deletecollection the raw `fieldSelector` is kept for
//!   authorizers that read it (the Node authorizer's `spec.nodeName=<node>` for pods).
//!
//! A named GET with `?watch=true` stays `get`: only the collection form becomes `watch`.

/// RBAC request attributes of one resource request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Attributes {
    /// The user's name.
    pub user: String,
    /// The user's groups.
    pub groups: Vec<String>,
    /// The Kubernetes verb (`get`, `list`, `watch`, `create`, …).
    pub verb: String,
    /// API group, "" for core.
    pub api_group: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource, "" for none.
    pub subresource: String,
    /// Namespace, "" for cluster-scoped requests and all-namespace lists.
    pub namespace: String,
    /// Object name, "" for none.
    pub name: String,
    /// The raw `fieldSelector` of list/watch/deletecollection, "" for none.
    pub field_selector: String,
}

impl Attributes {
    /// `resource/subresource`, as RBAC rules name it.
    pub fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }

    /// The value a `fieldSelector` term requires `field` to equal (`=` or `==`), if any.
    pub fn field_requires(&self, field: &str) -> Option<&str> {
        required(&self.field_selector, field)
    }
}

impl std::fmt::Display for Attributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {}/{}",
            self.user,
            self.verb,
            if self.api_group.is_empty() {
                "core"
            } else {
                &self.api_group
            },
            self.combined_resource()
        )?;
        if !self.namespace.is_empty() {
            write!(f, " in {}", self.namespace)?;
        }
        if !self.name.is_empty() {
            write!(f, " named {}", self.name)?;
        }
        if !self.field_selector.is_empty() {
            write!(f, " (fieldSelector {})", self.field_selector)?;
        }
        Ok(())
    }
}

/// Verbs whose field selector is kept (`verbsWithSelectors`).
const VERBS_WITH_SELECTORS: [&str; 3] = ["list", "watch", "deletecollection"];

/// The resource attributes of `method` on `path?query`, without the user; `None` for a
/// non-resource request.
pub fn resolve(method: &str, path: &str, query: Option<&str>) -> Option<Attributes> {
    let mut parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    if parts.len() < 3 {
        return None;
    }
    let mut info = Attributes::default();
    match parts[0] {
        "api" => parts.remove(0),
        "apis" if parts.len() >= 4 => {
            info.api_group = parts[1].to_owned();
            parts.drain(..2);
            ""
        }
        _ => return None,
    };
    // The version.
    parts.remove(0);
    if matches!(parts[0], "watch" | "proxy") {
        if parts.len() < 2 {
            return None;
        }
        info.verb = parts.remove(0).to_owned();
    } else {
        info.verb = match method {
            "POST" => "create",
            "GET" | "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "",
        }
        .to_owned();
    }
    if parts[0] == "namespaces" && parts.len() > 1 {
        info.namespace = parts[1].to_owned();
        if parts.len() > 2 && !matches!(parts[2], "status" | "finalize") {
            parts.drain(..2);
        }
    }
    if parts.len() >= 3 && info.verb != "proxy" {
        info.subresource = parts[2].to_owned();
    }
    if parts.len() >= 2 {
        info.name = parts[1].to_owned();
    }
    info.resource = parts[0].to_owned();
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let param = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    if info.name.is_empty() && info.verb == "get" {
        info.verb = match param("watch").map(str::to_lowercase).as_deref() {
            None | Some("false" | "0") => "list",
            Some(_) => "watch",
        }
        .to_owned();
        if let Some(name) = param("fieldSelector").and_then(|s| required(s, "metadata.name"))
            && valid_path_segment(name)
        {
            info.name = name.to_owned();
        }
    }
    if info.name.is_empty() && info.verb == "delete" {
        info.verb = "deletecollection".to_owned();
    }
    if VERBS_WITH_SELECTORS.contains(&info.verb.as_str()) {
        info.field_selector = param("fieldSelector").unwrap_or("").to_owned();
    }
    Some(info)
}

/// `fields.Selector.RequiresExactMatch`: the value of a `field=value` or `field==value` term.
fn required<'a>(selector: &'a str, field: &str) -> Option<&'a str> {
    selector.split(',').find_map(|term| {
        let (key, value) = term.split_once('=')?;
        (key.trim() == field && !key.ends_with('!'))
            .then(|| value.strip_prefix('=').unwrap_or(value).trim())
    })
}

/// `path.IsValidPathSegmentName`: not `.` or `..`, no `/` or `%`.
fn valid_path_segment(name: &str) -> bool {
    !matches!(name, "." | "..") && !name.contains(['/', '%'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brief(method: &str, path: &str, query: Option<&str>) -> Option<String> {
        resolve(method, path, query).map(|a| {
            format!(
                "{} {}|{}|{}|{}|{}|{}",
                a.verb,
                a.api_group,
                a.resource,
                a.subresource,
                a.namespace,
                a.name,
                a.field_selector
            )
        })
    }

    #[test]
    fn verbs_follow_the_method_the_name_and_the_watch_parameter() {
        let pods = "/api/v1/namespaces/ns/pods";
        assert_eq!(brief("GET", pods, None).unwrap(), "list |pods||ns||");
        assert_eq!(
            brief("GET", pods, Some("watch=true")).unwrap(),
            "watch |pods||ns||"
        );
        assert_eq!(
            brief("GET", pods, Some("watch=0")).unwrap(),
            "list |pods||ns||"
        );
        assert_eq!(
            brief("GET", &format!("{pods}/web"), Some("watch=true")).unwrap(),
            "get |pods||ns|web|"
        );
        assert_eq!(brief("POST", pods, None).unwrap(), "create |pods||ns||");
        // kubectl attach: POST (SPDY) creates, GET (WebSocket) gets `pods/attach`.
        assert_eq!(
            brief("POST", &format!("{pods}/web/attach"), Some("stdin=true")).unwrap(),
            "create |pods|attach|ns|web|"
        );
        assert_eq!(
            brief("GET", &format!("{pods}/web/attach"), None).unwrap(),
            "get |pods|attach|ns|web|"
        );
        assert_eq!(
            brief("PUT", &format!("{pods}/web/status"), None).unwrap(),
            "update |pods|status|ns|web|"
        );
        assert_eq!(
            brief("PATCH", "/api/v1/nodes/n1/status", None).unwrap(),
            "patch |nodes|status||n1|"
        );
        assert_eq!(
            brief("DELETE", &format!("{pods}/web"), None).unwrap(),
            "delete |pods||ns|web|"
        );
        assert_eq!(
            brief("DELETE", pods, None).unwrap(),
            "deletecollection |pods||ns||"
        );
        assert_eq!(
            brief("GET", "/api/v1/watch/namespaces/ns/pods", None).unwrap(),
            "watch |pods||ns||"
        );
    }

    #[test]
    fn a_metadata_name_field_selector_names_the_object_of_a_list_or_watch() {
        let query = "fieldSelector=metadata.name%3Dcfg&watch=1";
        assert_eq!(
            brief("GET", "/api/v1/namespaces/ns/configmaps", Some(query)).unwrap(),
            "watch |configmaps||ns|cfg|metadata.name=cfg"
        );
        let query = "fieldSelector=spec.nodeName%3D%3Dn1";
        let pods = resolve("GET", "/api/v1/pods", Some(query)).unwrap();
        assert_eq!((pods.verb.as_str(), pods.name.as_str()), ("list", ""));
        assert_eq!(pods.field_requires("spec.nodeName"), Some("n1"));
        let not = resolve(
            "GET",
            "/api/v1/pods",
            Some("fieldSelector=metadata.name!%3Dx"),
        )
        .unwrap();
        assert_eq!(not.name, "");
    }

    #[test]
    fn groups_namespaces_and_non_resource_paths() {
        assert_eq!(
            brief(
                "POST",
                "/apis/certificates.k8s.io/v1/certificatesigningrequests",
                None
            )
            .unwrap(),
            "create certificates.k8s.io|certificatesigningrequests||||"
        );
        assert_eq!(
            brief(
                "PUT",
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1",
                None
            )
            .unwrap(),
            "update coordination.k8s.io|leases||kube-node-lease|n1|"
        );
        assert_eq!(
            brief("PUT", "/api/v1/namespaces/ns/finalize", None).unwrap(),
            "update |namespaces|finalize|ns|ns|"
        );
        assert_eq!(
            brief("GET", "/api/v1/namespaces/ns", None).unwrap(),
            "get |namespaces||ns|ns|"
        );
        assert_eq!(brief("GET", "/apis/apps/v1", None), None);
        assert_eq!(brief("GET", "/api/v1", None), None);
        assert_eq!(brief("GET", "/healthz", None), None);
    }
}
