//! The WSGI protocol (PEP 3333) on top of Apache requests.
//!
//! handler: Apache hooks (alias translation, the content handler);
//! app: one request through the application; environ: the environ dict;
//! input: wsgi.input; response: start_response, write and the response body;
//! filewrapper: wsgi.file_wrapper as file buckets; script: loading scripts.

pub mod app;
pub mod environ;
pub mod filewrapper;
pub mod handler;
pub mod input;
pub mod request;
pub mod response;
pub mod script;
