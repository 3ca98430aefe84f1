//! Where a command writes, checked before it runs: no two outputs on one
//! file, no output on an input (the profile, the workload's file or log,
//! the checkpoint), no output on a directory. A run never ends by failing
//! to write its summary, and never overwrites what it read.

use std::path::{Path, PathBuf};

/// Why the outputs of a command cannot be written as asked.
#[derive(Debug, thiserror::Error)]
#[error("{flag} {}: {reason}", path.display())]
pub struct PathError {
    /// The flag (or what) that named the path.
    pub flag: String,
    /// The path.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

/// `path` made absolute and, where it exists, with its links resolved, so
/// that two spellings of one file compare equal.
fn resolved(path: &Path) -> PathBuf {
    if let Ok(real) = path.canonicalize() {
        return real;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => parent
            .canonicalize()
            .map_or_else(|_| absolute.clone(), |parent| parent.join(name)),
        _ => absolute,
    }
}

/// Checks `outputs` (what names each, and the path) against each other and
/// against `inputs`: every output a distinct file that is no input and no
/// directory. Inputs that are directories (a log, a checkpoint) also hold
/// no output.
pub fn check_outputs(
    outputs: &[(String, PathBuf)],
    inputs: &[(String, PathBuf)],
) -> Result<(), PathError> {
    let inputs: Vec<(&String, PathBuf)> = inputs.iter().map(|(f, p)| (f, resolved(p))).collect();
    let mut seen: Vec<(&String, PathBuf)> = Vec::new();
    for (flag, path) in outputs {
        let fail = |reason: String| PathError {
            flag: flag.clone(),
            path: path.clone(),
            reason,
        };
        if path.is_dir() {
            return Err(fail("is a directory; name a file".into()));
        }
        let real = resolved(path);
        if let Some((other, _)) = seen.iter().find(|(_, p)| *p == real) {
            return Err(fail(format!(
                "is also where {other} writes; give each its own file"
            )));
        }
        for (input, input_path) in &inputs {
            if real == *input_path {
                return Err(fail(format!("is the {input}; it would be overwritten")));
            }
            if real.starts_with(input_path) && input_path.is_dir() {
                return Err(fail(format!("lies inside the {input}")));
            }
        }
        seen.push((flag, real));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(pairs: &[(&str, &Path)]) -> Vec<(String, PathBuf)> {
        pairs
            .iter()
            .map(|(f, p)| (f.to_string(), p.to_path_buf()))
            .collect()
    }

    #[test]
    fn colliding_outputs_and_outputs_on_inputs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("p.toml");
        std::fs::write(&profile, "").unwrap();
        let log = dir.path().join("log");
        std::fs::create_dir(&log).unwrap();
        let inputs = named(&[("profile", &profile), ("workload.path", &log)]);
        let json = dir.path().join("s.json");
        let ok = named(&[("--json", &json), ("--epochs", &dir.path().join("e.jsonl"))]);
        check_outputs(&ok, &inputs).unwrap();
        let same = named(&[
            ("--json", &json),
            ("--epochs", &dir.path().join("./s.json")),
        ]);
        assert!(check_outputs(&same, &inputs)
            .unwrap_err()
            .reason
            .contains("--json"));
        let on_profile = named(&[("--json", &profile)]);
        assert!(check_outputs(&on_profile, &inputs)
            .unwrap_err()
            .reason
            .contains("profile"));
        let in_log = named(&[("--json", &log.join("s.json"))]);
        assert!(check_outputs(&in_log, &inputs)
            .unwrap_err()
            .reason
            .contains("inside"));
        let a_directory = named(&[("--json", dir.path())]);
        assert!(check_outputs(&a_directory, &inputs)
            .unwrap_err()
            .reason
            .contains("directory"));
    }
}
