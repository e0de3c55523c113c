//! Reading YAML with the line and column of every value, so each error and
//! warning about a file names the place it comes from.

use std::fmt;
use std::sync::Arc;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoadError, LoaderOptions, Node, Span};

/// A place in a source file. Lines and columns start at 1; a line of 0 means
/// the whole file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    pub file: Arc<str>,
    pub line: usize,
    pub column: usize,
}

impl Location {
    pub fn whole_file(file: &Arc<str>) -> Self {
        Self {
            file: Arc::clone(file),
            line: 0,
            column: 0,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.column)
        }
    }
}

/// An error or warning about one place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub location: Location,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// The errors and warnings found while reading files. Reading goes on after
/// an error, so one run reports every problem of a file.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn error(&mut self, location: Location, message: impl Into<String>) {
        self.errors.push(Diagnostic {
            location,
            message: message.into(),
        });
    }

    pub fn warn(&mut self, location: Location, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            location,
            message: message.into(),
        });
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}

/// A parsed YAML file whose top level is a mapping.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: Arc<str>,
    pub root: Node,
}

/// Parses `text` as one YAML document with a mapping at the top level.
/// Duplicate keys, anchors, aliases and tags are rejected, because they have
/// no place in these configuration files and would hide where a value comes
/// from.
pub fn parse_source(name: &str, text: &str) -> Result<SourceFile, Diagnostic> {
    let name: Arc<str> = Arc::from(name);
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);

    // The loader asserts on a few malformed event sequences instead of
    // returning an error, and a panic there must not abort the whole command.
    let parsed =
        std::panic::catch_unwind(|| marked_yaml::parse_yaml_with_options(0, text, options));
    let root = match parsed {
        Ok(Ok(root)) => root,
        Ok(Err(error)) => return Err(load_error_diagnostic(&name, &error)),
        Err(_) => {
            return Err(Diagnostic {
                location: Location::whole_file(&name),
                message: "not a valid YAML document".to_owned(),
            });
        }
    };

    Ok(SourceFile { name, root })
}

fn load_error_diagnostic(file: &Arc<str>, error: &LoadError) -> Diagnostic {
    let at = |marker: &marked_yaml::Marker| Location {
        file: Arc::clone(file),
        line: marker.line(),
        column: marker.column(),
    };
    let (location, message) = match error {
        LoadError::TopLevelMustBeMapping(marker) => {
            (at(marker), "the top level must be a mapping".to_owned())
        }
        LoadError::TopLevelMustBeSequence(marker) => {
            (at(marker), "the top level must be a sequence".to_owned())
        }
        LoadError::UnexpectedAnchor(marker) => (
            at(marker),
            "YAML anchors and aliases are not supported".to_owned(),
        ),
        LoadError::MappingKeyMustBeScalar(marker) => {
            (at(marker), "mapping keys must be plain values".to_owned())
        }
        LoadError::UnexpectedTag(marker) => (at(marker), "YAML tags are not supported".to_owned()),
        LoadError::ScanError(marker, scan) => {
            (at(marker), format!("invalid YAML: {}", scan.info()))
        }
        LoadError::DuplicateKey(duplicate) => {
            let first_line = duplicate
                .prev_key
                .span()
                .start()
                .map_or(0, marked_yaml::Marker::line);
            let location = duplicate
                .key
                .span()
                .start()
                .map_or_else(|| Location::whole_file(file), at);
            (
                location,
                format!(
                    "duplicate key {:?} (first given on line {first_line})",
                    duplicate.key.as_str()
                ),
            )
        }
        // `LoadError` is not marked non-exhaustive, but a future variant
        // should still produce a readable message.
        #[allow(unreachable_patterns)]
        other => (Location::whole_file(file), other.to_string()),
    };
    Diagnostic { location, message }
}

/// The handling of a mapping key the reader does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownKeys {
    Reject,
    Warn,
}

/// Typed access to the nodes of one file, recording a diagnostic for every
/// value of the wrong shape. Accessors return `None` after recording an error.
pub struct Reader<'a> {
    file: Arc<str>,
    pub diagnostics: &'a mut Diagnostics,
}

impl<'a> Reader<'a> {
    pub fn new(file: &Arc<str>, diagnostics: &'a mut Diagnostics) -> Self {
        Self {
            file: Arc::clone(file),
            diagnostics,
        }
    }

    pub fn file(&self) -> &Arc<str> {
        &self.file
    }

