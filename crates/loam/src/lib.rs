//! The `loam` command: `loam local` (coordinator and workers in one process on the embedded store) and
//! the CLI that talks to a running cluster (`loam mount …`, `loam nodes`, `loam fs …`).

pub mod bench;
pub mod cli;
pub mod local;
pub mod logging;
