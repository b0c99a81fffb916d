//! Exact paths through OpenDAL: a key is used as given, whitespace and all.
//!
//! OpenDAL's `Operator` passes every path through `normalize_path`, which trims leading and trailing
//! whitespace (and collapses `//`), with no way to turn it off: `" report"` and `"report "` became
//! `"report"`, so a PUT of one overwrote the other and a DELETE of one deleted the other, on fs and S3
//! alike. The `Operator` is the only public way to build OpenDAL's readers, writers and listers, so we
//! keep it and carry the exact path through it:
//!
//! - [`arm`] wraps a relative path in a head mark and, for a file path (not ending in `/`), a tail mark,
//!   so that the path no longer starts or ends with whitespace (a directory path ends in `/`, which the
//!   trim leaves alone). Every path `OpendalUfs` hands to its operator is armed.
//! - [`ExactPaths`], the outermost layer, receives the normalised armed path, which is the armed path
//!   unchanged, and removes the marks before any other layer or the service sees it.
//!
//! `//` never reaches OpenDAL: `UfsUri` has no empty components, so the collapse changes nothing. The
//! layer refuses a path without its marks (`Unexpected`) rather than guess: a path that was not armed is a
//! bug in this crate, and stripping a character of it would act on another file. Paths that OpenDAL makes
//! itself (the entries of a recursive delete, which the simulate layer under this one expands) never
//! pass through this layer. Listed entries come back unarmed, as the service names them.

use opendal::raw::*;
use opendal::{Capability, Error, ErrorKind, OperationContext, Result};
use std::sync::Arc;

/// Put before every armed path.
const HEAD: char = '|';
/// Put after every armed file path (one that does not end in `/`).
const TAIL: char = '|';

/// `rel` (a path relative to the operator's root: `a/b`, `a/b/`, `/` for the root) armed against
/// OpenDAL's trimming.
pub fn arm(rel: &str) -> String {
    if rel.ends_with('/') { format!("{HEAD}{rel}") } else { format!("{HEAD}{rel}{TAIL}") }
}

/// The path that `arm` armed (after OpenDAL normalised it, which leaves an armed path unchanged).
fn disarm(path: &str) -> Result<&str> {
    let inner = path.strip_prefix(HEAD).and_then(|p| if p.ends_with('/') { Some(p) } else { p.strip_suffix(TAIL) });
    inner.ok_or_else(|| {
        Error::new(ErrorKind::Unexpected, "loam-ufs: a path reached OpenDAL without its exact-path marks")
            .with_context("path", path)
    })
}

/// The layer that removes the marks of armed paths (see the module header). Add it last, so that it
/// is the outermost.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExactPaths;

impl Layer for ExactPaths {
    fn apply_service(&self, srv: Servicer) -> Servicer {
        Arc::new(ExactService { inner: srv })
    }
}

#[derive(Debug)]
struct ExactService {
    inner: Servicer,
}

impl Service for ExactService {
    type Reader = oio::Reader;
    type Writer = oio::Writer;
    type Lister = oio::Lister;
    type Deleter = ExactDeleter;
    type Copier = oio::Copier;
    type Composer = oio::Composer;

    fn info(&self) -> ServiceInfo {
        self.inner.info()
    }

    fn capability(&self) -> Capability {
        self.inner.capability()
    }

    async fn create_dir(&self, ctx: &OperationContext, path: &str, args: OpCreateDir) -> Result<RpCreateDir> {
        self.inner.create_dir(ctx, disarm(path)?, args).await
    }

    async fn stat(&self, ctx: &OperationContext, path: &str, args: OpStat) -> Result<RpStat> {
        self.inner.stat(ctx, disarm(path)?, args).await
    }

    fn read(&self, ctx: &OperationContext, path: &str, args: OpRead) -> Result<Self::Reader> {
        self.inner.read(ctx, disarm(path)?, args)
    }

    fn write(&self, ctx: &OperationContext, path: &str, args: OpWrite) -> Result<Self::Writer> {
        self.inner.write(ctx, disarm(path)?, args)
    }

    fn delete(&self, ctx: &OperationContext) -> Result<Self::Deleter> {
        Ok(ExactDeleter { inner: self.inner.delete(ctx)? })
    }

    fn list(&self, ctx: &OperationContext, path: &str, args: OpList) -> Result<Self::Lister> {
        self.inner.list(ctx, disarm(path)?, args)
    }

    fn copy(&self, ctx: &OperationContext, from: &str, to: &str, args: OpCopy) -> Result<Self::Copier> {
        self.inner.copy(ctx, disarm(from)?, disarm(to)?, args)
    }

    fn compose(&self, ctx: &OperationContext, to: &str, args: OpCompose) -> Result<Self::Composer> {
        self.inner.compose(ctx, disarm(to)?, args)
    }

    async fn rename(&self, ctx: &OperationContext, from: &str, to: &str, args: OpRename) -> Result<RpRename> {
        self.inner.rename(ctx, disarm(from)?, disarm(to)?, args).await
    }

    async fn restore(&self, ctx: &OperationContext, path: &str, args: OpRestore) -> Result<RpRestore> {
        self.inner.restore(ctx, disarm(path)?, args).await
    }

    async fn presign(&self, ctx: &OperationContext, path: &str, args: OpPresign) -> Result<RpPresign> {
        self.inner.presign(ctx, disarm(path)?, args).await
    }
}

/// Deletes by the exact path of each armed path it is given.
struct ExactDeleter {
    inner: oio::Deleter,
}

impl oio::Delete for ExactDeleter {
    async fn delete(&mut self, path: &str, args: OpDelete) -> Result<()> {
        let path = disarm(path)?.to_string();
        self.inner.delete_dyn(&path, args).await
    }

    async fn close(&mut self) -> Result<()> {
        self.inner.close_dyn().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn armed_paths_survive_opendal_normalisation_exactly() {
        for rel in ["report", " report", "report ", " a b /c\t", "dir/", " dir /", "/", "100%+ü.txt", "a/ b /"] {
            let armed = arm(rel);
            assert_eq!(normalize_path(&armed), armed, "{rel:?}");
            assert_eq!(disarm(&normalize_path(&armed)).unwrap(), rel);
        }
        // What OpenDAL did to the bare paths: the reason for this module.
        assert_eq!(normalize_path("report "), "report");
        assert_eq!(normalize_path(" report"), "report");
        assert!(disarm("report").is_err());
        assert!(disarm("|report").is_err());
    }
}
