//! Field paths (`listeners[0].routes[2].forward.cluster`) and where they are in the file.

use std::collections::HashMap;

use crate::error::Position;

/// The path of a mapping entry `key` inside the node at `parent`.
pub fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// The path of item `index` of the sequence at `parent`.
pub fn item_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// The path of the node that contains the node at `path`, or `None` at the root.
fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    Some(path.rfind(['.', '[']).map_or("", |cut| &path[..cut]))
}

/// Maps field paths to the positions of their values and, for mapping entries, their keys.
#[derive(Debug, Clone, Default)]
pub struct PathIndex {
    values: HashMap<String, Position>,
    keys: HashMap<String, Position>,
}

impl PathIndex {
    /// Records where the value at `path` starts.
    pub fn insert_value(&mut self, path: String, position: Position) {
        self.values.insert(path, position);
    }

    /// Records where the key of the mapping entry at `path` starts.
    pub fn insert_key(&mut self, path: String, position: Position) {
        self.keys.insert(path, position);
    }

    /// Whether the file has a mapping entry with exactly this path.
    pub fn has_key(&self, path: &str) -> bool {
        self.keys.contains_key(path)
    }

    /// Position of the value at `path`, or of the closest enclosing node the file has.
    pub fn value_position(&self, path: &str) -> Position {
        let mut current = Some(path);
        while let Some(path) = current {
            if let Some(position) = self.values.get(path).or_else(|| self.keys.get(path)) {
                return *position;
            }
            current = parent_path(path);
        }
        Position::START
    }

    /// Position of the key of the entry at `path`; falls back like [`PathIndex::value_position`].
    pub fn key_position(&self, path: &str) -> Position {
        match self.keys.get(path) {
            Some(position) => *position,
            None => self.value_position(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_built_and_cut() {
        let path = child_path(&item_path(&child_path("", "listeners"), 0), "bind");
        assert_eq!(path, "listeners[0].bind");
        assert_eq!(parent_path("listeners[0].bind"), Some("listeners[0]"));
        assert_eq!(parent_path("listeners[0]"), Some("listeners"));
        assert_eq!(parent_path("listeners"), Some(""));
        assert_eq!(parent_path(""), None);
    }

    #[test]
    fn missing_paths_fall_back_to_the_closest_ancestor() {
        let mut index = PathIndex::default();
        index.insert_value("listeners".into(), Position::new(2, 3));
        index.insert_key("listeners".into(), Position::new(1, 1));
        index.insert_value("listeners[0]".into(), Position::new(3, 5));
        assert_eq!(index.value_position("listeners[0].routes[1]"), Position::new(3, 5));
        assert_eq!(index.key_position("listeners"), Position::new(1, 1));
        assert_eq!(index.key_position("listeners[0].bind"), Position::new(3, 5));
        assert_eq!(index.value_position("clusters"), Position::START);
    }
}
