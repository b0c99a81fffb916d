//! loam-page-store's integration tests, one binary: the page store against a reference model
//! (`page_store_model`). nextest runs every test in a process of its own.

mod page_store_model;
