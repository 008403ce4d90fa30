//! Inputs named on the command line: files, directories (every file inside,
//! recursively, in sorted order) and `-` for standard input.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::error::{ReadError, ReadErrorKind};

/// One input to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Standard input.
    Stdin,
    /// A file named as an input.
    Path(PathBuf),
    /// A file found inside a directory named as an input. Such a file is
    /// passed over (and reported) when it holds no trace data.
    Found(PathBuf),
}

impl Input {
    /// The name used in reports and errors.
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "<stdin>".to_string(),
            Input::Path(p) | Input::Found(p) => p.display().to_string(),
        }
    }

    /// Size in bytes, when known (for progress display).
    pub fn size(&self) -> Option<u64> {
        match self {
            Input::Stdin => None,
            Input::Path(p) | Input::Found(p) => fs::metadata(p).ok().map(|m| m.len()),
        }
    }

    /// Opens the input for reading.
    pub fn open(&self) -> Result<Box<dyn Read + Send>, ReadError> {
        match self {
            Input::Stdin => Ok(Box::new(io::stdin())),
            Input::Path(p) | Input::Found(p) => fs::File::open(p)
                .map(|f| Box::new(f) as Box<dyn Read + Send>)
                .map_err(|err| ReadError { input: self.name(), kind: ReadErrorKind::Io(err) }),
        }
    }
}

/// Expands command-line arguments into inputs: `-` is standard input, a
/// directory stands for every file below it (hidden ones skipped), sorted.
pub fn expand_inputs(args: &[PathBuf]) -> Result<Vec<Input>, ReadError> {
    let mut inputs = Vec::new();
    for arg in args {
        if arg.as_os_str() == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        let meta = fs::metadata(arg)
            .map_err(|err| ReadError { input: arg.display().to_string(), kind: ReadErrorKind::Io(err) })?;
        if meta.is_dir() {
            let before = inputs.len();
            walk(arg, &mut inputs)?;
            if inputs.len() == before {
                return Err(ReadError {
                    input: arg.display().to_string(),
                    kind: ReadErrorKind::Unrecognized("directory contains no files".to_string()),
                });
            }
        } else {
            inputs.push(Input::Path(arg.clone()));
        }
    }
    Ok(inputs)
}

fn walk(dir: &Path, out: &mut Vec<Input>) -> Result<(), ReadError> {
    let err = |e: io::Error| ReadError { input: dir.display().to_string(), kind: ReadErrorKind::Io(e) };
    let mut entries: Vec<PathBuf> =
        fs::read_dir(dir).map_err(err)?.map(|entry| entry.map(|e| e.path())).collect::<Result<_, _>>().map_err(err)?;
    entries.sort();
    for path in entries {
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
            continue;
        }
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(Input::Found(path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_expand_sorted_and_skip_hidden() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("b.json"), "[]").unwrap();
        fs::write(dir.path().join("a.json"), "[]").unwrap();
        fs::write(dir.path().join(".hidden"), "x").unwrap();
        fs::write(dir.path().join("sub/c.json"), "[]").unwrap();
        let inputs = expand_inputs(&[dir.path().to_path_buf(), PathBuf::from("-")]).unwrap();
        let names: Vec<String> = inputs
            .iter()
            .map(|i| match i {
                Input::Found(p) => p.strip_prefix(dir.path()).unwrap().display().to_string(),
                Input::Path(_) => unreachable!("only found files and stdin here"),
                Input::Stdin => "-".to_string(),
            })
            .collect();
        assert_eq!(names, vec!["a.json", "b.json", "sub/c.json", "-"]);
    }

    #[test]
    fn missing_path_is_an_error_naming_it() {
        let err = expand_inputs(&[PathBuf::from("/no/such/file.json")]).unwrap_err();
        assert!(err.to_string().starts_with("/no/such/file.json: "), "{err}");
    }
}
