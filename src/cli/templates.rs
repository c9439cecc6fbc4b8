//! `whet templates list|show|check`, and the `--template` options `whet run`
//! shares: a template rendered into chat messages from the command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use whet::engine::protocol::{ChatMessage, Prompt};
use whet::outln;
use whet::paths;
use whet::prompt::{library, template, ExampleSelection, Template};

use super::ModelArgs;

/// Which template to render, with which values and examples.
#[derive(clap::Args, Debug, Clone)]
pub struct TemplateInput {
    /// Variable values: NAME=VALUE, or NAME=@FILE to read the value from a
    /// file (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Few-shot examples to include: `enabled` (the file's choice), `none`,
    /// or numbers such as `1,3`.
    #[arg(long = "examples", value_name = "SET", default_value = "enabled")]
    pub examples: String,
}

impl TemplateInput {
    fn selection(&self) -> Result<ExampleSelection, String> {
        match self.examples.trim() {
            "enabled" | "" => Ok(ExampleSelection::Enabled),
            "none" => Ok(ExampleSelection::None),
            list => list
                .split(',')
                .map(|n| {
                    n.trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| {
                            format!(
                                "--examples: '{}' is not an example number (1, 2, …)",
                                n.trim()
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(ExampleSelection::Only),
        }
    }
}

/// The user's templates: `<config>/prompts`.
pub fn user_dir() -> Option<PathBuf> {
    paths::user_templates_dir()
}

/// Finds, parses and renders template `name`: the template and the chat
/// messages the model will be sent.
pub fn render(name: &str, input: &TemplateInput) -> Result<(Template, Vec<ChatMessage>), String> {
    let entry = library::find(name, user_dir().as_deref())?;
    let template = library::load(&entry).map_err(join_errors)?;
    let values = whet::prompt::parse_vars(&input.vars)?;
    let messages = whet::prompt::render(&template, &values, input.selection()?)
        .map_err(|e| format!("template '{name}': {e}"))?;
    Ok((template, messages))
}

/// The folder a template's relative paths (its grammar or schema file)
/// start from: the user's template file's folder, or the current folder
/// for a shipped template.
pub fn template_dir(name: &str) -> Result<std::path::PathBuf, String> {
    let entry = library::find(name, user_dir().as_deref())?;
    Ok(match entry.source {
        library::Source::User(path) => path.parent().map_or_else(
            || std::path::PathBuf::from("."),
            std::path::Path::to_path_buf,
        ),
        library::Source::Shipped => std::path::PathBuf::from("."),
    })
}

fn join_errors(errors: Vec<template::TemplateError>) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(clap::Subcommand)]
pub enum TemplatesCommand {
    /// Every template: shipped ones and yours (<config>/prompts), which
    /// replace shipped ones of the same name.
    List,
    /// Print a template rendered into chat messages.
    Show {
        name: String,
        #[command(flatten)]
        input: TemplateInput,
        /// Print the model's exact input instead (its chat format applied by
        /// the engine), with the token count on stderr.
        #[arg(long)]
        exact: bool,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Validate template files; prints every problem as file:line:col.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub async fn run(command: TemplatesCommand) -> Result<ExitCode, String> {
    match command {
        TemplatesCommand::List => {
            for entry in library::list(user_dir().as_deref()) {
                let description = match library::load(&entry) {
                    Ok(template) => template.description,
                    Err(errors) => format!("(invalid: {})", join_errors(errors)),
                };
                let source = if entry.is_shipped() {
                    "shipped"
                } else {
                    "user"
                };
                outln!("{:<20} {:<8} {description}", entry.name, source);
            }
            Ok(ExitCode::SUCCESS)
        }
        TemplatesCommand::Show {
            name,
            input,
            exact,
            model,
        } => {
            let (_, messages) = render(&name, &input)?;
            if exact {
                let (text, tokens) = exact_input(messages, &model).await?;
                whet::outln!("{text}");
                eprintln!("{tokens} tokens");
            } else {
                for message in &messages {
                    outln!("## {}\n{}\n", message.role.as_str(), message.content);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        TemplatesCommand::Check { files } => Ok(check(&files)),
    }
}

/// The exact text the model receives, from the engine itself (only the
/// vocabulary is loaded: formatting needs no weights), or from the
/// `--backend` server where it says (llama-server).
async fn exact_input(
    messages: Vec<ChatMessage>,
    model: &ModelArgs,
) -> Result<(String, u32), String> {
    let mut load = model.load_request()?;
    load.vocab_only = true;
    let (mut engine, _) = super::start_engine(model, &load).await?;
    let formatted = engine
        .format_prompt(Prompt::Chat { messages })
        .await
        .map_err(|e| e.to_string());
    engine.shutdown().await;
    formatted
}

fn check(files: &[PathBuf]) -> ExitCode {
    super::report_checks(files, |file| {
        let mut lines = check_file(file)?;
        lines.push(match lines.len() {
            0 => format!("{}: ok", file.display()),
            1 => format!("{}: ok (1 warning)", file.display()),
            n => format!("{}: ok ({n} warnings)", file.display()),
        });
        Ok(lines)
    })
}

/// The file's warnings, or its problems (each a line to print).
fn check_file(file: &Path) -> Result<Vec<String>, Vec<String>> {
    let label = file.display().to_string();
    let text = library::read_template_file(file).map_err(|e| {
        vec![match e.kind() {
            std::io::ErrorKind::FileTooLarge => format!("{label}: {e}"),
            _ => format!("{label}: cannot read: {e}"),
        }]
    })?;
    let stem = file
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lines = |errors: Vec<template::TemplateError>| -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    };
    template::check_named(&text, &label, &stem)
        .map(|(_, warnings)| lines(warnings))
        .map_err(lines)
}
