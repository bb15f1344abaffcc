//! Gemini generateContent edge (being written).
