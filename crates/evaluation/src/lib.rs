//! Access evaluation.
