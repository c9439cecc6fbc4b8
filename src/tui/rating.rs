//! The rating prompt both the rounds and the experiments use: "4 clear,
//! but long" is a rating of 4 with a note; 0 or nothing clears it.

/// The rating and note typed, `Ok(None)` to clear; an error says why the
/// text is not a rating.
pub fn parse_rating(text: &str) -> Result<Option<(u8, String)>, String> {
    let text = text.trim();
    let (number, note) = text.split_once(' ').unwrap_or((text, ""));
    match number {
        "" | "0" => Ok(None),
        n => match n.parse::<u8>() {
            Ok(r) if (1..=5).contains(&r) => Ok(Some((r, note.trim().to_string()))),
            _ => Err(format!(
                "'{n}' is not a rating: start with 1 to 5 (0 or nothing clears it)"
            )),
        },
    }
}

/// What the prompt shows for an existing rating.
pub fn rating_text(rating: Option<u8>, note: &str) -> String {
    match rating {
        Some(r) => format!("{r} {note}").trim_end().to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_parse_with_notes_and_clear() {
        assert_eq!(
            parse_rating(" 4 clear, but long "),
            Ok(Some((4, "clear, but long".into())))
        );
        assert_eq!(parse_rating("5"), Ok(Some((5, String::new()))));
        assert_eq!(parse_rating(""), Ok(None));
        assert_eq!(parse_rating("0 whatever"), Ok(None));
        assert!(parse_rating("7 too good").unwrap_err().contains("'7'"));
        assert!(parse_rating("great").is_err());
        assert_eq!(rating_text(Some(3), "ok"), "3 ok");
        assert_eq!(rating_text(Some(3), ""), "3");
    }
}
