//! Disruptor-style ring buffers (in progress).
