// TEMPORARY placeholder until the real parser lands (helper is writing it).
use std::path::Path;
#[derive(Debug, Clone, serde::Serialize)]
pub struct GgufSummary {
    pub version: u32,
    pub tensor_count: u64,
    pub file_size: u64,
    pub architecture: Option<String>,
    pub name: Option<String>,
    pub file_type: Option<u32>,
    pub quantization: Option<String>,
    pub parameter_count: u64,
    pub context_length: Option<u64>,
    pub chat_template: Option<String>,
    pub metadata_count: u64,
}
#[derive(Debug, thiserror::Error)]
#[error("placeholder")]
pub struct GgufError;
pub fn read_summary(path: &Path) -> Result<GgufSummary, GgufError> {
    let file_size = std::fs::metadata(path).map_err(|_| GgufError)?.len();
    Ok(GgufSummary {
        version: 3,
        tensor_count: 0,
        file_size,
        architecture: None,
        name: None,
        file_type: None,
        quantization: None,
        parameter_count: 0,
        context_length: None,
        chat_template: Some(String::new()),
        metadata_count: 0,
    })
}
