//! Embedded mode: Python runs in Apache's own children. child: starting
//! Python in each child; handler: the hooks; request: the request head from
//! `request_rec`; transport: the Apache request as the WSGI core's transport;
//! routing: WSGIHandlerScript and WSGIDispatchScript choices as request
//! notes; dispatch: running a dispatch script's hooks.

pub(crate) mod child;
pub(crate) mod dispatch;
pub(crate) mod handler;
pub(crate) mod request;
pub(crate) mod routing;
pub(crate) mod transport;
