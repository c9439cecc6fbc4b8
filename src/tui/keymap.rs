//! Key bindings: defaults compiled into the binary, and a user
//! `<config>/keymap.toml` over them.
//!
//! Every binding lives in a [`Context`]: `Global` keys work everywhere unless
//! the focused context binds the same key; the others work only while their
//! part of the screen has focus. An [`Action`] lists the contexts it may be
//! bound in ([`Action::contexts`]): `select_prev` in `messages` and `picker`,
//! `close` in `settings` and `picker`, `help` in every one.
//!
//! The file has one table per context; an action takes a key or a list of
//! keys, which REPLACE its default keys in that context; `[]` unbinds it:
//!
//! ```toml
//! [global]
//! regenerate = "ctrl+g"
//! [messages]
//! delete_message = ["x", "delete"]
//! copy_message = []
//! ```
//!
//! Keys are written like `ctrl+g`, `alt+enter`, `shift+tab`, `f5`, `esc`,
//! `pageup`, `space`, `?` or `G` (see [`parse_key`]). A character is matched
//! case-sensitively and without regard to Shift, since terminals report `G`
//! with or without it.
//!
//! Problems never stop the UI. Each comes back as one line and the entry it
//! is about is ignored, so that action keeps its default keys:
//!
//! - `FILE:LINE:COL: <toml message>` — a syntax error; the whole file is ignored.
//! - `FILE:LINE:COL: unknown section 'foo' (sections: global, input, messages, settings, picker, workbench, workbench_list, workbench_form, rounds, experiments, compare)`
//! - `FILE:LINE:COL: 'foo' is outside a section (sections: …)` — a key before any `[section]`.
//! - `FILE:LINE:COL: 'global' must be a table [global], found string`
//! - `FILE:LINE:COL: unknown action 'frobnicate'`
//! - `FILE:LINE:COL: 'send' cannot be bound in [messages]`
//! - `FILE:LINE:COL: expected a key or a list of keys for 'send', found integer`
//! - `FILE:LINE:COL: 'ctrl+' is not a key: no key after the modifiers`
//! - `FILE:LINE:COL: plain key 'x' cannot be bound in [input]` — also `[global]`
//!   (active while typing) and `[settings]` (its fields and the system prompt
//!   take text).
//! - `FILE:LINE:COL: 'ctrl+g' is bound to both regenerate and export in [global]; keeping regenerate`
//! - `FILE:LINE:COL: 'delete' is bound to both delete_message and export in [messages] (export is from [global]); keeping delete_message`
//!   — a key the user bound in `[global]` that a context's key would hide.
//!   (The defaults' own `Esc` in `[settings]`/`[picker]` hiding `stop` is by
//!   design and not reported; nor is a context key the user binds over a
//!   default global one — that is how a context overrides a global key.)
//! - `FILE: <io error>` — the file exists but cannot be read.
//!
//! LINE:COL (1-based, columns in characters) point at the offending section
//! name, action name or key. In a conflict the earlier binding wins: defaults
//! the file leaves alone come first, then the file's entries in the order
//! they are written; the later entry is ignored as a whole (its action keeps
//! its defaults, which may in turn displace a later entry of the file).

use crate::text_position::line_col;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    /// Always active, unless the focused context binds the same key.
    Global,
    /// The message editor has focus: plain characters must reach it, so only
    /// Ctrl/Alt combinations and special keys are bound here.
    Input,
    /// The message list has focus: plain letters are fine.
    Messages,
    /// The settings panel and system prompt editor (they take text).
    Settings,
    /// A list popup (models, sessions).
    Picker,
    /// A text field of the prompt workbench has focus (the template editor,
    /// a variable's value, the template search): like `input`.
    Workbench,
    /// A list of the workbench has focus (templates, examples, preview,
    /// output): plain letters are fine.
    WorkbenchList,
    /// A form popup of the workbench (a few-shot example, a file name).
    WorkbenchForm,
    /// The refinement rounds: passes, their diff, ratings.
    Rounds,
    /// The experiments screen: files, runs, a run's matrix and cells.
    Experiments,
    /// Two models side by side: the message editor has focus, like `input`.
    Compare,
}

impl Context {
    pub const ALL: &'static [Context] = &[
        Context::Global,
        Context::Input,
        Context::Messages,
        Context::Settings,
        Context::Picker,
        Context::Workbench,
        Context::WorkbenchList,
        Context::WorkbenchForm,
        Context::Rounds,
        Context::Experiments,
        Context::Compare,
    ];

    /// The section name in `keymap.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Context::Global => "global",
            Context::Input => "input",
            Context::Messages => "messages",
            Context::Settings => "settings",
            Context::Picker => "picker",
            Context::Workbench => "workbench",
            Context::WorkbenchList => "workbench_list",
            Context::WorkbenchForm => "workbench_form",
            Context::Rounds => "rounds",
            Context::Experiments => "experiments",
            Context::Compare => "compare",
        }
    }

    pub fn from_name(name: &str) -> Option<Context> {
        Context::ALL.iter().copied().find(|c| c.name() == name)
    }

    /// Whether plain characters typed here must reach a text field, so they
    /// cannot be bound. `Global` counts: it is active while the editor has
    /// focus.
    pub fn types_text(self) -> bool {
        matches!(
            self,
            Context::Global
                | Context::Input
                | Context::Settings
                | Context::Workbench
                | Context::WorkbenchForm
                | Context::Compare
        )
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Something a key can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    // Global
    Quit,
    Stop,
    Help,
    FocusNext,
    Regenerate,
    RestartEngine,
    Suspend,
    Settings,
    Models,
    Sessions,
    PageUp,
    PageDown,
    Export,
    // Input
    Send,
    Newline,
    // Messages
    QuitNow,
    SelectPrev,
    SelectNext,
    SelectLast,
    EditMessage,
    DeleteMessage,
    ContinueReply,
    CopyMessage,
    CopyCode,
    BranchNext,
    BranchPrev,
    Lens,
    // Settings
    Apply,
    Close,
    FieldNext,
    FieldPrev,
    // Picker
    Pick,
    PickerRename,
    PickerDelete,
    // Workbench
    Workbench,
    FocusPrev,
    Run,
    Save,
    SaveAs,
    SendToChat,
    History,
    NextText,
    Undo,
    Redo,
    LoadFile,
    MakeDefault,
    Search,
    NewTemplate,
    ExampleAdd,
    ExampleEdit,
    ExampleDuplicate,
    ExampleDelete,
    ExampleToggle,
    ExampleMoveUp,
    ExampleMoveDown,
    // Rounds
    Refine,
    CompareLeft,
    CompareRight,
    Rate,
    MarkBest,
    CompareRuns,
    // Experiments
    Experiments,
    ColumnPrev,
    ColumnNext,
    NextScore,
    SortRows,
    FilterRows,
    MakeExperiment,
    // Compare
    Compare,
    VoteA,
    VoteB,
    VoteTie,
    VoteBothBad,
    VoteNote,
    RegenerateA,
    RegenerateB,
    KeepA,
    KeepB,
    ToggleBlind,
    TogglePace,
}

const GLOBAL: &[Context] = &[Context::Global];
const MESSAGES: &[Context] = &[Context::Messages];
const PICKER: &[Context] = &[Context::Picker];
const LISTS: &[Context] = &[
    Context::Messages,
    Context::Picker,
    Context::WorkbenchList,
    Context::Rounds,
    Context::Experiments,
];
const ROUNDS: &[Context] = &[Context::Rounds, Context::Experiments];
const EXPERIMENTS: &[Context] = &[Context::Experiments];
const COPY: &[Context] = &[Context::Messages, Context::Rounds, Context::Experiments];
const BRANCHES: &[Context] = &[Context::Messages, Context::Experiments];
const LENS: &[Context] = &[Context::Messages, Context::WorkbenchList, Context::Rounds];
const POPUPS: &[Context] = &[Context::Settings, Context::Picker, Context::WorkbenchForm];
const INPUTS: &[Context] = &[
    Context::Input,
    Context::Workbench,
    Context::WorkbenchForm,
    Context::Compare,
];
const SEND: &[Context] = &[Context::Input, Context::Compare];
const COMPARE: &[Context] = &[Context::Compare];
const PICKERS: &[Context] = &[
    Context::Picker,
    Context::WorkbenchList,
    Context::Experiments,
];
const WORKBENCH: &[Context] = &[Context::Workbench, Context::WorkbenchList];
const RUNS: &[Context] = &[
    Context::Workbench,
    Context::WorkbenchList,
    Context::Experiments,
];
const WORKBENCH_TEXT: &[Context] = &[Context::Workbench, Context::WorkbenchForm];
const WORKBENCH_LIST: &[Context] = &[Context::WorkbenchList];
const HISTORY: &[Context] = &[Context::Workbench, Context::WorkbenchList, Context::Rounds];
const QUIT_NOW: &[Context] = &[
    Context::Messages,
    Context::WorkbenchList,
    Context::Rounds,
    Context::Experiments,
];
const FORMS: &[Context] = &[Context::Settings, Context::WorkbenchForm];

