//! The crate's layering, checked: the top-level modules of `dkv/src` and
//! the `crate::` paths between them form a graph that must have no cycle,
//! and the layers must keep their one-way order (start-up -> IO ->
//! command -> node -> disk, store, codecs).
//!
//! The check reads the sources as text: every `crate::<module>` path
//! (also inside `use crate::{a, b::c}` groups) and every `super::<module>`
//! from a module's root file counts as an edge; comments do not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Removes `//` and `/* */` comments and the contents of string literals,
/// so that prose and messages never count as imports.
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'"' => {
                out.push('"');
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                out.push('"');
                i += 1;
            }
            // A char literal such as '"' or '{' must not open a string or
            // a group; lifetimes ('a) are left alone.
            b'\'' if bytes.get(i + 2) == Some(&b'\'') => {
                out.push_str("' '");
                i += 3;
            }
            b'\'' if bytes.get(i + 1) == Some(&b'\\') => {
                out.push_str("' '");
                i += 2;
                while i < bytes.len() && bytes[i] != b'\'' {
                    i += 1;
                }
                i += 1;
            }
            c => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    out
}

fn ident_at(text: &str, start: usize) -> String {
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The top-level module names a file refers to through `prefix` (for
/// example `crate::`).
fn referenced(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut from = 0;
    while let Some(at) = code[from..].find(prefix) {
        let start = from + at + prefix.len();
        from = start;
        // Only a path that starts here: `foo::crate::x` is not one.
        let before = code[..from - prefix.len()].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        if code[start..].starts_with('{') {
            // A group: the first name of each top-level item.
            let mut depth = 0;
            let mut item_start = true;
            for (offset, c) in code[start..].char_indices() {
                match c {
                    '{' => {
                        depth += 1;
                        item_start = depth == 1;
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    c if item_start && depth == 1 && (c.is_ascii_alphabetic() || c == '_') => {
                        found.insert(ident_at(code, start + offset));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident_at(code, start);
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

/// Top-level module -> the top-level modules it uses.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| f.strip_prefix(&src).ok())
        .filter_map(|rel| {
            let first = rel.components().next()?.as_os_str().to_str()?;
            let name = first.trim_end_matches(".rs");
            (name != "lib" && name != "bin").then(|| name.to_string())
        })
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for file in &files {
        let Ok(rel) = file.strip_prefix(&src) else {
            continue;
        };
        let parts: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
        let module = parts[0].trim_end_matches(".rs").to_string();
        if !modules.contains(&module) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let code = code_only(&text);
        let mut uses = referenced(&code, "crate::");
        // `super::` from a module's root file names the crate root.
        let is_root = parts.len() == 1 || parts.get(1) == Some(&"mod.rs");
        if is_root {
            uses.extend(referenced(&code, "super::"));
        }
        let edges = graph.entry(module.clone()).or_default();
        for used in uses {
            if used != module && modules.contains(&used) {
                edges.insert(used);
            }
        }
    }
    graph
}

/// A cycle in the graph, if there is one, as the modules along it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> = graph.keys().map(|k| (k.as_str(), Mark::New)).collect();
    // Iterative depth-first search: (module, its edges not yet followed).
    for root in graph.keys() {
        if marks[root.as_str()] != Mark::New {
            continue;
        }
        let mut stack: Vec<(&str, Vec<&str>)> = Vec::new();
        marks.insert(root, Mark::Open);
        stack.push((root, graph[root].iter().map(String::as_str).collect()));
        while let Some((module, pending)) = stack.last_mut() {
            let module = *module;
            match pending.pop() {
                None => {
                    marks.insert(module, Mark::Done);
                    stack.pop();
                }
                Some(next) => match marks.get(next).copied() {
                    Some(Mark::Open) => {
                        let from = stack.iter().position(|(m, _)| *m == next).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            stack[from..].iter().map(|(m, _)| m.to_string()).collect();
                        cycle.push(next.to_string());
                        return Some(cycle);
                    }
                    Some(Mark::New) => {
                        marks.insert(next, Mark::Open);
                        let edges = graph
                            .get(next)
                            .map(|e| e.iter().map(String::as_str).collect())
                            .unwrap_or_default();
                        stack.push((next, edges));
                    }
                    _ => {}
                },
            }
        }
    }
    None
}

/// The layers, top down: a module may use only modules of lower layers
/// (or of its own layer, when the two never use each other).
const LAYERS: &[&[&str]] = &[
    &["server"],
    &["net", "client"],
    &["command"],
    &["disk"],
    &["node"],
    &["store", "peer", "resp", "config"],
    &["wal", "snapshot", "ring"],
    &["engine", "clock", "slab", "counter"],
    &["hash", "version", "random", "glob", "allocator"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

#[test]
fn the_checker_sees_imports_and_ignores_prose() {
    let code = code_only(
        "use crate::{alpha::X, beta, gamma::{a, b}};\n// crate::prose\nlet s = \"crate::quoted\";\nlet c = '{';\nfn f() { crate::delta::g(); other::crate::no(); }\n",
    );
    let found = referenced(&code, "crate::");
    let expected: BTreeSet<String> = ["alpha", "beta", "delta", "gamma"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, expected);
    let mut cyclic = BTreeMap::new();
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a")] {
        cyclic
            .entry(from.to_string())
            .or_insert_with(BTreeSet::new)
            .insert(to.to_string());
    }
    assert_eq!(
        find_cycle(&cyclic).map(|c| c.len()),
        Some(4),
        "a -> b -> c -> a"
    );
}

#[test]
fn top_level_modules_form_no_cycle() {
    let graph = module_graph();
    assert!(graph.contains_key("node") && graph.contains_key("net"));
    if let Some(cycle) = find_cycle(&graph) {
        panic!("module cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn imports_run_one_way_through_the_layers() {
    let graph = module_graph();
    let mut problems = Vec::new();
    for (module, uses) in &graph {
        let Some(layer) = layer_of(module) else {
            problems.push(format!("module `{module}` is in no layer of this test"));
            continue;
        };
        for used in uses {
            match layer_of(used) {
                Some(l) if l > layer => {}
                Some(l) if l == layer && !graph[used].contains(module) => {}
                _ => problems.push(format!("`{module}` uses `{used}`, a layer at or above it")),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
