//! `whet arena stats`: the standing table of every vote cast in the chat's
//! compare mode.

use std::path::PathBuf;
use std::process::ExitCode;

use whet::arena::standing::Standing;
use whet::arena::votes_file;
use whet::outln;

#[derive(clap::Subcommand, Debug)]
pub enum ArenaCommand {
    /// Per pair of models: wins, ties and losses with a Wilson interval of
    /// the win rate; per model: a Bradley–Terry rating with a bootstrap
    /// interval.
    Stats(StatsArgs),
}

#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    /// How to print the table.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Short for `--format json`.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Write the table to this file (atomically) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The votes file [default: <data>/arena/votes.jsonl].
    #[arg(long, value_name = "FILE")]
    votes: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Text,
    Markdown,
    Csv,
    Json,
}

pub fn run(command: ArenaCommand) -> Result<ExitCode, String> {
    match command {
        ArenaCommand::Stats(args) => stats(args),
    }
}

fn stats(args: StatsArgs) -> Result<ExitCode, String> {
    let path = match args.votes {
        Some(path) => path,
        None => votes_file::default_path()?,
    };
    let read = votes_file::read(&path)?;
    for problem in &read.problems {
        eprintln!("warning: {problem}");
    }
    let standing = Standing::of(&read.votes);
    let format = if args.json { Format::Json } else { args.format };
    let text = match format {
        Format::Text => standing.lines().join("\n") + "\n",
        Format::Markdown => standing.markdown(),
        Format::Csv => standing.csv()?,
        Format::Json => serde_json::to_string_pretty(&standing).map_err(|e| e.to_string())? + "\n",
    };
    match &args.output {
        Some(file) => {
            whet::store::atomic::write_atomic(file, text.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
            eprintln!("wrote {}", file.display());
        }
        None => outln!("{}", text.trim_end_matches('\n')),
    }
    Ok(ExitCode::SUCCESS)
}
