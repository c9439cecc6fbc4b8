//! The templates there are: the shipped ones (the repository's
//! `prompts/NAME.toml`, compiled in, read-only) and the user's
//! (`<user dir>/NAME.toml`, editable). A user file named like a shipped
//! template overrides it; saving a shipped template makes such a copy.

use super::template::{is_template_name, parse_named, to_toml, Template, TemplateError};
use crate::store::atomic::write_atomic;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The most a template file may hold: 4 MiB. The shipped templates are a few
/// KiB, and one with many long few-shot examples stays far below this (they
/// all go into the model's context, which is much smaller); a wrong path
/// such as `/dev/zero` or a model file is refused after reading this much,
/// not read into memory whole.
pub const MAX_TEMPLATE_BYTES: u64 = 4 * 1024 * 1024;

/// The text of a template file, read through [`MAX_TEMPLATE_BYTES`] and no
/// further: a longer file is an error of kind `FileTooLarge`, `too large for
/// a template (more than 4 MiB)`; one that is not UTF-8, of kind
/// `InvalidData`. Every template read from disk goes through here.
pub fn read_template_file(path: &Path) -> io::Result<String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_TEMPLATE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_TEMPLATE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!(
                "too large for a template (more than {} MiB)",
                MAX_TEMPLATE_BYTES / (1024 * 1024)
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

/// The shipped templates, by name, sorted. A new file in `prompts/` needs a
/// line here (a test checks that every file is listed).
const SHIPPED: &[(&str, &str)] = &[
    ("acronym", include_str!("../../prompts/acronym.toml")),
    ("codegen", include_str!("../../prompts/codegen.toml")),
    ("persona", include_str!("../../prompts/persona.toml")),
    ("qa", include_str!("../../prompts/qa.toml")),
    (
        "sentiment-reversal",
        include_str!("../../prompts/sentiment-reversal.toml"),
    ),
    ("story", include_str!("../../prompts/story.toml")),
    ("summarize", include_str!("../../prompts/summarize.toml")),
];

/// Where a template comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Compiled into whet.
    Shipped,
    /// The user's file.
    User(PathBuf),
}

/// A template file, not yet parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateEntry {
    /// The file name without `.toml`.
    pub name: String,
    pub source: Source,
    pub text: String,
}

impl TemplateEntry {
    /// How messages name the file: `prompts/NAME.toml` for a shipped
    /// template, the path for a user's.
    pub fn label(&self) -> String {
        match &self.source {
            Source::Shipped => format!("prompts/{}.toml", self.name),
            Source::User(path) => path.display().to_string(),
        }
    }

    pub fn is_shipped(&self) -> bool {
        self.source == Source::Shipped
    }
}

