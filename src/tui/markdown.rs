//! Assistant text as styled terminal lines.
//!
//! Replies stream in token by token, so the input is often incomplete
//! Markdown (an unclosed fence, a half `**bold`): every prefix must render
//! sensibly and nothing may panic. Lines are not wrapped here (the caller
//! wraps with `Wrap { trim: false }`, which keeps code indentation), and all
//! text goes through [`sanitize`] so that model output never reaches the
//! terminal as control sequences.
//!
//! Single newlines are kept as line breaks: models use them meaningfully.

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use std::borrow::Cow;

use super::sanitize::sanitize;

/// How each kind of Markdown text looks. Inline styles are patched over
/// `text` (and over each other when nested).
#[derive(Debug, Clone, Default)]
pub struct MarkdownStyle {
    pub text: Style,
    pub code_block: Style,
    pub inline_code: Style,
    pub heading: Style,
    pub emphasis: Style,
    pub strong: Style,
    pub link: Style,
    /// The `▌` bar in front of quoted lines.
    pub quote: Style,
    pub list_marker: Style,
    /// Decorations: code block frames, heading `#`s, link urls, rules.
    pub muted: Style,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub lines: Vec<Line<'static>>,
    /// The raw text of each fenced/indented code block, in order (for
    /// copying): not sanitized, tabs kept, without the final newline.
    pub code_blocks: Vec<String>,
}

const RULE_WIDTH: usize = 20;
const BULLET: &str = "• ";
const QUOTE_BAR: &str = "▌";
const QUOTE_PREFIX: &str = "▌ ";
const CODE_BAR: &str = "│ ";
const CODE_TOP: &str = "╭─";
const CODE_BOTTOM: &str = "╰─";
const CELL_SEPARATOR: &str = " │ ";

pub fn render(text: &str, style: &MarkdownStyle) -> Rendered {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut renderer = Renderer::new(style);
    for event in Parser::new_ext(text, options) {
        renderer.event(event);
    }
    renderer.finish()
}

/// A block that puts something in front of each of its lines.
enum Container {
    Quote,
    Item {
        /// The marker, until the item's first line has shown it.
        marker: Option<String>,
        /// Cells the marker takes; continuation lines are indented as much.
        width: usize,
    },
}

struct List {
    /// The next item's number in an ordered list.
    next: Option<u64>,
    /// Loose lists (items are paragraphs) keep a blank line between items.
    loose: bool,
}

struct Link {
    url: String,
    /// The link's text as written, to tell whether the url adds anything.
    text: String,
}

struct Renderer<'s> {
    style: &'s MarkdownStyle,
    lines: Vec<Line<'static>>,
    code_blocks: Vec<String>,
    /// The line being built, and whether its prefix has been put in front.
    spans: Vec<Span<'static>>,
    started: bool,
    /// How many of `spans` are the prefix (quote bars, list indentation).
    prefix_spans: usize,
    /// A block ended: the next block starts after a blank line.
    need_blank: bool,
    containers: Vec<Container>,
    lists: Vec<List>,
    /// Inline styles in effect, innermost last.
    styles: Vec<Style>,
    links: Vec<Link>,
    /// The text of the code block being read.
    code: Option<String>,
    /// Cells so far in the current table row.
    cells: usize,
}

impl<'s> Renderer<'s> {
    fn new(style: &'s MarkdownStyle) -> Self {
        Self {
            style,
            lines: Vec::new(),
            code_blocks: Vec::new(),
            spans: Vec::new(),
            started: false,
            prefix_spans: 0,
            need_blank: false,
            containers: Vec::new(),
            lists: Vec::new(),
            styles: Vec::new(),
            links: Vec::new(),
            code: None,
            cells: 0,
        }
    }

    fn finish(mut self) -> Rendered {
        // The parser closes every open block at the end of the input, so an
        // unclosed fence has been framed already; this is a safety net.
        if self.code.is_some() {
            self.end_code_block();
        }
        self.end_line();
        Rendered {
            lines: self.lines,
            code_blocks: self.code_blocks,
        }
    }

    fn current(&self) -> Style {
        self.styles.last().copied().unwrap_or(self.style.text)
    }

