//! `SExpr` and the `sexpr_*` functions of `virtkit._core`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::error::CoreError;
use crate::sexpr::{self as core, Builder, Document, NodeId, ParseOptions, View};
use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::types::{PyBytes, PyInt, PyList, PySequence, PyString, PyTuple};

/// Inputs at least this large are parsed with the GIL released.
const DETACH_THRESHOLD: usize = 16 * 1024;

/// One node of a parsed S-expression document (an atom or a list).
#[pyclass(frozen, module = "virtkit._core", name = "SExpr")]
pub struct SExpr {
    doc: Arc<Document>,
    id: NodeId,
}

impl SExpr {
    fn at(&self, id: NodeId) -> SExpr {
        SExpr {
            doc: Arc::clone(&self.doc),
            id,
        }
    }
}

#[pymethods]
impl SExpr {
    /// True for an atom.
    #[getter]
    fn is_atom(&self) -> bool {
        matches!(self.doc.view(self.id), View::Atom(_))
    }

    /// True for a list.
    #[getter]
    fn is_list(&self) -> bool {
        !self.is_atom()
    }

    /// The atom's text, or None for a list.
    #[getter]
    fn text(&self) -> Option<&str> {
        self.doc.atom(self.id)
    }

    /// A list's first child when it is an atom (`domain` for `(domain ...)`).
    #[getter]
    fn head(&self) -> Option<&str> {
        self.doc.head(self.id)
    }

    /// Byte offset of this node in the parsed input (0 for built trees).
    #[getter]
    fn offset(&self) -> usize {
        self.doc.offset(self.id)
    }

    /// The children of a list (an empty list for an atom).
    #[getter]
    fn children(&self) -> Vec<SExpr> {
        self.doc
            .children(self.id)
            .iter()
            .map(|&c| self.at(c))
            .collect()
    }

    fn __len__(&self) -> usize {
        self.doc.children(self.id).len()
    }

    fn __getitem__(&self, index: isize) -> PyResult<SExpr> {
        let children = self.doc.children(self.id);
        let len = children.len() as isize;
        let i = if index < 0 { index + len } else { index };
        if i < 0 || i >= len {
            return Err(PyIndexError::new_err(
                "S-expression child index out of range",
            ));
        }
        Ok(self.at(children[i as usize]))
    }

    fn __iter__(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let list = PyList::new(slf.py(), slf.get().children())?;
        Ok(list.try_iter()?.into_any().unbind())
    }

    /// The first node at `path` (e.g. `domain/image/linux`), or None.
    fn get(&self, path: &str) -> PyResult<Option<SExpr>> {
        Ok(self.doc.lookup(self.id, path)?.map(|id| self.at(id)))
    }

    /// The string value at `path`, or None when absent.
    fn get_str(&self, path: &str) -> PyResult<Option<&str>> {
        Ok(self.doc.get_str(self.id, path)?)
    }

    /// The integer value at `path`, or None when absent.
    fn get_int(&self, path: &str) -> PyResult<Option<i64>> {
        Ok(self.doc.get_int(self.id, path)?)
    }

    /// The numeric value at `path`, or None when absent.
    fn get_float(&self, path: &str) -> PyResult<Option<f64>> {
        Ok(self.doc.get_float(self.id, path)?)
    }

    /// Every node at `path`, following repeated keys (`domain/device/vbd`).
    fn find_all(&self, path: &str) -> PyResult<Vec<SExpr>> {
        Ok(self
            .doc
            .find_all(self.id, path)?
            .into_iter()
            .map(|id| self.at(id))
            .collect())
    }

    /// The node as plain Python values: str for atoms, tuples for lists.
    fn to_tree(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_tree(py, &self.doc, self.id)
    }

    /// Serialize: one line, or xend's indented layout when `indent` is given.
    #[pyo3(signature = (indent=None))]
    fn dumps(&self, py: Python<'_>, indent: Option<usize>) -> String {
        serialize(py, &self.doc, self.id, indent)
    }

    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> Py<PyAny> {
        let py = other.py();
        let Ok(other) = other.cast::<SExpr>() else {
            return py.NotImplemented();
        };
        let other = other.get();
        let eq = self.doc.node_eq(self.id, &other.doc, other.id);
        match op {
            CompareOp::Eq => eq.into_pyobject(py).unwrap().to_owned().into_any().unbind(),
            CompareOp::Ne => (!eq)
                .into_pyobject(py)
                .unwrap()
                .to_owned()
                .into_any()
                .unbind(),
            _ => py.NotImplemented(),
        }
    }

