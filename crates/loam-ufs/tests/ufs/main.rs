//! loam-ufs's integration tests, one binary: `OpendalUfs`'s behaviour on both backends (`behaviour`),
//! `FaultyUfs` (`faulty`) and the `UfsRegistry` (`registry`). nextest runs every test in a process of its own.

mod behaviour;
mod faulty;
mod registry;