    fn push_style(&mut self, patch: Style) {
        let style = self.current().patch(patch);
        self.styles.push(style);
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => {
                if let Some(code) = &mut self.code {
                    code.push_str(&text);
                } else {
                    self.link_text(&text);
                    self.push_text(&text, self.current());
                }
            }
            Event::Code(text) => {
                self.link_text(&text);
                let style = self.current().patch(self.style.inline_code);
                self.push_text(&text, style);
            }
            Event::InlineMath(text) | Event::DisplayMath(text) | Event::InlineHtml(text) => {
                self.link_text(&text);
                self.push_text(&text, self.current());
            }
            Event::Html(text) => {
                if let Some(code) = &mut self.code {
                    code.push_str(&text);
                } else {
                    self.push_text(&text, self.current());
                }
            }
            Event::FootnoteReference(label) => {
                let label = format!("[^{label}]");
                self.push_text(&label, self.style.muted);
            }
            Event::SoftBreak | Event::HardBreak => self.break_line(),
            Event::Rule => {
                self.start_block();
                self.push_span("─".repeat(RULE_WIDTH), self.style.muted);
                self.end_block();
            }
            Event::TaskListMarker(done) => {
                let mark = if done { "[x] " } else { "[ ] " };
                self.push_span(mark, self.style.list_marker);
            }
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph => {
                if matches!(self.containers.last(), Some(Container::Item { .. })) {
                    if let Some(list) = self.lists.last_mut() {
                        list.loose = true;
                    }
                }
                self.start_block();
            }
            Tag::Heading { level, .. } => {
                self.start_block();
                let hashes = "#".repeat(heading_level(level));
                self.push_span(format!("{hashes} "), self.style.muted);
                self.push_style(self.style.heading);
            }
            Tag::BlockQuote(_) => {
                self.start_block();
                self.containers.push(Container::Quote);
            }
            Tag::CodeBlock(kind) => {
                self.start_block();
                let top = match kind {
                    CodeBlockKind::Fenced(info) if !info.trim().is_empty() => {
                        format!("{CODE_TOP} {}", sanitize(info.trim()))
                    }
                    _ => CODE_TOP.to_owned(),
                };
                self.push_span(top, self.style.muted);
                self.end_line();
                self.code = Some(String::new());
            }
            Tag::HtmlBlock | Tag::Table(_) => self.start_block(),
            Tag::List(start) => {
                self.start_block();
                self.lists.push(List {
                    next: start,
                    loose: false,
                });
            }
            Tag::Item => {
                self.end_line();
                let marker = match self.lists.last_mut() {
                    Some(list) => {
                        if !list.loose {
                            self.need_blank = false;
                        }
                        match &mut list.next {
                            Some(n) => {
                                let marker = format!("{n}. ");
                                *n = n.saturating_add(1);
                                marker
                            }
                            None => BULLET.to_owned(),
                        }
                    }
                    None => BULLET.to_owned(),
                };
                let width = marker.chars().count();
                self.containers.push(Container::Item {
                    marker: Some(marker),
                    width,
                });
            }
            Tag::TableHead | Tag::TableRow => {
                self.end_line();
                self.cells = 0;
                if matches!(tag, Tag::TableHead) {
                    self.push_style(self.style.strong);
                }
            }
            Tag::TableCell => {
                if self.cells > 0 {
                    self.push_span(CELL_SEPARATOR, self.style.muted);
                }
                self.cells += 1;
            }
            Tag::Emphasis => self.push_style(self.style.emphasis),
            Tag::Strong => self.push_style(self.style.strong),
            Tag::Strikethrough => {
                self.push_style(Style::default().add_modifier(Modifier::CROSSED_OUT));
            }
            Tag::Link { dest_url, .. } => {
                self.links.push(Link {
                    url: dest_url.to_string(),
                    text: String::new(),
                });
                self.push_style(self.style.link);
            }
            Tag::Image { dest_url, .. } => {
                self.push_span("[image: ", self.style.muted);
                self.links.push(Link {
                    url: dest_url.to_string(),
                    text: String::new(),
                });
                self.push_style(self.style.link);
            }
            // Not enabled (footnotes, definition lists, metadata, …): their
            // text still shows, unadorned.
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph | TagEnd::HtmlBlock | TagEnd::Table => self.end_block(),
            TagEnd::Heading(_) => {
                self.styles.pop();
                self.end_block();
            }
            TagEnd::BlockQuote(_) => {
                self.end_line();
                self.containers.pop();
                self.need_blank = true;
            }
            TagEnd::CodeBlock => self.end_code_block(),
            TagEnd::List(_) => {
                self.end_line();
                self.lists.pop();
                self.need_blank = true;
            }
            TagEnd::Item => {
                // An empty item (as while `- ` streams in) still shows its marker.
                if matches!(
                    self.containers.last(),
                    Some(Container::Item {
                        marker: Some(_),
                        ..
                    })
                ) {
                    self.ensure_prefix();
                }
                self.end_line();
                self.containers.pop();
            }
            TagEnd::TableHead => {
                self.styles.pop();
                let width: usize = self.spans[self.prefix_spans.min(self.spans.len())..]
                    .iter()
                    .map(Span::width)
                    .sum();
                self.end_line();
                if width > 0 {
                    self.push_span("─".repeat(width), self.style.muted);
                    self.end_line();
                }
            }
            TagEnd::TableRow => self.end_line(),
            TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough => {
                self.styles.pop();
            }
            TagEnd::Link | TagEnd::Image => {
                self.styles.pop();
                if matches!(tag, TagEnd::Image) {
                    self.push_span("]", self.style.muted);
                }
                if let Some(link) = self.links.pop() {
                    let email = link.url.strip_prefix("mailto:") == Some(link.text.as_str());
                    if !link.url.is_empty() && link.url != link.text && !email {
                        let url = format!(" ({})", sanitize(&link.url));
                        self.push_span(url, self.style.muted);
                    }
                }
            }
            _ => {}
        }
    }

    /// Records text as part of every link it is inside.
    fn link_text(&mut self, text: &str) {
        for link in &mut self.links {
            link.text.push_str(text);
        }
    }

    fn end_code_block(&mut self) {
        let Some(mut code) = self.code.take() else {
            return;
        };
        // "" is a block without lines; "\n" is one empty line.
        let has_lines = !code.is_empty();
        if code.ends_with('\n') {
            code.pop();
            if code.ends_with('\r') {
                code.pop();
            }
        }
        let framed_lines: Vec<&str> = if has_lines {
            code.split('\n').collect()
        } else {
            Vec::new()
        };
        for line in framed_lines {
            let line = line.strip_suffix('\r').unwrap_or(line);
            self.push_span(CODE_BAR, self.style.muted);
            let text = sanitize(line);
            if !text.is_empty() {
                self.push_span(text, self.style.code_block);
            }
            self.end_line();
        }
        self.push_span(CODE_BOTTOM, self.style.muted);
        self.end_line();
        self.code_blocks.push(code);
        self.need_blank = true;
    }

    /// Ends the current line and, after an earlier block, leaves a blank line.
    fn start_block(&mut self) {
        self.end_line();
        if self.need_blank && !self.lines.is_empty() {
            let blank = self.blank_prefix();
            self.lines.push(Line::from(blank));
        }
        self.need_blank = false;
    }

    fn end_block(&mut self) {
        self.end_line();
        self.need_blank = true;
    }

    /// Text, possibly spanning lines, in one style.
    fn push_text(&mut self, text: &str, style: Style) {
        let text = sanitize(text);
        if !text.contains('\n') {
            if !text.is_empty() {
                self.push_span(text, style);
            }
            return;
        }
        for (i, part) in text.split('\n').enumerate() {
            if i > 0 {
                self.break_line();
            }
            if !part.is_empty() {
                self.push_span(part.to_owned(), style);
            }
        }
    }

    fn push_span(&mut self, text: impl Into<Cow<'static, str>>, style: Style) {
        self.ensure_prefix();
        self.spans.push(Span::styled(text, style));
    }

    /// Puts the quote bars, list markers and indentation in front of a line.
    fn ensure_prefix(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        for container in &mut self.containers {
            match container {
                Container::Quote => {
                    self.spans
                        .push(Span::styled(QUOTE_PREFIX, self.style.quote));
                }
                Container::Item { marker, width } => match marker.take() {
                    Some(marker) => self
                        .spans
                        .push(Span::styled(marker, self.style.list_marker)),
                    None => self.spans.push(Span::raw(spaces(*width))),
                },
            }
        }
        self.prefix_spans = self.spans.len();
    }

    /// A blank line keeps the quote bars it is inside, nothing after them.
    fn blank_prefix(&self) -> Vec<Span<'static>> {
        let Some(last_quote) = self
            .containers
            .iter()
            .rposition(|c| matches!(c, Container::Quote))
        else {
            return Vec::new();
        };
        self.containers[..=last_quote]
            .iter()
            .enumerate()
            .map(|(i, container)| match container {
                Container::Quote if i == last_quote => Span::styled(QUOTE_BAR, self.style.quote),
                Container::Quote => Span::styled(QUOTE_PREFIX, self.style.quote),
                Container::Item { width, .. } => Span::raw(spaces(*width)),
            })
            .collect()
    }

    /// Ends the current line if anything is on it.
    fn end_line(&mut self) {
        if self.started {
            self.lines.push(Line::from(std::mem::take(&mut self.spans)));
            self.started = false;
            self.prefix_spans = 0;
        }
    }

    /// Ends the current line even if it is empty.
    fn break_line(&mut self) {
        self.ensure_prefix();
        self.end_line();
    }
}

