//! `whet score`: every metric of one candidate text against its references
//! (BLEU, chrF, ROUGE-1/2/L, exact match, length), for a person or as JSON.

use std::process::ExitCode;

use whet::metrics::{self, Scores};
use whet::outln;

#[derive(clap::Args, Debug)]
pub struct ScoreArgs {
    /// A reference text (repeatable): the text itself, @FILE to read it
    /// from a file (without one final line break), or @@TEXT for text that
    /// starts with '@'.
    #[arg(
        long = "reference",
        value_name = "TEXT|@FILE",
        allow_hyphen_values = true
    )]
    pub references: Vec<String>,
    /// The text to score, given like a reference. Text may start with '-'
    /// (a bullet list): `--candidate "- one"`.
    #[arg(long, value_name = "TEXT|@FILE", allow_hyphen_values = true)]
    pub candidate: String,
    /// Print one JSON object (the metrics; null where there is no reference).
    #[arg(long)]
    pub json: bool,
}

/// An argument's text: literal, `@FILE` or `@@TEXT`. Errors name the file.
fn read_value(option: &str, value: &str) -> Result<String, String> {
    if let Some(literal) = value.strip_prefix("@@") {
        return Ok(format!("@{literal}"));
    }
    let Some(path) = value.strip_prefix('@') else {
        return Ok(value.to_string());
    };
    if path.is_empty() {
        return Err(format!("{option} @ needs a file name after '@'"));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{option}: cannot read {path}: {e}"))?;
    let mut text =
        String::from_utf8(bytes).map_err(|_| format!("{option}: {path} is not UTF-8 text"))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

pub fn run(args: ScoreArgs) -> Result<ExitCode, String> {
    let candidate = read_value("--candidate", &args.candidate)?;
    let references = args
        .references
        .iter()
        .map(|r| read_value("--reference", r))
        .collect::<Result<Vec<_>, _>>()?;
    let scores = metrics::score(&candidate, &references);
    if args.json {
        let json = serde_json::to_string(&scores).map_err(|e| e.to_string())?;
        outln!("{json}");
    } else {
        for line in report(&scores, references.len()) {
            outln!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The metrics, one per line, for a person: BLEU and chrF on sacrebleu's
/// 0-100 scale, ROUGE F1 on rouge-score's 0-1, `-` without a reference.
fn report(scores: &Scores, references: usize) -> Vec<String> {
    let number = |value: Option<f64>, decimals: usize| {
        value.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
    };
    let exact = match scores.exact_match {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    };
    let mut lines = vec![
        format!("references    {references}"),
        format!("BLEU (0-100)  {}", number(scores.bleu, 2)),
        format!("chrF (0-100)  {}", number(scores.chrf, 2)),
        format!("ROUGE-1 F1    {}", number(scores.rouge1, 4)),
        format!("ROUGE-2 F1    {}", number(scores.rouge2, 4)),
        format!("ROUGE-L F1    {}", number(scores.rouge_l, 4)),
        format!("exact match   {exact}"),
        format!("words         {}", scores.words),
        format!("chars         {}", scores.chars),
    ];
    if references == 0 {
        lines.push("(no --reference: only the lengths are measured)".to_string());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_literal_files_or_escaped() {
        assert_eq!(
            read_value("--candidate", "plain text").unwrap(),
            "plain text"
        );
        assert_eq!(read_value("--candidate", "@@me").unwrap(), "@me");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.txt");
        std::fs::write(&path, "line one\nline two\r\n").unwrap();
        let arg = format!("@{}", path.display());
        assert_eq!(
            read_value("--candidate", &arg).unwrap(),
            "line one\nline two"
        );
        let missing = format!("@{}", dir.path().join("nope.txt").display());
        let error = read_value("--reference", &missing).unwrap_err();
        assert!(error.contains("nope.txt"), "{error}");
        assert!(read_value("--reference", "@").is_err());
    }

    #[test]
    fn the_report_without_references_says_so() {
        let lines = report(&metrics::score("a b", &[]), 0);
        assert!(lines.contains(&"BLEU (0-100)  -".to_string()), "{lines:?}");
        assert!(lines.contains(&"words         2".to_string()), "{lines:?}");
        assert!(lines.last().unwrap().contains("no --reference"));
    }
}
