//! The WSGI protocol (PEP 3333), independent of the transport that carries
//! the request.
//!
//! transport: the seam (what a transport provides); head: the request as
//! owned bytes; exchange: one request's state shared with its Python
//! objects; app: one request through the application; events: mod_wsgi's
//! event callbacks and request_data(); recording, metrics_api: the
//! request_metrics()/process_metrics() API; environ, input,
//! start_response, output, filewrapper: the pieces of PEP 3333; script:
//! loading WSGI script files.

pub(crate) mod app;
pub(crate) mod environ;
pub(crate) mod events;
pub(crate) mod exchange;
pub(crate) mod filewrapper;
pub(crate) mod head;
pub(crate) mod input;
pub(crate) mod metrics_api;
pub(crate) mod output;
pub(crate) mod proxy_headers;
pub(crate) mod recording;
pub(crate) mod request_rec;
pub(crate) mod response_checks;
pub(crate) mod script;
pub(crate) mod slow;
pub(crate) mod start_response;
pub(crate) mod transport;
pub(crate) mod writer;
