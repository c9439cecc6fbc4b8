//! The lens: a reply's tokens shaded by how likely the model found them, a
//! token cursor, and a side panel with the token's probability, the entropy
//! there and the alternatives, one of which can be chosen to fork the reply
//! at that token. The state and its keys are pure; `render` draws a reply
//! under the lens into an area. Chat, workbench and rounds each keep a
//! [`Lens`] and decide what a fork does.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;
use unicode_width::UnicodeWidthChar;

use super::theme::{Slot, Theme};
use crate::engine::probs::{Confidence, ProbsRequest};
use crate::store::tokens::{KeptAlternative, KeptToken};

/// What the chat and the workbench ask for with every reply: the model's
/// own distribution (before the sampler), ten alternatives per token.
pub const PROBS: ProbsRequest = ProbsRequest {
    top: 10,
    after_sampler: false,
};

/// What a reply without kept probabilities says under the lens.
pub const NO_PROBS: &str = "no probabilities were kept for this reply";

/// Where the lens is on one reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lens {
    /// The token under the cursor.
    pub cursor: usize,
    /// The alternative chosen in the panel (an index into the token's top).
    pub choice: usize,
    /// While the reply streams, the cursor stays on the newest token until
    /// it is moved.
    pub follow: bool,
}

/// What a key did under the lens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LensKey {
    /// The cursor or the choice moved (or nothing to do).
    Moved,
    /// Fork the reply: keep the tokens before `at`, put `choice` there and
    /// go on generating.
    Fork { at: usize, choice: KeptAlternative },
    /// The chosen alternative is the token the reply already has.
    SameToken,
    /// Not a lens key: the caller handles it.
    Unhandled,
}

impl Lens {
    /// The lens opened on a reply of `tokens` tokens; on one still
    /// streaming it follows the newest token.
    pub fn open(tokens: &[KeptToken], streaming: bool) -> Self {
        let cursor = if streaming {
            tokens.len().saturating_sub(1)
        } else {
            0
        };
        Lens {
            cursor,
            choice: first_other(tokens.get(cursor)),
            follow: streaming,
        }
    }

    /// Keeps the cursor on a token and the choice on an alternative as the
    /// reply grows (or after a reload shrank it).
    pub fn settle(&mut self, tokens: &[KeptToken]) {
        let last = tokens.len().saturating_sub(1);
        if self.follow {
            // A new newest token, or the first one of a lens opened before
            // any arrived (its choice was made with nothing to choose from).
            let on_itself = tokens
                .get(last)
                .is_some_and(|t| t.top.get(self.choice).is_some_and(|a| a.id == t.id));
            if self.cursor != last || on_itself {
                self.cursor = last;
                self.choice = first_other(tokens.get(last));
            }
        } else {
            self.cursor = self.cursor.min(last);
        }
        let alternatives = tokens.get(self.cursor).map_or(0, |t| t.top.len());
        self.choice = self.choice.min(alternatives.saturating_sub(1));
    }

    fn move_to(&mut self, cursor: usize, tokens: &[KeptToken]) {
        self.follow = false;
        self.cursor = cursor.min(tokens.len().saturating_sub(1));
        self.choice = first_other(tokens.get(self.cursor));
    }

    /// ←/→ (h/l) a token, Home/End the first/last, ↑/↓ (k/j) the
    /// alternative, Enter forks at the cursor with it.
    pub fn on_key(&mut self, key: KeyEvent, tokens: &[KeptToken]) -> LensKey {
        let last = tokens.len().saturating_sub(1);
        match key.code {
            KeyCode::Left | KeyCode::Char('h') => {
                self.move_to(self.cursor.saturating_sub(1), tokens)
            }
            KeyCode::Right | KeyCode::Char('l') => self.move_to(self.cursor + 1, tokens),
            KeyCode::Home => self.move_to(0, tokens),
            KeyCode::End => self.move_to(last, tokens),
            KeyCode::Up | KeyCode::Char('k') => {
                self.choice = self.choice.saturating_sub(1);
            }
            KeyCode::Down | KeyCode::Char('j') => {
                let alternatives = tokens.get(self.cursor).map_or(0, |t| t.top.len());
                self.choice = (self.choice + 1).min(alternatives.saturating_sub(1));
            }
            KeyCode::Enter => {
                let Some(token) = tokens.get(self.cursor) else {
                    return LensKey::Moved;
                };
                let Some(choice) = token.top.get(self.choice) else {
                    return LensKey::Moved;
                };
                if choice.id == token.id {
                    return LensKey::SameToken;
                }
                return LensKey::Fork {
                    at: self.cursor,
                    choice: choice.clone(),
                };
            }
            _ => return LensKey::Unhandled,
        }
        LensKey::Moved
    }
}

