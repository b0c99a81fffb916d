//! The requests the S3 API serves itself, before `s3s`'s operations (`s3s` takes one route): GETs
//! whose `Range` it cannot parse (`range`) and GetObjectAttributes (`attributes`). The two never match
//! the same request (the ranges route takes plain GetObject queries only).

use crate::s3_api::attributes::{self, AttributesRoute};
use crate::s3_api::range::IgnoredRangeRoute;
use axum::http::{Extensions, HeaderMap, Method, Uri};
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result};

/// Both routes.
pub struct Routes {
    /// GETs with an unparsable `Range`.
    pub ranges: IgnoredRangeRoute,
    /// GetObjectAttributes.
    pub attributes: AttributesRoute,
}

#[async_trait::async_trait]
impl S3Route for Routes {
    fn is_match(&self, method: &Method, uri: &Uri, headers: &HeaderMap, extensions: &mut Extensions) -> bool {
        self.attributes.is_match(method, uri, headers, extensions)
            || self.ranges.is_match(method, uri, headers, extensions)
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        let attributes = attributes::is_request(&req.method, &req.uri);
        if let Some(slot) = req.extensions.get::<crate::metrics::data_path::S3OperationSlot>() {
            slot.set(if attributes { attributes::OPERATION } else { "GetObject" });
        }
        match attributes {
            true => self.attributes.check_access(req).await,
            false => self.ranges.check_access(req).await,
        }
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        match attributes::is_request(&req.method, &req.uri) {
            true => self.attributes.call(req).await,
            false => self.ranges.call(req).await,
        }
    }
}