    fn __str__(&self, py: Python<'_>) -> String {
        serialize(py, &self.doc, self.id, None)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let mut s = serialize(py, &self.doc, self.id, None);
        if s.chars().count() > 72 {
            s = s.chars().take(69).collect::<String>() + "...";
        }
        format!("SExpr({s:?})")
    }
}

fn serialize(py: Python<'_>, doc: &Document, id: NodeId, indent: Option<usize>) -> String {
    let work = || match indent {
        None => doc.to_string_compact(id),
        Some(n) => doc.to_string_pretty(id, n),
    };
    if doc.len() * 8 >= DETACH_THRESHOLD {
        py.detach(work)
    } else {
        work()
    }
}

fn to_tree(py: Python<'_>, doc: &Document, id: NodeId) -> PyResult<Py<PyAny>> {
    if let Some(s) = doc.atom(id) {
        return Ok(PyString::new(py, s).into_any().unbind());
    }
    // Short atoms repeat a lot (keys such as `device`, `vbd`, `uname`):
    // create each distinct one once.
    let mut interned: HashMap<&str, Bound<'_, PyString>> = HashMap::new();
    // Post-order without recursion: (list node, next child, results start).
    let mut frames: Vec<(NodeId, usize, usize)> = vec![(id, 0, 0)];
    let mut results: Vec<Bound<'_, PyAny>> = Vec::new();
    while let Some(top) = frames.last_mut() {
        let children = doc.children(top.0);
        if top.1 < children.len() {
            let child = children[top.1];
            top.1 += 1;
            match doc.view(child) {
                View::Atom(s) if s.len() > 24 => results.push(PyString::new(py, s).into_any()),
                View::Atom(s) => results.push(
                    interned
                        .entry(s)
                        .or_insert_with(|| PyString::new(py, s))
                        .clone()
                        .into_any(),
                ),
                View::List(_) => frames.push((child, 0, results.len())),
            }
        } else {
            let start = top.2;
            frames.pop();
            let tuple = PyTuple::new(py, results.drain(start..))?;
            results.push(tuple.into_any());
        }
    }
    Ok(results
        .pop()
        .expect("the root list leaves one result")
        .unbind())
}

fn type_error(obj: &Bound<'_, PyAny>) -> PyErr {
    let name = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    CoreError::InvalidArgument(format!(
        "S-expression trees are made of str (or int) atoms and tuples or lists, found {name}"
    ))
    .into()
}

/// Build a document from a Python tree (str/int atoms, tuple/list lists).
fn build<'py>(tree: &Bound<'py, PyAny>) -> PyResult<Document> {
    if let Ok(node) = tree.cast::<SExpr>() {
        let node = node.get();
        // Re-root a copy so that only this subtree is serialized.
        let mut b = Builder::new();
        let root = copy_into(&mut b, &node.doc, node.id)?;
        return Ok(b.finish(root));
    }
    let mut b = Builder::new();
    if let Some(id) = atom_of(&mut b, tree)? {
        return Ok(b.finish(id));
    }
    struct Frame<'py> {
        seq: Bound<'py, PySequence>,
        len: usize,
        next: usize,
        first: usize,
        addr: usize,
    }
    let open = |obj: &Bound<'py, PyAny>, first: usize| -> PyResult<Frame<'py>> {
        let seq = obj
            .cast::<PySequence>()
            .map_err(|_| type_error(obj))?
            .clone();
        let len = seq.len()?;
        Ok(Frame {
            seq,
            len,
            next: 0,
            first,
            addr: obj.as_ptr() as usize,
        })
    };
    let mut on_path: HashSet<usize> = HashSet::new();
    let mut scratch: Vec<NodeId> = Vec::new();
    let mut frames = vec![open(tree, 0)?];
    on_path.insert(frames[0].addr);
    loop {
        let top = frames.last_mut().expect("loop ends when the root closes");
        if top.next < top.len {
            let item = top.seq.get_item(top.next)?;
            top.next += 1;
            if let Some(id) = atom_of(&mut b, &item)? {
                scratch.push(id);
            } else if let Ok(node) = item.cast::<SExpr>() {
                let node = node.get();
                scratch.push(copy_into(&mut b, &node.doc, node.id)?);
            } else {
                if !(item.is_instance_of::<PyTuple>() || item.is_instance_of::<PyList>()) {
                    return Err(type_error(&item));
                }
                let frame = open(&item, scratch.len())?;
                if !on_path.insert(frame.addr) {
                    return Err(CoreError::InvalidArgument(
                        "S-expression tree contains a cycle".into(),
                    )
                    .into());
                }
                frames.push(frame);
            }
        } else {
            let frame = frames.pop().expect("non-empty");
            on_path.remove(&frame.addr);
            let id = b.list(&scratch[frame.first..])?;
            scratch.truncate(frame.first);
            if frames.is_empty() {
                return Ok(b.finish(id));
            }
            scratch.push(id);
        }
    }
}

