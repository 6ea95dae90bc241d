//! The simulator's models, described as Ollama describes them: their details, the layers a
//! pull downloads, and how `/api/tags`, `/api/ps` and `/api/show` list them.

use chrono::{DateTime, SecondsFormat, Utc};
use foreman_types::model_key;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Context length reported by `/api/ps` and `/api/show`.
const CONTEXT_LENGTH: u64 = 4096;

/// One model, installed or in the pretend registry, with the details Ollama would read from
/// its GGUF file, made up from its name so that they look plausible (`qwen2.5:0.5b` has
/// 0.5 B parameters).
#[derive(Debug, Clone)]
pub(super) struct Model {
    /// The name in Ollama's normal form (`llama3.2:latest`).
    pub(super) key: String,
    /// Whether it is an embedding model (its name contains `embed`).
    pub(super) embedding: bool,
    family: String,
    parameter_count: u64,
    size: u64,
    /// The manifest's digest, as `/api/tags` shows it (64 hex digits, no `sha256:`).
    digest: String,
    /// The blobs its manifest lists: the weights first, the config last, as a pull
    /// downloads them.
    pub(super) layers: Vec<Layer>,
    /// When it was pulled or created (for the models installed at start, the start).
    pub(super) modified_at: String,
}

/// One blob of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Layer {
    /// `sha256:` and 64 hex digits.
    pub(super) digest: String,
    /// Bytes.
    pub(super) size: u64,
}

impl Layer {
    /// A layer whose digest is the hash of `content`, of `size` bytes.
    pub(super) fn of(content: &str, size: u64) -> Self {
        Self {
            digest: format!("sha256:{}", hex::encode(Sha256::digest(content.as_bytes()))),
            size,
        }
    }

    /// The 12 hex digits Ollama's progress lines name a layer by (`pulling dde5aa3fc5ff`).
    pub(super) fn short(&self) -> &str {
        self.digest
            .strip_prefix("sha256:")
            .and_then(|hex| hex.get(..12))
            .unwrap_or(&self.digest)
    }
}

impl Model {
    pub(super) fn new(name: &str) -> Self {
        let key = model_key(name);
        let (path, tag) = key.rsplit_once(':').unwrap_or((key.as_str(), "latest"));
        let base = path.rsplit('/').next().unwrap_or(path);
        let embedding = key.contains("embed");
        let family = if embedding {
            "nomic-bert".to_owned()
        } else {
            let letters: String = base
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            if letters.is_empty() {
                "llama".to_owned()
            } else {
                letters
            }
        };
        let parameter_count = parameters_from_tag(tag).unwrap_or(if embedding {
            137_000_000
        } else {
            3_210_000_000
        });
        // About 5 bits per weight for Q4_K_M, 16 for F16.
        let size = if embedding {
            parameter_count * 2
        } else {
            parameter_count * 5 / 8
        };
        // The small layers a library model carries besides its weights, with sizes that
        // vary a little from model to model.
        let spread = |part: &str, base: u64, range: u64| {
            let hash = Sha256::digest(format!("{part}:{key}").as_bytes());
            base + u64::from(u16::from_le_bytes([hash[0], hash[1]])) % range
        };
        let layers = vec![
            Layer::of(&format!("weights:{key}"), size),
            Layer::of(&format!("template:{key}"), spread("template", 1_200, 600)),
            Layer::of(&format!("license:{key}"), spread("license", 6_000, 6_000)),
            Layer::of(&format!("params:{key}"), spread("params", 60, 100)),
            Layer::of(&format!("config:{key}"), spread("config", 400, 200)),
        ];
        let mut model = Self {
            key,
            embedding,
            family,
            parameter_count,
            size,
            digest: String::new(),
            layers,
            modified_at: timestamp(Utc::now()),
        };
        model.digest = model.manifest_digest();
        model
    }

    /// The same model under another name, as `/api/copy` makes it: the same manifest.
    pub(super) fn renamed(&self, name: &str) -> Self {
        Self {
            key: model_key(name),
            modified_at: timestamp(Utc::now()),
            ..self.clone()
        }
    }

    /// A model made from this one by `/api/create`: its layers, then `extra` (a system
    /// prompt, a template, parameters) in place of a config, and a config of its own.
    pub(super) fn derived(&self, name: &str, extra: Vec<Layer>) -> Self {
        let key = model_key(name);
        let mut layers: Vec<Layer> = self.layers[..self.layers.len().saturating_sub(1)].to_vec();
        layers.extend(extra);
        layers.push(Layer::of(&format!("config:{key}"), 480));
        let mut model = Self {
            key,
            layers,
            modified_at: timestamp(Utc::now()),
            ..self.clone()
        };
        model.digest = model.manifest_digest();
        model
    }

