//! The gRPC query API's messages and service, generated at build time from
//! `proto/tracelens/query/v1/query.proto` (see `crates/serve/build.rs`): the server side
//! is implemented in `transport::query_grpc`; the client is here for callers
//! in Rust (and the tests).

#![allow(clippy::all, clippy::pedantic, missing_docs)]

tonic::include_proto!("tracelens.query.v1");
