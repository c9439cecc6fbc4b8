//! Word-level differences between two texts (two passes of a refinement, two
//! runs of a template), laid out for a side-by-side view.
//!
//! The lines are aligned first (a line diff); lines changed between the
//! passes are then paired, most similar first, and each pair is compared word
//! by word (`similar`'s inline changes, words as Unicode word boundaries
//! give them, so CJK text without spaces is compared character by
//! character). Pairs too different for a word diff to help, and lines on one
//! side only, are changed as a whole. Whitespace stays in the pieces, so
//! joining a side's pieces gives its line back; a changed run's leading and
//! trailing whitespace is `Same`.
//!
//! Lines end at `\n` or `\r\n` (the terminators are not part of the pieces;
//! a text's final line break adds no empty line).

use serde::{Deserialize, Serialize};
use similar::{
    Algorithm, ChangeTag, DiffOp, DiffableStr, InlineChangeMode, InlineChangeOptions, TextDiff,
};

/// How a piece of text differs between the two sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    Same,
    /// On the old side only.
    Deleted,
    /// On the new side only.
    Inserted,
}

/// A run of a line with one kind of change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    pub change: Change,
}

/// A line pair of a side-by-side diff: the old side's pieces and the new
/// side's (either may be None where a line exists on one side only). An
/// empty line is `Some` of no pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub old: Option<Vec<Piece>>,
    pub new: Option<Vec<Piece>>,
}

/// Two texts compared line by line, then word by word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordDiff {
    pub rows: Vec<Row>,
    /// Words (and punctuation marks, emoji, CJK characters) only in the old text.
    pub deleted_words: usize,
    /// Words (and punctuation marks, emoji, CJK characters) only in the new text.
    pub inserted_words: usize,
}

/// Changed lines at least this similar (matching words over all words, as
/// 2·M/T) are compared word by word; less similar ones are changed whole.
const PAIR_RATIO: f32 = 0.4;

/// Above this many line pairs to weigh in one changed block, its lines are
/// paired in order instead.
const MAX_PAIRINGS: usize = 4096;

/// The line diff gives up looking for the best alignment after this long
/// (it then aligns less well, never wrongly).
const LINE_DIFF_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

pub fn word_diff(old: &str, new: &str) -> WordDiff {
    let old_lines: Vec<&str> = old.lines().collect();
    let new_lines: Vec<&str> = new.lines().collect();
    let lines = TextDiff::configure()
        .algorithm(Algorithm::Patience)
        .timeout(LINE_DIFF_TIMEOUT)
        .diff_slices(&old_lines, &new_lines);
    let mut diff = WordDiff {
        rows: Vec::new(),
        deleted_words: 0,
        inserted_words: 0,
    };
    for op in lines.ops() {
        let (old_range, new_range) = (op.old_range(), op.new_range());
        match op {
            DiffOp::Equal { .. } => {
                for line in &old_lines[old_range] {
                    let pieces = whole(line, Change::Same);
                    diff.rows.push(Row {
                        old: Some(pieces.clone()),
                        new: Some(pieces),
                    });
                }
            }
            DiffOp::Delete { .. } | DiffOp::Insert { .. } | DiffOp::Replace { .. } => {
                let old_block = &old_lines[old_range];
                let new_block = &new_lines[new_range];
                for (o, n) in pair_lines(old_block, new_block) {
                    let row = match (o, n) {
                        (Some(o), Some(n)) => compare_pair(old_block[o], new_block[n]),
                        (o, n) => Row {
                            old: o.map(|o| whole(old_block[o], Change::Deleted)),
                            new: n.map(|n| whole(new_block[n], Change::Inserted)),
                        },
                    };
                    diff.push(row);
                }
            }
        }
    }
    diff
}

impl WordDiff {
    /// True when every line is on both sides and unchanged (line terminators
    /// aside: `\r\n` equals `\n`, and a final line break is no line).
    pub fn is_identical(&self) -> bool {
        self.rows.iter().all(|row| match (&row.old, &row.new) {
            (Some(old), Some(new)) => old
                .iter()
                .chain(new)
                .all(|piece| piece.change == Change::Same),
            _ => false,
        })
    }

