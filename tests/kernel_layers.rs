//! The demo kernel's layering, checked from its sources.
//!
//! The kernel (`qemu/kernel/src`) is built in one-way layers, bottom to top:
//! `memory` -> `processes` -> `services` -> `syscalls` -> `scenarios`, wired
//! together by `main.rs` (and everything sits on the `kipc-arch` crate). A
//! file may name (`crate::...`, `super::...`, or a child module from a
//! `mod.rs`) only files of its own layer or a lower one, and no files may
//! import each other in a cycle, inside a layer or across layers. This test
//! parses every path in every file (comments stripped) and fails with the
//! offending file, the path and the rule it breaks.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, bottom first. `main.rs` is above them all.
const LAYERS: &[&str] = &["memory", "processes", "services", "syscalls", "scenarios"];

fn layer_of(file: &str) -> usize {
    let top = file.split('/').next().unwrap_or(file);
    LAYERS
        .iter()
        .position(|layer| *layer == top)
        .unwrap_or(LAYERS.len())
}

/// Removes `//` comments (doc comments included), `/* */` comments and the
/// contents of string literals, so that only code is searched.
fn strip(text: &str) -> String {
    let bytes: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut index = 0;
    while index < bytes.len() {
        let here = bytes[index];
        let next = bytes.get(index + 1).copied();
        if here == '/' && next == Some('/') {
            while index < bytes.len() && bytes[index] != '\n' {
                index += 1;
            }
        } else if here == '/' && next == Some('*') {
            index += 2;
            while index + 1 < bytes.len() && !(bytes[index] == '*' && bytes[index + 1] == '/') {
                index += 1;
            }
            index += 2;
        } else if here == '"' {
            out.push('"');
            index += 1;
            while index < bytes.len() && bytes[index] != '"' {
                if bytes[index] == '\\' {
                    index += 1;
                }
                index += 1;
            }
            out.push('"');
            index += 1;
        } else if here == '\'' && bytes.get(index + 2) == Some(&'\'') {
            // A character literal such as '{' (lifetimes have no closing quote).
            out.push_str("' '");
            index += 3;
        } else {
            out.push(here);
            index += 1;
        }
    }
    out
}

