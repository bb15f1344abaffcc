//! Embeddings: hub `EmbeddingsRequest` → `batchEmbedContents`, and its
//! response back.

use super::error::{bad_upstream, gemini_error, invalid, unsupported};
use super::model_resource;
use super::request::set_once;
use super::response::count;
use crate::error::ApiError;
use crate::wire::hub::{EmbeddingsRequest, EmbeddingsResponse, ResponseContext};
use serde_json::{json, Map, Value};

pub(super) fn encode_embeddings(req: &EmbeddingsRequest) -> Result<Value, ApiError> {
    if req.inputs.is_empty() {
        return Err(invalid(
            "input",
            "Invalid 'input': Gemini needs at least one input to embed.",
        ));
    }
    let mut task_type: Option<Value> = None;
    let mut title: Option<Value> = None;
    for (key, value) in &req.extra {
        match key.as_str() {
            // Advisory end-user id; Gemini has no counterpart (see module docs).
            "user" => {}
            "task_type" | "taskType" => {
                if !value.is_string() {
                    return Err(invalid(
                        key,
                        format!("Invalid '{key}': expected a Gemini task type such as 'RETRIEVAL_QUERY'."),
                    ));
                }
                set_once(&mut task_type, key, value.clone())?;
            }
            "title" => {
                if !value.is_string() {
                    return Err(invalid(key, "Invalid 'title': expected a string."));
                }
                title = Some(value.clone());
            }
            other => {
                return Err(unsupported(
                    other,
                    format!("Unsupported parameter '{other}': it cannot be translated for this model's provider (Gemini) and would otherwise be dropped. Remove '{other}' for this model."),
                ))
            }
        }
    }
    let model = model_resource(&req.model);
    let requests: Vec<Value> = req
        .inputs
        .iter()
        .map(|text| {
            let mut r = Map::new();
            r.insert("model".into(), Value::String(model.clone()));
            r.insert("content".into(), json!({"parts": [{ "text": text }]}));
            if let Some(d) = req.dimensions {
                r.insert("outputDimensionality".into(), json!(d));
            }
            if let Some(t) = &task_type {
                r.insert("taskType".into(), t.clone());
            }
            if let Some(t) = &title {
                r.insert("title".into(), t.clone());
            }
            Value::Object(r)
        })
        .collect();
    Ok(json!({ "requests": requests }))
}

pub(super) fn decode_embeddings(
    body: &[u8],
    ctx: &ResponseContext,
) -> Result<EmbeddingsResponse, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        bad_upstream(format!(
            "Gemini returned an embeddings response that is not valid JSON: {e}."
        ))
    })?;
    if let Some(err) = value.get("error") {
        return Err(gemini_error(502, err)
            .unwrap_or_else(|| bad_upstream("Gemini reported an error without a message.")));
    }
    let Some(embeddings) = value.get("embeddings").and_then(Value::as_array) else {
        return Err(bad_upstream(
            "Gemini returned an embeddings response without an 'embeddings' array.",
        ));
    };
    let mut vectors = Vec::with_capacity(embeddings.len());
    let mut stat_tokens: Option<u64> = None;
    for (i, e) in embeddings.iter().enumerate() {
        let values = e.get("values").and_then(Value::as_array).ok_or_else(|| {
            bad_upstream(format!("Gemini returned embeddings[{i}] without 'values'."))
        })?;
        let vector = values
            .iter()
            .map(Value::as_f64)
            .collect::<Option<Vec<f64>>>()
            .ok_or_else(|| {
                bad_upstream(format!(
                    "Gemini returned embeddings[{i}].values with a non-number."
                ))
            })?;
        vectors.push(vector);
        if let Some(n) = e
            .get("statistics")
            .and_then(|s| s.get("tokenCount"))
            .and_then(Value::as_f64)
        {
            // Vertex reports the count as a float; counts are whole.
            let n = n.max(0.0).round() as u64;
            stat_tokens = Some(stat_tokens.unwrap_or(0).saturating_add(n));
        }
    }
    let meta = value.get("usageMetadata");
    let prompt_tokens = meta
        .and_then(|m| count(m, "promptTokenCount").or_else(|| count(m, "totalTokenCount")))
        .or(stat_tokens)
        .unwrap_or(0);
    Ok(EmbeddingsResponse {
        model: ctx.model.clone(),
        vectors,
        prompt_tokens,
    })
}
