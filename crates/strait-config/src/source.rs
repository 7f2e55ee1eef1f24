//! YAML text to a tree of nodes that remember their line and column.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::error::Position;

/// How a scalar was written, which decides whether it may be read as a number, bool or null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarStyle {
    /// Unquoted: `true`, `8080`, `~` and `null` get their YAML types.
    Plain,
    /// Single- or double-quoted, or a `|` / `>` block: always a string.
    Quoted,
}

/// A YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Position of the node's first character.
    pub position: Position,
    /// What the node is.
    pub kind: NodeKind,
}

/// The shape of a YAML node.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar with its text, how it was written and its tag (`!!str`), if any.
    Scalar {
        /// The scalar's text after YAML unescaping.
        text: String,
        /// Plain or quoted.
        style: ScalarStyle,
        /// The full tag, such as `tag:yaml.org,2002:str`.
        tag: Option<String>,
    },
    /// A sequence of nodes.
    Sequence(Vec<Node>),
    /// A mapping, entries in file order (duplicates kept, reported later).
    Mapping(Vec<MappingEntry>),
    /// A `*alias` reference.
    Alias,
}

/// One `key: value` entry of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct MappingEntry {
    /// The key node.
    pub key: Node,
    /// The value node.
    pub value: Node,
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the parser stopped.
    pub position: Position,
    /// The parser's description.
    pub message: String,
}

/// Parses YAML text into one node per document.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let mut builder = TreeBuilder::default();
    Parser::new_from_str(text)
        .load(&mut builder, true)
        .map_err(|error| SyntaxError { position: position_of(error.marker()), message: error.info().to_owned() })?;
    Ok(builder.documents)
}

fn position_of(marker: &Marker) -> Position {
    Position::new(marker.line().max(1), marker.col() + 1)
}

/// A collection still being filled by parser events.
enum OpenCollection {
    Sequence { position: Position, items: Vec<Node> },
    Mapping { position: Position, entries: Vec<MappingEntry>, pending_key: Option<Node> },
}

/// Receives parser events and assembles them into [`Node`] trees.
#[derive(Default)]
struct TreeBuilder {
    open: Vec<OpenCollection>,
    documents: Vec<Node>,
}

impl TreeBuilder {
    fn finish_node(&mut self, node: Node) {
        match self.open.last_mut() {
            None => self.documents.push(node),
            Some(OpenCollection::Sequence { items, .. }) => items.push(node),
            Some(OpenCollection::Mapping { entries, pending_key, .. }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => entries.push(MappingEntry { key, value: node }),
            },
        }
    }
}

impl MarkedEventReceiver for TreeBuilder {
    fn on_event(&mut self, event: Event, marker: Marker) {
        let position = position_of(&marker);
        match event {
            Event::Scalar(text, style, _anchor, tag) => {
                let style = match style {
                    TScalarStyle::Plain => ScalarStyle::Plain,
                    _ => ScalarStyle::Quoted,
                };
                let tag = tag.map(|tag| format!("{}{}", tag.handle, tag.suffix));
                self.finish_node(Node { position, kind: NodeKind::Scalar { text, style, tag } });
            }
            Event::Alias(_) => self.finish_node(Node { position, kind: NodeKind::Alias }),
            Event::SequenceStart(..) => self.open.push(OpenCollection::Sequence { position, items: Vec::new() }),
            Event::MappingStart(..) => {
                self.open.push(OpenCollection::Mapping { position, entries: Vec::new(), pending_key: None })
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.open.pop() {
                    Some(OpenCollection::Sequence { position, items }) => {
                        Node { position, kind: NodeKind::Sequence(items) }
                    }
                    Some(OpenCollection::Mapping { position, entries, .. }) => {
                        // A block mapping's start event is marked at its first `:`; its first
                        // key is where a reader sees it begin.
                        let position = entries.first().map_or(position, |entry| entry.key.position.min(position));
                        Node { position, kind: NodeKind::Mapping(entries) }
                    }
                    None => return,
                };
                self.finish_node(node);
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar_text(node: &Node) -> &str {
        match &node.kind {
            NodeKind::Scalar { text, .. } => text,
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn nodes_keep_line_and_column() {
        let documents = parse_documents("a: 1\nlist:\n  - x\n  - key: 'y'\n").unwrap();
        assert_eq!(documents.len(), 1);
        let NodeKind::Mapping(entries) = &documents[0].kind else { panic!("not a mapping") };
        assert_eq!(entries[0].key.position, Position::new(1, 1));
        assert_eq!(entries[0].value.position, Position::new(1, 4));
        assert_eq!(entries[1].key.position, Position::new(2, 1));
        let NodeKind::Sequence(items) = &entries[1].value.kind else { panic!("not a sequence") };
        assert_eq!(items[0].position, Position::new(3, 5));
        assert_eq!(scalar_text(&items[0]), "x");
        assert_eq!(items[1].position, Position::new(4, 5));
        let NodeKind::Mapping(inner) = &items[1].kind else { panic!("not a mapping") };
        assert_eq!(inner[0].value.position, Position::new(4, 10));
        assert!(matches!(inner[0].value.kind, NodeKind::Scalar { style: ScalarStyle::Quoted, .. }));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let error = parse_documents("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(error.position.line >= 1);
        assert!(!error.message.is_empty());
    }

    #[test]
    fn empty_text_has_no_documents() {
        assert!(parse_documents("").unwrap().is_empty());
        assert!(parse_documents("# only a comment\n").unwrap().is_empty());
    }
}
