//! A refinement run as Markdown: the task, each pass with its figures,
//! scores, rating and the feedback on it, and the word diff from the pass
//! before (`[-removed-]{+added+}`), for reading outside whet.

use std::fmt::Write as _;

use super::{Pass, RefineRun};
use crate::diff::{word_diff, Change};

pub fn to_markdown(run: &RefineRun) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Refinement run {}\n", run.id);
    let _ = writeln!(out, "- template: {}", run.template);
    if let Some(model) = &run.model {
        let _ = writeln!(out, "- model: {}", model.display());
    }
    let _ = writeln!(
        out,
        "- temperature {}, seed {}, max tokens {}, rounds {}",
        run.sampling.temperature, run.sampling.seed, run.max_tokens, run.config.max_rounds
    );
    if let Some(end) = &run.end {
        let _ = writeln!(out, "- ended: {}", end.describe());
    }
    let totals = run.totals();
    let _ = writeln!(
        out,
        "- tokens decoded: {} ({} without prefix reuse)",
        totals.decoded(),
        totals.decoded_without_reuse()
    );
    if let Some(best) = run.best {
        let _ = writeln!(out, "- best pass: {best}");
    }
    let _ = writeln!(out, "\n## Task\n\n{}\n", fence(&run.task));
    for reference in &run.references {
        let _ = writeln!(out, "Reference:\n\n{}\n", fence(reference));
    }
    let mut previous: Option<&Pass> = None;
    for pass in &run.passes {
        let title = if pass.index == 0 {
            "Draft (pass 0)".to_string()
        } else {
            format!("Pass {}", pass.index)
        };
        let _ = writeln!(out, "## {title}\n");
        let _ = writeln!(
            out,
            "{} tokens, {}; {}",
            pass.stats.generated_tokens,
            pass.reason.describe(),
            scores_line(pass)
        );
        if let Some(rating) = pass.rating {
            let _ = writeln!(out, "\nRating: {rating}/5 {}", pass.note);
        }
        let _ = writeln!(out, "\n{}\n", fence(&pass.text));
        if let Some(before) = previous {
            let _ = writeln!(
                out,
                "Changes from pass {}:\n\n{}\n",
                before.index,
                fence(&marked_diff(&before.text, &pass.text))
            );
        }
        if let Some(feedback) = &pass.feedback {
            let _ = writeln!(out, "Feedback on it:\n\n{}\n", fence(&feedback.text));
        }
        previous = Some(pass);
    }
    out
}

fn scores_line(pass: &Pass) -> String {
    let s = &pass.scores;
    let mut parts = Vec::new();
    if let Some(v) = s.bleu {
        parts.push(format!("BLEU {v:.2}"));
    }
    if let Some(v) = s.chrf {
        parts.push(format!("chrF {v:.2}"));
    }
    if let (Some(a), Some(b), Some(c)) = (s.rouge1, s.rouge2, s.rouge_l) {
        parts.push(format!("ROUGE-1/2/L {a:.3}/{b:.3}/{c:.3}"));
    }
    if let Some(exact) = s.exact_match {
        parts.push(format!("exact match: {}", if exact { "yes" } else { "no" }));
    }
    parts.push(format!("{} words", s.words));
    if let Some(diff) = pass.diff {
        parts.push(format!("-{} +{} words", diff.deleted, diff.inserted));
    }
    parts.join(", ")
}

/// A line diff for reading: `  ` same line, `- ` the old line with its
/// removed words as `[-…-]`, `+ ` the new line with added words as `{+…+}`.
pub fn marked_diff(old: &str, new: &str) -> String {
    let diff = word_diff(old, new);
    let mark = |pieces: &[crate::diff::Piece], open: &str, close: &str| {
        let mut line = String::new();
        for piece in pieces {
            match piece.change {
                Change::Same => line.push_str(&piece.text),
                _ => {
                    let _ = write!(line, "{open}{}{close}", piece.text);
                }
            }
        }
        line
    };
    let mut lines = Vec::new();
    for row in &diff.rows {
        let changed = |pieces: &Option<Vec<crate::diff::Piece>>| {
            pieces
                .as_ref()
                .is_some_and(|p| p.iter().any(|p| p.change != Change::Same))
        };
        match (&row.old, &row.new) {
            (Some(old), Some(new)) if !changed(&row.old) && !changed(&row.new) => {
                let _ = old;
                lines.push(format!("  {}", mark(new, "", "")));
            }
            (old, new) => {
                if let Some(old) = old {
                    lines.push(format!("- {}", mark(old, "[-", "-]")));
                }
                if let Some(new) = new {
                    lines.push(format!("+ {}", mark(new, "{+", "+}")));
                }
            }
        }
    }
    lines.join("\n")
}

/// A fenced block long enough for any backticks in `text`.
fn fence(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let ticks = "`".repeat((longest + 1).max(3));
    format!("{ticks}text\n{}\n{ticks}", text.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marked_diff_shows_removed_and_added_words_by_line() {
        let text = marked_diff(
            "The cake was dry.\nService was slow.",
            "The cake was moist.\nService was slow.",
        );
        assert_eq!(
            text,
            "- The cake was [-dry-].\n+ The cake was {+moist+}.\n  Service was slow."
        );
    }
}