    /// `-3 +5 words`; `identical`, or `whitespace only` when no word changed.
    pub fn summary(&self) -> String {
        if self.is_identical() {
            "identical".to_string()
        } else if self.deleted_words == 0 && self.inserted_words == 0 {
            "whitespace only".to_string()
        } else {
            format!("-{} +{} words", self.deleted_words, self.inserted_words)
        }
    }

    fn push(&mut self, row: Row) {
        let count = |pieces: &Option<Vec<Piece>>, change: Change| {
            pieces
                .iter()
                .flatten()
                .filter(|piece| piece.change == change)
                .map(|piece| count_words(&piece.text))
                .sum::<usize>()
        };
        self.deleted_words += count(&row.old, Change::Deleted);
        self.inserted_words += count(&row.new, Change::Inserted);
        self.rows.push(row);
    }
}

/// Tokens that are not whitespace: words, punctuation marks, emoji, and CJK
/// characters one by one.
fn words(text: &str) -> Vec<&str> {
    text.tokenize_unicode_words()
        .into_iter()
        .filter(|token| !token.chars().all(char::is_whitespace))
        .collect()
}

fn count_words(text: &str) -> usize {
    words(text).len()
}

/// How alike two lines are by their words: 2·M/T, 1 for two lines without
/// words.
fn similarity(old: &str, new: &str) -> f32 {
    let (old, new) = (words(old), words(new));
    let ops = similar::capture_diff_slices(Algorithm::Patience, &old, &new);
    similar::diff_ratio(&ops, old.len(), new.len())
}

