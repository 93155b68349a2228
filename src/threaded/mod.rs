//! Thread-owning adapters: everything here starts, parks and joins threads of
//! its own, on top of the `no_std` cores. Every file under this folder may
//! name `std`; outside it only the `std_*.rs` files do. Each adapter is
//! re-exported from the module whose structure it runs, so public paths
//! stay short (`latchfree::ring::Disruptor`, `latchfree::wheel::TimerService`).

cfg_std! {
    pub(crate) mod disruptor;
    pub(crate) mod timer_service;
}
