//! Every public method of the `Ipc` façade carries a compiled example in its
//! rustdoc (the doctests run under `cargo test`); this test fails naming any that
//! lacks one, so a new method cannot slip in undocumented.

use std::path::PathBuf;

const FACADE_FILES: &[&str] = &[
    "kernel.rs",
    "mailbox.rs",
    "pipe.rs",
    "fifo.rs",
    "mqueue.rs",
    "shm.rs",
    "semaphore.rs",
    "notification.rs",
];

/// The public methods of `impl ... Ipc<...>` blocks in `text` without a code
/// example in their doc comment.
fn methods_without_examples(text: &str) -> (usize, Vec<String>) {
    let lines: Vec<&str> = text.lines().collect();
    let mut in_facade = false;
    let mut methods = 0;
    let mut missing = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if line.starts_with("impl") || line.starts_with("impl<") {
            in_facade = false;
        }
        if line.starts_with('>') && line.contains("Ipc<") || line.trim_start().starts_with("Ipc<") {
            in_facade = true;
        }
        if line.starts_with("mod tests") || line.starts_with("#[cfg(test)]") {
            break;
        }
        let Some(rest) = line
            .strip_prefix("    pub fn ")
            .or_else(|| line.strip_prefix("    pub const fn "))
        else {
            continue;
        };
        if !in_facade {
            continue;
        }
        methods += 1;
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let mut above = index;
        while above > 0 && lines[above - 1].trim_start().starts_with("#[") {
            above -= 1;
        }
        let mut has_example = false;
        while above > 0 && lines[above - 1].trim_start().starts_with("///") {
            above -= 1;
            has_example |= lines[above].contains("```");
        }
        if !has_example {
            missing.push(name);
        }
    }
    (methods, missing)
}

#[test]
fn every_facade_method_has_an_example() {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut total = 0;
    let mut missing = Vec::new();
    for file in FACADE_FILES {
        let text = std::fs::read_to_string(source.join(file)).expect("readable source");
        let (methods, without) = methods_without_examples(&text);
        total += methods;
        missing.extend(
            without
                .into_iter()
                .map(|name| format!("{file}: Ipc::{name}")),
        );
    }
    assert!(
        total >= 50,
        "found only {total} façade methods: the scan is broken"
    );
    assert!(
        missing.is_empty(),
        "façade methods without a rustdoc example:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn the_scan_notices_a_missing_example() {
    let text = "impl<\n    const P: usize,\n> Ipc<P>\n{\n    /// Documented.\n    ///\n    /// ```\n    /// x();\n    /// ```\n    pub fn good(&self) {}\n\n    /// No example.\n    #[inline]\n    pub fn bad(&self) {}\n}\n";
    assert_eq!(methods_without_examples(text), (2, vec!["bad".to_string()]));
}