    /// A model made by `/api/create` from uploaded GGUF blobs: details from its name,
    /// weights from the blobs.
    pub(super) fn from_blobs(name: &str, blobs: Vec<Layer>) -> Self {
        let mut model = Self::new(name);
        let config = model.layers.pop();
        model.size = blobs.iter().map(|blob| blob.size).sum();
        model.layers = blobs;
        model.layers.extend(config);
        model.digest = model.manifest_digest();
        model
    }

    /// The digest of the weights' blob.
    fn weights(&self) -> &str {
        self.layers
            .first()
            .map_or(&self.digest, |layer| &layer.digest)
    }

    /// A manifest's digest is the hash of what it lists.
    fn manifest_digest(&self) -> String {
        let mut hasher = Sha256::new();
        for layer in &self.layers {
            hasher.update(layer.digest.as_bytes());
        }
        hex::encode(hasher.finalize())
    }

    fn parameter_size(&self) -> String {
        let count = self.parameter_count as f64;
        if count >= 1e9 {
            format!("{:.1}B", count / 1e9)
        } else {
            format!("{:.0}M", count / 1e6)
        }
    }

    fn quantization_level(&self) -> &'static str {
        if self.embedding {
            "F16"
        } else {
            "Q4_K_M"
        }
    }

    fn details(&self) -> Value {
        json!({
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size(),
            "quantization_level": self.quantization_level(),
        })
    }

    /// The model's entry in `/api/tags`.
    pub(super) fn tag_entry(&self) -> Value {
        json!({
            "name": self.key,
            "model": self.key,
            "modified_at": self.modified_at,
            "size": self.size,
            "digest": self.digest,
            "details": self.details(),
        })
    }

    /// The model's entry in `/api/ps`, resident until `expires_at`.
    pub(super) fn ps_entry(&self, expires_at: DateTime<Utc>) -> Value {
        json!({
            "name": self.key,
            "model": self.key,
            "size": self.size,
            "digest": self.digest,
            "details": self.details(),
            "expires_at": timestamp(expires_at),
            "size_vram": self.size,
            "context_length": CONTEXT_LENGTH,
        })
    }

    /// The answer to `/api/show`.
    pub(super) fn show_body(&self) -> Value {
        let family = &self.family;
        let (template, parameters, capabilities, embedding_length) = if self.embedding {
            (
                "{{ .Prompt }}",
                "num_ctx                        8192",
                "embedding",
                768,
            )
        } else {
            (
                "{{ if .System }}<|system|>{{ .System }}<|end|>{{ end }}<|user|>{{ .Prompt }}<|end|><|assistant|>",
                "stop                           \"<|end|>\"",
                "completion",
                3072,
            )
        };
        let modelfile = format!(
            "# Modelfile generated by \"ollama show\"\n# To build a new Modelfile based on this, \
             replace FROM with:\n# FROM {key}\n\nFROM /sim/models/blobs/sha256-{digest}\n\
             TEMPLATE \"\"\"{template}\"\"\"\nPARAMETER {parameters}\n",
            key = self.key,
            digest = self.weights().trim_start_matches("sha256:"),
        );
        json!({
            "license": "Simulated model; no weights, no license.",
            "modelfile": modelfile,
            "parameters": parameters,
            "template": template,
            "details": self.details(),
            "model_info": {
                "general.architecture": family,
                "general.basename": self.key.split(':').next().unwrap_or(&self.key),
                "general.file_type": if self.embedding { 1 } else { 15 },
                "general.parameter_count": self.parameter_count,
                "general.quantization_version": 2,
                format!("{family}.context_length"): CONTEXT_LENGTH,
                format!("{family}.embedding_length"): embedding_length,
            },
            "capabilities": [capabilities],
            "modified_at": self.modified_at,
        })
    }
}

/// Parameters from a size tag such as `0.5b`, `7b` or `270m-instruct`.
fn parameters_from_tag(tag: &str) -> Option<u64> {
    let size = tag.split('-').next()?.to_ascii_lowercase();
    let (number, scale) = if let Some(number) = size.strip_suffix('b') {
        (number, 1e9)
    } else if let Some(number) = size.strip_suffix('m') {
        (number, 1e6)
    } else {
        return None;
    };
    let count = number.parse::<f64>().ok()? * scale;
    (count.is_finite() && count >= 1.0).then_some(count as u64)
}

/// A time as Ollama writes it: RFC 3339 with nanoseconds.
pub(super) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}
