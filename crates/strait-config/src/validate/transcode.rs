//! Checks of `grpc_transcode` actions that need no files: the cluster, the service list, the
//! header names and the limits. The descriptor set is read and checked by the data path.

use std::collections::HashSet;

use super::{syntax, Checker};
use crate::model::GrpcTranscode;
use crate::path_index::{child_path, item_path};

impl Checker<'_> {
    /// Checks a `grpc_transcode` action at `path`.
    pub(super) fn grpc_transcode(&mut self, path: &str, transcode: &GrpcTranscode, cluster_names: &HashSet<&str>) {
        self.cluster_reference(&child_path(path, "cluster"), &transcode.cluster, cluster_names);
        if transcode.descriptor_set.is_empty() {
            self.error(&child_path(path, "descriptor_set"), "descriptor set path is empty");
        }
        let services_path = child_path(path, "services");
        if transcode.services.is_empty() {
            self.error(&services_path, "services lists no service: name at least one, as `package.Service`");
        }
        let mut seen = HashSet::new();
        for (position, service) in transcode.services.iter().enumerate() {
            let service_path = item_path(&services_path, position);
            let valid = !service.is_empty()
                && service
                    .split('.')
                    .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            if !valid {
                self.error(
                    &service_path,
                    format!("`{service}` is not a fully qualified service name (`package.Service`)"),
                );
            } else if !seen.insert(service.as_str()) {
                self.error(&service_path, format!("service `{service}` is listed twice"));
            }
        }
        for (position, name) in transcode.forward_headers.iter().enumerate() {
            let name_path = item_path(&child_path(path, "forward_headers"), position);
            self.check(&name_path, syntax::header_name_problem(name));
        }
        for field in ["max_request_bytes", "max_response_bytes"] {
            let limit =
                if field == "max_request_bytes" { transcode.max_request_bytes } else { transcode.max_response_bytes };
            if limit.0 == 0 {
                self.error(&child_path(path, field), "must be at least 1 byte");
            }
        }
    }
}
