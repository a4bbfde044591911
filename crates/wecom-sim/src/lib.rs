//! WeCom simulator.