/// Orders the lines of a changed block into rows: (old, new) indices, a pair
/// where both are given. Pairs are chosen to be the most similar in order
/// (each at least [`PAIR_RATIO`] alike); the lines left over between two
/// pairs share rows in order.
fn pair_lines(old: &[&str], new: &[&str]) -> Vec<(Option<usize>, Option<usize>)> {
    let (n, m) = (old.len(), new.len());
    let mut rows = Vec::with_capacity(n.max(m));
    if n == 0 || m == 0 || n.saturating_mul(m) > MAX_PAIRINGS {
        zip_gap(&mut rows, 0..n, 0..m);
        return rows;
    }
    // best[i][j]: the most similarity pairing old[i..] with new[j..] gives.
    let mut alike = vec![vec![None; m]; n];
    for (i, o) in old.iter().enumerate() {
        for (j, w) in new.iter().enumerate() {
            let ratio = similarity(o, w);
            if ratio >= PAIR_RATIO {
                alike[i][j] = Some(ratio);
            }
        }
    }
    let mut best = vec![vec![0f32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            let skip = best[i + 1][j].max(best[i][j + 1]);
            best[i][j] = match alike[i][j] {
                Some(ratio) => skip.max(best[i + 1][j + 1] + ratio),
                None => skip,
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let (mut gap_i, mut gap_j) = (0, 0);
    while i < n && j < m {
        match alike[i][j] {
            Some(ratio) if best[i][j] == best[i + 1][j + 1] + ratio => {
                zip_gap(&mut rows, gap_i..i, gap_j..j);
                rows.push((Some(i), Some(j)));
                i += 1;
                j += 1;
                (gap_i, gap_j) = (i, j);
            }
            _ if best[i][j] == best[i + 1][j] => i += 1,
            _ => j += 1,
        }
    }
    zip_gap(&mut rows, gap_i..n, gap_j..m);
    rows
}

/// Lines between two pairs: side by side in order, the longer side's rest
/// alone.
fn zip_gap(
    rows: &mut Vec<(Option<usize>, Option<usize>)>,
    old: std::ops::Range<usize>,
    new: std::ops::Range<usize>,
) {
    let len = old.len().max(new.len());
    let (mut old, mut new) = (old, new);
    for _ in 0..len {
        rows.push((old.next(), new.next()));
    }
}

/// Two lines that share a row, compared word by word when they are alike
/// enough, else changed whole.
fn compare_pair(old: &str, new: &str) -> Row {
    if old == new {
        return Row {
            old: Some(whole(old, Change::Same)),
            new: Some(whole(new, Change::Same)),
        };
    }
    if similarity(old, new) < PAIR_RATIO {
        return Row {
            old: Some(whole(old, Change::Deleted)),
            new: Some(whole(new, Change::Inserted)),
        };
    }
    let lines = TextDiff::from_slices(&[old], &[new]);
    let mut options = InlineChangeOptions::new();
    options
        .mode(InlineChangeMode::UnicodeWords)
        // The pair is known to be alike enough: always refine.
        .min_ratio(0.0)
        .semantic_cleanup(true);
    let (mut old_pieces, mut new_pieces) = (Vec::new(), Vec::new());
    for op in lines.ops() {
        for change in lines.iter_inline_changes_with_options(op, options) {
            let (side, changed) = match change.tag() {
                ChangeTag::Delete => (&mut old_pieces, Change::Deleted),
                ChangeTag::Insert => (&mut new_pieces, Change::Inserted),
                // Not reached: the lines differ.
                ChangeTag::Equal => continue,
            };
            for (emphasized, text) in change.values() {
                push_piece(side, text, if *emphasized { changed } else { Change::Same });
            }
        }
    }
    Row {
        old: Some(old_pieces),
        new: Some(new_pieces),
    }
}

/// A line as one piece (none when empty).
fn whole(line: &str, change: Change) -> Vec<Piece> {
    let mut pieces = Vec::new();
    push_piece(&mut pieces, line, change);
    pieces
}

/// Appends text to a line's pieces, merging it into the last piece when the
/// change is the same; a changed run's whitespace at either end is `Same`
/// (unless the run is only whitespace).
fn push_piece(pieces: &mut Vec<Piece>, text: &str, change: Change) {
    let mut push = |text: &str, change: Change| {
        if text.is_empty() {
            return;
        }
        match pieces.last_mut() {
            Some(last) if last.change == change => last.text.push_str(text),
            _ => pieces.push(Piece {
                text: text.to_string(),
                change,
            }),
        }
    };
    let core = text.trim_matches(char::is_whitespace);
    if change == Change::Same || core.is_empty() {
        push(text, change);
        return;
    }
    let start = text.len() - text.trim_start_matches(char::is_whitespace).len();
    let end = start + core.len();
    push(&text[..start], Change::Same);
    push(core, change);
    push(&text[end..], Change::Same);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(text: &str) -> Piece {
        Piece {
            text: text.into(),
            change: Change::Same,
        }
    }

    fn del(text: &str) -> Piece {
        Piece {
            text: text.into(),
            change: Change::Deleted,
        }
    }

    fn ins(text: &str) -> Piece {
        Piece {
            text: text.into(),
            change: Change::Inserted,
        }
    }

    fn row(old: Option<Vec<Piece>>, new: Option<Vec<Piece>>) -> Row {
        Row { old, new }
    }

    /// A side's text with changes marked: `[-x-]` deleted, `{+x+}` inserted.
    fn marked(pieces: &Option<Vec<Piece>>) -> String {
        match pieces {
            None => "∅".to_string(),
            Some(pieces) => pieces
                .iter()
                .map(|p| match p.change {
                    Change::Same => p.text.clone(),
                    Change::Deleted => format!("[-{}-]", p.text),
                    Change::Inserted => format!("{{+{}+}}", p.text),
                })
                .collect(),
        }
    }

    fn sides(diff: &WordDiff) -> Vec<(String, String)> {
        diff.rows
            .iter()
            .map(|r| (marked(&r.old), marked(&r.new)))
            .collect()
    }

    /// Joining each side's pieces gives its lines back.
    fn assert_round_trip(old: &str, new: &str, diff: &WordDiff) {
        let side = |pick: fn(&Row) -> &Option<Vec<Piece>>| -> Vec<String> {
            diff.rows
                .iter()
                .filter_map(|r| pick(r).as_ref())
                .map(|pieces| pieces.iter().map(|p| p.text.as_str()).collect())
                .collect()
        };
        assert_eq!(side(|r| &r.old), old.lines().collect::<Vec<_>>());
        assert_eq!(side(|r| &r.new), new.lines().collect::<Vec<_>>());
        for pieces in diff.rows.iter().flat_map(|r| r.old.iter().chain(&r.new)) {
            assert!(pieces.iter().all(|p| !p.text.is_empty()), "{pieces:?}");
            assert!(
                pieces.windows(2).all(|w| w[0].change != w[1].change),
                "unmerged: {pieces:?}"
            );
        }
    }

    fn check(old: &str, new: &str) -> WordDiff {
        let diff = word_diff(old, new);
        assert_round_trip(old, new, &diff);
        diff
    }

    #[test]
    fn identical_texts() {
        let text = "The quick brown fox.\n\njumps over the lazy dog.\n";
        let diff = check(text, text);
        assert!(diff.is_identical());
        assert_eq!(diff.summary(), "identical");
        assert_eq!((diff.deleted_words, diff.inserted_words), (0, 0));
        assert_eq!(
            diff.rows,
            vec![
                row(
                    Some(vec![same("The quick brown fox.")]),
                    Some(vec![same("The quick brown fox.")])
                ),
                row(Some(vec![]), Some(vec![])),
                row(
                    Some(vec![same("jumps over the lazy dog.")]),
                    Some(vec![same("jumps over the lazy dog.")])
                ),
            ]
        );
    }

    #[test]
    fn pure_insert_and_pure_delete() {
        let diff = check("", "Bees dance.\nThey buzz.");
        assert!(!diff.is_identical());
        assert_eq!(
            diff.rows,
            vec![
                row(None, Some(vec![ins("Bees dance.")])),
                row(None, Some(vec![ins("They buzz.")])),
            ]
        );
        assert_eq!((diff.deleted_words, diff.inserted_words), (0, 6));
        assert_eq!(diff.summary(), "-0 +6 words");

        let diff = check("Bees dance.\nThey buzz.", "");
        assert_eq!(
            diff.rows,
            vec![
                row(Some(vec![del("Bees dance.")]), None),
                row(Some(vec![del("They buzz.")]), None),
            ]
        );
        assert_eq!(diff.summary(), "-6 +0 words");

        // Words added at the end of a line.
        let diff = check("Bees dance", "Bees dance to show where food is");
        assert_eq!(
            sides(&diff),
            vec![(
                "Bees dance".into(),
                "Bees dance {+to show where food is+}".into()
            )]
        );
        assert_eq!(diff.summary(), "-0 +5 words");
    }

    #[test]
    fn changed_word_in_the_middle() {
        let diff = check(
            "The review is good and clear.",
            "The review is thorough and clear.",
        );
        assert_eq!(
            diff.rows,
            vec![row(
                Some(vec![
                    same("The review is "),
                    del("good"),
                    same(" and clear.")
                ]),
                Some(vec![
                    same("The review is "),
                    ins("thorough"),
                    same(" and clear.")
                ]),
            )]
        );
        assert_eq!(diff.summary(), "-1 +1 words");

        // Two adjacent words become one: the space between them goes too.
        let diff = check("a very big dog", "a huge dog");
        assert_eq!(
            sides(&diff),
            vec![("a [-very big-] dog".into(), "a {+huge+} dog".into())]
        );
        assert_eq!((diff.deleted_words, diff.inserted_words), (2, 1));
    }

    #[test]
    fn multi_line_with_an_inserted_line() {
        let old = "Title\nThe first point is fine.\nThe last point is weak.\n";
        let new = "Title\nThe first point is fine.\nA new point appears here.\nThe last point is strong.\n";
        let diff = check(old, new);
        assert_eq!(
            sides(&diff),
            vec![
                ("Title".into(), "Title".into()),
                (
                    "The first point is fine.".into(),
                    "The first point is fine.".into()
                ),
                ("∅".into(), "{+A new point appears here.+}".into()),
                (
                    "The last point is [-weak-].".into(),
                    "The last point is {+strong+}.".into()
                ),
            ]
        );
        assert_eq!((diff.deleted_words, diff.inserted_words), (1, 7));
    }

    #[test]
    fn a_changed_line_pairs_with_its_likeness_not_its_position() {
        // The line diff sees one changed block of 1 and 2 lines; the old line
        // is paired with the second new one, which it resembles.
        let diff = check(
            "Honeybees dance to show where food is.",
            "Bees are insects.\nHoneybees dance to show where the food is.",
        );
        assert_eq!(
            sides(&diff),
            vec![
                ("∅".into(), "{+Bees are insects.+}".into()),
                (
                    "Honeybees dance to show where food is.".into(),
                    "Honeybees dance to show where {+the+} food is.".into()
                ),
            ]
        );
    }

    #[test]
    fn unrelated_lines_share_a_row_changed_whole() {
        let diff = check("Apples are red.", "Stop the engine now!");
        assert_eq!(
            diff.rows,
            vec![row(
                Some(vec![del("Apples are red.")]),
                Some(vec![ins("Stop the engine now!")])
            )]
        );
        assert_eq!(diff.summary(), "-4 +5 words");
    }

    #[test]
    fn unicode_cjk_emoji_and_combining_accents() {
        // CJK without spaces: compared character by character.
        let diff = check("我喜欢猫。", "我讨厌猫。");
        assert_eq!(
            sides(&diff),
            vec![("我[-喜欢-]猫。".into(), "我{+讨厌+}猫。".into())]
        );
        assert_eq!((diff.deleted_words, diff.inserted_words), (2, 2));

        // An emoji (a ZWJ sequence) is one word and never split.
        let diff = check("a 👩‍👩‍👧 family", "a 🐝 family");
        assert_eq!(
            sides(&diff),
            vec![("a [-👩‍👩‍👧-] family".into(), "a {+🐝+} family".into())]
        );
        assert_eq!(diff.summary(), "-1 +1 words");

        // A combining accent belongs to its letter's word.
        let diff = check("un cafe\u{301} noir", "un cafe noir");
        assert_eq!(
            sides(&diff),
            vec![("un [-cafe\u{301}-] noir".into(), "un {+cafe+} noir".into())]
        );
    }

    #[test]
    fn empty_sides() {
        let diff = check("", "");
        assert!(diff.is_identical());
        assert!(diff.rows.is_empty());
        assert_eq!(diff.summary(), "identical");

        // An empty line against a line of words.
        let diff = check("\n", "words here\n");
        assert_eq!(
            diff.rows,
            vec![row(Some(vec![]), Some(vec![ins("words here")]))]
        );

        // An empty line added.
        let diff = check("a\nb", "a\n\nb");
        assert_eq!(diff.rows[1], row(None, Some(vec![])), "{:?}", sides(&diff));
        assert!(!diff.is_identical());
        assert_eq!(diff.summary(), "whitespace only");
    }

    #[test]
    fn crlf_equals_lf_and_whitespace_changes_show() {
        let diff = check("one two\r\nthree\r\n", "one two\nthree");
        assert!(diff.is_identical(), "{:?}", sides(&diff));

        let diff = check("one two\r\nthree\r\n", "one  two\nthree four\n");
        assert_eq!(
            sides(&diff),
            vec![
                ("one[- -]two".into(), "one{+  +}two".into()),
                ("three".into(), "three {+four+}".into()),
            ]
        );
        assert_eq!((diff.deleted_words, diff.inserted_words), (0, 1));
    }

    #[test]
    fn many_lines_changed_do_not_take_long() {
        let old: String = (0..300)
            .map(|i| format!("line {i} of the old text\n"))
            .collect();
        let new: String = (0..300)
            .map(|i| format!("row {i} of a new text\n"))
            .collect();
        let start = std::time::Instant::now();
        let diff = check(&old, &new);
        assert_eq!(diff.rows.len(), 300);
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
}
