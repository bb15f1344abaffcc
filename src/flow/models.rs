//! `/v1/models` from the compiled gateway: the models that have a usable
//! target and that the caller may use (`allowed`), in config order.

use crate::config::{Gateway, Model};
use crate::error::ApiError;
use crate::wire::openai::{self, ModelCard};

fn listed(gw: &Gateway, m: &Model, allowed: &dyn Fn(&str) -> bool) -> bool {
    gw.is_available(m) && allowed(&m.name)
}

/// Owned by the provider of its first target.
fn card<'a>(gw: &'a Gateway, m: &'a Model) -> ModelCard<'a> {
    let owned_by = m
        .targets
        .first()
        .map(|t| gw.providers[t.provider].name.as_str())
        .unwrap_or("llm-gateway");
    ModelCard {
        id: &m.name,
        owned_by,
    }
}

/// The models the caller may list, in config order.
pub fn cards<'a>(gw: &'a Gateway, allowed: &dyn Fn(&str) -> bool) -> Vec<ModelCard<'a>> {
    gw.models
        .iter()
        .filter(|m| listed(gw, m, allowed))
        .map(|m| card(gw, m))
        .collect()
}

/// `GET /v1/models`.
pub fn list(gw: &Gateway, allowed: &dyn Fn(&str) -> bool) -> Vec<u8> {
    openai::models_list(&cards(gw, allowed))
}

/// `GET /v1/models/{id}`.
pub fn retrieve(
    gw: &Gateway,
    id: &str,
    allowed: &dyn Fn(&str) -> bool,
) -> Result<Vec<u8>, ApiError> {
    match gw.model(id).filter(|m| listed(gw, m, allowed)) {
        Some(m) => Ok(openai::model_object(card(gw, m))),
        None => Err(not_found(gw, id, allowed)),
    }
}

/// 404 for a model the gateway does not serve to this caller, naming those
/// it does.
pub fn not_found(gw: &Gateway, model: &str, allowed: &dyn Fn(&str) -> bool) -> ApiError {
    let names: Vec<&str> = gw
        .models
        .iter()
        .filter(|m| listed(gw, m, allowed))
        .map(|m| m.name.as_str())
        .collect();
    openai::unknown_model(model, &names)
}
