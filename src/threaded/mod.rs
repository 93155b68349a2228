//! Thread-owning adapters: everything here starts, parks and joins threads of
//! its own, on top of the `no_std` cores. The only folder (with the
//! `std_*.rs` files) whose code may name `std`.

pub(crate) mod disruptor;
