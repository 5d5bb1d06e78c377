//! The console's rooms import no circle: each file (a module) may use the
//! rooms below it, never one that uses it back; pages and the API never
//! import each other. Read from the source, so a new import that closes a
//! circle fails here with the circle named.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `src/pages/board.rs` → `pages::board`; `src/auth/mod.rs` → `auth`.
fn module_of(relative: &Path) -> String {
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts.join("::")
}

fn sources(dir: &Path, root: &Path, found: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, root, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            // Unit tests may reach anywhere.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default().to_string();
            found.insert(module_of(path.strip_prefix(root).unwrap()), code);
        }
    }
}

/// Every `word::word::…` path in the code, as its segments.
fn paths(code: &str) -> Vec<Vec<&str>> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("::") {
        let start = rest[..at].rfind(|c: char| !is_word(c) && c != ':').map_or(0, |i| i + 1);
        let mut end = at;
        while rest[end..].starts_with("::") {
            let word = rest[end + 2..].find(|c: char| !is_word(c)).map_or(rest.len(), |i| end + 2 + i);
            if word == end + 2 {
                break;
            }
            end = word;
        }
        let path: Vec<&str> = rest[start..end].split("::").filter(|s| !s.is_empty()).collect();
        found.push(path);
        rest = &rest[end.max(at + 2)..];
    }
    found
}

/// The longest known module a path names, from `module`'s point of view.
fn resolve(module: &str, path: &[&str], modules: &BTreeSet<String>) -> Option<String> {
    let mut base: Vec<&str> = match path.first() {
        Some(&"crate") => Vec::new(),
        Some(&"super") => {
            let mut parent: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
            parent.pop();
            parent
        }
        Some(&"self") => module.split("::").filter(|s| !s.is_empty()).collect(),
        // A child module named from its parent (`session::CurrentSession`).
        Some(first) if modules.contains(&join(module, first)) => module.split("::").filter(|s| !s.is_empty()).collect(),
        _ => return None,
    };
    let skip = usize::from(matches!(path.first(), Some(&"crate" | &"super" | &"self")));
    let mut best = base.join("::");
    for segment in &path[skip..] {
        base.push(segment);
        let candidate = base.join("::");
        if modules.contains(&candidate) {
            best = candidate;
        } else {
            break;
        }
    }
    Some(best)
}

fn join(module: &str, child: &str) -> String {
    if module.is_empty() { child.to_string() } else { format!("{module}::{child}") }
}

fn cycle_from(
    node: &str,
    edges: &BTreeMap<String, BTreeSet<String>>,
    stack: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(at) = stack.iter().position(|n| n == node) {
        let mut cycle = stack[at..].to_vec();
        cycle.push(node.to_string());
        return Some(cycle);
    }
    if done.contains(node) {
        return None;
    }
    stack.push(node.to_string());
    for next in edges.get(node).into_iter().flatten() {
        if let Some(cycle) = cycle_from(next, edges, stack, done) {
            return Some(cycle);
        }
    }
    stack.pop();
    done.insert(node.to_string());
    None
}

#[test]
fn the_consoles_rooms_import_no_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    sources(&root, &root, &mut files);
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    assert!(modules.len() > 20, "the console's files were found: {modules:?}");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, code) in &files {
        for path in paths(code) {
            if let Some(target) = resolve(module, &path, &modules)
                && &target != module
                && !target.is_empty()
                && !module.is_empty()
            {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    let mut done = BTreeSet::new();
    for module in &modules {
        if let Some(cycle) = cycle_from(module, &edges, &mut Vec::new(), &mut done) {
            panic!("an import circle: {}", cycle.join(" → "));
        }
    }
    for (from, targets) in &edges {
        for to in targets {
            let crosses = (from.starts_with("pages") && to.starts_with("api"))
                || (from.starts_with("api") && to.starts_with("pages"))
                || (from.starts_with("pages::") && to.starts_with("pages::") && !to.starts_with(from.as_str()));
            assert!(!crosses, "{from} imports {to}: pages and the API share through scope and views");
        }
    }
    // The check itself sees imports: the API does use the scope rules.
    assert!(edges["api::elders"].contains("scope"), "{:?}", edges["api::elders"]);
}
