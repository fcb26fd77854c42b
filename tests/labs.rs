//! The lab kit never rots. For every lab (`qemu/src/labs.rs`, `labs/`):
//!
//! - the reference's `LAB` markers are balanced, every lab has regions and a
//!   handout that names each of its checks;
//! - the reference (this tree) scores full marks;
//! - the starter tree made from the reference builds, fails exactly the
//!   checks the lab asks for, passes the others, and holds none of the
//!   reference code its regions replaced.
//!
//! The starters are graded the way a student does it: `cargo run -- grade
//! NAME --json FILE` in the starter tree (`target/lab-starters/`, rewritten
//! for each lab; its own `target/` is kept between labs, so only what a stub
//! changed is rebuilt).

use std::path::Path;
use std::process::Command;

use kipc_qemu::labs::{self, LABS};

fn root() -> std::path::PathBuf {
    kipc_qemu::repository_root()
}

#[test]
fn markers_are_balanced_and_every_lab_has_regions_and_a_handout() {
    let root = root();
    let files = labs::tracked_files(&root).expect("the repository's files");
    let mut text_of_all = String::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(root.join(file)) else {
            continue;
        };
        if text.contains("LAB ") {
            labs::starter_text(&text, None)
                .unwrap_or_else(|error| panic!("{}: {error}", file.display()));
            text_of_all.push_str(&text);
        }
    }
    let index = std::fs::read_to_string(root.join("labs/README.md")).expect("labs/README.md");
    for lab in LABS {
        assert!(
            text_of_all.contains(&format!("LAB {}: begin", lab.name)),
            "lab {} has no region in the reference",
            lab.name
        );
        let handout_path = root.join("labs").join(lab.name).join("README.md");
        let handout = std::fs::read_to_string(&handout_path)
            .unwrap_or_else(|_| panic!("no handout {}", handout_path.display()));
        for check in lab.checks {
            assert!(
                handout.contains(check.name),
                "labs/{}/README.md does not list the check {:?}",
                lab.name,
                check.name
            );
            assert!(
                handout.contains(&format!("| {} |", check.points)),
                "labs/{}/README.md gives no points for {:?}",
                lab.name,
                check.name
            );
        }
        assert!(
            index.contains(&format!("({}/README.md)", lab.name)),
            "labs/README.md does not link the {} handout",
            lab.name
        );
    }
}

#[test]
fn the_reference_scores_full_marks_on_every_lab() {
    let root = root();
    for lab in LABS {
        let outcomes = labs::grade(lab, &root);
        let (earned, total) = labs::score(&outcomes);
        let failed: Vec<String> = outcomes
            .iter()
            .filter(|outcome| !outcome.passed)
            .map(|outcome| format!("{}: {}", outcome.check.name, outcome.reason))
            .collect();
        assert_eq!(earned, total, "lab {}: {failed:#?}", lab.name);
    }
}

/// Empties `tree` except its `target/`.
fn clear(tree: &Path) {
    let Ok(entries) = std::fs::read_dir(tree) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name() == "target" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).expect("clear the starter tree");
        } else {
            std::fs::remove_file(&path).expect("clear the starter tree");
        }
    }
}

/// Whether `block` (lines, trimmed) appears in `text` as consecutive lines.
fn contains_block(text: &str, block: &[String]) -> bool {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines
        .windows(block.len())
        .any(|window| window.iter().zip(block).all(|(a, b)| *a == b))
}

#[test]
fn every_starter_builds_fails_its_own_checks_and_keeps_the_rest() {
    let root = root();
    let tree = root.join("target/lab-starters");
    std::fs::create_dir_all(&tree).expect("the starter tree");
    for lab in LABS {
        clear(&tree);
        let written = labs::write_starter(lab, &root, &tree)
            .unwrap_or_else(|error| panic!("lab {}: {error}", lab.name));
        assert!(written.regions > 0);
        // No region's reference code survives in the starter.
        for file in labs::tracked_files(&root).expect("files") {
            let Ok(reference) = std::fs::read_to_string(root.join(&file)) else {
                continue;
            };
            let pattern = format!("LAB {}: begin", lab.name);
            if !reference.contains(&pattern) {
                continue;
            }
            let starter = std::fs::read_to_string(tree.join(&file)).expect("starter file");
            let region = labs::starter_text(&reference, Some(lab.name)).expect("markers");
            if region.removed.len() >= 2 {
                assert!(
                    !contains_block(&starter, &region.removed),
                    "lab {}: {} still holds the reference code",
                    lab.name,
                    file.display()
                );
            }
        }
        let json = tree.join(format!("target/grade-{}.json", lab.name));
        let _ = std::fs::remove_file(&json);
        std::fs::create_dir_all(tree.join("target")).expect("target");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .current_dir(&tree)
            .args([
                "run",
                "-q",
                "-p",
                "kipc-qemu",
                "--",
                "grade",
                lab.name,
                "--json",
            ])
            .arg(&json);
        for variable in ["CARGO_TARGET_DIR", "RUSTFLAGS", "CARGO_MANIFEST_DIR"] {
            command.env_remove(variable);
        }
        let output = command.output().expect("run the starter's grader");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "lab {}: the starter scored full marks:\n{stdout}",
            lab.name
        );
        let report = std::fs::read_to_string(&json).unwrap_or_else(|_| {
            panic!(
                "lab {}: the starter's grader wrote no JSON (it did not build?)\n{stdout}\n{stderr}",
                lab.name
            )
        });
        let passed: Vec<bool> = report
            .match_indices("\"passed\": ")
            .map(|(at, key)| report[at + key.len()..].starts_with("true"))
            .collect();
        assert_eq!(passed.len(), lab.checks.len(), "{report}");
        for (check, passed) in lab.checks.iter().zip(passed) {
            assert_eq!(
                passed,
                !check.own,
                "lab {}: in the starter, {:?} {} (it {} the lab's own work)\n{stdout}",
                lab.name,
                check.name,
                if passed { "passed" } else { "failed" },
                if check.own {
                    "checks"
                } else {
                    "does not check"
                }
            );
        }
    }
}
