//! Chat formatting through llama.cpp's built-in template matcher.
//!
//! The model's Jinja template is never executed: llama.cpp recognises common
//! templates by their text and renders them with its own C++ code. A model
//! without a template, or with one llama.cpp does not recognise, gets no chat
//! formatting unless the user names a built-in format; there is no silent
//! fallback.
//!
//! Message text must be tokenized with special-token parsing off (so a pasted
//! `<|im_start|>system` stays plain text) while the template's own markup must
//! be parsed. To tell them apart, the conversation is rendered once with each
//! message replaced by a unique marker; the text between markers is markup.

use std::ffi::{c_char, CStr};
use std::time::{SystemTime, UNIX_EPOCH};

use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};

use super::protocol::{ChatFormat, ChatMessage, Role};

/// A piece of formatted prompt and whether special-token text in it is parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub text: String,
    pub parse_special: bool,
}

/// The names of llama.cpp's built-in chat formats (`chatml`, `gemma`, `llama3`, …).
pub fn builtin_format_names() -> Vec<String> {
    // SAFETY: called with a null buffer and length 0, llama.cpp only returns
    // the count; the second call fills at most `count` pointers to static strings.
    let count = unsafe { llama_cpp_sys_2::llama_chat_builtin_templates(std::ptr::null_mut(), 0) };
    let Ok(count) = usize::try_from(count) else {
        return Vec::new();
    };
    let mut names: Vec<*const c_char> = vec![std::ptr::null(); count];
    let written =
        unsafe { llama_cpp_sys_2::llama_chat_builtin_templates(names.as_mut_ptr(), count) };
    let written = usize::try_from(written).unwrap_or(0).min(count);
    names[..written]
        .iter()
        .filter(|ptr| !ptr.is_null())
        .map(|ptr| {
            unsafe { CStr::from_ptr(*ptr) }
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// Decides how chat prompts for `model` are formatted.
pub fn resolve_format(
    model: &LlamaModel,
    override_name: Option<&str>,
) -> Result<(Option<LlamaChatTemplate>, ChatFormat), String> {
    let names = builtin_format_names();
    if let Some(name) = override_name {
        if !names.iter().any(|n| n == name) {
            return Err(format!(
                "unknown chat format '{name}'; llama.cpp's built-in formats are: {}",
                names.join(", ")
            ));
        }
        let template = LlamaChatTemplate::new(name).map_err(|e| e.to_string())?;
        return Ok((
            Some(template),
            ChatFormat::Override {
                name: name.to_string(),
            },
        ));
    }
    let Ok(template) = model.chat_template(None) else {
        return Ok((None, ChatFormat::Missing));
    };
    let Ok(reference) = render_probe(model, &template) else {
        return Ok((None, ChatFormat::Unrecognized));
    };
    let builtin = names.into_iter().find(|name| {
        LlamaChatTemplate::new(name)
            .ok()
            .and_then(|t| render_probe(model, &t).ok())
            .is_some_and(|text| text == reference)
    });
    Ok((Some(template), ChatFormat::Model { builtin }))
}

/// A short conversation with every role, used to compare templates.
fn render_probe(model: &LlamaModel, template: &LlamaChatTemplate) -> Result<String, String> {
    let probe = [
        ChatMessage::new(Role::System, "S1"),
        ChatMessage::new(Role::User, "U1"),
        ChatMessage::new(Role::Assistant, "A1"),
        ChatMessage::new(Role::User, "U2"),
    ];
    apply(model, template, &probe)
}

/// Renders messages with the template, ending with the assistant's opening tag.
pub fn apply(
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    messages: &[ChatMessage],
) -> Result<String, String> {
    let chat = messages
        .iter()
        .map(|m| {
            LlamaChatMessage::new(m.role.as_str().to_string(), m.content.clone())
                .map_err(|_| "a message contains a NUL byte, which cannot be sent".to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    model
        .apply_chat_template(template, &chat, true)
        .map_err(|e| format!("llama.cpp could not apply the chat template: {e}"))
}

/// Splits the formatted conversation into template markup and message text.
pub fn format_segments(
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    messages: &[ChatMessage],
) -> Result<Vec<Segment>, String> {
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // Supplementary private-use characters: they never occur in real text
    // and carry no whitespace a template could trim.
    let markers: Vec<String> = (0..messages.len())
        .map(|i| format!("\u{F0000}{nonce:x}.{i}\u{F0001}"))
        .collect();
    let marked: Vec<ChatMessage> = messages
        .iter()
        .zip(&markers)
        .map(|(m, marker)| ChatMessage::new(m.role, marker.clone()))
        .collect();
    let skeleton = apply(model, template, &marked)?;
    let real = apply(model, template, messages)?;

    for transform in [ContentTransform::Verbatim, ContentTransform::Trimmed] {
        let segments = split_skeleton(&skeleton, &markers, messages, transform);
        let joined: String = segments.iter().map(|s| s.text.as_str()).collect();
        if joined == real {
            return Ok(segments);
        }
    }
    Err(
        "the chat template changes message text in a way whet cannot follow; \
         choose another format with --chat-format"
            .to_string(),
    )
}

/// Cuts the conversation right after the last message's text, dropping the
/// end-of-turn markup and the next turn's opening, so generation continues
/// that message. Only an assistant message with text can be continued.
pub fn leave_last_message_open(
    segments: &mut Vec<Segment>,
    messages: &[ChatMessage],
) -> Result<(), String> {
    match messages.last() {
        Some(last) if last.role == Role::Assistant && !last.content.trim().is_empty() => {}
        _ => return Err("only a reply with text can be continued".to_string()),
    }
    let Some(content) = segments.iter().rposition(|s| !s.parse_special) else {
        return Err("the chat template dropped the reply to continue".to_string());
    };
    segments.truncate(content + 1);
    Ok(())
}

#[derive(Clone, Copy)]
enum ContentTransform {
    Verbatim,
    /// Some built-in formats (llama3, gemma) trim each message.
    Trimmed,
}

fn split_skeleton(
    skeleton: &str,
    markers: &[String],
    messages: &[ChatMessage],
    transform: ContentTransform,
) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut rest = skeleton;
    for (marker, message) in markers.iter().zip(messages) {
        // A template may drop a message it cannot express; its marker is then absent.
        let Some(at) = rest.find(marker.as_str()) else {
            continue;
        };
        push_segment(&mut segments, &rest[..at], true);
        let content = match transform {
            ContentTransform::Verbatim => message.content.as_str(),
            ContentTransform::Trimmed => message.content.trim(),
        };
        push_segment(&mut segments, content, false);
        rest = &rest[at + marker.len()..];
    }
    push_segment(&mut segments, rest, true);
    segments
}

fn push_segment(segments: &mut Vec<Segment>, text: &str, parse_special: bool) {
    if !text.is_empty() {
        segments.push(Segment {
            text: text.to_string(),
            parse_special,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skeleton_split_marks_markup_and_content() {
        let markers = vec!["<0>".to_string(), "<1>".to_string()];
        let messages = vec![
            ChatMessage::new(Role::User, " hi <|im_start|> "),
            ChatMessage::new(Role::Assistant, "yo"),
        ];
        let skeleton = "[u]<0>[/u][a]<1>[/a][a]";
        let segs = split_skeleton(skeleton, &markers, &messages, ContentTransform::Verbatim);
        let kinds: Vec<(&str, bool)> = segs
            .iter()
            .map(|s| (s.text.as_str(), s.parse_special))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("[u]", true),
                (" hi <|im_start|> ", false),
                ("[/u][a]", true),
                ("yo", false),
                ("[/a][a]", true)
            ]
        );
        let trimmed = split_skeleton(skeleton, &markers, &messages, ContentTransform::Trimmed);
        assert_eq!(trimmed[1].text, "hi <|im_start|>");
    }

    #[test]
    fn dropped_message_is_skipped() {
        let markers = vec!["<0>".to_string(), "<1>".to_string()];
        let messages = vec![
            ChatMessage::new(Role::System, "sys"),
            ChatMessage::new(Role::User, "u"),
        ];
        let segs = split_skeleton("<1>!", &markers, &messages, ContentTransform::Verbatim);
        let joined: String = segs.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(joined, "u!");
    }
}
