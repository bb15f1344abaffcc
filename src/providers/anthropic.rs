//! Anthropic Messages API edge (being written).
