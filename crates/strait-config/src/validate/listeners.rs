//! Checks of listeners: unique names, bind addresses, TLS settings (layer 4 parts in `l4`).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use super::Checker;
use crate::model::Listener;
use crate::path_index::{child_path, item_path};

impl Checker<'_> {
    /// Checks every listener and its routes.
    pub(super) fn listeners(&mut self, listeners: &[Listener], cluster_names: &HashSet<&str>) {
        let mut names: HashMap<&str, usize> = HashMap::new();
        // TCP and UDP listeners may share an address (DNS on port 53 takes both).
        let mut binds: HashMap<(SocketAddr, bool), &str> = HashMap::new();
        for (position, listener) in listeners.iter().enumerate() {
            let path = item_path("listeners", position);
            let name_path = child_path(&path, "name");
            if listener.name.is_empty() {
                self.error(&name_path, "listener name is empty");
            } else if let Some(first) = names.insert(&listener.name, position) {
                names.insert(&listener.name, first);
                self.error(
                    &name_path,
                    format!("listener name `{}` is already used by listeners[{first}]", listener.name),
                );
            }
            let bind_path = child_path(&path, "bind");
            match listener.bind.parse::<SocketAddr>() {
                Ok(address) if address.port() != 0 => {
                    let key = (address, listener.udp.is_some());
                    if let Some(other) = binds.insert(key, &listener.name) {
                        binds.insert(key, other);
                        self.error(&bind_path, format!("`{address}` is already bound by listener `{other}`"));
                    }
                }
                Ok(_) => {}
                Err(_) => self.error(
                    &bind_path,
                    format!("`{}` is not an `IP:PORT` address (such as `0.0.0.0:80` or `[::]:8080`)", listener.bind),
                ),
            }
            if let Some(tls) = &listener.tls {
                self.listener_tls(&child_path(&path, "tls"), tls);
            }
            self.listener_l4(&path, listener, cluster_names);
            for (route_position, route) in listener.routes.iter().enumerate() {
                self.route(&item_path(&child_path(&path, "routes"), route_position), route, cluster_names);
            }
        }
    }
}
