//! Thread-owning adapters: every file under this folder may name `std`;
//! nothing outside it (and the `std_*.rs` files) does. Each adapter is
//! re-exported from the module whose structure it runs, so public paths
//! stay short (`latchfree::wheel::TimerService`).

cfg_std! {
    pub(crate) mod timer_service;
}
