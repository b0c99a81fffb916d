//! loam-core's integration tests, one binary: the reference vectors beside this file, checked against
//! the code (`hash_ring`: Alluxio's consistent-hash ring vectors in `hash-ring/`).

mod hash_ring;
