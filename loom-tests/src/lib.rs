//! Loom models of latchfree's atomic protocols live in `tests/`, one file per
//! structure. They compile to nothing unless built with
//! `RUSTFLAGS="--cfg latchfree_loom"`; see the README for the command.
