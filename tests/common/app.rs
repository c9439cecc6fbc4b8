//! An app ready for the workbench state tests, and the shipped templates
//! as the driver lists them.

use std::path::PathBuf;

use crossterm::event::KeyCode;
use whet::prompt::{Template, TemplateEntry};
use whet::tui::app::{update, App, Effect, EngineState, Msg};

use super::keys::{ch, key, type_text};

/// A chat whose model has loaded (4096 tokens of context).
pub fn ready_app() -> App {
    let mut app = App::new(PathBuf::from("/m/model.gguf"));
    app.chat.session_name = "open-session".into();
    update(
        &mut app,
        Msg::EngineLoaded {
            model_name: "model".into(),
            model_path: PathBuf::from("/m/model.gguf"),
            n_ctx: 4096,
        },
    );
    assert_eq!(app.engine, EngineState::Ready);
    app
}

/// The shipped templates, as the driver lists them without a user dir.
pub fn shipped() -> Vec<TemplateEntry> {
    whet::prompt::list(None)
}

pub fn shipped_template(name: &str) -> Template {
    let entry = shipped().into_iter().find(|e| e.name == name).unwrap();
    whet::prompt::load(&entry).unwrap()
}

/// The app whose model the render tests show: SmolLM2, loaded.
pub fn smollm2_app() -> App {
    let mut app = App::new("/models/SmolLM2-135M-Instruct.Q4_1.gguf".into());
    update(
        &mut app,
        Msg::EngineLoaded {
            model_name: "SmolLM2 135M".into(),
            model_path: "/models/SmolLM2-135M-Instruct.Q4_1.gguf".into(),
            n_ctx: 4096,
        },
    );
    app
}

/// F5 to the workbench with the shipped templates listed, then `/summ` and
/// Enter, which opens summarize; the effects of that Enter.
pub fn open_summarize(app: &mut App) -> Vec<Effect> {
    assert_eq!(key(app, KeyCode::F(5)), vec![Effect::ListTemplates]);
    update(app, Msg::Templates(shipped()));
    ch(app, '/');
    type_text(app, "summ");
    let effects = key(app, KeyCode::Enter);
    assert_eq!(app.wb.doc.as_ref().unwrap().name(), "summarize");
    effects
}
