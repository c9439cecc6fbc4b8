//! The prompt workbench, the screen beside the chat (F5 switches): the
//! template list, the template's texts in an editor, its variables and
//! few-shot examples, the exact model input with its token count, and runs
//! whose output streams in and is kept in the run history.
//!
//! - [`doc`] — the open template: editors, values, examples, problems;
//! - [`example_form`] — the popup that adds or edits an example;
//! - [`update`] — keys and answers, as part of the app's pure `update`;
//! - [`view`] — drawing it.

pub mod doc;
pub mod example_form;
pub mod update;
pub mod view;

use ratatui_textarea::TextArea;

use super::keymap::Context;
use crate::engine::protocol::ChatMessage;
use crate::prompt::TemplateEntry;
use crate::store::runs::{RunOutcome, RunRecord, RunSummary};
use doc::TemplateDoc;
use example_form::ExampleForm;

/// The panes of the workbench, in the order Tab visits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Templates,
    Editor,
    Variables,
    Examples,
    Preview,
    Output,
}

impl Pane {
    pub const ORDER: [Pane; 6] = [
        Pane::Templates,
        Pane::Editor,
        Pane::Variables,
        Pane::Examples,
        Pane::Preview,
        Pane::Output,
    ];

    pub fn step(self, forward: bool) -> Pane {
        let n = Self::ORDER.len();
        let i = Self::ORDER.iter().position(|&p| p == self).unwrap_or(0);
        Self::ORDER[if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        }]
    }

    pub fn title(self) -> &'static str {
        match self {
            Pane::Templates => "Templates",
            Pane::Editor => "Template",
            Pane::Variables => "Variables",
            Pane::Examples => "Few-shot examples",
            Pane::Preview => "Exact model input",
            Pane::Output => "Output",
        }
    }
}

/// What a one-line prompt asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinePurpose {
    /// A file whose contents become this variable's value.
    LoadFile { var: String },
    /// A new name to save the template under.
    SaveAs,
    /// The name of a new, empty template.
    NewTemplate,
    /// The dataset of an experiment made from the template.
    ExperimentDataset,
}

pub struct LinePrompt {
    pub purpose: LinePurpose,
    pub area: TextArea<'static>,
    pub error: Option<String>,
}

impl LinePrompt {
    pub fn new(purpose: LinePurpose, text: &str) -> LinePrompt {
        let mut area = TextArea::new(vec![text.to_string()]);
        area.move_cursor(ratatui_textarea::CursorMove::End);
        LinePrompt {
            purpose,
            area,
            error: None,
        }
    }

    pub fn text(&self) -> String {
        self.area.lines().join("").trim().to_string()
    }

    pub fn title(&self) -> String {
        match &self.purpose {
            LinePurpose::LoadFile { var } => format!("Load {{{{{var}}}}} from file (path)"),
            LinePurpose::SaveAs => "Save the template as (name)".into(),
            LinePurpose::NewTemplate => "New template (name)".into(),
            LinePurpose::ExperimentDataset => {
                "Experiment: saved vs edited, examples on vs off, over the dataset (JSONL or CSV path)"
                    .into()
            }
        }
    }
}

/// What was asked for when the open template had unsaved changes; it goes
/// ahead once they are saved or discarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterConfirm {
    OpenTemplate(String),
    NewTemplate(String),
    OpenRun(String),
    Quit,
}

impl AfterConfirm {
    /// What goes ahead, as a verb phrase: "then quit".
    pub fn describe(&self) -> String {
        match self {
            AfterConfirm::OpenTemplate(name) => format!("open template {name}"),
            AfterConfirm::NewTemplate(name) => format!("start template {name}"),
            AfterConfirm::OpenRun(id) => format!("reopen run {id}"),
            AfterConfirm::Quit => "quit".into(),
        }
    }
}

pub struct HistoryList {
    pub runs: Vec<RunSummary>,
    pub selected: usize,
    pub loaded: bool,
}

pub enum WbOverlay {
    Example(Box<ExampleForm>),
    Line(Box<LinePrompt>),
    History(HistoryList),
    Confirm(AfterConfirm),
}

/// The exact model input for the current template and values.
#[derive(Debug, Default)]
pub struct Preview {
    /// Bumped whenever the rendered messages change; answers for an older
    /// revision are stale.
    pub revision: u64,
    /// The rendered messages, or why there are none.
    pub rendered: Option<Result<Vec<ChatMessage>, String>>,
    /// The engine's formatting of `rendered` and its token count.
    pub exact: Option<(String, u32)>,
    /// Why the engine could not format it.
    pub exact_error: Option<String>,
    pub scroll: u16,
}

