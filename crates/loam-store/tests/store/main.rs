//! loam-store's integration tests, one binary: each backend (the embedded store, a real etcd started per
//! test by `loam_testsupport::EtcdServer`) against every behaviour of `loam_store::testkit` plus what only
//! it promises, and worker membership on the embedded store. nextest runs every test in a process of its own.

/// Stamps one test per `loam_store::testkit` behaviour with `$stamp!`, which each backend's module
/// defines (how to get a store): one list, so every backend runs every behaviour.
macro_rules! every_behaviour {
    ($stamp:ident) => {
        $stamp!(
            get_put_revision,
            create_and_mod_revision,
            delete,
            delete_prefix,
            list_order_and_paging,
            prefix_boundaries,
            cas_absent,
            cas_mod_revision,
            lease_expiry_deletes_keys,
            keep_alive_extends,
            keep_alive_after_expiry,
            revoke_deletes_keys,
            watch_in_order,
            watch_replays_from_revision,
        );
    };
}

mod embedded;
mod etcd;
mod etcd_tls;
mod membership;
mod timed;
