//! S-expressions as xend speaks them (its `sxp` format).
//!
//! A document is parsed once into a flat arena: every node lives in one
//! vector and a list refers to its children by index. Nothing in parsing,
//! serializing, look-up or dropping recurses, so arbitrarily deep nesting
//! costs heap, never stack, and the work is linear in the input size.
//!
//! Dialect (see the 0.2.2 corpus): atoms are bare (`(state -b----)`,
//! `(uname tap:aio:/x)`) or quoted with `'` or `"`; inside quotes a backslash
//! escapes the next character (`\n`, `\t`, `\r` stand for the control
//! characters). Bare and quoted atoms are the same value. An empty list body
//! like `(features )` is present-but-empty. Look-ups by path return `None`
//! when absent, never a sentinel.

use crate::error::{CoreError, CoreResult};

/// Index of a node in a [`Document`].
pub type NodeId = u32;

/// One node of a parsed document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// An atom; `start..end` indexes the document's text buffer (unescaped).
    Atom { start: u32, end: u32, offset: u32 },
    /// A list of child nodes, in order.
    List { children: Box<[NodeId]>, offset: u32 },
}

/// A parsed S-expression document: the arena, the atom text, the root.
#[derive(Debug, Clone)]
pub struct Document {
    nodes: Vec<Node>,
    text: String,
    root: NodeId,
}

/// Parse options.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// Accept what libvirt's own parser accepted: lists still open at the
    /// end of input are closed, and anything after the first complete
    /// expression is ignored (one corpus file has a stray `)` at its end).
    /// Off by default: a truncated reply from xend is an error.
    pub lenient: bool,
}

#[inline]
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

#[inline]
fn ends_bare_atom(c: u8) -> bool {
    is_space(c) || c == b'(' || c == b')'
}

fn describe_at(input: &[u8], pos: usize) -> String {
    match input.get(pos) {
        None => "end of input".to_string(),
        Some(&c) if c.is_ascii_graphic() => format!("'{}'", c as char),
        Some(&c) if c < 0x80 => format!("byte 0x{c:02x}"),
        Some(_) => {
            // Show the whole UTF-8 character when we are on a boundary.
            let s = std::str::from_utf8(&input[pos..])
                .ok()
                .or_else(|| {
                    (1..=4).rev().find_map(|n| {
                        input
                            .get(pos..pos + n)
                            .and_then(|b| std::str::from_utf8(b).ok())
                    })
                })
                .and_then(|s| s.chars().next());
            match s {
                Some(ch) => format!("'{ch}'"),
                None => format!("byte 0x{:02x}", input[pos]),
            }
        }
    }
}

fn to_u32(n: usize) -> CoreResult<u32> {
    u32::try_from(n).map_err(|_| CoreError::InvalidArgument("S-expression input over 4 GiB".into()))
}

/// Parse one S-expression (surrounded by optional whitespace) from `input`.
pub fn parse(input: &[u8], options: ParseOptions) -> CoreResult<Document> {
    if let Err(e) = std::str::from_utf8(input) {
        return Err(CoreError::SexprSyntax {
            offset: e.valid_up_to(),
            expected: "UTF-8 text",
            found: format!("byte 0x{:02x}", input[e.valid_up_to()]),
        });
    }
    to_u32(input.len())?;
    Parser {
        input,
        pos: 0,
        nodes: Vec::with_capacity(input.len() / 8 + 1),
        text: Vec::with_capacity(input.len() / 2 + 1),
        scratch: Vec::new(),
        frames: Vec::new(),
        options,
    }
    .run()
}