/// A run shown in the output pane: the one streaming, the last one, or one
/// reopened from the history.
pub struct WorkbenchRun {
    pub record: RunRecord,
    /// The engine's id for it, once started.
    pub generation: Option<u64>,
    pub reopened: bool,
    pub scroll: u16,
    /// The returned sequence chosen in a beam-search run (0 = the best).
    pub beam_selected: usize,
    /// The lens on the output, when open.
    pub lens: Option<crate::tui::lens::Lens>,
    /// A fork chosen while the run streamed: it starts once the run has
    /// stopped (at the token, with the alternative).
    pub pending_fork: Option<(usize, crate::store::tokens::KeptAlternative)>,
}

impl WorkbenchRun {
    pub fn new(record: RunRecord, reopened: bool) -> WorkbenchRun {
        WorkbenchRun {
            record,
            generation: None,
            reopened,
            scroll: 0,
            beam_selected: 0,
            lens: None,
            pending_fork: None,
        }
    }

    /// The returned sequences of a finished beam-search run (empty
    /// otherwise).
    pub fn beams(&self) -> &[crate::engine::protocol::Beam] {
        self.record
            .beam_search
            .as_ref()
            .map_or(&[], |search| search.beams.as_slice())
    }

    /// The chosen sequence's text, when this run returned several.
    pub fn chosen_beam_text(&self) -> Option<&str> {
        self.beams()
            .get(self.beam_selected)
            .map(|beam| beam.text.as_str())
    }

    pub fn is_streaming(&self) -> bool {
        self.record.outcome == RunOutcome::Running
    }
}

pub struct Workbench {
    /// Every template, shipped and the user's, by name.
    pub entries: Vec<TemplateEntry>,
    pub search: TextArea<'static>,
    pub searching: bool,
    /// Index into [`Workbench::visible`].
    pub list_selected: usize,
    pub doc: Option<TemplateDoc>,
    pub focus: Pane,
    pub preview: Preview,
    pub run: Option<WorkbenchRun>,
    pub overlay: Option<WbOverlay>,
    /// The first delete press arms, the second deletes.
    pub delete_armed: bool,
    /// What to do once the save under way has landed.
    pub after_save: Option<AfterConfirm>,
    /// Whether the template list has been asked for.
    pub listed: bool,
    /// Where each pane was last drawn (in [`Pane::ORDER`]), for the mouse.
    pub drawn: std::cell::Cell<[ratatui::layout::Rect; 6]>,
    /// How far the exact input and the output can scroll, as last drawn.
    pub scroll_limits: std::cell::Cell<[u16; 2]>,
}

impl Default for Workbench {
    fn default() -> Self {
        let mut search = TextArea::default();
        search.set_placeholder_text("/ to search by name");
        Workbench {
            entries: Vec::new(),
            search,
            searching: false,
            list_selected: 0,
            doc: None,
            focus: Pane::Templates,
            preview: Preview::default(),
            run: None,
            overlay: None,
            delete_armed: false,
            after_save: None,
            listed: false,
            drawn: Default::default(),
            scroll_limits: Default::default(),
        }
    }
}

impl Workbench {
    pub fn search_text(&self) -> String {
        self.search.lines().join("")
    }

    /// The templates whose name contains the search text (any case).
    pub fn visible(&self) -> Vec<&TemplateEntry> {
        let query = self.search_text().trim().to_lowercase();
        self.entries
            .iter()
            .filter(|e| query.is_empty() || e.name.to_lowercase().contains(&query))
            .collect()
    }

    pub fn selected_entry(&self) -> Option<&TemplateEntry> {
        self.visible().get(self.list_selected).copied()
    }

    /// The pane drawn at this point of the screen.
    pub fn pane_at(&self, position: ratatui::layout::Position) -> Option<Pane> {
        let drawn = self.drawn.get();
        Pane::ORDER
            .iter()
            .zip(drawn.iter())
            .find(|(_, rect)| rect.contains(position))
            .map(|(pane, _)| *pane)
    }

    pub fn is_dirty(&self) -> bool {
        self.doc.as_ref().is_some_and(TemplateDoc::is_dirty)
    }

    pub fn is_running(&self) -> bool {
        self.run.as_ref().is_some_and(WorkbenchRun::is_streaming)
    }

    /// The keymap context of what has the keyboard in the workbench.
    pub fn context(&self) -> Context {
        match &self.overlay {
            Some(WbOverlay::Example(_)) | Some(WbOverlay::Line(_)) => Context::WorkbenchForm,
            Some(WbOverlay::History(_)) | Some(WbOverlay::Confirm(_)) => Context::WorkbenchList,
            None => match self.focus {
                Pane::Templates if self.searching => Context::Workbench,
                Pane::Editor | Pane::Variables if self.doc.is_some() => Context::Workbench,
                _ => Context::WorkbenchList,
            },
        }
    }
}
