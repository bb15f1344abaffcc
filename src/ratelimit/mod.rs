//! Rate-limit algorithms over shared data (being written).