    pub fn span_location(&self, span: &Span) -> Location {
        span.start().map_or_else(
            || Location::whole_file(&self.file),
            |marker| Location {
                file: Arc::clone(&self.file),
                line: marker.line(),
                column: marker.column(),
            },
        )
    }

    pub fn location(&self, node: &Node) -> Location {
        self.span_location(node.span())
    }

    pub fn error(&mut self, location: Location, message: impl Into<String>) {
        self.diagnostics.error(location, message);
    }

    pub fn warn(&mut self, location: Location, message: impl Into<String>) {
        self.diagnostics.warn(location, message);
    }

    /// Records an error or warning for every key of `mapping` not in `known`.
    pub fn check_keys(
        &mut self,
        mapping: &MarkedMappingNode,
        what: &str,
        known: &[&str],
        policy: UnknownKeys,
    ) {
        for key in mapping.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let location = self.span_location(key.span());
            match policy {
                UnknownKeys::Reject => self.error(
                    location,
                    format!(
                        "unknown key {:?} in {what}; known keys: {}",
                        key.as_str(),
                        known.join(", ")
                    ),
                ),
                UnknownKeys::Warn => self.warn(
                    location,
                    format!("unknown key {:?} in {what} is ignored", key.as_str()),
                ),
            }
        }
    }

    /// Returns the node as a mapping. A null value reads as an empty mapping.
    pub fn mapping<'n>(&mut self, node: &'n Node, what: &str) -> Option<MappingView<'n>> {
        match node {
            Node::Mapping(mapping) => Some(MappingView::Present(mapping)),
            Node::Scalar(scalar) if is_null(scalar) => Some(MappingView::Empty),
            _ => {
                let location = self.location(node);
                self.error(
                    location,
                    format!(
                        "{what} must be a mapping of keys to values, not {}",
                        shape(node)
                    ),
                );
                None
            }
        }
    }

    /// Returns the node as a list. A null value reads as an empty list.
    pub fn sequence<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        match node {
            Node::Sequence(sequence) => Some(sequence.as_slice()),
            Node::Scalar(scalar) if is_null(scalar) => Some(&[]),
            _ => {
                let location = self.location(node);
                self.error(
                    location,
                    format!("{what} must be a list, not {}", shape(node)),
                );
                None
            }
        }
    }

    /// Returns the node as a non-null text value.
    pub fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match node {
            Node::Scalar(scalar) if !is_null(scalar) => Some(scalar.as_str().to_owned()),
            _ => {
                let location = self.location(node);
                self.error(
                    location,
                    format!("{what} must be a text value, not {}", shape(node)),
                );
                None
            }
        }
    }

    /// Returns the node as text, or `None` inside `Some` for an explicit null.
    pub fn optional_string(&mut self, node: &Node, what: &str) -> Option<Option<String>> {
        match node {
            Node::Scalar(scalar) if is_null(scalar) => Some(None),
            _ => self.string(node, what).map(Some),
        }
    }

    pub fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        let value = match node {
            Node::Scalar(scalar) if scalar.may_coerce() => match scalar.as_str() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                _ => None,
            },
            _ => None,
        };
        if value.is_none() {
            let location = self.location(node);
            self.error(
                location,
                format!("{what} must be true or false, not {}", shape(node)),
            );
        }
        value
    }

    pub fn unsigned(&mut self, node: &Node, what: &str) -> Option<u64> {
        let value = match node {
            Node::Scalar(scalar) if scalar.may_coerce() => scalar.as_str().parse::<u64>().ok(),
            _ => None,
        };
        if value.is_none() {
            let location = self.location(node);
            self.error(
                location,
                format!("{what} must be a whole number, not {}", shape(node)),
            );
        }
        value
    }

    /// Returns a list of text values with their locations.
    pub fn string_list(&mut self, node: &Node, what: &str) -> Vec<(String, Location)> {
        let Some(items) = self.sequence(node, what) else {
            return Vec::new();
        };
        let mut values = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            if let Some(value) = self.string(item, &format!("{what}[{index}]")) {
                values.push((value, self.location(item)));
            }
        }
        values
    }
}

/// A mapping, or the empty mapping a null value stands for.
#[derive(Debug, Clone, Copy)]
pub enum MappingView<'n> {
    Present(&'n MarkedMappingNode),
    Empty,
}

