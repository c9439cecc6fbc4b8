//! A popup list to choose from (installed models and remote backends' models,
//! saved sessions), with an inline name editor for renaming and a two-step
//! delete.

use ratatui_textarea::TextArea;

use crate::engine::remote::RemoteModel;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickerKind {
    Models,
    Sessions,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickerItem {
    /// What the item stands for: a model path or a session name.
    pub key: String,
    pub label: String,
    pub detail: String,
    /// Marks the model or session in use.
    pub current: bool,
    /// Why the item cannot be opened (a corrupt session file, a backend
    /// that does not answer), if so.
    pub problem: Option<String>,
    /// A model on a remote backend rather than a local file.
    pub remote: Option<RemoteModel>,
}

pub struct Picker {
    pub kind: PickerKind,
    pub items: Vec<PickerItem>,
    pub selected: usize,
    /// The new name being typed, while renaming the selected item.
    pub renaming: Option<TextArea<'static>>,
    /// The first delete press arms, the second deletes.
    pub delete_armed: bool,
    /// Until the list arrives from disk.
    pub loading: bool,
    /// The model picked is compared with the chat's, not loaded instead.
    pub for_compare: bool,
}

impl Picker {
    pub fn new(kind: PickerKind) -> Self {
        Self {
            kind,
            items: Vec::new(),
            selected: 0,
            renaming: None,
            delete_armed: false,
            loading: true,
            for_compare: false,
        }
    }

    pub fn title(&self) -> &'static str {
        match self.kind {
            PickerKind::Models if self.for_compare => "Compare the chat's model with…",
            PickerKind::Models => "Models",
            PickerKind::Sessions => "Sessions",
        }
    }

    pub fn set_items(&mut self, items: Vec<PickerItem>) {
        self.loading = false;
        // Start on the item in use, so Enter right away changes nothing.
        self.selected = items.iter().position(|i| i.current).unwrap_or(0);
        self.items = items;
    }

    /// A backend has answered (or not): its models replace what stood for
    /// it while it was asked. The selection stays on the item it was on.
    pub fn replace_backend(&mut self, backend: &str, items: Vec<PickerItem>) {
        let selected_key = self.selected_item().map(|i| i.key.clone());
        let of_backend =
            |item: &PickerItem| item.remote.as_ref().is_some_and(|r| r.backend == backend);
        let at = self.items.iter().position(of_backend);
        self.items.retain(|item| !of_backend(item));
        let at = at.unwrap_or(self.items.len()).min(self.items.len());
        self.items.splice(at..at, items);
        // On the backend's stand-in, the selection moves to its first model.
        self.selected = selected_key
            .and_then(|key| self.items.iter().position(|i| i.key == key))
            .unwrap_or(at)
            .min(self.items.len().saturating_sub(1));
    }

    pub fn selected_item(&self) -> Option<&PickerItem> {
        self.items.get(self.selected)
    }

    pub fn move_selection(&mut self, down: bool) {
        self.delete_armed = false;
        if self.items.is_empty() {
            return;
        }
        let last = self.items.len() - 1;
        self.selected = if down {
            (self.selected + 1).min(last)
        } else {
            self.selected.saturating_sub(1)
        };
    }
}
