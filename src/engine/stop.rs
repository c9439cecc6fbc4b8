//! Stop strings: generation ends when the text contains one, and the stop
//! string itself is never shown. Text that might be the beginning of a stop
//! string is held back until it is clear whether it is one.

#[derive(Debug, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum StopOutcome {
    /// Generation goes on; this text can be shown.
    Continue(String),
    /// A stop string appeared; this is the text before it, still to be shown.
    Stopped(String),
}

impl StopMatcher {
    pub fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> StopOutcome {
        self.held.push_str(text);
        // Everything before `held` was already released and contained no stop
        // string, nor the start of one, so a match can only begin inside `held`.
        let first_match = self
            .stops
            .iter()
            .filter_map(|stop| self.held.find(stop.as_str()))
            .min();
        if let Some(at) = first_match {
            let before = self.held[..at].to_string();
            self.held.clear();
            return StopOutcome::Stopped(before);
        }
        let keep = self.longest_suffix_that_starts_a_stop();
        let release_len = self.held.len() - keep;
        let released = self.held[..release_len].to_string();
        self.held.drain(..release_len);
        StopOutcome::Continue(released)
    }

    /// Releases whatever is held back when generation ends for another reason.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    fn longest_suffix_that_starts_a_stop(&self) -> usize {
        let mut longest = 0;
        for stop in &self.stops {
            for (cut, _) in stop.char_indices().skip(1) {
                let prefix = &stop[..cut];
                if cut > longest && self.held.ends_with(prefix) {
                    longest = cut;
                }
            }
        }
        longest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut matcher = StopMatcher::new(&stops);
        let mut shown = String::new();
        for piece in pieces {
            match matcher.push(piece) {
                StopOutcome::Continue(text) => shown.push_str(&text),
                StopOutcome::Stopped(text) => {
                    shown.push_str(&text);
                    return (shown, true);
                }
            }
        }
        shown.push_str(&matcher.finish());
        (shown, false)
    }

    #[test]
    fn stop_string_split_across_pieces_is_not_shown() {
        assert_eq!(
            run(&["\n\n"], &["Hello", "\n", "\nWorld"]),
            ("Hello".into(), true)
        );
        assert_eq!(
            run(&["END"], &["abc E", "N", "D tail"]),
            ("abc ".into(), true)
        );
    }

    #[test]
    fn near_miss_is_released() {
        assert_eq!(run(&["END"], &["EN", "x"]), ("ENx".into(), false));
        assert_eq!(run(&["END"], &["abc EN"]), ("abc EN".into(), false));
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        assert_eq!(run(&["b", "a"], &["xxab"]), ("xx".into(), true));
    }

    #[test]
    fn partial_prefix_is_held_back_while_undecided() {
        let mut matcher = StopMatcher::new(&["STOP".to_string()]);
        assert_eq!(matcher.push("go ST"), StopOutcome::Continue("go ".into()));
        assert_eq!(matcher.push("O"), StopOutcome::Continue(String::new()));
        assert_eq!(matcher.push("Px"), StopOutcome::Stopped(String::new()));
    }

    #[test]
    fn multibyte_stop_strings_respect_char_boundaries() {
        assert_eq!(run(&["。終"], &["文。", "終わり"]), ("文".into(), true));
        assert_eq!(run(&["😀!"], &["a😀", "b"]), ("a😀b".into(), false));
    }

    #[test]
    fn empty_stop_strings_are_ignored() {
        assert_eq!(run(&[""], &["abc"]), ("abc".into(), false));
    }
}