fn atom_of(b: &mut Builder, obj: &Bound<'_, PyAny>) -> PyResult<Option<NodeId>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Some(b.atom(&s.to_cow()?)?));
    }
    if obj.is_instance_of::<PyInt>() && !obj.is_instance_of::<pyo3::types::PyBool>() {
        return Ok(Some(b.atom(&obj.str()?.to_cow()?)?));
    }
    if obj.is_instance_of::<PyTuple>()
        || obj.is_instance_of::<PyList>()
        || obj.is_instance_of::<SExpr>()
    {
        return Ok(None);
    }
    Err(type_error(obj))
}

/// Copy a subtree of `doc` into a builder, children first, without recursion.
fn copy_into(b: &mut Builder, doc: &Document, id: NodeId) -> PyResult<NodeId> {
    if let Some(s) = doc.atom(id) {
        return Ok(b.atom(s)?);
    }
    let mut frames: Vec<(NodeId, usize, usize)> = vec![(id, 0, 0)];
    let mut scratch: Vec<NodeId> = Vec::new();
    loop {
        let top = frames.last_mut().expect("loop ends when the root closes");
        let children = doc.children(top.0);
        if top.1 < children.len() {
            let child = children[top.1];
            top.1 += 1;
            match doc.view(child) {
                View::Atom(s) => scratch.push(b.atom(s)?),
                View::List(_) => frames.push((child, 0, scratch.len())),
            }
        } else {
            let first = top.2;
            frames.pop();
            let new = b.list(&scratch[first..])?;
            scratch.truncate(first);
            if frames.is_empty() {
                return Ok(new);
            }
            scratch.push(new);
        }
    }
}

/// Parse one S-expression from bytes or str.
#[pyfunction]
#[pyo3(signature = (data, *, lenient=false))]
fn sexpr_parse(py: Python<'_>, data: &Bound<'_, PyAny>, lenient: bool) -> PyResult<SExpr> {
    let options = ParseOptions { lenient };
    let doc = if let Ok(bytes) = data.cast::<PyBytes>() {
        parse_slice(py, bytes.as_bytes(), options)?
    } else if let Ok(text) = data.cast::<PyString>() {
        let text = text.to_str().map_err(|_| {
            PyErr::from(CoreError::InvalidArgument(
                "S-expression text contains a lone surrogate; pass bytes or valid text".into(),
            ))
        })?;
        parse_slice(py, text.as_bytes(), options)?
    } else {
        return Err(CoreError::InvalidArgument(format!(
            "S-expressions are parsed from bytes or str, not {}",
            data.get_type().name()?
        ))
        .into());
    };
    let root = doc.root();
    Ok(SExpr {
        doc: Arc::new(doc),
        id: root,
    })
}

fn parse_slice(py: Python<'_>, input: &[u8], options: ParseOptions) -> PyResult<Document> {
    let result = if input.len() >= DETACH_THRESHOLD {
        py.detach(|| core::parse(input, options))
    } else {
        core::parse(input, options)
    };
    Ok(result?)
}

/// Serialize a tree (an SExpr, or str/int atoms in tuples/lists).
#[pyfunction]
#[pyo3(signature = (tree, *, indent=None))]
fn sexpr_dumps(py: Python<'_>, tree: &Bound<'_, PyAny>, indent: Option<usize>) -> PyResult<String> {
    if let Ok(node) = tree.cast::<SExpr>() {
        let node = node.get();
        return Ok(serialize(py, &node.doc, node.id, indent));
    }
    let doc = build(tree)?;
    Ok(serialize(py, &doc, doc.root(), indent))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SExpr>()?;
    m.add_function(wrap_pyfunction!(sexpr_parse, m)?)?;
    m.add_function(wrap_pyfunction!(sexpr_dumps, m)?)?;
    Ok(())
}
