//! Every relative link in the documentation leads somewhere.
//!
//! Scans `README.md`, every `docs/**/*.md` and, when present, `labs/**/*.md`;
//! extracts markdown links (`[text](target)`, images, and reference
//! definitions `[label]: target`) outside fenced code blocks and inline code;
//! ignores web and mail links; and checks that each target file exists
//! relative to the markdown file and that each `#anchor` into a markdown file
//! matches one of its headings under GitHub's slug rules. It also checks that
//! README.md links every `docs/*.md` page. Failures list every broken link.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `directory`'s markdown files, in name order; with `recursive`, also those of
/// its subdirectories.
fn markdown_files(directory: &Path, recursive: bool, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(directory) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            if recursive {
                markdown_files(&path, true, found);
            }
        } else if path.extension().is_some_and(|extension| extension == "md") {
            found.push(path);
        }
    }
}

/// The documentation this test checks.
fn documents() -> Vec<PathBuf> {
    let root = root();
    let mut found = vec![root.join("README.md")];
    markdown_files(&root.join("docs"), true, &mut found);
    markdown_files(&root.join("labs"), true, &mut found);
    found
}

/// A link found in a markdown file.
#[derive(Debug, PartialEq)]
struct Link {
    line: usize,
    target: String,
}

/// Whether `line` opens or closes a fenced code block; returns the fence
/// character and length.
fn fence(line: &str) -> Option<(char, usize)> {
    let trimmed = line.trim_start();
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let character = trimmed.chars().next()?;
    if character != '`' && character != '~' {
        return None;
    }
    let length = trimmed.chars().take_while(|&c| c == character).count();
    (length >= 3).then_some((character, length))
}

/// The lines of `text` that are outside fenced code blocks, numbered from 1.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut lines = Vec::new();
    let mut open: Option<(char, usize)> = None;
    for (index, line) in text.lines().enumerate() {
        match (open, fence(line)) {
            (None, Some(found)) => open = Some(found),
            (Some((character, length)), Some((found, found_length)))
                if found == character
                    && found_length >= length
                    && line.trim().chars().all(|c| c == character) =>
            {
                open = None
            }
            (None, None) => lines.push((index + 1, line)),
            _ => {}
        }
    }
    lines
}

/// `line` with inline code spans blanked out (same length, so positions hold).
fn without_code_spans(line: &str) -> Vec<char> {
    let mut characters: Vec<char> = line.chars().collect();
    let mut index = 0;
    while index < characters.len() {
        if characters[index] == '\\' {
            index += 2;
            continue;
        }
        if characters[index] != '`' {
            index += 1;
            continue;
        }
        let run = characters[index..]
            .iter()
            .take_while(|&&c| c == '`')
            .count();
        // Find the closing run of exactly the same length.
        let mut search = index + run;
        let mut close = None;
        while search < characters.len() {
            if characters[search] == '`' {
                let length = characters[search..]
                    .iter()
                    .take_while(|&&c| c == '`')
                    .count();
                if length == run {
                    close = Some(search);
                    break;
                }
                search += length;
            } else {
                search += 1;
            }
        }
        match close {
            Some(close) => {
                for character in &mut characters[index..close + run] {
                    *character = ' ';
                }
                index = close + run;
            }
            None => index += run,
        }
    }
    characters
}

/// The position just past the bracket or parenthesis that closes the one at
/// `open`, skipping escaped characters.
fn matching(characters: &[char], open: usize, left: char, right: char) -> Option<usize> {
    let mut depth = 0;
    let mut index = open;
    while index < characters.len() {
        let character = characters[index];
        if character == '\\' {
            index += 2;
            continue;
        }
        if character == left {
            depth += 1;
        } else if character == right {
            depth -= 1;
            if depth == 0 {
                return Some(index);
            }
        }
        index += 1;
    }
    None
}

/// The destination inside `(...)`: `<...>` or up to the first space (a title
/// may follow).
fn destination(inside: &str) -> String {
    let inside = inside.trim();
    if let Some(rest) = inside.strip_prefix('<') {
        return rest.split('>').next().unwrap_or("").to_string();
    }
    inside.split_whitespace().next().unwrap_or("").to_string()
}

/// Every link target in `text`, outside code.
fn links(text: &str) -> Vec<Link> {
    let mut found = Vec::new();
    for (number, line) in prose_lines(text) {
        let characters = without_code_spans(line);
        let prose: String = characters.iter().collect();
        // A reference definition: `[label]: target`.
        let trimmed: Vec<char> = prose.trim_start().chars().collect();
        if trimmed.first() == Some(&'[')
            && trimmed.get(1) != Some(&'^')
            && let Some(close) = matching(&trimmed, 0, '[', ']')
            && trimmed.get(close + 1) == Some(&':')
        {
            let rest: String = trimmed[close + 2..].iter().collect();
            found.push(Link {
                line: number,
                target: destination(&rest),
            });
            continue;
        }
        let mut index = 0;
        while index < characters.len() {
            match characters[index] {
                '\\' => index += 2,
                '[' => {
                    if let Some(close) = matching(&characters, index, '[', ']')
                        && characters.get(close + 1) == Some(&'(')
                        && let Some(end) = matching(&characters, close + 1, '(', ')')
                    {
                        let inside: String = characters[close + 2..end].iter().collect();
                        found.push(Link {
                            line: number,
                            target: destination(&inside),
                        });
                    }
                    // Go on inside the text too: it may hold an image link.
                    index += 1;
                }
                _ => index += 1,
            }
        }
    }
    found
}