struct Frame {
    /// Where this list's children start in `scratch`.
    first: usize,
    /// Byte offset of its opening parenthesis.
    offset: usize,
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
    text: Vec<u8>,
    scratch: Vec<NodeId>,
    frames: Vec<Frame>,
    options: ParseOptions,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.pos < self.input.len() && is_space(self.input[self.pos]) {
            self.pos += 1;
        }
    }

    fn push(&mut self, node: Node) -> NodeId {
        let id = self.nodes.len() as NodeId;
        self.nodes.push(node);
        id
    }

    fn error(&self, expected: &'static str, at: usize, extra: &str) -> CoreError {
        CoreError::SexprSyntax {
            offset: at,
            expected,
            found: format!("{}{extra}", describe_at(self.input, at)),
        }
    }

    fn close_list(&mut self, frame: Frame) -> NodeId {
        let children = self.scratch[frame.first..].to_vec().into_boxed_slice();
        self.scratch.truncate(frame.first);
        self.push(Node::List {
            children,
            offset: frame.offset as u32,
        })
    }

    fn run(mut self) -> CoreResult<Document> {
        let mut root: Option<NodeId> = None;
        loop {
            self.skip_space();
            let Some(&c) = self.input.get(self.pos) else {
                // End of input.
                if let Some(frame) = self.frames.last() {
                    if !self.options.lenient {
                        let opened = frame.offset;
                        return Err(self.error(
                            "')'",
                            self.pos,
                            &format!(" (the list opened at byte {opened} is not closed)"),
                        ));
                    }
                    while let Some(frame) = self.frames.pop() {
                        let id = self.close_list(frame);
                        if self.frames.is_empty() {
                            root = Some(id);
                        } else {
                            self.scratch.push(id);
                        }
                    }
                }
                break;
            };
            if root.is_some() {
                if self.options.lenient {
                    break;
                }
                return Err(self.error("end of input after the S-expression", self.pos, ""));
            }
            let completed = match c {
                b'(' => {
                    self.frames.push(Frame {
                        first: self.scratch.len(),
                        offset: self.pos,
                    });
                    self.pos += 1;
                    None
                }
                b')' => match self.frames.pop() {
                    None => return Err(self.error("'(' or an atom", self.pos, " (unbalanced)")),
                    Some(frame) => {
                        self.pos += 1;
                        Some(self.close_list(frame))
                    }
                },
                b'\'' | b'"' => Some(self.quoted(c)?),
                _ => Some(self.bare()),
            };
            if let Some(id) = completed {
                if self.frames.is_empty() {
                    root = Some(id);
                } else {
                    self.scratch.push(id);
                }
            }
        }
        let Some(root) = root else {
            return Err(self.error("'(' or an atom", self.pos, ""));
        };
        // The text buffer only ever receives bytes copied from valid UTF-8
        // input (whole runs, or single ASCII bytes for escapes), split at
        // ASCII delimiters, so it stays valid UTF-8.
        let text = String::from_utf8(self.text).map_err(|e| CoreError::SexprSyntax {
            offset: e.utf8_error().valid_up_to(),
            expected: "UTF-8 text",
            found: "invalid UTF-8".into(),
        })?;
        Ok(Document {
            nodes: self.nodes,
            text,
            root,
        })
    }

    fn bare(&mut self) -> NodeId {
        let start_pos = self.pos;
        while self.pos < self.input.len() && !ends_bare_atom(self.input[self.pos]) {
            self.pos += 1;
        }
        let start = self.text.len() as u32;
        self.text.extend_from_slice(&self.input[start_pos..self.pos]);
        let end = self.text.len() as u32;
        self.push(Node::Atom {
            start,
            end,
            offset: start_pos as u32,
        })
    }

    fn quoted(&mut self, quote: u8) -> CoreResult<NodeId> {
        let open = self.pos;
        self.pos += 1;
        let start = self.text.len() as u32;
        loop {
            // Copy the run up to the next quote or backslash in one go.
            let run_start = self.pos;
            while self.pos < self.input.len()
                && self.input[self.pos] != quote
                && self.input[self.pos] != b'\\'
            {
                self.pos += 1;
            }
            self.text.extend_from_slice(&self.input[run_start..self.pos]);
            match self.input.get(self.pos) {
                None => {
                    return Err(self.error(
                        if quote == b'\'' { "a closing \"'\"" } else { "a closing '\"'" },
                        self.pos,
                        &format!(" (the string opened at byte {open} is not closed)"),
                    ))
                }
                Some(&b'\\') => {
                    let Some(&next) = self.input.get(self.pos + 1) else {
                        return Err(self.error(
                            "a character after '\\'",
                            self.pos + 1,
                            &format!(" (in the string opened at byte {open})"),
                        ));
                    };
                    match next {
                        b'n' => self.text.push(b'\n'),
                        b't' => self.text.push(b'\t'),
                        b'r' => self.text.push(b'\r'),
                        c if c < 0x80 => self.text.push(c),
                        _ => {
                            // A multi-byte character: keep it whole (the
                            // backslash is dropped, as for any other character).
                            self.pos += 1;
                            continue;
                        }
                    }
                    self.pos += 2;
                }
                Some(_) => {
                    self.pos += 1;
                    break;
                }
            }
        }
        let end = self.text.len() as u32;
        Ok(self.push(Node::Atom {
            start,
            end,
            offset: open as u32,
        }))
    }
}

