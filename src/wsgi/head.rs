//! The request as the WSGI core sees it: owned bytes, independent of the
//! transport. The Apache handler fills it from `request_rec`; a daemon
//! process will receive the same thing over its socket.
//!
//! Variables are kept in the order they were set; when the environ is built
//! a later value replaces an earlier one of the same name (as Apache's
//! `apr_table_overlap` does for mod_wsgi: a request header beats a `SetEnv`
//! of the same `HTTP_*` name, and the CGI variables beat both).
use std::ops::Range;

macro_rules! known_keys {
    ($($key:ident = $name:literal),* $(,)?) => {
        /// Environ keys the core knows (interned once per interpreter).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Key { $($key),* }
        impl Key {
            pub const ALL: &'static [Key] = &[$(Key::$key),*];
            pub fn name(self) -> &'static str {
                match self { $(Key::$key => $name),* }
            }
        }
    };
}

known_keys! {
    RequestMethod = "REQUEST_METHOD",
    ScriptName = "SCRIPT_NAME",
    PathInfo = "PATH_INFO",
    QueryString = "QUERY_STRING",
    ContentType = "CONTENT_TYPE",
    ContentLength = "CONTENT_LENGTH",
    ServerName = "SERVER_NAME",
    ServerPort = "SERVER_PORT",
    ServerAddr = "SERVER_ADDR",
    ServerAdmin = "SERVER_ADMIN",
    ServerProtocol = "SERVER_PROTOCOL",
    RemoteAddr = "REMOTE_ADDR",
    RemotePort = "REMOTE_PORT",
    RemoteUser = "REMOTE_USER",
    AuthType = "AUTH_TYPE",
    RequestUri = "REQUEST_URI",
    RequestScheme = "REQUEST_SCHEME",
    DocumentRoot = "DOCUMENT_ROOT",
    ContextPrefix = "CONTEXT_PREFIX",
    ContextDocumentRoot = "CONTEXT_DOCUMENT_ROOT",
    ScriptFilename = "SCRIPT_FILENAME",
    RedirectUrl = "REDIRECT_URL",
    RedirectQueryString = "REDIRECT_QUERY_STRING",
    UrlScheme = "wsgi.url_scheme",
    Input = "wsgi.input",
    Errors = "wsgi.errors",
    CallableObject = "mod_wsgi.callable_object",
    RequestHandler = "mod_wsgi.request_handler",
    ScriptReloading = "mod_wsgi.script_reloading",
    IgnoreActivity = "mod_wsgi.ignore_activity",
    EnableSendfile = "mod_wsgi.enable_sendfile",
    ListenerHost = "mod_wsgi.listener_host",
    ListenerPort = "mod_wsgi.listener_port",
    RequestStart = "mod_wsgi.request_start",
    QueueStart = "mod_wsgi.queue_start",
    DaemonStart = "mod_wsgi.daemon_start",
    ApplicationStart = "mod_wsgi.application_start",
    MwScriptName = "mod_wsgi.script_name",
    MwPathInfo = "mod_wsgi.path_info",
    RequestId = "mod_wsgi.request_id",
    ConnectionId = "mod_wsgi.connection_id",
    ServerPid = "mod_wsgi.server_pid",
    ThreadId = "mod_wsgi.thread_id",
    MountPoint = "mod_wsgi.mount_point",
    HandlerScript = "mod_wsgi.handler_script",
}

/// How a value becomes a Python str.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Text {
    /// Latin-1, as PEP 3333 requires for CGI variables and headers.
    Latin1,
    /// A file path: the filesystem encoding (surrogateescape).
    Path,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Name {
    Known(Key),
    Other(Range<usize>),
}

#[derive(Clone, Debug)]
struct Var {
    name: Name,
    value: Range<usize>,
    text: Text,
}

/// One variable of the head, borrowed.
#[derive(Debug, PartialEq, Eq)]
pub enum VarName<'a> {
    Known(Key),
    Other(&'a [u8]),
}

/// What the core needs to run a request, besides the environ variables.
#[derive(Clone, Debug, Default)]
pub struct Target {
    /// The WSGI script file.
    pub script: String,
    /// Its modification time (microseconds), for script reloading.
    pub mtime: i64,
    pub callable: String,
    pub script_reloading: bool,
    /// The application group (interpreter), expanded: "" is %{GLOBAL}.
    pub application_group: String,
    /// For a WSGIHandlerScript (`script`): the requested resource
    /// (r->filename), SCRIPT_FILENAME and reload_required()'s argument.
    pub resource: Option<String>,
}

impl Target {
    /// The request's file (r->filename): the resource for a handler
    /// script, else the script.
    pub fn request_file(&self) -> &str {
        self.resource.as_deref().unwrap_or(&self.script)
    }
}

/// Daemon mode: what the Apache child tells the daemon about the hand-off
/// (mod_wsgi's daemon_connects, daemon_restarts, queue_start, server_pid),
/// and when a daemon thread took the request. Zero in embedded mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HandOff {
    /// The Apache child's pid.
    pub server_pid: i32,
    /// Connect attempts, and sends again after a restarting daemon turned
    /// the request away.
    pub connects: u32,
    pub restarts: u32,
    /// When the request was sent to the daemon socket, and when a daemon
    /// thread took it (µs since the epoch).
    pub queue_start: i64,
    pub daemon_start: i64,
}