/// The anchor GitHub gives a heading: lowercase; letters, digits, spaces,
/// '-' and '_' kept; spaces become '-'; everything else dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|&c| c.is_alphanumeric() || c == ' ' || c == '-' || c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// A heading's text as it renders: links become their text, emphasis and code
/// marks go (the slug drops them anyway).
fn heading_text(raw: &str) -> String {
    let characters: Vec<char> = raw.chars().collect();
    let mut text = String::new();
    let mut index = 0;
    while index < characters.len() {
        if characters[index] == '['
            && let Some(close) = matching(&characters, index, '[', ']')
            && characters.get(close + 1) == Some(&'(')
            && let Some(end) = matching(&characters, close + 1, '(', ')')
        {
            text.extend(&characters[index + 1..close]);
            index = end + 1;
            continue;
        }
        text.push(characters[index]);
        index += 1;
    }
    text
}

/// The anchors of `text`'s headings, with GitHub's `-1`, `-2`, ... suffixes
/// for repeats, plus explicit `id="..."` / `name="..."` anchors.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    let lines = prose_lines(text);
    let mut headings = Vec::new();
    for (position, &(number, line)) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if line.len() - trimmed.len() <= 3 && trimmed.starts_with('#') {
            let level = trimmed.chars().take_while(|&c| c == '#').count();
            let rest = &trimmed[level..];
            if level <= 6 && (rest.is_empty() || rest.starts_with(' ')) {
                let rest = rest.trim();
                // A closing sequence of '#'s is not part of the heading.
                let rest = rest.trim_end_matches('#').trim_end();
                headings.push(rest.to_string());
            }
        } else if let Some(&(next_number, next)) = lines.get(position + 1) {
            // Setext: a paragraph line underlined with '=' or '-'.
            let underline = next.trim();
            let underlined = next_number == number + 1
                && !underline.is_empty()
                && (underline.chars().all(|c| c == '=')
                    || (underline.len() >= 3 && underline.chars().all(|c| c == '-')));
            if underlined
                && !trimmed.is_empty()
                && !trimmed.starts_with('|')
                && !trimmed.starts_with('-')
                && !trimmed.starts_with('*')
            {
                headings.push(trimmed.trim().to_string());
            }
        }
        for attribute in ["id=\"", "name=\""] {
            let mut rest = line;
            while let Some(start) = rest.find(attribute) {
                rest = &rest[start + attribute.len()..];
                if let Some(end) = rest.find('"') {
                    anchors.insert(rest[..end].to_string());
                }
            }
        }
    }
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for heading in headings {
        let base = slug(&heading_text(&heading));
        let count = seen.entry(base.clone()).or_insert(0);
        let anchor = if *count == 0 {
            base
        } else {
            format!("{base}-{count}")
        };
        *count += 1;
        anchors.insert(anchor);
    }
    anchors
}

/// `%20` and friends decoded (link targets may encode spaces).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let Some(hex) = bytes.get(index + 1..index + 3)
            && let Ok(hex) = std::str::from_utf8(hex)
            && let Ok(value) = u8::from_str_radix(hex, 16)
        {
            out.push(value);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `path` with `.` and `..` folded, or `None` if it climbs above `root`.
fn normalise(root: &Path, path: &Path) -> Option<PathBuf> {
    let relative = path.strip_prefix(root).ok()?;
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => return None,
        }
    }
    Some(
        parts
            .iter()
            .fold(root.to_path_buf(), |path, part| path.join(part)),
    )
}

/// Web and mail links (and any other `scheme://`) are not checked.
fn is_external(target: &str) -> bool {
    let lower = target.to_ascii_lowercase();
    lower.starts_with("mailto:") || lower.contains("://")
}

/// Where `target` (written in `document`) leads, and its anchor, if any; or
/// why it leads nowhere.
fn resolve(document: &Path, target: &str) -> Result<(PathBuf, Option<String>), String> {
    let root = root();
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor.to_string())),
        None => (target, None),
    };
    let path = path.split('?').next().unwrap_or("");
    let file = if path.is_empty() {
        document.to_path_buf()
    } else {
        let path = percent_decode(path);
        let joined = match path.strip_prefix('/') {
            Some(from_root) => root.join(from_root),
            None => document.parent().unwrap_or(&root).join(&path),
        };
        normalise(&root, &joined).ok_or_else(|| "leads outside the repository".to_string())?
    };
    if !file.exists() {
        return Err("no such file".to_string());
    }
    Ok((file, anchor))
}