/// Parses a use tree starting at `text` (just after `crate::` or `super::`)
/// into full paths: `a::{b, c::{d}}` gives `a::b` and `a::c::d`.
fn paths(text: &str) -> Vec<Vec<String>> {
    fn tree(chars: &[char], at: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        let mut path = prefix;
        loop {
            while *at < chars.len() && chars[*at].is_whitespace() {
                *at += 1;
            }
            if *at < chars.len() && chars[*at] == '{' {
                *at += 1;
                loop {
                    tree(chars, at, path.clone(), out);
                    while *at < chars.len() && chars[*at].is_whitespace() {
                        *at += 1;
                    }
                    match chars.get(*at) {
                        Some(',') => {
                            *at += 1;
                            while *at < chars.len() && chars[*at].is_whitespace() {
                                *at += 1;
                            }
                            if chars.get(*at) == Some(&'}') {
                                *at += 1;
                                return;
                            }
                        }
                        Some('}') => {
                            *at += 1;
                            return;
                        }
                        _ => return,
                    }
                }
            }
            let start = *at;
            while *at < chars.len() && (chars[*at].is_alphanumeric() || chars[*at] == '_') {
                *at += 1;
            }
            if start == *at {
                if !path.is_empty() {
                    out.push(path);
                }
                return;
            }
            let word: String = chars[start..*at].iter().collect();
            if word != "self" {
                path.push(word);
            }
            if chars.get(*at) == Some(&':') && chars.get(*at + 1) == Some(&':') {
                *at += 2;
                continue;
            }
            out.push(path);
            return;
        }
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    tree(&chars, &mut 0, Vec::new(), &mut out);
    out
}

/// Resolves a path to the file it names. `base` is the directory (relative
/// to `src`, "" for the crate root) the path starts in.
fn resolve(files: &BTreeSet<String>, base: &str, path: &[String]) -> Option<String> {
    let first = path.first()?;
    let join = |name: &str| {
        if base.is_empty() {
            name.to_string()
        } else {
            format!("{base}/{name}")
        }
    };
    let as_file = join(&format!("{first}.rs"));
    if files.contains(&as_file) {
        return Some(as_file);
    }
    let directory = join(first);
    if files.contains(&format!("{directory}/mod.rs")) {
        if let Some(second) = path.get(1) {
            let inner = format!("{directory}/{second}.rs");
            if files.contains(&inner) {
                return Some(inner);
            }
        }
        return Some(format!("{directory}/mod.rs"));
    }
    None
}

/// Every rule the sources break, one line each; empty when the layering holds.
/// `sources` maps a path relative to `src` ("memory/frames.rs") to its text.
fn problems(sources: &BTreeMap<String, String>) -> Vec<String> {
    let files: BTreeSet<String> = sources.keys().cloned().collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut found = Vec::new();
    for (file, text) in sources {
        let code = strip(text);
        let directory = file.rsplit_once('/').map_or("", |(directory, _)| directory);
        let is_mod = file.ends_with("mod.rs") || file == "main.rs";
        let mut targets = Vec::new();
        for (marker, base) in [("crate::", ""), ("super::", directory)] {
            for (index, _) in code.match_indices(marker) {
                let before = code[..index].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                if marker == "super::" && (is_mod || directory.is_empty()) {
                    found.push(format!("{file}: `super::` from a module root"));
                    continue;
                }
                for path in paths(&code[index + marker.len()..]) {
                    match resolve(&files, base, &path) {
                        Some(target) => targets.push((target, path.join("::"))),
                        None if marker == "crate::" && !path.is_empty() => {
                            // An item of the crate root (main.rs).
                            targets.push(("main.rs".to_string(), path.join("::")));
                        }
                        None => found.push(format!(
                            "{file}: cannot resolve `{marker}{}`",
                            path.join("::")
                        )),
                    }
                }
            }
        }
        if is_mod {
            // A module root names its children by their bare names.
            for child in &files {
                let Some(name) = child
                    .strip_prefix(directory)
                    .and_then(|rest| rest.strip_prefix('/').or(Some(rest)))
                    .filter(|_| !directory.is_empty())
                    .and_then(|rest| rest.strip_suffix(".rs"))
                    .filter(|name| !name.contains('/') && *name != "mod")
                else {
                    continue;
                };
                let used = code.match_indices(&format!("{name}::")).any(|(index, _)| {
                    !code[..index]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                });
                if used {
                    targets.push((child.clone(), name.to_string()));
                }
            }
        }
        for (target, path) in targets {
            if &target == file {
                continue;
            }
            if file != "main.rs" && layer_of(&target) > layer_of(file) {
                found.push(format!(
                    "{file} (layer {}) names `{path}` in {target} (layer {}): a lower layer must not name a higher one; pass a hook instead",
                    layer_name(file),
                    layer_name(&target)
                ));
            }
            edges.entry(file.clone()).or_default().insert(target);
        }
    }
    for cycle in cycles(&edges) {
        found.push(format!("import cycle: {}", cycle.join(" -> ")));
    }
    found
}

fn layer_name(file: &str) -> &str {
    LAYERS.get(layer_of(file)).copied().unwrap_or("main")
}

/// The strongly connected components with more than one file (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a str) {
        state.index.insert(node, state.next);
        state.low.insert(node, state.next);
        state.next += 1;
        state.stack.push(node);
        state.on_stack.insert(node);
        if let Some(targets) = state.edges.get(node) {
            for target in targets {
                let target = target.as_str();
                if !state.index.contains_key(target) {
                    visit(state, target);
                    let low = state.low[node].min(state.low[target]);
                    state.low.insert(node, low);
                } else if state.on_stack.contains(target) {
                    let low = state.low[node].min(state.index[target]);
                    state.low.insert(node, low);
                }
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(member) = state.stack.pop() {
                state.on_stack.remove(member);
                component.push(member.to_string());
                if member == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    let nodes: BTreeSet<&str> = edges
        .iter()
        .flat_map(|(from, to)| std::iter::once(from.as_str()).chain(to.iter().map(String::as_str)))
        .collect();
    for node in nodes {
        if !state.index.contains_key(node) {
            visit(&mut state, node);
        }
    }
    state.found
}

fn read_tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, directory: &Path, out: &mut BTreeMap<String, String>) {
        for entry in fs::read_dir(directory).expect("readable source directory") {
            let path: PathBuf = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                let relative = path
                    .strip_prefix(root)
                    .expect("inside the root")
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(
                    relative,
                    fs::read_to_string(&path).expect("readable source"),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn demo_kernel_layers_point_one_way_and_have_no_cycles() {
    let sources = read_tree(&repository().join("qemu/kernel/src"));
    for layer in LAYERS {
        assert!(
            sources
                .keys()
                .any(|file| file.starts_with(&format!("{layer}/"))),
            "the layer `{layer}` has no directory under qemu/kernel/src"
        );
    }
    let stray: Vec<&String> = sources
        .keys()
        .filter(|file| !file.contains('/') && *file != "main.rs")
        .collect();
    assert!(
        stray.is_empty(),
        "files outside every layer (move them into one): {stray:?}"
    );
    let found = problems(&sources);
    assert!(
        found.is_empty(),
        "the demo kernel's layering is broken:\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn kernels_share_the_arch_crate() {
    let arch = repository().join("qemu/arch/src");
    for file in read_tree(&arch).keys() {
        let text = fs::read_to_string(arch.join(file)).expect("readable");
        for kernel_name in ["kipc_kernel", "kipc::"] {
            assert!(
                !strip(&text).contains(kernel_name),
                "qemu/arch/src/{file} names `{kernel_name}`: the arch crate must not depend on a kernel or on kipc"
            );
        }
    }
    for kernel in ["qemu/kernel", "qemu/minimal-kernel"] {
        let manifest = repository().join(kernel).join("Cargo.toml");
        let Ok(manifest) = fs::read_to_string(&manifest) else {
            assert_eq!(kernel, "qemu/minimal-kernel", "{kernel} has no Cargo.toml");
            continue;
        };
        assert!(
            manifest.contains("kipc-arch = { path = \"../arch\" }"),
            "{kernel} does not build on the shared arch crate (qemu/arch)"
        );
    }
}

fn synthetic(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(name, text)| (name.to_string(), text.to_string()))
        .collect()
}

#[test]
fn checker_reports_a_lower_layer_naming_a_higher_one() {
    let sources = synthetic(&[
        ("main.rs", "mod memory; mod processes;"),
        ("memory/mod.rs", "pub mod frames;"),
        ("memory/frames.rs", "use crate::processes::table::Process;"),
        ("processes/mod.rs", "pub mod table;"),
        ("processes/table.rs", "use crate::memory::frames;"),
    ]);
    let found = problems(&sources);
    assert!(
        found.iter().any(|line| line
            .starts_with("memory/frames.rs (layer memory) names `processes::table::Process`")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|line| line.starts_with("import cycle:")),
        "{found:?}"
    );
}

#[test]
fn checker_reports_a_cycle_inside_a_layer_and_ignores_comments() {
    let sources = synthetic(&[
        ("processes/mod.rs", "pub mod a;\npub mod b;"),
        (
            "processes/a.rs",
            "// use crate::syscalls::x;\nuse super::b;",
        ),
        (
            "processes/b.rs",
            "use super::{a, c};\nlet s = \"crate::syscalls\";",
        ),
        ("processes/c.rs", ""),
    ]);
    let found = problems(&sources);
    assert_eq!(
        found,
        vec!["import cycle: processes/a.rs -> processes/b.rs".to_string()]
    );
}

#[test]
fn use_trees_expand_to_full_paths() {
    let expanded = paths("{a, b::{c, self, d::e}}, z;");
    let joined: Vec<String> = expanded.iter().map(|path| path.join("::")).collect();
    assert_eq!(joined, ["a", "b::c", "b", "b::d::e"]);
    assert_eq!(
        paths("memory::address_space::AddressSpace;")[0].join("::"),
        "memory::address_space::AddressSpace"
    );
}
