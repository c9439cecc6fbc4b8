//! The tokenizers the metrics are defined over, mirroring their Python
//! originals character for character:
//!
//! - [`split_py`]: Python's `str.split()` (no argument), which BLEU and chrF
//!   use to find words and to drop whitespace;
//! - [`tokenize_13a`]: sacrebleu's default BLEU tokenizer `13a` (mteval-v13a);
//! - [`tokenize_rouge`]: rouge-score's default tokenizer (no stemmer).

/// Whether Python's `str.isspace()` holds for `c`: Unicode `White_Space`
/// (what Rust's [`char::is_whitespace`] tests) plus the four ASCII
/// separators U+001C..U+001F, which Python also splits on.
pub fn is_py_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `text.split()`: the runs of non-whitespace, empty ones dropped.
pub fn split_py(text: &str) -> Vec<&str> {
    text.split(is_py_whitespace)
        .filter(|word| !word.is_empty())
        .collect()
}

/// Python's `text.rstrip()`.
pub fn rstrip_py(text: &str) -> &str {
    text.trim_end_matches(is_py_whitespace)
}

/// The characters the first rule of `13a` sets apart: ASCII punctuation
/// except `'`, `,`, `-` and `.` (plus the space, which changes nothing).
/// The regular expression is `[\{-\~\[-\` -\&\(-\+\:-\@\/]`.
fn is_13a_symbol(c: char) -> bool {
    matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

/// One `re.sub` of a two-character pattern `(A)(B)` with a replacement built
/// from both: Python scans left to right and resumes after each match, so a
/// character that ended one match cannot start the next.
fn substitute_pairs(
    chars: &[char],
    matches: impl Fn(char, char) -> bool,
    replace: impl Fn(char, char, &mut Vec<char>),
) -> Vec<char> {
    let mut out = Vec::with_capacity(chars.len() + chars.len() / 2);
    let mut i = 0;
    while i < chars.len() {
        if i + 1 < chars.len() && matches(chars[i], chars[i + 1]) {
            replace(chars[i], chars[i + 1], &mut out);
            i += 2;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// sacrebleu's `13a` tokenizer (`Tokenizer13a` then `TokenizerRegexp`),
/// applied to a segment that sacrebleu has already `rstrip()`ped. Returns
/// the tokens joined by single spaces, as sacrebleu does.
///
/// 1. `<skipped>` is removed, `-\n` joins its lines, other line breaks
///    become spaces, and `&quot;`, `&amp;`, `&lt;`, `&gt;` are unescaped;
/// 2. ASCII punctuation other than `' , - .` becomes its own token;
/// 3. `.` and `,` become tokens unless between two digits (`3.14`, `1,000`);
/// 4. `-` after a digit becomes a token (`5-6` → `5 - 6`, `a-b` stays);
/// 5. whitespace runs (Python's notion of whitespace) become one space.
pub fn tokenize_13a(line: &str) -> String {
    let mut line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    // f' {line} '
    let mut chars: Vec<char> = Vec::with_capacity(line.len() + 2);
    chars.push(' ');
    chars.extend(line.chars());
    chars.push(' ');

    let digit = |c: char| c.is_ascii_digit();
    let period_or_comma = |c: char| c == '.' || c == ',';

    // ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> ' \1 '
    let mut spaced = Vec::with_capacity(chars.len() * 2);
    for c in chars {
        if is_13a_symbol(c) {
            spaced.extend([' ', c, ' ']);
        } else {
            spaced.push(c);
        }
    }
    // ([^0-9])([\.,]) -> '\1 \2 '
    let spaced = substitute_pairs(
        &spaced,
        |a, b| !digit(a) && period_or_comma(b),
        |a, b, out| out.extend([a, ' ', b, ' ']),
    );
    // ([\.,])([^0-9]) -> ' \1 \2'
    let spaced = substitute_pairs(
        &spaced,
        |a, b| period_or_comma(a) && !digit(b),
        |a, b, out| out.extend([' ', a, ' ', b]),
    );
    // ([0-9])(-) -> '\1 \2 '
    let spaced = substitute_pairs(
        &spaced,
        |a, b| digit(a) && b == '-',
        |a, b, out| out.extend([a, ' ', b, ' ']),
    );
    let spaced: String = spaced.into_iter().collect();
    split_py(&spaced).join(" ")
}

/// rouge-score's `tokenize.tokenize(text, stemmer=None)`: the text is
/// lowercased (Unicode lowercasing, as Python's `str.lower`), every run of
/// characters other than ASCII `a-z0-9` becomes a separator, and the
/// remaining runs are the tokens.
///
/// So every non-ASCII letter is dropped: `café` gives `caf`, CJK text and
/// emoji give no tokens at all, and `İ` (which lowercases to `i` and a
/// combining dot) gives `i`.
pub fn tokenize_rouge(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    lower
        .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        .filter(|token| !token.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_whitespace_includes_the_ascii_separators() {
        assert_eq!(
            split_py(" a\tb\n\u{1c}c\u{3000}d\u{a0}e\u{85} "),
            ["a", "b", "c", "d", "e"]
        );
        // U+200B (zero width space) is not whitespace in Python either.
        assert_eq!(split_py("a\u{200b}b"), ["a\u{200b}b"]);
        assert_eq!(rstrip_py("x \u{1f}\n"), "x");
    }

    #[test]
    fn thirteen_a_splits_punctuation_but_keeps_numbers() {
        assert_eq!(tokenize_13a("Hello, world!"), "Hello , world !");
        assert_eq!(
            tokenize_13a("It costs $3.50, or 1,000 yen."),
            "It costs $ 3.50 , or 1,000 yen ."
        );
        assert_eq!(tokenize_13a("pi is 3.14."), "pi is 3.14 .");
        assert_eq!(tokenize_13a(".5 and 5."), ". 5 and 5 .");
        assert_eq!(
            tokenize_13a("(a) [b] {c} <d> \"e\""),
            "( a ) [ b ] { c } < d > \" e \""
        );
        assert_eq!(
            tokenize_13a("a/b:c;d?e@f#g%h^i_j`k|l~m"),
            "a / b : c ; d ? e @ f # g % h ^ i _ j ` k | l ~ m"
        );
    }

    #[test]
    fn thirteen_a_keeps_apostrophes_and_word_hyphens() {
        assert_eq!(tokenize_13a("don't stop"), "don't stop");
        assert_eq!(tokenize_13a("well-known 5-6 a-1"), "well-known 5 - 6 a-1");
        // Between letters, a period is split off on both sides.
        assert_eq!(tokenize_13a("e.g. U.S.A."), "e . g . U . S . A .");
    }

    #[test]
    fn thirteen_a_periods_in_a_row_follow_regex_scanning() {
        // The period that ended one match cannot start the next.
        assert_eq!(tokenize_13a("wait..."), "wait . . .");
        assert_eq!(tokenize_13a("a,,b"), "a , , b");
        assert_eq!(tokenize_13a("1.2.3"), "1.2.3");
    }

    #[test]
    fn thirteen_a_line_breaks_and_entities() {
        assert_eq!(
            tokenize_13a("hyphen-\nated line\nbreak"),
            "hyphenated line break"
        );
        assert_eq!(tokenize_13a("a <skipped> b"), "a b");
        assert_eq!(
            tokenize_13a("&quot;x&quot; &amp; &lt;y&gt;"),
            "\" x \" & < y >"
        );
        assert_eq!(tokenize_13a("tab\there"), "tab here");
    }

    #[test]
    fn thirteen_a_leaves_non_ascii_alone() {
        assert_eq!(
            tokenize_13a("Café crème, s'il vous plaît."),
            "Café crème , s'il vous plaît ."
        );
        assert_eq!(tokenize_13a("我喜欢猫。"), "我喜欢猫。");
        assert_eq!(tokenize_13a("ok 👍!"), "ok 👍 !");
    }

    #[test]
    fn rouge_lowercases_and_splits_on_non_alphanumerics() {
        assert_eq!(
            tokenize_rouge("The Cat's 2 hats!"),
            ["the", "cat", "s", "2", "hats"]
        );
        assert_eq!(tokenize_rouge("  "), Vec::<String>::new());
        assert_eq!(
            tokenize_rouge("e-mail\tand\nnews_letter"),
            ["e", "mail", "and", "news", "letter"]
        );
    }

    #[test]
    fn rouge_drops_non_ascii_letters() {
        assert_eq!(
            tokenize_rouge("Café naïve Ünïcode"),
            ["caf", "na", "ve", "n", "code"]
        );
        assert_eq!(tokenize_rouge("我喜欢猫 🐱"), Vec::<String>::new());
        assert_eq!(tokenize_rouge("İstanbul"), ["i", "stanbul"]);
        // KELVIN SIGN lowercases to an ASCII k.
        assert_eq!(tokenize_rouge("5\u{212a}"), ["5k"]);
        // Fullwidth digits are not ASCII digits.
        assert_eq!(tokenize_rouge("ｘ１２"), Vec::<String>::new());
    }
}
