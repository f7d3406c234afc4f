//! The service of the `http` example: `GET /` answers `200` with the body
//! `Hello, world!`, anything else `404` with `Not Found`.
//!
//! It names no runtime (hyper and http-body-util only), so the tokio twin of
//! the `http` example in `benches/src/bin/veth.rs` compiles this very file
//! (`#[path]`) and both servers answer with the same status, headers and
//! body (hyper adds the same `content-length` and `date` headers on either
//! runtime; `veth --http` compares the two answers before it measures).

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};

/// Answers one request (see the module docs).
///
/// # Errors
///
/// Never: the error type is [`Infallible`].
pub async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => Response::new(Full::new(Bytes::from_static(b"Hello, world!"))),
        _ => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"Not Found")));
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    };
    Ok(response)
}