/// A cheap, borrowed view of one node.
#[derive(Debug, Clone, Copy)]
pub enum View<'a> {
    Atom(&'a str),
    List(&'a [NodeId]),
}

impl Document {
    /// The root node.
    pub fn root(&self) -> NodeId {
        self.root
    }

    /// Number of nodes in the document.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the document has no nodes (never true for a parsed one).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// View one node.
    pub fn view(&self, id: NodeId) -> View<'_> {
        match &self.nodes[id as usize] {
            Node::Atom { start, end, .. } => View::Atom(&self.text[*start as usize..*end as usize]),
            Node::List { children, .. } => View::List(children),
        }
    }

    /// Byte offset in the original input where the node starts.
    pub fn offset(&self, id: NodeId) -> usize {
        match &self.nodes[id as usize] {
            Node::Atom { offset, .. } | Node::List { offset, .. } => *offset as usize,
        }
    }

    /// The atom text of a node, if it is an atom.
    pub fn atom(&self, id: NodeId) -> Option<&str> {
        match self.view(id) {
            View::Atom(s) => Some(s),
            View::List(_) => None,
        }
    }

    /// The children of a node, if it is a list (empty slice for an atom).
    pub fn children(&self, id: NodeId) -> &[NodeId] {
        match self.view(id) {
            View::List(c) => c,
            View::Atom(_) => &[],
        }
    }

    /// The head of a list: its first child when that is an atom.
    pub fn head(&self, id: NodeId) -> Option<&str> {
        self.children(id).first().and_then(|&c| self.atom(c))
    }

    /// Children of list `id` (after its head) that are lists headed `key`.
    fn keyed<'a>(&'a self, id: NodeId, key: &'a str) -> impl Iterator<Item = NodeId> + 'a {
        self.children(id)
            .iter()
            .skip(1)
            .copied()
            .filter(move |&c| self.head(c) == Some(key))
    }

    /// The first node matching `path` below `from`. The first component
    /// names `from` itself (`domain/memory` on a `(domain ...)` node).
    pub fn lookup(&self, from: NodeId, path: &str) -> CoreResult<Option<NodeId>> {
        let mut parts = split_path(path)?;
        let first = parts.next().unwrap_or_default();
        if self.head(from) != Some(first) {
            return Ok(None);
        }
        let mut cur = from;
        for key in parts {
            match self.keyed(cur, key).next() {
                Some(next) => cur = next,
                None => return Ok(None),
            }
        }
        Ok(Some(cur))
    }

    /// Every node matching `path` below `from`, in document order, following
    /// every repeated intermediate key (`domain/device/vbd` visits each
    /// `(device ...)`).
    pub fn find_all(&self, from: NodeId, path: &str) -> CoreResult<Vec<NodeId>> {
        let parts: Vec<&str> = split_path(path)?.collect();
        if self.head(from) != Some(parts[0]) {
            return Ok(Vec::new());
        }
        let mut current = vec![from];
        for key in &parts[1..] {
            let mut next = Vec::new();
            for &node in &current {
                next.extend(self.keyed(node, key));
            }
            if next.is_empty() {
                return Ok(next);
            }
            current = next;
        }
        Ok(current)
    }

    /// The value of a `(key value ...)` list: its first atom after the head.
    /// `(key)` has the empty value. `Ok(None)` never happens for a present
    /// key; a list-valued key is a type error.
    pub fn value_of(&self, id: NodeId, path: &str) -> CoreResult<&str> {
        match self.children(id).get(1) {
            None => Ok(""),
            Some(&v) => self.atom(v).ok_or_else(|| CoreError::SexprValue {
                path: path.to_string(),
                value: self.to_string_compact(v),
                expected: "a string",
            }),
        }
    }

    /// String value at `path`, `None` when absent.
    pub fn get_str(&self, from: NodeId, path: &str) -> CoreResult<Option<&str>> {
        match self.lookup(from, path)? {
            None => Ok(None),
            Some(id) => self.value_of(id, path).map(Some),
        }
    }

    /// Integer value at `path`, `None` when absent, an error when not an integer.
    pub fn get_int(&self, from: NodeId, path: &str) -> CoreResult<Option<i64>> {
        match self.get_str(from, path)? {
            None => Ok(None),
            Some(s) => s.trim().parse::<i64>().map(Some).map_err(|_| CoreError::SexprValue {
                path: path.to_string(),
                value: s.to_string(),
                expected: "an integer",
            }),
        }
    }

    /// Floating-point value at `path` (xend's `cpu_time`), `None` when absent.
    pub fn get_float(&self, from: NodeId, path: &str) -> CoreResult<Option<f64>> {
        match self.get_str(from, path)? {
            None => Ok(None),
            Some(s) => {
                let t = s.trim();
                let ok = !t.is_empty()
                    && t.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
                match t.parse::<f64>() {
                    Ok(v) if ok => Ok(Some(v)),
                    _ => Err(CoreError::SexprValue {
                        path: path.to_string(),
                        value: s.to_string(),
                        expected: "a number",
                    }),
                }
            }
        }
    }

    /// Structural equality of two nodes (possibly of different documents).
    pub fn node_eq(&self, a: NodeId, other: &Document, b: NodeId) -> bool {
        let mut stack = vec![(a, b)];
        while let Some((x, y)) = stack.pop() {
            match (self.view(x), other.view(y)) {
                (View::Atom(s), View::Atom(t)) => {
                    if s != t {
                        return false;
                    }
                }
                (View::List(c), View::List(d)) => {
                    if c.len() != d.len() {
                        return false;
                    }
                    stack.extend(c.iter().copied().zip(d.iter().copied()));
                }
                _ => return false,
            }
        }
        true
    }

    /// One-line canonical serialization of a node.
    pub fn to_string_compact(&self, id: NodeId) -> String {
        let mut out = String::new();
        self.write(id, &mut out, None);
        out
    }

    /// Multi-line serialization, xend style: a list of atoms on one line,
    /// other lists with one child per line, indented by `indent` spaces.
    pub fn to_string_pretty(&self, id: NodeId, indent: usize) -> String {
        let mut out = String::new();
        self.write(id, &mut out, Some(indent));
        out.push('\n');
        out
    }

    fn write(&self, id: NodeId, out: &mut String, indent: Option<usize>) {
        Serializer {
            doc: self,
            out,
            indent,
        }
        .run(id);
    }
}