impl Action {
    /// Every action, in the order help lists them.
    pub const ALL: &'static [Action] = &[
        Action::Quit,
        Action::Stop,
        Action::Help,
        Action::FocusNext,
        Action::Regenerate,
        Action::RestartEngine,
        Action::Suspend,
        Action::Settings,
        Action::Models,
        Action::Sessions,
        Action::PageUp,
        Action::PageDown,
        Action::Export,
        Action::Send,
        Action::Newline,
        Action::QuitNow,
        Action::SelectPrev,
        Action::SelectNext,
        Action::SelectLast,
        Action::EditMessage,
        Action::DeleteMessage,
        Action::ContinueReply,
        Action::CopyMessage,
        Action::CopyCode,
        Action::BranchNext,
        Action::BranchPrev,
        Action::Lens,
        Action::Apply,
        Action::Close,
        Action::FieldNext,
        Action::FieldPrev,
        Action::Pick,
        Action::PickerRename,
        Action::PickerDelete,
        Action::Workbench,
        Action::FocusPrev,
        Action::Run,
        Action::Save,
        Action::SaveAs,
        Action::SendToChat,
        Action::History,
        Action::NextText,
        Action::Undo,
        Action::Redo,
        Action::LoadFile,
        Action::MakeDefault,
        Action::Search,
        Action::NewTemplate,
        Action::ExampleAdd,
        Action::ExampleEdit,
        Action::ExampleDuplicate,
        Action::ExampleDelete,
        Action::ExampleToggle,
        Action::ExampleMoveUp,
        Action::ExampleMoveDown,
        Action::Refine,
        Action::CompareLeft,
        Action::CompareRight,
        Action::Rate,
        Action::MarkBest,
        Action::CompareRuns,
        Action::Experiments,
        Action::ColumnPrev,
        Action::ColumnNext,
        Action::NextScore,
        Action::SortRows,
        Action::FilterRows,
        Action::MakeExperiment,
        Action::Compare,
        Action::VoteA,
        Action::VoteB,
        Action::VoteTie,
        Action::VoteBothBad,
        Action::VoteNote,
        Action::RegenerateA,
        Action::RegenerateB,
        Action::KeepA,
        Action::KeepB,
        Action::ToggleBlind,
        Action::TogglePace,
    ];

    /// (name in `keymap.toml`, description for help, contexts it may be bound in)
    fn info(self) -> (&'static str, &'static str, &'static [Context]) {
        match self {
            Action::Quit => ("quit", "Quit (press twice)", GLOBAL),
            Action::Stop => ("stop", "Stop the reply in progress", GLOBAL),
            Action::Help => ("help", "Show the key bindings", Context::ALL),
            Action::FocusNext => ("focus_next", "Move focus to the next pane", GLOBAL),
            Action::Regenerate => ("regenerate", "Regenerate the last reply", GLOBAL),
            Action::RestartEngine => ("restart_engine", "Restart the engine", GLOBAL),
            Action::Suspend => ("suspend", "Suspend to the shell", GLOBAL),
            Action::Settings => ("settings", "Sampling settings and system prompt", GLOBAL),
            Action::Models => ("models", "Pick a model", GLOBAL),
            Action::Sessions => ("sessions", "List sessions", GLOBAL),
            Action::PageUp => ("page_up", "Scroll up a page", GLOBAL),
            Action::PageDown => ("page_down", "Scroll down a page", GLOBAL),
            Action::Export => ("export", "Export the session as Markdown and JSON", GLOBAL),
            Action::Send => ("send", "Send the message", SEND),
            Action::Newline => ("newline", "Insert a line break", INPUTS),
            Action::QuitNow => ("quit_now", "Quit", QUIT_NOW),
            Action::SelectPrev => ("select_prev", "Select the previous item", LISTS),
            Action::SelectNext => ("select_next", "Select the next item", LISTS),
            Action::SelectLast => ("select_last", "Select the last message", MESSAGES),
            Action::EditMessage => (
                "edit_message",
                "Edit the selected message and resend from there",
                MESSAGES,
            ),
            Action::DeleteMessage => ("delete_message", "Delete the selected message", MESSAGES),
            Action::ContinueReply => ("continue_reply", "Continue a stopped reply", MESSAGES),
            Action::CopyMessage => ("copy_message", "Copy the selected message (or pass)", COPY),
            Action::CopyCode => (
                "copy_code",
                "Copy the selected message's last code block",
                MESSAGES,
            ),
            Action::BranchNext => (
                "branch_next",
                "Show the next kept branch (or the next repeat of a cell)",
                BRANCHES,
            ),
            Action::BranchPrev => (
                "branch_prev",
                "Show the previous kept branch (or repeat)",
                BRANCHES,
            ),
            Action::Lens => (
                "lens",
                "Lens on the reply: ←/→ token, ↑/↓ alternative, Enter forks",
                LENS,
            ),
            Action::Apply => ("apply", "Apply the settings or the form", FORMS),
            Action::Close => ("close", "Close", POPUPS),
            Action::FieldNext => ("field_next", "Next field", FORMS),
            Action::FieldPrev => ("field_prev", "Previous field", FORMS),
            Action::Pick => ("pick", "Open the selected item", PICKERS),
            Action::PickerRename => ("picker_rename", "Rename the selected item", PICKER),
            Action::PickerDelete => ("picker_delete", "Delete the selected item", PICKER),
            Action::Workbench => (
                "workbench",
                "Switch between the chat and the prompt workbench",
                GLOBAL,
            ),
            Action::FocusPrev => ("focus_prev", "Move focus to the previous pane", WORKBENCH),
            Action::Run => (
                "run",
                "Run the template (or the experiment, or resume the run)",
                RUNS,
            ),
            Action::Save => (
                "save",
                "Save the template (a shipped one as your copy)",
                WORKBENCH,
            ),
            Action::SaveAs => ("save_as", "Save the template under a new name", WORKBENCH),
            Action::SendToChat => (
                "send_to_chat",
                "Start a chat session from the rendered messages",
                WORKBENCH,
            ),
            Action::History => ("history", "Past runs; Enter reopens one", HISTORY),
            Action::Refine => (
                "refine",
                "Refinement rounds on the template: draft, feedback, refined passes",
                WORKBENCH,
            ),
            Action::CompareLeft => ("compare_left", "Show the selected pass on the left", ROUNDS),
            Action::CompareRight => (
                "compare_right",
                "Show the selected pass on the right",
                ROUNDS,
            ),
            Action::Rate => (
                "rate",
                "Rate the selected pass or cell (1-5) and add a note",
                ROUNDS,
            ),
            Action::MarkBest => ("mark_best", "Mark the selected pass as the best", ROUNDS),
            Action::CompareRuns => (
                "compare_runs",
                "Compare with another run (pass by pass, or metric by metric)",
                ROUNDS,
            ),
            Action::Experiments => (
                "experiments",
                "Switch to the experiments screen and back",
                GLOBAL,
            ),
            Action::ColumnPrev => ("column_prev", "Select the variant to the left", EXPERIMENTS),
            Action::ColumnNext => (
                "column_next",
                "Select the variant to the right",
                EXPERIMENTS,
            ),
            Action::NextScore => (
                "next_score",
                "Show the next metric or check in the matrix",
                EXPERIMENTS,
            ),
            Action::SortRows => (
                "sort_rows",
                "Sort rows: by item, by the selected variant, by disagreement",
                EXPERIMENTS,
            ),
            Action::Compare => (
                "compare",
                "Compare the chat's model with another, side by side",
                GLOBAL,
            ),
            Action::VoteA => ("vote_a", "Vote: A's reply is better", COMPARE),
            Action::VoteB => ("vote_b", "Vote: B's reply is better", COMPARE),
            Action::VoteTie => ("vote_tie", "Vote: a tie", COMPARE),
            Action::VoteBothBad => ("vote_both_bad", "Vote: both replies are bad", COMPARE),
            Action::VoteNote => ("vote_note", "Write a note for the next vote", COMPARE),
            Action::RegenerateA => ("regenerate_a", "Regenerate A's last reply only", COMPARE),
            Action::RegenerateB => ("regenerate_b", "Regenerate B's last reply only", COMPARE),
            Action::KeepA => (
                "keep_a",
                "End the comparison: the chat goes on with A's model and replies",
                COMPARE,
            ),
            Action::KeepB => (
                "keep_b",
                "End the comparison: the chat goes on with B's model and replies",
                COMPARE,
            ),
            Action::ToggleBlind => (
                "toggle_blind",
                "Blind: hide the models' names until the first vote (before the first message)",
                COMPARE,
            ),
            Action::TogglePace => (
                "toggle_pace",
                "Replies one after the other (each at full speed) or at once (the cores split)",
                COMPARE,
            ),
            Action::MakeExperiment => (
                "make_experiment",
                "Make an experiment of the template: saved vs edited, examples on vs off, over a dataset",
                WORKBENCH,
            ),
            Action::FilterRows => (
                "filter_rows",
                "Show all rows, rows where variants differ, rows where a check fails",
                EXPERIMENTS,
            ),
            Action::NextText => (
                "next_text",
                "Edit the next text: prompt, system, sampling, feedback, refine",
                WORKBENCH,
            ),
            Action::Undo => ("undo", "Undo in the editor", WORKBENCH_TEXT),
            Action::Redo => ("redo", "Redo in the editor", WORKBENCH_TEXT),
            Action::LoadFile => (
                "load_file",
                "Load a variable's value from a file",
                WORKBENCH_TEXT,
            ),
            Action::MakeDefault => (
                "make_default",
                "Make the variable's value its default (saved with the template)",
                WORKBENCH_TEXT,
            ),
            Action::Search => ("search", "Search templates by name", WORKBENCH_LIST),
            Action::NewTemplate => ("new_template", "Start a new template", WORKBENCH_LIST),
            Action::ExampleAdd => ("example_add", "Add a few-shot example", WORKBENCH_LIST),
            Action::ExampleEdit => ("example_edit", "Edit the selected example", WORKBENCH_LIST),
            Action::ExampleDuplicate => (
                "example_duplicate",
                "Duplicate the selected example",
                WORKBENCH_LIST,
            ),
            Action::ExampleDelete => (
                "example_delete",
                "Delete the selected example (press twice)",
                WORKBENCH_LIST,
            ),
            Action::ExampleToggle => (
                "example_toggle",
                "Turn the selected example on or off",
                WORKBENCH_LIST,
            ),
            Action::ExampleMoveUp => ("example_move_up", "Move the example up", WORKBENCH_LIST),
            Action::ExampleMoveDown => {
                ("example_move_down", "Move the example down", WORKBENCH_LIST)
            }
        }
    }

    /// The name in `keymap.toml` (snake_case).
    pub fn name(self) -> &'static str {
        self.info().0
    }

    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// One line for the help overlay.
    pub fn description(self) -> &'static str {
        self.info().1
    }

    /// The contexts (sections) this action may be bound in, its home first.
    pub fn contexts(self) -> &'static [Context] {
        self.info().2
    }

    /// Its home context: the first of [`Action::contexts`].
    pub fn context(self) -> Context {
        self.contexts()[0]
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The default bindings.
const DEFAULTS: &[(Context, Action, &[&str])] = &[
    (Context::Global, Action::Quit, &["ctrl+c"]),
    (Context::Global, Action::Stop, &["esc"]),
    (Context::Global, Action::Help, &["f1"]),
    (Context::Global, Action::FocusNext, &["tab"]),
    (Context::Global, Action::Regenerate, &["ctrl+g"]),
    (Context::Global, Action::RestartEngine, &["ctrl+r"]),
    (Context::Global, Action::Suspend, &["ctrl+z"]),
    (Context::Global, Action::Settings, &["f2"]),
    (Context::Global, Action::Models, &["f3"]),
    (Context::Global, Action::Sessions, &["f4"]),
    (Context::Global, Action::PageUp, &["pageup"]),
    (Context::Global, Action::PageDown, &["pagedown"]),
    (Context::Global, Action::Export, &["ctrl+e"]),
    (Context::Input, Action::Send, &["enter"]),
    (Context::Input, Action::Newline, &["alt+enter", "ctrl+j"]),
    (Context::Messages, Action::QuitNow, &["q"]),
    (Context::Messages, Action::SelectPrev, &["up", "k"]),
    (Context::Messages, Action::SelectNext, &["down", "j"]),
    (Context::Messages, Action::SelectLast, &["end", "G"]),
    (Context::Messages, Action::EditMessage, &["e"]),
    (Context::Messages, Action::DeleteMessage, &["d", "delete"]),
    (Context::Messages, Action::ContinueReply, &["c"]),
    (Context::Messages, Action::CopyMessage, &["y"]),
    (Context::Messages, Action::CopyCode, &["Y"]),
    (Context::Messages, Action::BranchNext, &["]"]),
    (Context::Messages, Action::BranchPrev, &["["]),
    (Context::Messages, Action::Lens, &["t"]),
    (Context::WorkbenchList, Action::Lens, &["t"]),
    (Context::Rounds, Action::Lens, &["t"]),
    (Context::Messages, Action::Help, &["?"]),
    (Context::Settings, Action::Apply, &["ctrl+s"]),
    (Context::Settings, Action::Close, &["esc"]),
    (Context::Settings, Action::FieldNext, &["down"]),
    (Context::Settings, Action::FieldPrev, &["up"]),
    (Context::Picker, Action::Pick, &["enter"]),
    (Context::Picker, Action::Close, &["esc"]),
    (Context::Picker, Action::PickerRename, &["r"]),
    (Context::Picker, Action::PickerDelete, &["d"]),
    (Context::Picker, Action::SelectPrev, &["up", "k"]),
    (Context::Picker, Action::SelectNext, &["down", "j"]),
    (Context::Picker, Action::Help, &["?"]),
    (Context::Global, Action::Workbench, &["f5"]),
    (Context::Workbench, Action::FocusPrev, &["shift+tab"]),
    (Context::Workbench, Action::Run, &["ctrl+g"]),
    (Context::Workbench, Action::Save, &["ctrl+s"]),
    (Context::Workbench, Action::SaveAs, &["f12"]),
    (Context::Workbench, Action::SendToChat, &["ctrl+t"]),
    (Context::Workbench, Action::History, &["f6"]),
    (Context::Workbench, Action::NextText, &["f7"]),
    (Context::Workbench, Action::Undo, &["ctrl+u"]),
    (Context::Workbench, Action::Redo, &["ctrl+r"]),
    (Context::Workbench, Action::LoadFile, &["ctrl+o"]),
    (Context::Workbench, Action::MakeDefault, &["f8"]),
    (
        Context::Workbench,
        Action::Newline,
        &["alt+enter", "ctrl+j"],
    ),
    (Context::WorkbenchList, Action::FocusPrev, &["shift+tab"]),
    (Context::WorkbenchList, Action::Run, &["ctrl+g"]),
    (Context::WorkbenchList, Action::Save, &["ctrl+s"]),
    (Context::WorkbenchList, Action::SaveAs, &["f12"]),
    (Context::WorkbenchList, Action::SendToChat, &["ctrl+t"]),
    (Context::WorkbenchList, Action::History, &["f6"]),
    (Context::WorkbenchList, Action::NextText, &["f7"]),
    (Context::WorkbenchList, Action::SelectPrev, &["up", "k"]),
    (Context::WorkbenchList, Action::SelectNext, &["down", "j"]),
    (Context::WorkbenchList, Action::Pick, &["enter"]),
    (Context::WorkbenchList, Action::Search, &["/"]),
    (Context::WorkbenchList, Action::NewTemplate, &["n"]),
    (Context::WorkbenchList, Action::ExampleAdd, &["a"]),
    (Context::WorkbenchList, Action::ExampleEdit, &["e"]),
    (Context::WorkbenchList, Action::ExampleDuplicate, &["c"]),
    (
        Context::WorkbenchList,
        Action::ExampleDelete,
        &["d", "delete"],
    ),
    (Context::WorkbenchList, Action::ExampleToggle, &["space"]),
    (
        Context::WorkbenchList,
        Action::ExampleMoveUp,
        &["K", "alt+up"],
    ),
    (
        Context::WorkbenchList,
        Action::ExampleMoveDown,
        &["J", "alt+down"],
    ),
    (Context::WorkbenchList, Action::QuitNow, &["q"]),
    (Context::WorkbenchList, Action::Help, &["?"]),
    (Context::WorkbenchForm, Action::Apply, &["ctrl+s"]),
    (Context::WorkbenchForm, Action::Close, &["esc"]),
    (Context::WorkbenchForm, Action::FieldNext, &["tab"]),
    (Context::WorkbenchForm, Action::FieldPrev, &["shift+tab"]),
    (
        Context::WorkbenchForm,
        Action::Newline,
        &["alt+enter", "ctrl+j"],
    ),
    (Context::WorkbenchForm, Action::Undo, &["ctrl+u"]),
    (Context::WorkbenchForm, Action::Redo, &["ctrl+r"]),
    (Context::Workbench, Action::Refine, &["f9"]),
    (Context::WorkbenchList, Action::Refine, &["f9"]),
    (Context::Rounds, Action::SelectPrev, &["up", "k"]),
    (Context::Rounds, Action::SelectNext, &["down", "j"]),
    (Context::Rounds, Action::CompareLeft, &["a"]),
    (Context::Rounds, Action::CompareRight, &["b"]),
    (Context::Rounds, Action::Rate, &["r"]),
    (Context::Rounds, Action::MarkBest, &["*", "m"]),
    (Context::Rounds, Action::CopyMessage, &["y"]),
    (Context::Rounds, Action::CompareRuns, &["o"]),
    (Context::Rounds, Action::History, &["f6"]),
    (Context::Rounds, Action::QuitNow, &["q"]),
    (Context::Rounds, Action::Help, &["?"]),
    (Context::Global, Action::Experiments, &["f10"]),
    (Context::Workbench, Action::MakeExperiment, &["alt+e"]),
    (Context::Global, Action::Compare, &["f9"]),
    (Context::Compare, Action::Send, &["enter"]),
    (Context::Compare, Action::Newline, &["alt+enter", "ctrl+j"]),
    (Context::Compare, Action::VoteA, &["alt+a"]),
    (Context::Compare, Action::VoteB, &["alt+b"]),
    (Context::Compare, Action::VoteTie, &["alt+t"]),
    (Context::Compare, Action::VoteBothBad, &["alt+x"]),
    (Context::Compare, Action::VoteNote, &["alt+n"]),
    (Context::Compare, Action::RegenerateA, &["alt+1"]),
    (Context::Compare, Action::RegenerateB, &["alt+2"]),
    (Context::Compare, Action::KeepA, &["f6"]),
    (Context::Compare, Action::KeepB, &["f7"]),
    (Context::Compare, Action::ToggleBlind, &["alt+h"]),
    (Context::Compare, Action::TogglePace, &["alt+p"]),
    (Context::WorkbenchList, Action::MakeExperiment, &["alt+e"]),
    (Context::Experiments, Action::SelectPrev, &["up", "k"]),
    (Context::Experiments, Action::SelectNext, &["down", "j"]),
    (Context::Experiments, Action::ColumnPrev, &["left", "h"]),
    (Context::Experiments, Action::ColumnNext, &["right", "l"]),
    (Context::Experiments, Action::Pick, &["enter"]),
    (Context::Experiments, Action::Run, &["ctrl+g"]),
    (Context::Experiments, Action::NextScore, &["m"]),
    (Context::Experiments, Action::SortRows, &["s"]),
    (Context::Experiments, Action::FilterRows, &["f"]),
    (Context::Experiments, Action::CompareLeft, &["a"]),
    (Context::Experiments, Action::CompareRight, &["b"]),
    (Context::Experiments, Action::Rate, &["r"]),
    (Context::Experiments, Action::CompareRuns, &["o"]),
    (Context::Experiments, Action::CopyMessage, &["y"]),
    (Context::Experiments, Action::BranchNext, &["]"]),
    (Context::Experiments, Action::BranchPrev, &["["]),
    (Context::Experiments, Action::QuitNow, &["q"]),
    (Context::Experiments, Action::Help, &["?"]),
];

/// A key as bound: a code and the modifiers that matter, normalised so a
/// binding and a terminal's event compare equal (see [`Key::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

impl Key {
    /// Normalises: only Ctrl, Alt, Shift and Super count; Shift on a letter
    /// makes it uppercase and is then dropped, as it is on any character
    /// (`?` arrives with or without it); Shift+Tab is `BackTab`.
    pub fn new(code: KeyCode, modifiers: KeyModifiers) -> Key {
        let mut modifiers = modifiers
            & (KeyModifiers::CONTROL
                | KeyModifiers::ALT
                | KeyModifiers::SHIFT
                | KeyModifiers::SUPER);
        let code = match code {
            KeyCode::Char(c) => {
                let shifted = modifiers.contains(KeyModifiers::SHIFT);
                modifiers.remove(KeyModifiers::SHIFT);
                KeyCode::Char(if shifted { c.to_ascii_uppercase() } else { c })
            }
            KeyCode::Tab if modifiers.contains(KeyModifiers::SHIFT) => {
                modifiers.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            KeyCode::BackTab => {
                modifiers.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        Key { code, modifiers }
    }

    pub fn from_event(event: &KeyEvent) -> Key {
        Key::new(event.code, event.modifiers)
    }

    /// A character without Ctrl, Alt or Super: it would type.
    pub fn is_plain_char(self) -> bool {
        matches!(self.code, KeyCode::Char(_)) && self.modifiers.is_empty()
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_key(*self))
    }
}

/// Reads a key as written in `keymap.toml`: modifiers (`ctrl`, `alt`,
/// `shift`, any case) joined with `+` to a key, which is one character
/// (case-sensitive: `G` is Shift+g) or a name (any case): `enter`/`return`,
/// `esc`/`escape`, `tab`, `backtab`, `backspace`, `delete`/`del`,
/// `insert`/`ins`, `home`, `end`, `pageup`/`pgup`, `pagedown`/`pgdn`, `up`,
/// `down`, `left`, `right`, `space`, `f1`…`f24`. With Ctrl or Alt a letter
/// is read without case (`ctrl+G` is `ctrl+g`; say `ctrl+shift+g`); Shift
/// goes with letters and names only (write `?`, not `shift+/`). `+` itself is
/// `+` or `ctrl++`. The error says why, without the key itself.
pub fn parse_key(text: &str) -> Result<Key, String> {
    if text.is_empty() {
        return Err("empty".to_string());
    }
    let (mods_text, key_text) = if text == "+" {
        ("", "+")
    } else if let Some(mods) = text.strip_suffix("++") {
        (mods, "+")
    } else {
        text.rsplit_once('+').unwrap_or(("", text))
    };
    if key_text.is_empty() {
        return Err("no key after the modifiers".to_string());
    }
    let mut modifiers = KeyModifiers::empty();
    if !mods_text.is_empty() {
        for m in mods_text.split('+') {
            modifiers |= match m.to_ascii_lowercase().as_str() {
                "ctrl" | "control" => KeyModifiers::CONTROL,
                "alt" => KeyModifiers::ALT,
                "shift" => KeyModifiers::SHIFT,
                "" => return Err("an empty modifier (two '+' in a row?)".to_string()),
                _ => {
                    return Err(format!(
                        "unknown modifier '{m}' (modifiers: ctrl, alt, shift)"
                    ))
                }
            };
        }
    }
    let mut chars = key_text.chars();
    let code = match (chars.next(), chars.next()) {
        (Some(c), None) => {
            if modifiers.contains(KeyModifiers::SHIFT) && !c.is_ascii_alphabetic() {
                return Err(format!(
                    "shift goes with letters and named keys; write the shifted character instead of 'shift+{c}'"
                ));
            }
            let with_ctrl_or_alt = modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
            KeyCode::Char(if with_ctrl_or_alt {
                c.to_ascii_lowercase()
            } else {
                c
            })
        }
        _ => named_key(key_text).ok_or_else(|| format!("unknown key name '{key_text}'"))?,
    };
    Ok(Key::new(code, modifiers))
}

fn named_key(name: &str) -> Option<KeyCode> {
    let lower = name.to_ascii_lowercase();
    Some(match lower.as_str() {
        "enter" | "return" => KeyCode::Enter,
        "esc" | "escape" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "backtab" => KeyCode::BackTab,
        "backspace" => KeyCode::Backspace,
        "delete" | "del" => KeyCode::Delete,
        "insert" | "ins" => KeyCode::Insert,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "pageup" | "pgup" => KeyCode::PageUp,
        "pagedown" | "pgdn" | "pgdown" => KeyCode::PageDown,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "space" => KeyCode::Char(' '),
        _ => {
            let n: u8 = lower.strip_prefix('f')?.parse().ok()?;
            if !(1..=24).contains(&n) {
                return None;
            }
            KeyCode::F(n)
        }
    })
}

/// How a key is shown: "Ctrl+G", "Alt+Enter", "Shift+Tab", "?", "G",
/// "PgUp", "Space". Letters with Ctrl/Alt show uppercase; an uppercase one
/// adds "Shift+" ("Ctrl+Shift+G"). [`parse_key`] reads it back.
pub fn format_key(key: Key) -> String {
    let mut parts: Vec<String> = Vec::new();
    let m = key.modifiers;
    if m.contains(KeyModifiers::CONTROL) {
        parts.push("Ctrl".into());
    }
    if m.contains(KeyModifiers::ALT) {
        parts.push("Alt".into());
    }
    if m.contains(KeyModifiers::SUPER) {
        parts.push("Super".into());
    }
    let with_mods = !m.is_empty();
    let name = match key.code {
        KeyCode::Char(' ') => "Space".to_string(),
        KeyCode::Char(c) if with_mods && c.is_ascii_uppercase() => {
            parts.push("Shift".into());
            c.to_string()
        }
        KeyCode::Char(c) if with_mods => c.to_ascii_uppercase().to_string(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::BackTab => {
            parts.push("Shift".into());
            "Tab".to_string()
        }
        code => {
            if m.contains(KeyModifiers::SHIFT) {
                parts.push("Shift".into());
            }
            match code {
                KeyCode::Enter => "Enter".to_string(),
                KeyCode::Esc => "Esc".to_string(),
                KeyCode::Tab => "Tab".to_string(),
                KeyCode::Backspace => "Backspace".to_string(),
                KeyCode::Delete => "Del".to_string(),
                KeyCode::Insert => "Ins".to_string(),
                KeyCode::Home => "Home".to_string(),
                KeyCode::End => "End".to_string(),
                KeyCode::PageUp => "PgUp".to_string(),
                KeyCode::PageDown => "PgDn".to_string(),
                KeyCode::Up => "Up".to_string(),
                KeyCode::Down => "Down".to_string(),
                KeyCode::Left => "Left".to_string(),
                KeyCode::Right => "Right".to_string(),
                KeyCode::F(n) => format!("F{n}"),
                other => format!("{other:?}"),
            }
        }
    };
    parts.push(name);
    parts.join("+")
}

/// The keys of one action in one context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub context: Context,
    pub action: Action,
    /// Empty when unbound.
    pub keys: Vec<Key>,
}

/// The bindings in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    /// One per (context, action the context allows), in `Context::ALL` then
    /// `Action::ALL` order.
    bindings: Vec<Binding>,
}

impl Default for Keymap {
    fn default() -> Keymap {
        Keymap::defaults()
    }
}

impl Keymap {
    /// The bindings compiled into the binary.
    pub fn defaults() -> Keymap {
        Keymap::build(default_keys)
    }

    /// Reads `path` if it exists (a missing file is not an error) over the
    /// defaults. Problems come back as messages (see the module
    /// documentation); the entry they are about is ignored.
    pub fn load(path: &Path) -> (Keymap, Vec<String>) {
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Keymap::from_toml(&text, &file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Keymap::defaults(), Vec::new()),
            Err(e) => (Keymap::defaults(), vec![format!("{file}: {e}")]),
        }
    }

    /// As [`Keymap::load`], from the file's text; `file` names it in messages.
    pub fn from_toml(text: &str, file: &str) -> (Keymap, Vec<String>) {
        let at = |offset: usize, message: &str| {
            let (line, col) = line_col(text, offset);
            format!("{file}:{line}:{col}: {message}")
        };
        let mut problems = Vec::new();
        let doc = match DeTable::parse(text) {
            Ok(doc) => doc,
            Err(e) => {
                let message = match e.span() {
                    Some(span) => at(span.start, e.message()),
                    None => format!("{file}: {}", e.message()),
                };
                return (Keymap::defaults(), vec![message]);
            }
        };
        let mut entries = Vec::new();
        for (name, value) in in_file_order(doc.get_ref()) {
            let offset = name.span().start;
            let name = name.get_ref().as_ref();
            let Some(context) = Context::from_name(name) else {
                let sections = section_list();
                problems.push(match value.get_ref() {
                    DeValue::Table(_) => at(
                        offset,
                        &format!("unknown section '{name}' (sections: {sections})"),
                    ),
                    _ => at(
                        offset,
                        &format!("'{name}' is outside a section (sections: {sections})"),
                    ),
                });
                continue;
            };
            let DeValue::Table(table) = value.get_ref() else {
                problems.push(at(
                    offset,
                    &format!(
                        "'{name}' must be a table [{name}], found {}",
                        value.get_ref().type_str()
                    ),
                ));
                continue;
            };
            for (action_name, value) in in_file_order(table) {
                let offset = action_name.span().start;
                let action_name = action_name.get_ref().as_ref();
                let Some(action) = Action::from_name(action_name) else {
                    problems.push(at(offset, &format!("unknown action '{action_name}'")));
                    continue;
                };
                if !action.contexts().contains(&context) {
                    problems.push(at(
                        offset,
                        &format!("'{action_name}' cannot be bound in [{context}]"),
                    ));
                    continue;
                }
                let values: Vec<&Spanned<DeValue>> = match value.get_ref() {
                    DeValue::String(_) => vec![value],
                    DeValue::Array(items) => items.iter().collect(),
                    other => {
                        problems.push(at(
                            value.span().start,
                            &format!(
                                "expected a key or a list of keys for '{action_name}', found {}",
                                other.type_str()
                            ),
                        ));
                        continue;
                    }
                };
                let mut keys = Vec::new();
                let mut ok = true;
                for value in values {
                    let offset = value.span().start;
                    let Some(text) = value.get_ref().as_str() else {
                        problems.push(at(
                            offset,
                            &format!(
                                "expected a key or a list of keys for '{action_name}', found {}",
                                value.get_ref().type_str()
                            ),
                        ));
                        ok = false;
                        continue;
                    };
                    match parse_key(text) {
                        Err(why) => {
                            problems.push(at(offset, &format!("'{text}' is not a key: {why}")));
                            ok = false;
                        }
                        Ok(key) if context.types_text() && key.is_plain_char() => {
                            problems.push(at(
                                offset,
                                &format!("plain key '{text}' cannot be bound in [{context}]"),
                            ));
                            ok = false;
                        }
                        Ok(key) => keys.push(Written {
                            key,
                            text: text.to_string(),
                            offset,
                        }),
                    }
                }
                if ok {
                    entries.push(Entry {
                        context,
                        action,
                        keys,
                        rejected: false,
                    });
                }
            }
        }

        let default_shadows = shadows(&effective(&[]));
        while let Some((loser, offset, message)) = first_conflict(&entries, &default_shadows) {
            entries[loser].rejected = true;
            problems.push(at(offset, &message));
        }

        let keymap = Keymap::build(|context, action| {
            match entries
                .iter()
                .find(|e| !e.rejected && e.context == context && e.action == action)
            {
                Some(entry) => {
                    let mut keys: Vec<Key> = Vec::new();
                    for written in &entry.keys {
                        if !keys.contains(&written.key) {
                            keys.push(written.key);
                        }
                    }
                    keys
                }
                None => default_keys(context, action),
            }
        });
        (keymap, problems)
    }

    fn build(mut keys: impl FnMut(Context, Action) -> Vec<Key>) -> Keymap {
        let mut bindings = Vec::new();
        for &context in Context::ALL {
            for &action in Action::ALL {
                if action.contexts().contains(&context) {
                    bindings.push(Binding {
                        context,
                        action,
                        keys: keys(context, action),
                    });
                }
            }
        }
        Keymap { bindings }
    }

    /// Every (context, action) pair and its keys, unbound ones included.
    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// The keys bound to `action` in `context` itself (not via Global).
    pub fn keys(&self, context: Context, action: Action) -> &[Key] {
        self.bindings
            .iter()
            .find(|b| b.context == context && b.action == action)
            .map_or(&[], |b| &b.keys)
    }

    fn lookup(&self, context: Context, key: Key) -> Option<Action> {
        self.bindings
            .iter()
            .find(|b| b.context == context && b.keys.contains(&key))
            .map(|b| b.action)
    }

    /// The action for a key in a context: the context's bindings first, then
    /// Global. Key releases map to nothing.
    pub fn action(&self, context: Context, key: &KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let key = Key::from_event(key);
        self.lookup(context, key).or_else(|| match context {
            Context::Global => None,
            _ => self.lookup(Context::Global, key),
        })
    }

    /// The keys that trigger `action` while `context` has focus: its own,
    /// then Global's that the context does not take over.
    fn effective_keys(&self, context: Context, action: Action) -> Vec<Key> {
        let mut keys: Vec<Key> = self.keys(context, action).to_vec();
        if context != Context::Global {
            for &key in self.keys(Context::Global, action) {
                if self.lookup(context, key).is_none() && !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        keys
    }

    /// For the help overlay: (keys joined like "Ctrl+G, F5", or "unbound";
    /// description; action name) for every action of `context`, then every
    /// Global one, each once, in [`Action::ALL`] order. Keys Global binds but
    /// the context takes over are left out.
    pub fn help(&self, context: Context) -> Vec<(String, &'static str, &'static str)> {
        let own = Action::ALL.iter().filter(|a| {
            a.contexts().contains(&context) && !a.contexts().contains(&Context::Global)
        });
        let global = Action::ALL
            .iter()
            .filter(|a| a.contexts().contains(&Context::Global));
        own.chain(global)
            .map(|&action| {
                (
                    join_keys(&self.effective_keys(context, action)),
                    action.description(),
                    action.name(),
                )
            })
            .collect()
    }

    /// The first key bound to an action ("Ctrl+G"), looking in its contexts
    /// in [`Action::contexts`] order, for hints in titles; "unbound" if none.
    pub fn key_hint(&self, action: Action) -> String {
        action
            .contexts()
            .iter()
            .find_map(|&c| self.keys(c, action).first())
            .map_or_else(|| "unbound".to_string(), |&k| format_key(k))
    }

    /// The first key that triggers `action` while `context` has focus (its
    /// own, else Global's); "unbound" if none.
    pub fn key_hint_in(&self, context: Context, action: Action) -> String {
        self.effective_keys(context, action)
            .first()
            .map_or_else(|| "unbound".to_string(), |&k| format_key(k))
    }
}

fn join_keys(keys: &[Key]) -> String {
    if keys.is_empty() {
        return "unbound".to_string();
    }
    keys.iter()
        .map(|&k| format_key(k))
        .collect::<Vec<_>>()
        .join(", ")
}

fn default_keys(context: Context, action: Action) -> Vec<Key> {
    DEFAULTS
        .iter()
        .filter(|(c, a, _)| *c == context && *a == action)
        .flat_map(|(_, _, keys)| keys.iter())
        .map(|text| parse_key(text).expect("default keys parse"))
        .collect()
}

fn section_list() -> String {
    Context::ALL
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A table's entries in the order they are written (the map sorts by name).
fn in_file_order<'a, 'i>(
    table: &'a DeTable<'i>,
) -> Vec<(
    &'a Spanned<toml::de::DeString<'i>>,
    &'a Spanned<DeValue<'i>>,
)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
}

/// A key as the file wrote it.
struct Written {
    key: Key,
    text: String,
    offset: usize,
}

/// One `action = keys` of the file.
struct Entry {
    context: Context,
    action: Action,
    keys: Vec<Written>,
    rejected: bool,
}

/// One key of one action in one context, and where it comes from.
struct Bound<'a> {
    context: Context,
    action: Action,
    key: Key,
    /// The entry of the file, or `None` for a default; also the priority:
    /// defaults first, then the file's entries in order.
    entry: Option<usize>,
    written: Option<&'a Written>,
}

/// Every key in force with these entries (rejected ones aside), defaults
/// first, then the entries' keys in file order.
fn effective(entries: &[Entry]) -> Vec<Bound<'_>> {
    let mut bound = Vec::new();
    for &context in Context::ALL {
        for &action in Action::ALL {
            if !action.contexts().contains(&context) {
                continue;
            }
            let overridden = entries
                .iter()
                .any(|e| !e.rejected && e.context == context && e.action == action);
            if !overridden {
                for key in default_keys(context, action) {
                    bound.push(Bound {
                        context,
                        action,
                        key,
                        entry: None,
                        written: None,
                    });
                }
            }
        }
    }
    for (i, entry) in entries.iter().enumerate() {
        if entry.rejected {
            continue;
        }
        for written in &entry.keys {
            bound.push(Bound {
                context: entry.context,
                action: entry.action,
                key: written.key,
                entry: Some(i),
                written: Some(written),
            });
        }
    }
    bound
}

/// (context, key, context's action, Global action it hides) for every
/// context key that hides a different Global action.
fn shadows(bound: &[Bound]) -> HashSet<(Context, Key, Action, Action)> {
    let mut out = HashSet::new();
    for g in bound.iter().filter(|b| b.context == Context::Global) {
        for c in bound.iter().filter(|b| b.context != Context::Global) {
            if c.key == g.key && c.action != g.action {
                out.insert((c.context, c.key, c.action, g.action));
            }
        }
    }
    out
}

/// The first conflict among the entries in force: the losing entry, where
/// its key is written, and the message.
fn first_conflict(
    entries: &[Entry],
    default_shadows: &HashSet<(Context, Key, Action, Action)>,
) -> Option<(usize, usize, String)> {
    let bound = effective(entries);
    let lost = |dropped: &Bound, message: String| {
        let entry = dropped
            .entry
            .expect("the defaults have no conflicts, so the later binding is the file's");
        Some((entry, dropped.written.map_or(0, |w| w.offset), message))
    };
    let text = |b: &Bound| {
        b.written
            .map_or_else(|| format_key(b.key), |w| w.text.clone())
    };

    // Two actions on one key in one context: `bound` is in priority order.
    let mut first: HashMap<(Context, Key), &Bound> = HashMap::new();
    for b in &bound {
        match first.get(&(b.context, b.key)) {
            Some(kept) if kept.action != b.action => {
                let message = format!(
                    "'{}' is bound to both {} and {} in [{}]; keeping {}",
                    text(b),
                    kept.action,
                    b.action,
                    b.context,
                    kept.action
                );
                return lost(b, message);
            }
            Some(_) => {}
            None => {
                first.insert((b.context, b.key), b);
            }
        }
    }

    // A key the user bound in [global] that a context's key hides.
    for g in bound
        .iter()
        .filter(|b| b.context == Context::Global && b.entry.is_some())
    {
        let hiding = bound.iter().find(|b| {
            b.context != Context::Global
                && b.key == g.key
                && b.action != g.action
                && !default_shadows.contains(&(b.context, b.key, b.action, g.action))
        });
        if let Some(c) = hiding {
            // g is the file's; c may be a default.
            let c_first = match (c.entry, g.entry) {
                (Some(ci), Some(gi)) => ci < gi,
                _ => c.entry.is_none(),
            };
            let (kept, dropped) = if c_first { (c, g) } else { (g, c) };
            let message = format!(
                "'{}' is bound to both {} and {} in [{}] ({} is from [global]); keeping {}",
                text(dropped),
                kept.action,
                dropped.action,
                c.context,
                g.action,
                kept.action
            );
            return lost(dropped, message);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    fn ch(c: char) -> KeyEvent {
        key(KeyCode::Char(c), KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        key(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    /// The keymap and problems for a file's text, named `F` in messages.
    fn user(text: &str) -> (Keymap, Vec<String>) {
        Keymap::from_toml(text, "F")
    }

    /// The problems alone.
    fn report(text: &str) -> Vec<String> {
        user(text).1
    }

    #[test]
    fn names_are_unique_and_read_back() {
        let mut names = HashSet::new();
        for &action in Action::ALL {
            assert!(names.insert(action.name()), "{} twice", action.name());
            assert_eq!(Action::from_name(action.name()), Some(action));
            assert!(!action.description().is_empty());
            assert_eq!(action.context(), action.contexts()[0]);
        }
        assert_eq!(Action::from_name("frobnicate"), None);
        for &context in Context::ALL {
            assert_eq!(Context::from_name(context.name()), Some(context));
        }
    }

    #[test]
    fn defaults_have_no_conflicts() {
        let defaults = effective(&[]);
        let mut seen: HashMap<(Context, Key), Action> = HashMap::new();
        for b in &defaults {
            assert!(
                b.action.contexts().contains(&b.context),
                "{} is not allowed in [{}]",
                b.action,
                b.context
            );
            if let Some(other) = seen.insert((b.context, b.key), b.action) {
                assert_eq!(other, b.action, "{} twice in [{}]", b.key, b.context);
            }
            if b.context.types_text() {
                assert!(
                    !b.key.is_plain_char(),
                    "{} would type in [{}]",
                    b.key,
                    b.context
                );
            }
        }
        // The only context keys that hide a Global action: Esc closes the
        // popups rather than stopping the reply; in the workbench Ctrl+G
        // runs the template (it generates, as it regenerates in the chat),
        // and on the experiments screen runs or resumes; Ctrl+R redoes in
        // the workbench's editors, and Tab moves between form fields.
        let esc = parse_key("esc").unwrap();
        let ctrl_g = parse_key("ctrl+g").unwrap();
        let ctrl_r = parse_key("ctrl+r").unwrap();
        let tab = parse_key("tab").unwrap();
        let f9 = parse_key("f9").unwrap();
        let expected: HashSet<_> = [
            (Context::Settings, esc, Action::Close, Action::Stop),
            (Context::Picker, esc, Action::Close, Action::Stop),
            (Context::WorkbenchForm, esc, Action::Close, Action::Stop),
            (Context::Workbench, ctrl_g, Action::Run, Action::Regenerate),
            (
                Context::Experiments,
                ctrl_g,
                Action::Run,
                Action::Regenerate,
            ),
            (
                Context::WorkbenchList,
                ctrl_g,
                Action::Run,
                Action::Regenerate,
            ),
            (
                Context::Workbench,
                ctrl_r,
                Action::Redo,
                Action::RestartEngine,
            ),
            (
                Context::WorkbenchForm,
                ctrl_r,
                Action::Redo,
                Action::RestartEngine,
            ),
            (
                Context::WorkbenchForm,
                tab,
                Action::FieldNext,
                Action::FocusNext,
            ),
            // F9 refines on the workbench, compares on the chat.
            (Context::Workbench, f9, Action::Refine, Action::Compare),
            (Context::WorkbenchList, f9, Action::Refine, Action::Compare),
        ]
        .into_iter()
        .collect();
        assert_eq!(shadows(&defaults), expected);
        // Every action has a key somewhere.
        let keymap = Keymap::defaults();
        for &action in Action::ALL {
            assert_ne!(keymap.key_hint(action), "unbound", "{action}");
        }
        assert_eq!(first_conflict(&[], &expected), None);
    }

    #[test]
    fn ctrl_g_regenerates_in_input_and_messages() {
        let keymap = Keymap::defaults();
        for context in [Context::Input, Context::Messages, Context::Global] {
            assert_eq!(
                keymap.action(context, &ctrl('g')),
                Some(Action::Regenerate),
                "{context}"
            );
        }
        assert_eq!(keymap.action(Context::Input, &ch('g')), None);
        assert_eq!(keymap.key_hint(Action::Regenerate), "Ctrl+G");
    }

    #[test]
    fn question_mark_types_in_input_but_is_help_in_messages() {
        let keymap = Keymap::defaults();
        let shifted = key(KeyCode::Char('?'), KeyModifiers::SHIFT);
        for event in [ch('?'), shifted] {
            assert_eq!(keymap.action(Context::Input, &event), None);
            assert_eq!(keymap.action(Context::Settings, &event), None);
            assert_eq!(keymap.action(Context::Messages, &event), Some(Action::Help));
            assert_eq!(keymap.action(Context::Picker, &event), Some(Action::Help));
        }
        let f1 = key(KeyCode::F(1), KeyModifiers::NONE);
        assert_eq!(keymap.action(Context::Input, &f1), Some(Action::Help));
    }

    #[test]
    fn uppercase_g_with_or_without_shift() {
        let keymap = Keymap::defaults();
        let m = Context::Messages;
        assert_eq!(keymap.action(m, &ch('G')), Some(Action::SelectLast));
        let with_shift = key(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(keymap.action(m, &with_shift), Some(Action::SelectLast));
        // Some terminals report the unshifted letter with Shift.
        let lower_shift = key(KeyCode::Char('g'), KeyModifiers::SHIFT);
        assert_eq!(keymap.action(m, &lower_shift), Some(Action::SelectLast));
        assert_eq!(keymap.action(m, &ch('g')), None);
        assert_eq!(keymap.action(m, &ch('y')), Some(Action::CopyMessage));
        assert_eq!(keymap.action(m, &ch('Y')), Some(Action::CopyCode));
    }

    #[test]
    fn context_keys_win_over_global_ones() {
        let keymap = Keymap::defaults();
        let esc = key(KeyCode::Esc, KeyModifiers::NONE);
        assert_eq!(keymap.action(Context::Input, &esc), Some(Action::Stop));
        assert_eq!(keymap.action(Context::Messages, &esc), Some(Action::Stop));
        assert_eq!(keymap.action(Context::Settings, &esc), Some(Action::Close));
        assert_eq!(keymap.action(Context::Picker, &esc), Some(Action::Close));
        let enter = key(KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(keymap.action(Context::Input, &enter), Some(Action::Send));
        assert_eq!(keymap.action(Context::Picker, &enter), Some(Action::Pick));
        assert_eq!(keymap.action(Context::Messages, &enter), None);
        let alt_enter = key(KeyCode::Enter, KeyModifiers::ALT);
        assert_eq!(
            keymap.action(Context::Input, &alt_enter),
            Some(Action::Newline)
        );
        assert_eq!(
            keymap.action(Context::Input, &ctrl('j')),
            Some(Action::Newline)
        );
        assert_eq!(
            keymap.action(Context::Messages, &ch('j')),
            Some(Action::SelectNext)
        );
        assert_eq!(
            keymap.action(Context::Picker, &ch('d')),
            Some(Action::PickerDelete)
        );
        assert_eq!(
            keymap.action(Context::Messages, &ch('d')),
            Some(Action::DeleteMessage)
        );
    }

    #[test]
    fn releases_map_to_nothing() {
        let keymap = Keymap::defaults();
        let mut release = ctrl('g');
        release.kind = KeyEventKind::Release;
        assert_eq!(keymap.action(Context::Input, &release), None);
        let mut repeat = ctrl('g');
        repeat.kind = KeyEventKind::Repeat;
        assert_eq!(
            keymap.action(Context::Input, &repeat),
            Some(Action::Regenerate)
        );
    }

    #[test]
    fn keys_parse_and_format() {
        let cases = [
            ("ctrl+g", "Ctrl+G"),
            ("Ctrl+G", "Ctrl+G"),
            ("ctrl+shift+g", "Ctrl+Shift+G"),
            ("alt+enter", "Alt+Enter"),
            ("shift+tab", "Shift+Tab"),
            ("backtab", "Shift+Tab"),
            ("f5", "F5"),
            ("F12", "F12"),
            ("esc", "Esc"),
            ("Escape", "Esc"),
            ("pageup", "PgUp"),
            ("pgdn", "PgDn"),
            ("?", "?"),
            ("space", "Space"),
            ("ctrl+space", "Ctrl+Space"),
            ("G", "G"),
            ("shift+g", "G"),
            ("g", "g"),
            ("+", "+"),
            ("ctrl++", "Ctrl++"),
            ("delete", "Del"),
            ("shift+up", "Shift+Up"),
            ("[", "["),
        ];
        for (text, shown) in cases {
            let key = parse_key(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(format_key(key), shown, "{text}");
            assert_eq!(parse_key(shown), Ok(key), "{shown} reads back");
        }
        assert_eq!(
            parse_key("ctrl+g"),
            Ok(Key::new(KeyCode::Char('g'), KeyModifiers::CONTROL))
        );
        let errors = [
            ("", "empty"),
            ("ctrl+", "no key after the modifiers"),
            ("hyper+x", "unknown modifier 'hyper' (modifiers: ctrl, alt, shift)"),
            ("ctrl++g", "an empty modifier (two '+' in a row?)"),
            ("ctrl+enterr", "unknown key name 'enterr'"),
            ("f25", "unknown key name 'f25'"),
            (
                "shift+1",
                "shift goes with letters and named keys; write the shifted character instead of 'shift+1'",
            ),
        ];
        for (text, why) in errors {
            assert_eq!(parse_key(text), Err(why.to_string()), "{text:?}");
        }
    }

    #[test]
    fn a_missing_file_is_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let (keymap, problems) = Keymap::load(&dir.path().join("keymap.toml"));
        assert_eq!(keymap, Keymap::defaults());
        assert!(problems.is_empty());
    }

    #[test]
    fn load_reads_the_file_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keymap.toml");
        std::fs::write(
            &path,
            "[global]\nregenerate = \"f11\"\nfrobnicate = \"f6\"\n",
        )
        .unwrap();
        let (keymap, problems) = Keymap::load(&path);
        let f5 = key(KeyCode::F(11), KeyModifiers::NONE);
        assert_eq!(keymap.action(Context::Input, &f5), Some(Action::Regenerate));
        assert_eq!(
            problems,
            [format!(
                "{}:3:1: unknown action 'frobnicate'",
                path.display()
            )]
        );
    }

    #[test]
    fn a_rebind_replaces_the_defaults() {
        let (keymap, problems) = user("[messages]\ndelete_message = [\"x\", \"delete\"]\n");
        assert!(problems.is_empty(), "{problems:?}");
        let m = Context::Messages;
        assert_eq!(keymap.action(m, &ch('x')), Some(Action::DeleteMessage));
        assert_eq!(
            keymap.action(m, &key(KeyCode::Delete, KeyModifiers::NONE)),
            Some(Action::DeleteMessage)
        );
        assert_eq!(keymap.action(m, &ch('d')), None);
        // The picker's own `d` is another context's binding.
        assert_eq!(
            keymap.action(Context::Picker, &ch('d')),
            Some(Action::PickerDelete)
        );
        assert_eq!(keymap.key_hint(Action::DeleteMessage), "x");

        let (keymap, problems) = user("[global]\nregenerate = \"f11\"\n");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(keymap.action(Context::Input, &ctrl('g')), None);
        assert_eq!(keymap.key_hint(Action::Regenerate), "F11");
    }

    #[test]
    fn keys_can_be_swapped() {
        let (keymap, problems) =
            user("[messages]\nselect_prev = [\"up\", \"j\"]\nselect_next = [\"down\", \"k\"]\n");
        assert!(problems.is_empty(), "{problems:?}");
        let m = Context::Messages;
        assert_eq!(keymap.action(m, &ch('j')), Some(Action::SelectPrev));
        assert_eq!(keymap.action(m, &ch('k')), Some(Action::SelectNext));
        assert_eq!(
            keymap.action(Context::Picker, &ch('j')),
            Some(Action::SelectNext)
        );
    }

    #[test]
    fn an_empty_list_unbinds() {
        let (keymap, problems) = user("[messages]\ncopy_message = []\n");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(keymap.action(Context::Messages, &ch('y')), None);
        assert_eq!(
            keymap.key_hint_in(Context::Messages, Action::CopyMessage),
            "unbound"
        );
        // The rounds' own binding is another context's.
        assert_eq!(
            keymap.key_hint_in(Context::Rounds, Action::CopyMessage),
            "y"
        );
        let help = keymap.help(Context::Messages);
        assert!(help.contains(&(
            "unbound".to_string(),
            Action::CopyMessage.description(),
            "copy_message"
        )));
    }

    #[test]
    fn a_syntax_error_keeps_the_defaults() {
        let (keymap, problems) = user("[global]\nregenerate = \"f11\"\n[messages\n");
        assert_eq!(problems, ["F:3:10: unclosed table, expected `]`"]);
        assert_eq!(keymap, Keymap::defaults());
    }

    #[test]
    fn unknown_sections_and_actions() {
        assert_eq!(
            report("[global]\nregenerate = \"f11\"\n\n[foo]\nx = \"y\"\n"),
            ["F:4:2: unknown section 'foo' (sections: global, input, messages, settings, picker, workbench, workbench_list, workbench_form, rounds, experiments, compare)"]
        );
        assert_eq!(
            report("regenerate = \"f11\"\n"),
            ["F:1:1: 'regenerate' is outside a section (sections: global, input, messages, settings, picker, workbench, workbench_list, workbench_form, rounds, experiments, compare)"]
        );
        assert_eq!(
            report("global = \"f11\"\n"),
            ["F:1:1: 'global' must be a table [global], found string"]
        );
        assert_eq!(
            report("[global]\n  frobnicate = \"f11\"\n"),
            ["F:2:3: unknown action 'frobnicate'"]
        );
    }

    #[test]
    fn an_action_outside_its_sections() {
        let (keymap, problems) = user("[messages]\nsend = \"s\"\nselect_prev = \"p\"\n");
        assert_eq!(problems, ["F:2:1: 'send' cannot be bound in [messages]"]);
        assert_eq!(keymap.action(Context::Messages, &ch('s')), None);
        assert_eq!(
            keymap.action(Context::Messages, &ch('p')),
            Some(Action::SelectPrev)
        );
        assert_eq!(
            report("[picker]\nregenerate = \"ctrl+x\"\n"),
            ["F:2:1: 'regenerate' cannot be bound in [picker]"]
        );
    }

    #[test]
    fn bad_keys_and_values() {
        let (keymap, problems) = user("[global]\nexport = \"ctrl+\"\n");
        assert_eq!(
            problems,
            ["F:2:10: 'ctrl+' is not a key: no key after the modifiers"]
        );
        assert_eq!(
            keymap.action(Context::Input, &ctrl('e')),
            Some(Action::Export)
        );
        // One bad key in a list ignores the whole entry; each is reported.
        let (keymap, problems) = user("[messages]\ndelete_message = [\"x\", \"ctl+d\", 5]\n");
        assert_eq!(
            problems,
            [
                "F:2:24: 'ctl+d' is not a key: unknown modifier 'ctl' (modifiers: ctrl, alt, shift)",
                "F:2:33: expected a key or a list of keys for 'delete_message', found integer",
            ]
        );
        assert_eq!(
            keymap.action(Context::Messages, &ch('d')),
            Some(Action::DeleteMessage)
        );
        assert_eq!(keymap.action(Context::Messages, &ch('x')), None);
        assert_eq!(
            report("[global]\nexport = true\n"),
            ["F:2:10: expected a key or a list of keys for 'export', found boolean"]
        );
    }

    #[test]
    fn plain_keys_cannot_be_bound_where_they_type() {
        let (keymap, problems) = user("[input]\nsend = [\"ctrl+s\", \"x\"]\n");
        assert_eq!(
            problems,
            ["F:2:19: plain key 'x' cannot be bound in [input]"]
        );
        let enter = key(KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(keymap.action(Context::Input, &enter), Some(Action::Send));
        assert_eq!(
            report("[global]\nexport = \"space\"\n"),
            ["F:2:10: plain key 'space' cannot be bound in [global]"]
        );
        assert_eq!(
            report("[settings]\napply = \"A\"\n"),
            ["F:2:9: plain key 'A' cannot be bound in [settings]"]
        );
        // With a modifier they are fine.
        assert!(report("[input]\nsend = \"alt+s\"\n").is_empty());
    }

    #[test]
    fn the_earlier_binding_wins_a_conflict() {
        // The default first: export keeps its default Ctrl+E.
        let (keymap, problems) = user("[global]\nexport = \"ctrl+g\"\n");
        assert_eq!(
            problems,
            ["F:2:10: 'ctrl+g' is bound to both regenerate and export in [global]; keeping regenerate"]
        );
        assert_eq!(
            keymap.action(Context::Input, &ctrl('g')),
            Some(Action::Regenerate)
        );
        assert_eq!(
            keymap.action(Context::Input, &ctrl('e')),
            Some(Action::Export)
        );

        // Then the file's order.
        let (keymap, problems) =
            user("[messages]\nedit_message = \"x\"\ncopy_message = [\"y\", \"x\"]\n");
        assert_eq!(
            problems,
            ["F:3:22: 'x' is bound to both edit_message and copy_message in [messages]; keeping edit_message"]
        );
        assert_eq!(
            keymap.action(Context::Messages, &ch('x')),
            Some(Action::EditMessage)
        );
        assert_eq!(
            keymap.action(Context::Messages, &ch('y')),
            Some(Action::CopyMessage)
        );

        // A moved default frees its key.
        let (_, problems) = user("[global]\nmodels = \"f11\"\nexport = \"f3\"\n");
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn an_ignored_entry_can_displace_a_later_one() {
        // `regenerate` is not a key, so it keeps Ctrl+G, which export then
        // cannot have; export's default Ctrl+E then wins over sessions.
        let (keymap, problems) =
            user("[global]\nregenerate = \"ctrl+\"\nexport = \"ctrl+g\"\nsessions = \"ctrl+e\"\n");
        assert_eq!(
            problems,
            [
                "F:2:14: 'ctrl+' is not a key: no key after the modifiers",
                "F:3:10: 'ctrl+g' is bound to both regenerate and export in [global]; keeping regenerate",
                "F:4:12: 'ctrl+e' is bound to both export and sessions in [global]; keeping export",
            ]
        );
        assert_eq!(keymap, Keymap::defaults());
    }

    #[test]
    fn a_global_key_hidden_by_a_context_is_a_conflict() {
        let (keymap, problems) = user("[global]\nexport = [\"ctrl+x\", \"delete\"]\n");
        assert_eq!(
            problems,
            ["F:2:21: 'delete' is bound to both delete_message and export in [messages] (export is from [global]); keeping delete_message"]
        );
        assert_eq!(
            keymap.action(Context::Input, &ctrl('e')),
            Some(Action::Export)
        );
        assert_eq!(keymap.action(Context::Input, &ctrl('x')), None);

        // Both from the file: the earlier wins.
        let (keymap, problems) =
            user("[picker]\npick = [\"enter\", \"ctrl+b\"]\n[global]\nmodels = \"ctrl+b\"\n");
        assert_eq!(
            problems,
            ["F:4:10: 'ctrl+b' is bound to both pick and models in [picker] (models is from [global]); keeping pick"]
        );
        assert_eq!(
            keymap.action(Context::Picker, &ctrl('b')),
            Some(Action::Pick)
        );
        let (keymap, problems) =
            user("[global]\nmodels = \"ctrl+b\"\n[picker]\npick = [\"enter\", \"ctrl+b\"]\n");
        assert_eq!(
            problems,
            ["F:4:18: 'ctrl+b' is bound to both models and pick in [picker] (models is from [global]); keeping models"]
        );
        assert_eq!(
            keymap.action(Context::Picker, &ctrl('b')),
            Some(Action::Models)
        );

        // Restating the defaults' own Esc is fine, and so is a context key
        // over a default global one: that is how a context overrides it.
        assert!(report("[global]\nstop = [\"esc\", \"ctrl+x\"]\n").is_empty());
        let (keymap, problems) = user("[messages]\ncopy_message = \"ctrl+g\"\n");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            keymap.action(Context::Messages, &ctrl('g')),
            Some(Action::CopyMessage)
        );
        assert_eq!(
            keymap.action(Context::Input, &ctrl('g')),
            Some(Action::Regenerate)
        );
    }

    #[test]
    fn help_lists_every_action_of_the_context_with_its_keys() {
        let keymap = Keymap::defaults();
        for &context in Context::ALL {
            let help = keymap.help(context);
            let names: Vec<&str> = help.iter().map(|(_, _, name)| *name).collect();
            let expected: HashSet<&str> = Action::ALL
                .iter()
                .filter(|a| {
                    a.contexts().contains(&context) || a.contexts().contains(&Context::Global)
                })
                .map(|a| a.name())
                .collect();
            assert_eq!(names.len(), expected.len(), "{context}: {names:?}");
            assert_eq!(names.iter().copied().collect::<HashSet<_>>(), expected);
            assert_eq!(help, keymap.help(context), "stable");
        }
        let help = keymap.help(Context::Messages);
        let row = |name: &str| {
            help.iter()
                .find(|(_, _, n)| *n == name)
                .map(|(keys, description, _)| (keys.as_str(), *description))
                .unwrap()
        };
        assert_eq!(row("select_last"), ("End, G", "Select the last message"));
        assert_eq!(
            row("delete_message"),
            ("d, Del", "Delete the selected message")
        );
        assert_eq!(row("help"), ("?, F1", "Show the key bindings"));
        assert_eq!(row("regenerate"), ("Ctrl+G", "Regenerate the last reply"));
        // The context's own actions come first.
        assert_eq!(help[0].2, "quit_now");

        let input = keymap.help(Context::Input);
        assert_eq!(input[0], ("Enter".to_string(), "Send the message", "send"));
        assert_eq!(
            input[1],
            (
                "Alt+Enter, Ctrl+J".to_string(),
                "Insert a line break",
                "newline"
            )
        );
        // In the settings Esc closes, so nothing stops a reply there.
        let settings = keymap.help(Context::Settings);
        assert!(settings.contains(&("Esc".to_string(), "Close", "close")));
        assert!(settings.contains(&("unbound".to_string(), Action::Stop.description(), "stop")));
        assert_eq!(
            keymap.key_hint_in(Context::Settings, Action::Stop),
            "unbound"
        );
        assert_eq!(keymap.key_hint_in(Context::Messages, Action::Stop), "Esc");
        assert_eq!(keymap.key_hint_in(Context::Picker, Action::Help), "?");
        assert_eq!(keymap.key_hint_in(Context::Input, Action::Help), "F1");
    }
}
