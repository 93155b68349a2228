//! Addressable priority queue and delay queue over an index-linked arena.
//!
//! [`arena`] holds the slot arena both this module and [`crate::wheel`]
//! build on: index links, generation-checked keys, fixed (no allocator) or
//! growable storage.

pub mod arena;