fn push_spaces(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn split_path(path: &str) -> CoreResult<std::str::Split<'_, char>> {
    if path.is_empty() || path.split('/').any(str::is_empty) {
        return Err(CoreError::InvalidArgument(format!(
            "look-up path {path:?} must be non-empty names separated by '/'"
        )));
    }
    Ok(path.split('/'))
}

/// Whether an atom can be written without quotes and read back unchanged.
pub fn atom_is_bare(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_graphic() && !matches!(b, b'(' | b')' | b'\'' | b'"' | b'\\')
        })
}

/// Append an atom, quoting it when needed (`'` quotes; `\` and `'` escaped).
pub fn write_atom(s: &str, out: &mut String) {
    if atom_is_bare(s) {
        out.push_str(s);
        return;
    }
    out.push('\'');
    for ch in s.chars() {
        if ch == '\'' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('\'');
}

struct Serializer<'a> {
    doc: &'a Document,
    out: &'a mut String,
    indent: Option<usize>,
}

impl Serializer<'_> {
    fn run(&mut self, id: NodeId) {
        // Each frame: list node, index of next child, depth, multiline.
        struct Frame<'d> {
            children: &'d [NodeId],
            next: usize,
            depth: usize,
            multiline: bool,
        }
        let doc = self.doc;
        let mut frames: Vec<Frame<'_>> = Vec::new();
        let mut pending = Some((id, 0usize));
        loop {
            if let Some((n, depth)) = pending.take() {
                match doc.view(n) {
                    View::Atom(s) => write_atom(s, self.out),
                    View::List(children) => {
                        let multiline = self.indent.is_some()
                            && children.iter().any(|&c| matches!(doc.view(c), View::List(_)));
                        self.out.push('(');
                        frames.push(Frame {
                            children,
                            next: 0,
                            depth,
                            multiline,
                        });
                    }
                }
            }
            let Some(top) = frames.last_mut() else { break };
            if top.next < top.children.len() {
                let child = top.children[top.next];
                if top.next > 0 {
                    if top.multiline {
                        self.out.push('\n');
                        push_spaces(self.out, (top.depth + 1) * self.indent.unwrap_or(0));
                    } else {
                        self.out.push(' ');
                    }
                }
                top.next += 1;
                pending = Some((child, top.depth + 1));
            } else {
                let (multiline, depth) = (top.multiline, top.depth);
                frames.pop();
                if multiline {
                    self.out.push('\n');
                    push_spaces(self.out, depth * self.indent.unwrap_or(0));
                }
                self.out.push(')');
            }
        }
    }
}