/// The first alternative that is not the token itself (the likeliest other
/// choice), else the first.
fn first_other(token: Option<&KeptToken>) -> usize {
    token
        .and_then(|t| t.top.iter().position(|a| a.id != t.id))
        .unwrap_or(0)
}

/// The tokens of a fork at `at` with `choice`: the kept ones, then the
/// chosen token with the distribution it was chosen from.
pub fn forked_tokens(tokens: &[KeptToken], at: usize, choice: &KeptAlternative) -> Vec<KeptToken> {
    let mut kept: Vec<KeptToken> = tokens[..at.min(tokens.len())].to_vec();
    if let Some(original) = tokens.get(at) {
        kept.push(original.forced(choice));
    }
    kept
}

/// The style of a token of probability `prob`: its theme slot, and an
/// underline on unlikely ones whatever the theme (readable without colour).
pub fn shade(theme: &Theme, prob: f32) -> Style {
    match Confidence::of(prob) {
        Confidence::Low => theme
            .style(Slot::ConfidenceLow)
            .add_modifier(Modifier::UNDERLINED),
        Confidence::Medium => theme.style(Slot::ConfidenceMedium),
        Confidence::High => theme.style(Slot::ConfidenceHigh),
    }
}

/// A token's text with whitespace made visible: `␣` for a space, `↵` for
/// a newline, `⇥` for a tab, `\u{…}` for other control characters, and
/// `∅` for a token that added no text.
pub fn visible(text: &str) -> String {
    if text.is_empty() {
        return "∅".to_string();
    }
    let mut out = String::new();
    for c in text.chars() {
        match c {
            ' ' => out.push('␣'),
            '\n' => out.push('↵'),
            '\t' => out.push('⇥'),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The reply's tokens as lines of at most `width` columns: each token
/// shaded, the cursor's reversed, a newline shown as `↵` before the break.
/// Returns the lines and the line the cursor is on.
pub fn token_lines(
    tokens: &[KeptToken],
    cursor: Option<usize>,
    theme: &Theme,
    width: u16,
) -> (Vec<Line<'static>>, usize) {
    let width = usize::from(width.max(2));
    let base = theme.style(Slot::Text);
    let mut lines: Vec<Line<'static>> = Vec::new();
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut used = 0usize;
    let mut cursor_line = 0;
    let mut piece = String::new();
    for (index, token) in tokens.iter().enumerate() {
        let at_cursor = Some(index) == cursor;
        let mut style = base.patch(shade(theme, token.prob()));
        if at_cursor {
            style = style.add_modifier(Modifier::REVERSED);
            cursor_line = lines.len();
        }
        // A token that added nothing still needs a place for the cursor.
        let text = if token.text.is_empty() && at_cursor {
            "∅"
        } else {
            token.text.as_str()
        };
        for c in text.chars() {
            let (shown, breaks) = match c {
                '\n' => ('↵', true),
                '\t' => (' ', false),
                '\r' => continue,
                c if c.is_control() => ('\u{fffd}', false),
                c => (c, false),
            };
            let w = shown.width().unwrap_or(0);
            if used + w > width && used > 0 {
                if !piece.is_empty() {
                    spans.push(Span::styled(std::mem::take(&mut piece), style));
                }
                lines.push(Line::from(std::mem::take(&mut spans)));
                used = 0;
                if at_cursor {
                    cursor_line = lines.len();
                }
            }
            piece.push(shown);
            used += w;
            if breaks {
                spans.push(Span::styled(std::mem::take(&mut piece), style));
                lines.push(Line::from(std::mem::take(&mut spans)));
                used = 0;
            }
        }
        if !piece.is_empty() {
            spans.push(Span::styled(std::mem::take(&mut piece), style));
        }
    }
    if !spans.is_empty() || lines.is_empty() {
        lines.push(Line::from(spans));
    }
    (lines, cursor_line)
}

/// Draws a reply under the lens into `area`: its tokens on the left (or
/// above, when narrow) and the panel of the cursor's token. `hints` is
/// the panel's last line (the keys).
pub fn render(
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
    tokens: Option<&[KeptToken]>,
    lens: &Lens,
    hints: &str,
) {
    if area.width == 0 || area.height == 0 {
        return;
    }
    let Some(tokens) = tokens.filter(|t| !t.is_empty()) else {
        let why = match tokens {
            Some(_) => "no tokens yet",
            None => NO_PROBS,
        };
        frame.render_widget(
            Paragraph::new(Line::styled(why, theme.style(Slot::Muted)))
                .wrap(ratatui::widgets::Wrap { trim: false }),
            area,
        );
        return;
    };
    let wide = area.width >= 60;
    let (text_area, panel_area) = if wide {
        let panel = (area.width / 2).min(38);
        let [text, panel] =
            Layout::horizontal([Constraint::Min(10), Constraint::Length(panel)]).areas(area);
        (text, panel)
    } else {
        // The panel's lines, the text keeping at least two.
        let wanted = tokens
            .get(lens.cursor)
            .map_or(4, |t| t.top.len() as u16 + 6);
        let panel = wanted.min(area.height.saturating_sub(2));
        let [text, panel] =
            Layout::vertical([Constraint::Min(1), Constraint::Length(panel)]).areas(area);
        (text, panel)
    };
    let (lines, cursor_line) = token_lines(tokens, Some(lens.cursor), theme, text_area.width);
    let height = usize::from(text_area.height);
    // Keep the cursor's line in view, a third from the top when scrolling.
    let top = if cursor_line < height {
        0
    } else {
        cursor_line.saturating_sub(height / 3)
    };
    let shown: Vec<Line<'static>> = lines.into_iter().skip(top).take(height).collect();
    frame.render_widget(
        Paragraph::new(shown).style(theme.style(Slot::Text)),
        text_area,
    );
    if let Some(token) = tokens.get(lens.cursor) {
        let borders = if wide { Borders::LEFT } else { Borders::TOP };
        let block = Block::default()
            .borders(borders)
            .border_style(theme.style(Slot::Border));
        let inner = block.inner(panel_area);
        frame.render_widget(block, panel_area);
        let panel = panel_lines(token, lens, tokens.len(), theme, inner.width, hints);
        frame.render_widget(
            Paragraph::new(panel)
                .style(theme.style(Slot::Text))
                .wrap(ratatui::widgets::Wrap { trim: false }),
            inner,
        );
    }
}

/// The side panel of one token.
fn panel_lines(
    token: &KeptToken,
    lens: &Lens,
    count: usize,
    theme: &Theme,
    width: u16,
    hints: &str,
) -> Vec<Line<'static>> {
    let muted = theme.style(Slot::Muted);
    let title = theme.style(Slot::Title);
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("token {}/{count} ", lens.cursor + 1), title),
            Span::styled(
                clip(&visible(&token.text), usize::from(width).saturating_sub(12)),
                shade(theme, token.prob()).add_modifier(Modifier::BOLD),
            ),
        ]),
        Line::from(vec![
            Span::styled("p ", muted),
            Span::raw(percent(token.prob())),
            Span::styled("  logprob ", muted),
            Span::raw(format!("{:.3}", token.logprob.nats())),
        ]),
        Line::from(vec![
            Span::styled("entropy ", muted),
            Span::raw(match token.entropy {
                Some(h) => format!("{:.2} nats", h.nats()),
                None => "not kept".to_string(),
            }),
        ]),
    ];
    // Rows: marker, text, percentage, bar.
    let bar_width = usize::from(width).saturating_sub(22).clamp(0, 12);
    let text_width = usize::from(width).saturating_sub(bar_width + 10).max(1);
    for (index, alternative) in token.top.iter().enumerate() {
        let chosen = index == lens.choice;
        let sampled = alternative.id == token.id;
        let marker = match (chosen, sampled) {
            (true, _) => "▶",
            (false, true) => "•",
            _ => " ",
        };
        let prob = alternative.logprob.prob();
        let filled = ((prob * bar_width as f32).round() as usize).min(bar_width);
        let mut style = shade(theme, prob);
        if chosen {
            style = style.add_modifier(Modifier::REVERSED);
        }
        let text = clip(&visible(&alternative.text), text_width);
        let pad = text_width.saturating_sub(text.chars().map(|c| c.width().unwrap_or(0)).sum());
        lines.push(Line::from(vec![
            Span::raw(marker),
            Span::styled(text, style),
            Span::raw(format!("{} {:>6}", " ".repeat(pad), percent(prob))),
            Span::styled(format!(" {}", "█".repeat(filled)), muted),
        ]));
    }
    if token.top.is_empty() {
        lines.push(Line::styled("no alternatives were kept", muted));
    }
    lines.push(Line::styled(hints.to_string(), muted));
    lines
}

