//! An experiment's inputs: a JSONL file (one object per line) or a CSV file
//! with a header. Keys (columns) are template variables; `reference` (or
//! `references`, a list, in JSONL) holds the expected outputs. Every problem
//! is reported at its `file:line` (and column where there is one).

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;

/// The largest dataset read: far more than a prompt-tuning set needs; a
/// wrong path (a model file, /dev/zero) is refused after this much.
pub const MAX_DATASET_BYTES: u64 = 64 * 1024 * 1024;

/// One input of an experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The 1-based line of the file it came from.
    pub line: usize,
    /// Template variables and their values.
    pub vars: BTreeMap<String, String>,
    pub references: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetError {
    pub file: String,
    pub line: Option<usize>,
    pub col: Option<usize>,
    pub message: String,
}

impl fmt::Display for DatasetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.col) {
            (Some(line), Some(col)) => write!(f, "{}:{line}:{col}: {}", self.file, self.message),
            (Some(line), None) => write!(f, "{}:{line}: {}", self.file, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for DatasetError {}

/// Reads a dataset; the format follows the extension (`.jsonl`, `.csv`).
/// All problems are returned, not only the first.
pub fn load(path: &Path) -> Result<Vec<Item>, Vec<DatasetError>> {
    let file = path.display().to_string();
    let whole = |message: String| {
        vec![DatasetError {
            file: file.clone(),
            line: None,
            col: None,
            message,
        }]
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_DATASET_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| whole(format!("cannot read the dataset: {e}")))?;
    if bytes.len() as u64 > MAX_DATASET_BYTES {
        return Err(whole(format!(
            "too large for a dataset (more than {} MiB)",
            MAX_DATASET_BYTES / (1024 * 1024)
        )));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        whole(format!(
            "not UTF-8 text (at byte {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let items = match extension.as_deref() {
        Some("jsonl") => parse_jsonl(text, &file)?,
        Some("csv") => parse_csv(text, &file)?,
        _ => return Err(whole(
            "a dataset is a .jsonl file (one JSON object per line) or a .csv file with a header"
                .into(),
        )),
    };
    if items.is_empty() {
        return Err(whole("the dataset has no items".into()));
    }
    Ok(items)
}

/// One JSON object per line; blank lines are skipped.
pub fn parse_jsonl(text: &str, file: &str) -> Result<Vec<Item>, Vec<DatasetError>> {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let at = |col: Option<usize>, message: String| DatasetError {
            file: file.to_string(),
            line: Some(number),
            col,
            message,
        };
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(value) => value,
            Err(e) => {
                // serde_json ends its message with its own "at line 1
                // column N": the line here is the file's, said in front.
                let message = e.to_string();
                let message = message
                    .rsplit_once(" at line ")
                    .map_or(message.as_str(), |(m, _)| m);
                errors.push(at(Some(e.column()), format!("not valid JSON: {message}")));
                continue;
            }
        };
        let serde_json::Value::Object(object) = value else {
            errors.push(at(None, "each line must be a JSON object".into()));
            continue;
        };
        let mut item = Item {
            line: number,
            vars: BTreeMap::new(),
            references: Vec::new(),
        };
        for (key, value) in object {
            match (key.as_str(), value) {
                ("reference", serde_json::Value::String(text)) => item.references.push(text),
                ("references", serde_json::Value::Array(list)) => {
                    for entry in list {
                        match entry {
                            serde_json::Value::String(text) => item.references.push(text),
                            _ => errors
                                .push(at(None, "'references' must be a list of strings".into())),
                        }
                    }
                }
                ("reference" | "references", _) => errors.push(at(
                    None,
                    "'reference' is a string and 'references' a list of strings".into(),
                )),
                (_, serde_json::Value::String(text)) => {
                    item.vars.insert(key, text);
                }
                (_, value @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                    item.vars.insert(key, value.to_string());
                }
                (_, _) => errors.push(at(
                    None,
                    format!("'{key}' must be text (or a number), not a list, object or null"),
                )),
            }
        }
        items.push(item);
    }
    if errors.is_empty() {
        Ok(items)
    } else {
        Err(errors)
    }
}

/// A header row, then one item per row; every row has every column. The
/// `reference` column holds the expected output (empty = none).
pub fn parse_csv(text: &str, file: &str) -> Result<Vec<Item>, Vec<DatasetError>> {
    // The csv crate numbers lines one short after a CRLF line end; with
    // plain LF its positions are the file's lines.
    let text = text.replace("\r\n", "\n");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let at = |line: Option<usize>, message: String| DatasetError {
        file: file.to_string(),
        line,
        col: None,
        message,
    };
    let headers = reader
        .headers()
        .map_err(|e| vec![at(Some(1), format!("cannot read the header: {e}"))])?
        .clone();
    let mut errors = Vec::new();
    let mut seen = Vec::new();
    for name in headers.iter() {
        if name.trim().is_empty() {
            errors.push(at(Some(1), "a column has no name".into()));
        } else if seen.contains(&name) {
            errors.push(at(Some(1), format!("column '{name}' appears twice")));
        }
        seen.push(name);
    }
    let mut items = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize);
                errors.push(at(line, format!("cannot read the row: {e}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        if record.len() != headers.len() {
            errors.push(at(
                Some(line),
                format!(
                    "the row has {} fields, the header {} ({})",
                    record.len(),
                    headers.len(),
                    headers.iter().collect::<Vec<_>>().join(", ")
                ),
            ));
            continue;
        }
        let mut item = Item {
            line,
            vars: BTreeMap::new(),
            references: Vec::new(),
        };
        for (name, value) in headers.iter().zip(record.iter()) {
            if name == "reference" {
                if !value.is_empty() {
                    item.references.push(value.to_string());
                }
            } else {
                item.vars.insert(name.to_string(), value.to_string());
            }
        }
        items.push(item);
    }
    if errors.is_empty() {
        Ok(items)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(errors: Vec<DatasetError>) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn jsonl_items_with_references_and_numbers() {
        let text = "{\"review\": \"Cold pizza.\", \"reference\": \"Hot pizza!\"}\n\n{\"review\": \"Great\", \"stars\": 5, \"references\": [\"Awful\", \"Bad\"]}\n";
        let items = parse_jsonl(text, "d.jsonl").unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].vars["review"], "Cold pizza.");
        assert_eq!(items[0].references, ["Hot pizza!"]);
        assert_eq!(items[1].line, 3);
        assert_eq!(items[1].vars["stars"], "5");
        assert_eq!(items[1].references, ["Awful", "Bad"]);
    }

    #[test]
    fn jsonl_problems_have_their_line_and_column() {
        let text = "{\"a\": \"x\"}\n{\"a\": \"y\",}\n[1]\n{\"a\": [1]}\n";
        let errors = messages(parse_jsonl(text, "d.jsonl").unwrap_err());
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0].starts_with("d.jsonl:2:11: not valid JSON"),
            "{}",
            errors[0]
        );
        assert_eq!(errors[1], "d.jsonl:3: each line must be a JSON object");
        assert_eq!(
            errors[2],
            "d.jsonl:4: 'a' must be text (or a number), not a list, object or null"
        );
    }

    #[test]
    fn csv_with_bom_crlf_quotes_and_a_short_row() {
        let ok = "review,reference\r\n\"Cold, soggy pizza.\",Hot pizza!\r\nGreat,\r\n";
        let items = parse_csv(ok, "d.csv").unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].vars["review"], "Cold, soggy pizza.");
        assert_eq!(items[0].references, ["Hot pizza!"]);
        assert!(items[1].references.is_empty());
        assert_eq!(items[1].line, 3);

        let short = "review,topic,reference\nA,b,c\nD,e\n";
        assert_eq!(
            messages(parse_csv(short, "d.csv").unwrap_err()),
            ["d.csv:3: the row has 2 fields, the header 3 (review, topic, reference)"]
        );
        let twice = "a,a\n1,2\n";
        assert_eq!(
            messages(parse_csv(twice, "d.csv").unwrap_err()),
            ["d.csv:1: column 'a' appears twice"]
        );
    }

    #[test]
    fn files_by_extension_with_a_bom_and_bad_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let csv_path = dir.path().join("d.csv");
        std::fs::write(&csv_path, "\u{feff}review\nx\n").unwrap();
        assert_eq!(load(&csv_path).unwrap()[0].vars["review"], "x");
        let txt = dir.path().join("d.txt");
        std::fs::write(&txt, "x").unwrap();
        assert!(messages(load(&txt).unwrap_err())[0].contains(".jsonl file"));
        let empty = dir.path().join("e.jsonl");
        std::fs::write(&empty, "\n\n").unwrap();
        assert_eq!(
            messages(load(&empty).unwrap_err()),
            [format!("{}: the dataset has no items", empty.display())]
        );
        let binary = dir.path().join("b.jsonl");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        assert!(messages(load(&binary).unwrap_err())[0].contains("not UTF-8"));
    }
}
