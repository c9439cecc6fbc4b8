//! Variable values from the command line: `NAME=VALUE`, `NAME=@FILE` (the
//! file's text, without one final line break) and `NAME=@@VALUE` (a value
//! that starts with `@`).

use super::placeholders::is_variable_name;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarValue {
    /// Written on the command line.
    Text(String),
    /// Read from a file.
    File { path: PathBuf, text: String },
}

impl VarValue {
    pub fn text(&self) -> &str {
        match self {
            VarValue::Text(text) | VarValue::File { text, .. } => text,
        }
    }

    pub fn into_text(self) -> String {
        match self {
            VarValue::Text(text) | VarValue::File { text, .. } => text,
        }
    }
}

/// One `NAME=VALUE`, `NAME=@FILE` or `NAME=@@VALUE` argument. Errors:
///
/// - `expected NAME=VALUE or NAME=@FILE, got 'x'`
/// - `invalid variable name '1x' (use letters, digits and '_')`
/// - `text=@ needs a file name after '@'`
/// - `cannot read notes.txt: No such file or directory (os error 2)`
/// - `notes.txt is not UTF-8 text`
pub fn parse_var(arg: &str) -> Result<(String, VarValue), String> {
    let Some((name, value)) = arg.split_once('=') else {
        return Err(format!("expected NAME=VALUE or NAME=@FILE, got '{arg}'"));
    };
    if !is_variable_name(name) {
        return Err(format!(
            "invalid variable name '{name}' (use letters, digits and '_')"
        ));
    }
    let value = if let Some(literal) = value.strip_prefix("@@") {
        VarValue::Text(format!("@{literal}"))
    } else if let Some(path) = value.strip_prefix('@') {
        if path.is_empty() {
            return Err(format!("{name}=@ needs a file name after '@'"));
        }
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let mut text = String::from_utf8(bytes).map_err(|_| format!("{path} is not UTF-8 text"))?;
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        VarValue::File {
            path: PathBuf::from(path),
            text,
        }
    } else {
        VarValue::Text(value.to_string())
    };
    Ok((name.to_string(), value))
}

/// Every argument through [`parse_var`], as a map of values; a name given
/// twice is an error (`'text' is given twice`).
pub fn parse_vars<S: AsRef<str>>(args: &[S]) -> Result<BTreeMap<String, String>, String> {
    let mut values = BTreeMap::new();
    for arg in args {
        let (name, value) = parse_var(arg.as_ref())?;
        if values.contains_key(&name) {
            return Err(format!("'{name}' is given twice"));
        }
        values.insert(name, value.into_text());
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_values() {
        assert_eq!(
            parse_var("text=a=b {{x}}").unwrap(),
            ("text".into(), VarValue::Text("a=b {{x}}".into()))
        );
        assert_eq!(
            parse_var("_n=").unwrap(),
            ("_n".into(), VarValue::Text(String::new()))
        );
        assert_eq!(
            parse_var("who=@@me").unwrap().1,
            VarValue::Text("@me".into())
        );
    }

    #[test]
    fn file_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        std::fs::write(&path, "日本語\nline 2\r\n").unwrap();
        let (name, value) = parse_var(&format!("text=@{}", path.display())).unwrap();
        assert_eq!(name, "text");
        assert_eq!(value.text(), "日本語\nline 2");
        assert_eq!(
            value,
            VarValue::File {
                path: path.clone(),
                text: "日本語\nline 2".into()
            }
        );
        std::fs::write(&path, "a\n\n").unwrap();
        assert_eq!(
            parse_var(&format!("t=@{}", path.display()))
                .unwrap()
                .1
                .text(),
            "a\n"
        );
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert_eq!(
            parse_var(&format!("t=@{}", path.display())).unwrap_err(),
            format!("{} is not UTF-8 text", path.display())
        );
    }

    #[test]
    fn errors_name_the_argument_or_the_file() {
        assert_eq!(
            parse_var("text").unwrap_err(),
            "expected NAME=VALUE or NAME=@FILE, got 'text'"
        );
        assert_eq!(
            parse_var("1x=y").unwrap_err(),
            "invalid variable name '1x' (use letters, digits and '_')"
        );
        assert_eq!(
            parse_var("text=@").unwrap_err(),
            "text=@ needs a file name after '@'"
        );
        let error = parse_var("text=@/nonexistent/whet-notes.txt").unwrap_err();
        assert!(
            error.starts_with("cannot read /nonexistent/whet-notes.txt: "),
            "{error}"
        );
    }

    #[test]
    fn many_arguments() {
        let values = parse_vars(&["a=1", "b=2"]).unwrap();
        assert_eq!(values["a"], "1");
        assert_eq!(values["b"], "2");
        assert_eq!(
            parse_vars(&["a=1", "a=2"]).unwrap_err(),
            "'a' is given twice"
        );
    }
}