/// `width` spaces, without allocating for the usual indentation.
fn spaces(width: usize) -> Cow<'static, str> {
    const SPACES: &str = "                                ";
    match SPACES.get(..width) {
        Some(spaces) => Cow::Borrowed(spaces),
        None => Cow::Owned(" ".repeat(width)),
    }
}

fn heading_level(level: HeadingLevel) -> usize {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

#[cfg(test)]
mod tests {
    use ratatui::style::Color;

    use super::*;

    fn style() -> MarkdownStyle {
        MarkdownStyle {
            text: Style::default().fg(Color::White),
            code_block: Style::default().fg(Color::Green),
            inline_code: Style::default().fg(Color::Yellow),
            heading: Style::default().add_modifier(Modifier::BOLD),
            emphasis: Style::default().add_modifier(Modifier::ITALIC),
            strong: Style::default().add_modifier(Modifier::BOLD),
            link: Style::default().fg(Color::Blue),
            quote: Style::default().fg(Color::Magenta),
            list_marker: Style::default().fg(Color::Cyan),
            muted: Style::default().fg(Color::DarkGray),
        }
    }

    fn text_of(line: &Line<'_>) -> String {
        line.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    fn texts(markdown: &str) -> Vec<String> {
        render(markdown, &style())
            .lines
            .iter()
            .map(text_of)
            .collect()
    }

    const SAMPLE: &str = "# Title\n\
        \n\
        Some *emphasis*, **strong**, ~~gone~~ and `code` with a [link](https://example.com).\n\
        Second line of the paragraph.\n\
        \n\
        > quoted **text**\n\
        >\n\
        > more quote\n\
        \n\
        1. first\n\
        2. second\n   \
           - nested `x`\n   \
           - [x] done\n\
        3. third\n\
        \n\
        ```rust\n\
        fn main() {\n    \
            println!(\"hi\");\n\
        }\n\
        ```\n\
        \n\
        | a | b |\n\
        |---|---|\n\
        | 1 | 2 |\n\
        \n\
        ---\n\
        \n\
        <div>html</div>\n\
        \n\
        Done: 日本語 👩‍👩‍👧 e\u{301} ![alt](img.png)\n\
        \n    \
            indented code\n";

    #[test]
    fn empty_input_renders_nothing() {
        let rendered = render("", &style());
        assert!(rendered.lines.is_empty());
        assert!(rendered.code_blocks.is_empty());
    }

    #[test]
    fn plain_text_keeps_single_newlines_and_separates_paragraphs() {
        assert_eq!(
            texts("one\ntwo  \nthree\n\nfour"),
            ["one", "two", "three", "", "four"]
        );
        let rendered = render("hello", &style());
        assert_eq!(
            rendered.lines[0].spans,
            [Span::styled("hello", style().text)]
        );
    }

    #[test]
    fn fenced_code_block_is_framed_and_recorded() {
        let code = "fn main() {\n\tlet x = 1;\n}";
        let rendered = render(&format!("Look:\n\n```rust\n{code}\n```\n\nafter"), &style());
        let lines: Vec<String> = rendered.lines.iter().map(text_of).collect();
        assert_eq!(
            lines,
            [
                "Look:",
                "",
                "╭─ rust",
                "│ fn main() {",
                "│     let x = 1;",
                "│ }",
                "╰─",
                "",
                "after"
            ]
        );
        assert_eq!(rendered.code_blocks, [code]);
        let code_line = &rendered.lines[4];
        assert_eq!(code_line.spans[0], Span::styled("│ ", style().muted));
        assert_eq!(
            code_line.spans[1],
            Span::styled("    let x = 1;", style().code_block)
        );
        assert_eq!(
            rendered.lines[2].spans,
            [Span::styled("╭─ rust", style().muted)]
        );
    }

    #[test]
    fn fence_without_language_and_empty_lines_inside() {
        let rendered = render("```\n  a\n\nb\n```", &style());
        let lines: Vec<String> = rendered.lines.iter().map(text_of).collect();
        assert_eq!(lines, ["╭─", "│   a", "│ ", "│ b", "╰─"]);
        assert_eq!(rendered.code_blocks, ["  a\n\nb"]);
        assert_eq!(texts("```\n```"), ["╭─", "╰─"]);
        assert_eq!(render("```\n```", &style()).code_blocks, [""]);
        // CRLF line ends are line ends, not visible carriage returns.
        let crlf = render("x\r\ny\r\n\r\n```\r\na\r\nb\r\n```\r\n", &style());
        let lines: Vec<String> = crlf.lines.iter().map(text_of).collect();
        assert_eq!(lines, ["x", "y", "", "╭─", "│ a", "│ b", "╰─"]);
        assert_eq!(crlf.code_blocks, ["a\nb"]);
    }

    #[test]
    fn indented_code_block_is_framed_too() {
        let rendered = render("text\n\n    let a;\n      b\n", &style());
        let lines: Vec<String> = rendered.lines.iter().map(text_of).collect();
        assert_eq!(lines, ["text", "", "╭─", "│ let a;", "│   b", "╰─"]);
        assert_eq!(rendered.code_blocks, ["let a;\n  b"]);
    }

    #[test]
    fn unclosed_fence_renders_as_code_to_the_end() {
        let rendered = render("Here:\n\n```python\nprint(1)\nif x:\n    y", &style());
        let lines: Vec<String> = rendered.lines.iter().map(text_of).collect();
        assert_eq!(
            lines,
            [
                "Here:",
                "",
                "╭─ python",
                "│ print(1)",
                "│ if x:",
                "│     y",
                "╰─"
            ]
        );
        assert_eq!(rendered.code_blocks, ["print(1)\nif x:\n    y"]);
        // Just the opening fence so far.
        assert_eq!(texts("```py"), ["╭─ py", "╰─"]);
    }

    #[test]
    fn lists_number_nest_and_mark_tasks() {
        let markdown = "3. a\n4. b\n   1. c\n   2. d\n      - e\n5. f\n\n- [x] done\n- [ ] todo";
        assert_eq!(
            texts(markdown),
            [
                "3. a",
                "4. b",
                "   1. c",
                "   2. d",
                "      • e",
                "5. f",
                "",
                "• [x] done",
                "• [ ] todo"
            ]
        );
        assert_eq!(texts("- a\n  - b\n    - c"), ["• a", "  • b", "    • c"]);
        let rendered = render("- a", &style());
        assert_eq!(
            rendered.lines[0].spans,
            [
                Span::styled("• ", style().list_marker),
                Span::styled("a", style().text)
            ]
        );
    }

    #[test]
    fn loose_lists_keep_blank_lines_and_continuations_indent() {
        assert_eq!(
            texts("- a\n\n- b\n  more\n\npara"),
            ["• a", "", "• b", "  more", "", "para"]
        );
        // An empty item, as while `- ` streams in, still shows its bullet.
        assert_eq!(texts("- a\n- "), ["• a", "• "]);
    }

    #[test]
    fn inline_styles_land_on_the_right_spans() {
        let s = style();
        let rendered = render("a `b` *c* **d** ~~e~~", &s);
        let spans = &rendered.lines[0].spans;
        assert_eq!(
            spans.iter().map(|s| s.content.as_ref()).collect::<Vec<_>>(),
            ["a ", "b", " ", "c", " ", "d", " ", "e"]
        );
        assert_eq!(spans[0].style, s.text);
        assert_eq!(spans[1].style, s.text.patch(s.inline_code));
        assert_eq!(spans[3].style, s.text.patch(s.emphasis));
        assert_eq!(spans[5].style, s.text.patch(s.strong));
        assert_eq!(spans[7].style, s.text.add_modifier(Modifier::CROSSED_OUT));
        let nested = render("***both***", &s);
        assert_eq!(
            nested.lines[0].spans[0].style,
            s.text.patch(s.emphasis).patch(s.strong)
        );
    }

    #[test]
    fn headings_keep_their_level_visible() {
        let s = style();
        let rendered = render("## Two\ntext", &s);
        assert_eq!(
            rendered.lines[0].spans,
            [
                Span::styled("## ", s.muted),
                Span::styled("Two", s.text.patch(s.heading))
            ]
        );
        assert_eq!(texts("## Two\ntext"), ["## Two", "", "text"]);
    }

    #[test]
    fn links_show_their_url_unless_it_is_the_text() {
        let s = style();
        let rendered = render("see [docs](https://d.rs) or <https://x.io>", &s);
        let spans = &rendered.lines[0].spans;
        assert_eq!(
            text_of(&rendered.lines[0]),
            "see docs (https://d.rs) or https://x.io"
        );
        assert_eq!(spans[1], Span::styled("docs", s.text.patch(s.link)));
        assert_eq!(spans[2], Span::styled(" (https://d.rs)", s.muted));
        assert_eq!(texts("<me@x.io>"), ["me@x.io"]);
        assert_eq!(texts("![a cat](cat.png)"), ["[image: a cat] (cat.png)"]);
    }

    #[test]
    fn quotes_rules_tables_and_html() {
        let s = style();
        assert_eq!(
            texts("> a\n> b\n>\n> c\n\nd"),
            ["▌ a", "▌ b", "▌", "▌ c", "", "d"]
        );
        assert_eq!(texts("> > deep"), ["▌ ▌ deep"]);
        let rendered = render("> q", &s);
        assert_eq!(rendered.lines[0].spans[0], Span::styled("▌ ", s.quote));
        assert_eq!(texts("a\n\n---\n\nb"), ["a", "", &"─".repeat(20), "", "b"]);
        assert_eq!(
            texts("| a | bb |\n|---|:-:|\n| 1 | 2 |\n| 3 |"),
            ["a │ bb", "──────", "1 │ 2", "3 │ "]
        );
        assert_eq!(
            texts("<div>\nhi\n</div>\n\nx"),
            ["<div>", "hi", "</div>", "", "x"]
        );
        assert_eq!(texts("a <b>c</b>"), ["a <b>c</b>"]);
    }

    #[test]
    fn control_characters_are_neutralised_everywhere() {
        let hostile = "red\x1b[31m!\x07 `\x1b]0;t\x07` [l\x1b](u\x1b)\n\n```\x1b\ncode\x1b[2J\x07\rx\n```\n\n# h\x1b\n\n| \x1b | b |\n|--|--|\n\n<p>\x1b</p>";
        let rendered = render(hostile, &style());
        for line in &rendered.lines {
            for span in &line.spans {
                assert!(
                    !span.content.chars().any(char::is_control),
                    "{:?}",
                    span.content
                );
            }
        }
        let all: String = rendered.lines.iter().map(text_of).collect();
        assert!(all.contains("red␛[31m!␇"), "{all}");
        assert!(all.contains("code␛[2J␇␍x"), "{all}");
        // The copy keeps the code as written.
        assert_eq!(rendered.code_blocks, ["code\x1b[2J\x07\rx"]);
    }

    #[test]
    fn wide_and_combining_text_is_preserved() {
        let text = "日本語のテキスト 👩‍👩‍👧 e\u{301} 🇯🇵";
        assert_eq!(texts(text), [text]);
        assert_eq!(
            render(&format!("```\n{text}\n```"), &style()).code_blocks,
            [text]
        );
        assert_eq!(texts(&format!("- {text}")), [format!("• {text}")]);
    }

    #[test]
    fn every_prefix_of_a_document_renders() {
        let s = style();
        let full = texts(SAMPLE);
        assert!(full.contains(&"╭─ rust".to_owned()), "{full:#?}");
        assert!(
            full.contains(&"│     println!(\"hi\");".to_owned()),
            "{full:#?}"
        );
        assert!(full.contains(&"▌ quoted text".to_owned()), "{full:#?}");
        assert!(full.contains(&"   • [x] done".to_owned()), "{full:#?}");
        assert!(full.contains(&"│ indented code".to_owned()), "{full:#?}");
        for (end, _) in SAMPLE.char_indices().chain([(SAMPLE.len(), ' ')]) {
            let rendered = render(&SAMPLE[..end], &s);
            for line in &rendered.lines {
                for span in &line.spans {
                    assert!(!span.content.chars().any(char::is_control), "{end}");
                }
            }
        }
        // A half-written emphasis shows as it is typed.
        assert_eq!(texts("a **bol"), ["a **bol"]);
    }

    #[test]
    fn a_large_reply_renders_whole() {
        // Speed is measured by `whet bench --ui`, not asserted here.
        let one = render(SAMPLE, &style()).lines.len();
        let big = SAMPLE.repeat(10_000 / SAMPLE.len() + 1);
        let copies = 10_000 / SAMPLE.len() + 1;
        let rendered = render(&big, &style());
        assert!(
            rendered.lines.len() >= one * copies / 2,
            "{}",
            rendered.lines.len()
        );
    }
}