#[derive(Clone, Debug, Default)]
pub struct RequestHead {
    buf: Vec<u8>,
    vars: Vec<Var>,
    pub target: Target,
    /// The request body's length when it is known in advance.
    pub body_length: Option<u64>,
    /// WSGIPassApacheRequest, embedded mode: the request_rec's address for
    /// apache.request_rec. Never sent to a daemon (see wsgi::request_rec).
    pub request_rec: usize,
    pub hand_off: HandOff,
}

impl RequestHead {
    pub fn new(target: Target) -> RequestHead {
        RequestHead {
            buf: Vec::with_capacity(2048),
            vars: Vec::with_capacity(48),
            target,
            body_length: None,
            request_rec: 0,
            hand_off: HandOff::default(),
        }
    }

    fn push(&mut self, b: &[u8]) -> Range<usize> {
        let start = self.buf.len();
        self.buf.extend_from_slice(b);
        start..self.buf.len()
    }

    pub fn set(&mut self, key: Key, value: &[u8]) {
        self.set_as(key, value, Text::Latin1)
    }

    pub fn set_as(&mut self, key: Key, value: &[u8], text: Text) {
        let value = self.push(value);
        self.vars.push(Var {
            name: Name::Known(key),
            value,
            text,
        });
    }

    pub fn set_int(&mut self, key: Key, n: impl itoa::Integer) {
        self.set(key, itoa::Buffer::new().format(n).as_bytes())
    }

    /// A variable by its own name (SetEnv, mod_ssl, mod_rewrite [E=]…).
    pub fn set_other(&mut self, name: &[u8], value: &[u8]) {
        let name = self.push(name);
        let value = self.push(value);
        self.vars.push(Var {
            name: Name::Other(name),
            value,
            text: Text::Latin1,
        });
    }

    /// A request header as its `HTTP_*` variable ("User-Agent" → HTTP_USER_AGENT).
    pub fn set_header(&mut self, name: &[u8], value: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(b"HTTP_");
        self.buf.extend(name.iter().map(|&b| match b {
            b'-' => b'_',
            b => b.to_ascii_uppercase(),
        }));
        let name = start..self.buf.len();
        let value = self.push(value);
        self.vars.push(Var {
            name: Name::Other(name),
            value,
            text: Text::Latin1,
        });
    }

    /// The value a variable set by its own name ends with (the last set).
    pub fn get_other(&self, name: &[u8]) -> Option<&[u8]> {
        self.vars.iter().rev().find_map(|v| match &v.name {
            Name::Other(r) if &self.buf[r.clone()] == name => Some(&self.buf[v.value.clone()]),
            _ => None,
        })
    }

    /// The value a known variable ends with (the last set).
    pub fn get(&self, key: Key) -> Option<&[u8]> {
        self.vars.iter().rev().find_map(|v| match &v.name {
            Name::Known(k) if *k == key => Some(&self.buf[v.value.clone()]),
            _ => None,
        })
    }

    /// Removes every value of a variable set by its own name.
    pub fn remove_other(&mut self, name: &[u8]) {
        let buf = &self.buf;
        self.vars
            .retain(|v| !matches!(&v.name, Name::Other(r) if &buf[r.clone()] == name));
    }

    /// Every variable in the order set.
    pub fn vars(&self) -> impl Iterator<Item = (VarName<'_>, &[u8], Text)> {
        self.vars.iter().map(|v| {
            let name = match &v.name {
                Name::Known(k) => VarName::Known(*k),
                Name::Other(r) => VarName::Other(&self.buf[r.clone()]),
            };
            (name, &self.buf[v.value.clone()], v.text)
        })
    }
}

/// Request header names that may become HTTP_* keys: letters, digits and '-'
/// only (an underscore would collide with a dash after conversion).
pub fn valid_header_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_names() {
        let mut h = RequestHead::new(Target::default());
        h.set_other(b"HTTP_X_FOO", b"setenv");
        h.set_header(b"X-Foo", b"header");
        h.set(Key::RequestMethod, b"GET");
        h.set_int(Key::ServerPort, 8080u16);
        let vars: Vec<_> = h.vars().collect();
        assert_eq!(
            vars[0],
            (VarName::Other(b"HTTP_X_FOO"), &b"setenv"[..], Text::Latin1)
        );
        assert_eq!(
            vars[1],
            (VarName::Other(b"HTTP_X_FOO"), &b"header"[..], Text::Latin1)
        );
        assert_eq!(vars[2].0, VarName::Known(Key::RequestMethod));
        assert_eq!(
            vars[3],
            (VarName::Known(Key::ServerPort), &b"8080"[..], Text::Latin1)
        );
    }

    #[test]
    fn get_and_remove_by_name() {
        let mut h = RequestHead::new(Target::default());
        h.set_other(b"HTTP_X_FOO", b"setenv");
        h.set_header(b"X-Foo", b"header");
        h.set_header(b"X-Bar", b"bar");
        assert_eq!(h.get_other(b"HTTP_X_FOO"), Some(&b"header"[..]));
        h.remove_other(b"HTTP_X_FOO");
        assert_eq!(h.get_other(b"HTTP_X_FOO"), None);
        assert_eq!(h.get_other(b"HTTP_X_BAR"), Some(&b"bar"[..]));
        assert_eq!(h.vars().count(), 1);
    }

    #[test]
    fn header_names() {
        assert!(valid_header_name(b"X-Custom-Header"));
        assert!(!valid_header_name(b"X_Under_Score"));
        assert!(!valid_header_name(b"X.Dot"));
        assert!(!valid_header_name(b""));
    }
}