/// Builds a [`Document`] bottom-up (children before their list), for trees
/// that come from a caller rather than from text.
#[derive(Debug, Default)]
pub struct Builder {
    nodes: Vec<Node>,
    text: String,
}

impl Builder {
    /// A new, empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add an atom.
    pub fn atom(&mut self, s: &str) -> CoreResult<NodeId> {
        let start = to_u32(self.text.len())?;
        self.text.push_str(s);
        let end = to_u32(self.text.len())?;
        self.push(Node::Atom {
            start,
            end,
            offset: 0,
        })
    }

    /// Add a list of previously added nodes.
    pub fn list(&mut self, children: &[NodeId]) -> CoreResult<NodeId> {
        self.push(Node::List {
            children: children.into(),
            offset: 0,
        })
    }

    fn push(&mut self, node: Node) -> CoreResult<NodeId> {
        let id = to_u32(self.nodes.len())?;
        self.nodes.push(node);
        Ok(id)
    }

    /// Finish with `root` as the document's root.
    pub fn finish(self, root: NodeId) -> Document {
        Document {
            nodes: self.nodes,
            text: self.text,
            root,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Document {
        parse(s.as_bytes(), ParseOptions::default()).unwrap()
    }

    fn err(s: &str) -> String {
        parse(s.as_bytes(), ParseOptions::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn bare_and_quoted_atoms_are_the_same_value() {
        let d = p("(domain (name 'fvtest') (memory 420) (state -b----))");
        let r = d.root();
        assert_eq!(d.get_str(r, "domain/name").unwrap(), Some("fvtest"));
        assert_eq!(d.get_int(r, "domain/memory").unwrap(), Some(420));
        assert_eq!(d.get_str(r, "domain/state").unwrap(), Some("-b----"));
        let e = p("(domain (name fvtest) (memory '420') (state '-b----'))");
        assert!(d.node_eq(d.root(), &e, e.root()));
    }

    #[test]
    fn absent_is_none_never_zero() {
        let d = p("(node (nr_cpus 2) (features ))");
        let r = d.root();
        assert_eq!(d.get_int(r, "node/nr_cpus").unwrap(), Some(2));
        assert_eq!(d.get_int(r, "node/nr_nodes").unwrap(), None);
        assert_eq!(d.get_str(r, "domain/nr_cpus").unwrap(), None);
        assert_eq!(d.get_str(r, "node/features").unwrap(), Some(""));
    }

    #[test]
    fn nested_paths_and_repeated_children() {
        let d = p("(domain (image (linux (kernel '/boot/k'))) \
                   (device (vbd (dev xvda))) (device (vif (mac m))) (device (vbd (dev xvdb))))");
        let r = d.root();
        assert_eq!(d.get_str(r, "domain/image/linux/kernel").unwrap(), Some("/boot/k"));
        let vbds = d.find_all(r, "domain/device/vbd").unwrap();
        let devs: Vec<_> = vbds
            .iter()
            .map(|&v| d.get_str(v, "vbd/dev").unwrap().unwrap())
            .collect();
        assert_eq!(devs, ["xvda", "xvdb"]);
    }

    #[test]
    fn escapes_in_quoted_strings() {
        let d = p(r"(uname 'file:/root/\'\\some.img')");
        assert_eq!(d.get_str(d.root(), "uname").unwrap(), Some(r"file:/root/'\some.img"));
        assert_eq!(d.to_string_compact(d.root()), r"(uname 'file:/root/\'\\some.img')");
    }

    #[test]
    fn malformed_input_reports_offset_and_expectation() {
        assert!(err("").contains("at byte 0: expected '(' or an atom, found end of input"));
        assert!(err("(a (b)").contains("at byte 6: expected ')'"));
        assert!(err("(a)) ").contains("at byte 3: expected end of input"));
        assert!(err(")").contains("at byte 0"));
        assert!(err("(a 'bc").contains("at byte 6") && err("(a 'bc").contains("opened at byte 3"));
        assert!(parse(b"(a \xff)", ParseOptions::default())
            .unwrap_err()
            .to_string()
            .contains("at byte 3: expected UTF-8 text"));
    }

    #[test]
    fn lenient_is_opt_in() {
        let opts = ParseOptions { lenient: true };
        let d = parse(b"(vm (name x) (device (vif (ip 1.2.3.4))", opts).unwrap();
        assert_eq!(d.get_str(d.root(), "vm/device/vif/ip").unwrap(), Some("1.2.3.4"));
        let d = parse(b"(vm (name x)))", opts).unwrap();
        assert_eq!(d.get_str(d.root(), "vm/name").unwrap(), Some("x"));
        assert!(parse(b"(vm (name x)))", ParseOptions::default()).is_err());
    }

    #[test]
    fn deep_nesting_uses_no_stack() {
        let depth = 1_000_000;
        let mut s = "(".repeat(depth);
        s.push('x');
        s.push_str(&")".repeat(depth));
        let d = p(&s);
        assert_eq!(d.len(), depth + 1);
        assert_eq!(d.to_string_compact(d.root()), s);
        assert!(d.node_eq(d.root(), &d, d.root()));
        let pretty = d.to_string_pretty(d.root(), 0);
        assert!(pretty.len() > s.len());
        drop(d);
    }

    #[test]
    fn pretty_printing() {
        let d = p("(domain (domid 5) (image (linux (kernel k))) (features ))");
        assert_eq!(
            d.to_string_pretty(d.root(), 4),
            "(domain\n    (domid 5)\n    (image\n        (linux\n            (kernel k)\n        )\n    )\n    (features)\n)\n"
        );
    }

    #[test]
    fn builder_serializes_like_parsed_text() {
        let mut b = Builder::new();
        let k = b.atom("name").unwrap();
        let v = b.atom("it's me").unwrap();
        let e = b.atom("").unwrap();
        let inner = b.list(&[k, v, e]).unwrap();
        let root = b.list(&[inner]).unwrap();
        let d = b.finish(root);
        let text = d.to_string_compact(d.root());
        assert_eq!(text, r"((name 'it\'s me' ''))");
        let back = p(&text);
        assert!(back.node_eq(back.root(), &d, d.root()));
    }

    #[test]
    fn bad_paths_are_argument_errors() {
        let d = p("(a)");
        assert!(d.get_str(d.root(), "").is_err());
        assert!(d.get_str(d.root(), "a//b").is_err());
    }
}
