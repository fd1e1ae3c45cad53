//! A record of what authenticated users asked for (HTTPS mode): every resource request as
//! RBAC request attributes (`request_info`), with the Node authorizer's decision at the time
//! of the request (`node_authorizer`: its graph changes as pods come and go), plus the
//! SubjectAccessReviews the CSR approver makes for a requester. Tests judge the record
//! against an RBAC policy (`rbac`), e.g. `k3s/rbac.yaml`. Recording changes no answer.
//! Non-resource requests (discovery, `/version`) are not recorded: the default
//! `system:discovery` and `system:public-info-viewer` bindings allow them to everyone.

use std::sync::Mutex;

use super::Api;
use super::authn::User;
use super::node_authorizer::{self, Decision};
use super::request_info::{self, Attributes};
use super::server::TestApiServer;

/// One recorded authorization question.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// What was asked, by whom.
    pub attributes: Attributes,
    /// The Node authorizer's answer when it was asked; `None` when the user is no node.
    pub node_authorizer: Option<Decision>,
    /// Asked by the CSR approver on behalf of the CSR's requester (`create
    /// certificatesigningrequests/nodeclient` or `…/selfnodeclient`), not by a request.
    pub by_csr_approver: bool,
}

/// The record of one server.
#[derive(Default)]
pub struct Audit(Mutex<Vec<Recorded>>);

impl Audit {
    fn push(&self, recorded: Recorded) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(recorded);
    }
}

fn with_user(mut attributes: Attributes, name: &str, groups: &[String]) -> Attributes {
    attributes.user = name.to_owned();
    attributes.groups = groups.to_vec();
    attributes
}

/// Records a request of `user`, if it is a resource request.
pub fn request(api: &Api, user: &User, method: &str, path: &str, query: Option<&str>) {
    let Some(attributes) = request_info::resolve(method, path, query) else {
        return;
    };
    let attributes = with_user(attributes, &user.name, &user.groups);
    let node_authorizer = node_authorizer::authorize(api, &attributes);
    api.audit.push(Recorded {
        attributes,
        node_authorizer,
        by_csr_approver: false,
    });
}

/// Records the approver's check that `username` in `groups` may create CSRs of `subresource`.
pub fn approver_check(api: &Api, username: &str, groups: &[&str], subresource: &str) {
    let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    let attributes = Attributes {
        verb: "create".to_owned(),
        api_group: "certificates.k8s.io".to_owned(),
        resource: "certificatesigningrequests".to_owned(),
        subresource: subresource.to_owned(),
        ..Attributes::default()
    };
    let attributes = with_user(attributes, username, &groups);
    // The review goes through the whole authorizer chain, the Node authorizer first.
    let node_authorizer = node_authorizer::authorize(api, &attributes);
    api.audit.push(Recorded {
        attributes,
        node_authorizer,
        by_csr_approver: true,
    });
}

impl TestApiServer {
    /// Everything recorded so far, in order.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.api
            .audit
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