fn percent(prob: f32) -> String {
    let p = prob * 100.0;
    if p >= 10.0 {
        format!("{p:.0}%")
    } else if p >= 0.1 {
        format!("{p:.1}%")
    } else {
        "<0.1%".to_string()
    }
}

/// At most `width` columns of `text`, `…` marking a cut.
fn clip(text: &str, width: usize) -> String {
    let total: usize = text.chars().map(|c| c.width().unwrap_or(0)).sum();
    if total <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tokens::MilliNats;

    fn token(id: i32, text: &str, prob: f32, others: &[(i32, &str, f32)]) -> KeptToken {
        let mut top = vec![KeptAlternative {
            id,
            text: text.into(),
            logprob: MilliNats::from_nats(prob.ln()),
        }];
        top.extend(others.iter().map(|&(id, text, p)| KeptAlternative {
            id,
            text: text.into(),
            logprob: MilliNats::from_nats(p.ln()),
        }));
        top.sort_by_key(|a| std::cmp::Reverse(a.logprob));
        KeptToken {
            id,
            text: text.into(),
            logprob: MilliNats::from_nats(prob.ln()),
            entropy: Some(MilliNats(900)),
            top,
        }
    }

    fn reply() -> Vec<KeptToken> {
        vec![
            token(1, "The", 0.9, &[(2, "A", 0.05)]),
            token(3, " cat", 0.2, &[(4, " dog", 0.5), (5, " bird", 0.1)]),
            token(6, "\n", 0.7, &[(7, ".", 0.2)]),
        ]
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::from(code)
    }

    #[test]
    fn the_cursor_moves_and_the_choice_starts_on_the_likeliest_other_token() {
        let tokens = reply();
        let mut lens = Lens::open(&tokens, false);
        assert_eq!((lens.cursor, lens.choice), (0, 1));
        assert_eq!(lens.on_key(key(KeyCode::Right), &tokens), LensKey::Moved);
        // " dog" (0.5) is above the sampled " cat" (0.2).
        assert_eq!((lens.cursor, lens.choice), (1, 0));
        lens.on_key(key(KeyCode::Down), &tokens);
        lens.on_key(key(KeyCode::Down), &tokens);
        lens.on_key(key(KeyCode::Down), &tokens);
        assert_eq!(lens.choice, 2);
        lens.on_key(key(KeyCode::End), &tokens);
        lens.on_key(key(KeyCode::Right), &tokens);
        assert_eq!(lens.cursor, 2);
        lens.on_key(key(KeyCode::Home), &tokens);
        lens.on_key(key(KeyCode::Left), &tokens);
        assert_eq!(lens.cursor, 0);
        assert_eq!(lens.on_key(key(KeyCode::Tab), &tokens), LensKey::Unhandled);
    }

    #[test]
    fn enter_forks_with_the_chosen_alternative() {
        let tokens = reply();
        let mut lens = Lens::open(&tokens, false);
        lens.on_key(key(KeyCode::Right), &tokens);
        let LensKey::Fork { at, choice } = lens.on_key(key(KeyCode::Enter), &tokens) else {
            panic!("no fork");
        };
        assert_eq!((at, choice.id, choice.text.as_str()), (1, 4, " dog"));
        let forked = forked_tokens(&tokens, at, &choice);
        assert_eq!(forked.len(), 2);
        assert_eq!(forked[0], tokens[0]);
        assert_eq!((forked[1].id, forked[1].text.as_str()), (4, " dog"));
        assert_eq!(forked[1].logprob, choice.logprob);
        assert_eq!(forked[1].top, tokens[1].top);
        // Choosing the token the reply has is not a fork.
        lens.on_key(key(KeyCode::Down), &tokens);
        assert_eq!(
            lens.on_key(key(KeyCode::Enter), &tokens),
            LensKey::SameToken
        );
    }

    #[test]
    fn a_streaming_reply_is_followed_until_the_cursor_moves() {
        let mut tokens = reply();
        let mut lens = Lens::open(&tokens[..1], true);
        assert_eq!(lens.cursor, 0);
        lens.settle(&tokens[..2]);
        assert_eq!(lens.cursor, 1);
        lens.settle(&tokens);
        assert_eq!(lens.cursor, 2);
        lens.on_key(key(KeyCode::Left), &tokens);
        tokens.push(token(8, "x", 0.5, &[]));
        lens.settle(&tokens);
        assert_eq!(lens.cursor, 1);
        // Nothing to point at: no panic, nothing to fork.
        let mut empty = Lens::open(&[], true);
        assert_eq!(empty.on_key(key(KeyCode::Enter), &[]), LensKey::Moved);
        assert_eq!(empty.on_key(key(KeyCode::Down), &[]), LensKey::Moved);
        // Opened before the first token: once it arrives, the choice is
        // its likeliest alternative, not the token itself.
        let tokens = reply();
        empty.settle(&tokens[..1]);
        assert_eq!(empty.cursor, 0);
        assert_eq!(empty.choice, first_other(tokens.first()));
        assert_ne!(tokens[0].top[empty.choice].id, tokens[0].id);
    }

    #[test]
    fn lines_wrap_by_width_and_show_newlines() {
        let theme = Theme::plain();
        let tokens = vec![
            token(1, "日本", 0.9, &[]),
            token(2, "e\u{301}x", 0.1, &[]),
            token(3, "\nab", 0.9, &[]),
        ];
        let (lines, cursor_line) = token_lines(&tokens, Some(2), &theme, 4);
        let text: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        assert_eq!(text, ["日本", "e\u{301}x↵", "ab"]);
        assert_eq!(cursor_line, 1);
        assert!(lines[1].spans[0]
            .style
            .add_modifier
            .contains(Modifier::UNDERLINED));
        // One column: wide characters still land somewhere.
        let (lines, _) = token_lines(&tokens, None, &theme, 1);
        assert!(lines.len() >= 4);
    }

    #[test]
    fn whitespace_is_visible() {
        assert_eq!(visible(" a\n\tb\u{7}"), "␣a↵⇥b\\u{7}");
        assert_eq!(visible(""), "∅");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("日本語", 4), "日…");
        assert_eq!(percent(0.7712), "77%");
        assert_eq!(percent(0.0123), "1.2%");
        assert_eq!(percent(0.00001), "<0.1%");
    }
}