impl<'n> MappingView<'n> {
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        match self {
            Self::Present(mapping) => mapping.get_node(key),
            Self::Empty => None,
        }
    }

    /// Returns the entries in file order.
    pub fn entries(&self) -> Vec<(&'n MarkedScalarNode, &'n Node)> {
        match self {
            Self::Present(mapping) => mapping.iter().collect(),
            Self::Empty => Vec::new(),
        }
    }

    pub fn node(&self) -> Option<&'n MarkedMappingNode> {
        match self {
            Self::Present(mapping) => Some(mapping),
            Self::Empty => None,
        }
    }
}

/// Tells whether a scalar is YAML's null: an empty plain value, `~` or `null`.
pub fn is_null(scalar: &MarkedScalarNode) -> bool {
    scalar.may_coerce() && matches!(scalar.as_str(), "" | "~" | "null" | "Null" | "NULL")
}

fn shape(node: &Node) -> String {
    match node {
        Node::Mapping(_) => "a mapping".to_owned(),
        Node::Sequence(_) => "a list".to_owned(),
        Node::Scalar(scalar) if is_null(scalar) => "null".to_owned(),
        Node::Scalar(scalar) => format!("{:?}", shorten(scalar.as_str())),
    }
}

fn shorten(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    if text.chars().count() <= MAX_CHARS {
        text.to_owned()
    } else {
        let mut shortened: String = text.chars().take(MAX_CHARS).collect();
        shortened.push('…');
        shortened
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_one_based() {
        let source = parse_source("a.yaml", "first: 1\nsecond:\n  - x\n").unwrap();
        let mut diagnostics = Diagnostics::default();
        let mut reader = Reader::new(&source.name, &mut diagnostics);
        let root = reader.mapping(&source.root, "file").unwrap();
        let second = root.get("second").unwrap();
        let items = reader.sequence(second, "second").unwrap();
        let location = reader.location(&items[0]);
        assert_eq!((location.line, location.column), (3, 5));
    }

    #[test]
    fn duplicate_key_names_both_lines() {
        let error = parse_source("a.yaml", "teams: 1\nmembers: 2\nteams: 3\n").unwrap_err();
        assert_eq!(error.location.line, 3);
        assert!(error.message.contains("line 1"), "{}", error.message);
    }

    #[test]
    fn syntax_error_has_line() {
        let error = parse_source("a.yaml", "teams:\n  a: [1, 2\nb: 3\n").unwrap_err();
        assert!(error.location.line >= 2, "{error}");
        assert!(error.message.starts_with("invalid YAML"), "{error}");
    }

    #[test]
    fn quoted_null_is_text() {
        let source = parse_source("a.yaml", "a: \"null\"\nb: null\nc:\n").unwrap();
        let mut diagnostics = Diagnostics::default();
        let mut reader = Reader::new(&source.name, &mut diagnostics);
        let root = reader.mapping(&source.root, "file").unwrap();
        assert_eq!(
            reader.optional_string(root.get("a").unwrap(), "a"),
            Some(Some("null".to_owned()))
        );
        assert_eq!(
            reader.optional_string(root.get("b").unwrap(), "b"),
            Some(None)
        );
        assert_eq!(
            reader.optional_string(root.get("c").unwrap(), "c"),
            Some(None)
        );
    }

    #[test]
    fn unknown_keys_warn_or_reject() {
        let source = parse_source("a.yaml", "known: 1\nextra: 2\n").unwrap();
        let mut diagnostics = Diagnostics::default();
        let mut reader = Reader::new(&source.name, &mut diagnostics);
        let root = reader
            .mapping(&source.root, "file")
            .unwrap()
            .node()
            .unwrap();
        reader.check_keys(root, "the file", &["known"], UnknownKeys::Warn);
        reader.check_keys(root, "the file", &["known"], UnknownKeys::Reject);
        assert_eq!(diagnostics.warnings.len(), 1);
        assert_eq!(diagnostics.errors.len(), 1);
        assert_eq!(diagnostics.warnings[0].location.line, 2);
    }

    #[test]
    fn anchors_are_rejected() {
        let error = parse_source("a.yaml", "a: &x 1\nb: *x\n").unwrap_err();
        assert!(error.message.contains("anchors"), "{error}");
    }

    #[test]
    fn booleans_need_plain_values() {
        let source = parse_source("a.yaml", "a: true\nb: \"true\"\n").unwrap();
        let mut diagnostics = Diagnostics::default();
        let mut reader = Reader::new(&source.name, &mut diagnostics);
        let root = reader.mapping(&source.root, "file").unwrap();
        assert_eq!(reader.boolean(root.get("a").unwrap(), "a"), Some(true));
        assert_eq!(reader.boolean(root.get("b").unwrap(), "b"), None);
    }
}