/// Every template, sorted by name; a user file replaces the shipped
/// template of its name. User files that cannot be read are left out
/// ([`find`] reports them).
pub fn list(user_dir: Option<&Path>) -> Vec<TemplateEntry> {
    let mut entries: Vec<TemplateEntry> = user_files(user_dir)
        .into_iter()
        .filter_map(|(name, path)| {
            let text = read_template_file(&path).ok()?;
            Some(TemplateEntry {
                name,
                source: Source::User(path),
                text,
            })
        })
        .collect();
    for &(name, text) in SHIPPED {
        if !entries.iter().any(|e| e.name == name) {
            entries.push(shipped_entry(name, text));
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// The template called `name`: the user's file if there is one, else the
/// shipped one. Errors: `PATH: <io error>` (`PATH: too large for a
/// template (more than 4 MiB)`, see [`read_template_file`]), or
/// `unknown template 'x' (available: acronym, codegen, …)`.
pub fn find(name: &str, user_dir: Option<&Path>) -> Result<TemplateEntry, String> {
    if is_template_name(name) {
        if let Some(dir) = user_dir {
            let path = dir.join(format!("{name}.toml"));
            match read_template_file(&path) {
                Ok(text) => {
                    return Ok(TemplateEntry {
                        name: name.to_string(),
                        source: Source::User(path),
                        text,
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        }
        if let Some(&(name, text)) = SHIPPED.iter().find(|(n, _)| *n == name) {
            return Ok(shipped_entry(name, text));
        }
    }
    let available: Vec<String> = list(user_dir).into_iter().map(|e| e.name).collect();
    Err(format!(
        "unknown template '{name}' (available: {})",
        available.join(", ")
    ))
}

/// Parses the entry; its `name` must match the file name.
pub fn load(entry: &TemplateEntry) -> Result<Template, Vec<TemplateError>> {
    parse_named(&entry.text, &entry.label(), &entry.name)
}

/// Saves `template` as the user's `<user_dir>/NAME.toml` (atomically; the
/// directory is created if needed) and returns the path. A template that
/// would not load back is refused with its problems, one per line.
pub fn save_user(template: &Template, user_dir: &Path) -> Result<PathBuf, String> {
    if !is_template_name(&template.name) {
        return Err(format!(
            "invalid template name '{}' (use letters, digits, '-' and '_')",
            template.name
        ));
    }
    let path = user_dir.join(format!("{}.toml", template.name));
    let text = to_toml(template);
    let label = path.display().to_string();
    if let Err(errors) = parse_named(&text, &label, &template.name) {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(lines.join("\n"));
    }
    write_atomic(&path, text.as_bytes()).map_err(|e| format!("cannot save {label}: {e}"))?;
    Ok(path)
}

fn shipped_entry(name: &str, text: &str) -> TemplateEntry {
    TemplateEntry {
        name: name.to_string(),
        source: Source::Shipped,
        text: text.to_string(),
    }
}

/// `(name, path)` of each `*.toml` in the user's directory (none if it is
/// missing or unreadable).
fn user_files(user_dir: Option<&Path>) -> Vec<(String, PathBuf)> {
    let Some(entries) = user_dir.and_then(|dir| std::fs::read_dir(dir).ok()) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml") && path.is_file())
        .filter_map(|path| {
            let name = path.file_stem()?.to_str()?.to_string();
            (!name.starts_with('.')).then_some((name, path))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::render::{render, ExampleSelection};
    use crate::prompt::template::check_named;
    use std::collections::BTreeMap;

    #[test]
    fn every_file_in_prompts_is_shipped() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .map(|p| p.file_stem().unwrap().to_str().unwrap().to_string())
            .collect();
        on_disk.sort();
        let shipped: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, shipped, "SHIPPED must list prompts/*.toml, sorted");
        for (name, text) in SHIPPED {
            let file = std::fs::read_to_string(dir.join(format!("{name}.toml"))).unwrap();
            assert_eq!(&file, text, "{name}");
        }
    }

    #[test]
    fn every_shipped_template_parses_and_renders() {
        for entry in list(None) {
            assert!(entry.is_shipped());
            let template = load(&entry).unwrap_or_else(|errors| {
                let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
                panic!("{}", lines.join("\n"))
            });
            assert_eq!(template.name, entry.name);
            let (_, warnings) = check_named(&entry.text, &entry.label(), &entry.name).unwrap();
            assert!(warnings.is_empty(), "{warnings:?}");
            let values: BTreeMap<String, String> = template
                .variables()
                .into_iter()
                .filter(|v| v.default.is_none())
                .map(|v| (v.name.clone(), format!("<{}>", v.name)))
                .collect();
            for selection in [ExampleSelection::Enabled, ExampleSelection::None] {
                let messages = render(&template, &values, selection)
                    .unwrap_or_else(|e| panic!("{}: {e}", entry.name));
                assert!(
                    !messages.last().unwrap().content.is_empty(),
                    "{}",
                    entry.name
                );
            }
            let all = (1..=template.examples.len()).collect();
            render(&template, &values, ExampleSelection::Only(all))
                .unwrap_or_else(|e| panic!("{}: {e}", entry.name));
            // Saving would keep it as it is.
            assert_eq!(
                parse_named(&to_toml(&template), "x", &entry.name).as_ref(),
                Ok(&template),
                "{}",
                entry.name
            );
        }
    }

    #[test]
    fn shipped_errors_name_the_repository_file() {
        let mut entry = find("qa", None).unwrap();
        assert_eq!(entry.label(), "prompts/qa.toml");
        entry.text = "version = 1\nname = \"qa\"\ndescription = 'd'\nprompt = '{{'\n".into();
        assert_eq!(
            load(&entry).unwrap_err()[0].to_string(),
            "prompts/qa.toml:4:11: unclosed '{{' (no '}}' after it)"
        );
    }

    #[test]
    fn unknown_names_list_the_available_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mine.toml"), "").unwrap();
        let error = find("nope", Some(dir.path())).unwrap_err();
        assert_eq!(
            error,
            "unknown template 'nope' (available: acronym, codegen, mine, persona, qa, sentiment-reversal, story, summarize)"
        );
        assert!(find("../etc/passwd", Some(dir.path()))
            .unwrap_err()
            .starts_with("unknown template '../etc/passwd'"));
    }

    #[test]
    fn a_user_file_overrides_the_shipped_one() {
        let dir = tempfile::tempdir().unwrap();
        let text = "version = 1\nname = \"qa\"\ndescription = \"mine\"\nprompt = \"{{q}}\"\n";
        std::fs::write(dir.path().join("qa.toml"), text).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a template").unwrap();
        std::fs::write(dir.path().join(".whet-x.tmp"), "").unwrap();
        let entries = list(Some(dir.path()));
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, SHIPPED.iter().map(|(n, _)| *n).collect::<Vec<_>>());
        let qa = entries.iter().find(|e| e.name == "qa").unwrap();
        assert_eq!(qa.source, Source::User(dir.path().join("qa.toml")));
        assert_eq!(qa, &find("qa", Some(dir.path())).unwrap());
        assert_eq!(load(qa).unwrap().description, "mine");
        assert!(find("summarize", Some(dir.path())).unwrap().is_shipped());
    }

    #[test]
    fn template_files_are_read_up_to_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let limit = MAX_TEMPLATE_BYTES as usize;
        let text = "version = 1\nname = \"big\"\ndescription = \"d\"\nprompt = \"p\"\n";
        let path = dir.path().join("big.toml");
        // Exactly at the bound: read whole.
        let at_bound = format!("{text}{}", "#".repeat(limit - text.len()));
        std::fs::write(&path, &at_bound).unwrap();
        assert_eq!(read_template_file(&path).unwrap(), at_bound);
        assert!(find("big", Some(dir.path())).is_ok());
        // One byte more: refused, by `find` with the path; `list` leaves it out.
        std::fs::write(&path, format!("{at_bound}#")).unwrap();
        let error = read_template_file(&path).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(
            find("big", Some(dir.path())).unwrap_err(),
            format!(
                "{}: too large for a template (more than 4 MiB)",
                path.display()
            )
        );
        assert!(list(Some(dir.path())).iter().all(|e| e.name != "big"));
        // A device that never ends is refused just the same.
        let zero = read_template_file(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(zero.kind(), io::ErrorKind::FileTooLarge);
        std::fs::write(&path, b"prompt = '\xff'\n").unwrap();
        assert_eq!(
            read_template_file(&path).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn a_user_file_named_unlike_its_template_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy.toml");
        std::fs::write(
            &path,
            "version = 1\nname = \"qa\"\ndescription = \"d\"\nprompt = \"p\"\n",
        )
        .unwrap();
        let entry = find("copy", Some(dir.path())).unwrap();
        assert_eq!(
            load(&entry).unwrap_err()[0].to_string(),
            format!(
                "{}:2:8: name 'qa' does not match the file name 'copy.toml'",
                path.display()
            )
        );
    }

    #[test]
    fn saving_a_shipped_template_makes_a_user_copy() {
        let dir = tempfile::tempdir().unwrap();
        let user_dir = dir.path().join("prompts");
        let mut template = load(&find("summarize", None).unwrap()).unwrap();
        template.description = "My summaries.".into();
        let path = save_user(&template, &user_dir).unwrap();
        assert_eq!(path, user_dir.join("summarize.toml"));
        let entry = find("summarize", Some(&user_dir)).unwrap();
        assert_eq!(entry.source, Source::User(path.clone()));
        assert_eq!(load(&entry).unwrap(), template);
        // Saved again over itself; no temporary file is left behind.
        save_user(&template, &user_dir).unwrap();
        let files: Vec<_> = std::fs::read_dir(&user_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(files, ["summarize.toml"]);
    }

    #[test]
    fn a_template_that_would_not_load_is_not_saved() {
        let dir = tempfile::tempdir().unwrap();
        let mut template = load(&find("qa", None).unwrap()).unwrap();
        template.prompt = "{{ }}".into();
        let error = save_user(&template, dir.path()).unwrap_err();
        assert!(error.ends_with(": empty placeholder '{{ }}'"), "{error}");
        template.name = "../x".into();
        assert_eq!(
            save_user(&template, dir.path()).unwrap_err(),
            "invalid template name '../x' (use letters, digits, '-' and '_')"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
