//! loam-page-store's integration tests, one binary: the page store against a reference model
//! (`page_store_model`), and cache directories that fill or fail on real file systems (`disks`). nextest
//! runs every test in a process of its own.

mod disks;
mod page_store_model;