/// Every broken link in the documentation, one line each.
fn broken_links() -> Vec<String> {
    let root = root();
    let mut broken = Vec::new();
    for document in documents() {
        let name = document
            .strip_prefix(&root)
            .unwrap_or(&document)
            .display()
            .to_string();
        let Ok(text) = fs::read_to_string(&document) else {
            broken.push(format!("{name}: cannot be read"));
            continue;
        };
        for link in links(&text) {
            if link.target.is_empty() {
                broken.push(format!("{name}:{}: empty link target", link.line));
                continue;
            }
            if is_external(&link.target) {
                continue;
            }
            match resolve(&document, &link.target) {
                Err(why) => broken.push(format!("{name}:{}: {} ({why})", link.line, link.target)),
                Ok((file, Some(anchor))) => {
                    let markdown = file.extension().is_some_and(|extension| extension == "md");
                    if !markdown || anchor.is_empty() {
                        if anchor.is_empty() {
                            broken.push(format!(
                                "{name}:{}: {} (empty anchor)",
                                link.line, link.target
                            ));
                        }
                        continue;
                    }
                    let target_text = fs::read_to_string(&file).unwrap_or_default();
                    if !anchors(&target_text).contains(&percent_decode(&anchor)) {
                        broken.push(format!(
                            "{name}:{}: {} (no heading with anchor #{anchor} in {})",
                            link.line,
                            link.target,
                            file.strip_prefix(&root).unwrap_or(&file).display()
                        ));
                    }
                }
                Ok((_, None)) => {}
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_resolves() {
    let broken = broken_links();
    assert!(
        broken.is_empty(),
        "{} broken link(s) in the documentation:\n  {}",
        broken.len(),
        broken.join("\n  ")
    );
}

#[test]
fn readme_links_every_docs_page() {
    let root = root();
    let readme = root.join("README.md");
    let text = fs::read_to_string(&readme).expect("README.md");
    let linked: BTreeSet<PathBuf> = links(&text)
        .iter()
        .filter(|link| !is_external(&link.target))
        .filter_map(|link| resolve(&readme, &link.target).ok())
        .map(|(file, _)| file)
        .collect();
    let mut pages = Vec::new();
    markdown_files(&root.join("docs"), false, &mut pages);
    assert!(!pages.is_empty(), "docs/ has no pages");
    let missing: Vec<String> = pages
        .iter()
        .filter(|page| !linked.contains(*page))
        .map(|page| {
            page.strip_prefix(&root)
                .unwrap_or(page)
                .display()
                .to_string()
        })
        .collect();
    assert!(
        missing.is_empty(),
        "README.md does not link these docs pages: {}",
        missing.join(", ")
    );
}

#[test]
fn links_are_found_outside_code_only() {
    let text = "\
See [the book](docs/README.md) and ![chart](docs/a.svg \"title\").
Code `[not](a-link)` and ``[nor](this `one`)``, escaped \\[no](link).
[`code` text](<with space.md#anchor>)

```sh
[inside](a-fence)
```
[label]: reference.md
~~~
[inside](a-tilde-fence)
~~~
";
    let targets: Vec<(usize, String)> = links(text)
        .into_iter()
        .map(|link| (link.line, link.target))
        .collect();
    assert_eq!(
        targets,
        [
            (1, "docs/README.md".to_string()),
            (1, "docs/a.svg".to_string()),
            (3, "with space.md#anchor".to_string()),
            (8, "reference.md".to_string()),
        ]
    );
}

#[test]
fn anchors_follow_github_slug_rules() {
    let text = "\
# The kipc book
## What `cargo run` shows
## Crates in the host runner: clap, lexopt & serde_json?
## Notes
## Notes
### [Linked](x.md) heading ###
Setext heading
--------------
```
# not a heading
```
";
    let anchors = anchors(text);
    for expected in [
        "the-kipc-book",
        "what-cargo-run-shows",
        "crates-in-the-host-runner-clap-lexopt--serde_json",
        "notes",
        "notes-1",
        "linked-heading",
        "setext-heading",
    ] {
        assert!(
            anchors.contains(expected),
            "missing {expected} in {anchors:?}"
        );
    }
    assert!(!anchors.contains("not-a-heading"));
    assert_eq!(slug("Façade — the `Ipc` type"), "façade--the-ipc-type");
}

#[test]
fn resolution_is_relative_to_the_markdown_file() {
    let root = root();
    let page = root.join("docs/README.md");
    assert!(resolve(&page, "../README.md").is_ok());
    assert!(resolve(&page, "../Cargo.toml").is_ok());
    assert!(resolve(&page, "README.md#x").is_ok_and(|(_, anchor)| anchor.as_deref() == Some("x")));
    assert!(resolve(&page, "Cargo.toml").is_err());
    assert!(resolve(&page, "../../outside.md").is_err());
    assert!(is_external("https://example.org/x.md") && is_external("mailto:a@b"));
    assert!(!is_external("docs/README.md"));
}
