/*
 * The C part of mod_wsgi_rs: the module structure, the directive table, hook
 * registration and one-line wrappers for httpd/APR macros. Every decision is
 * made in Rust (src/lib.rs holds the functions declared extern below).
 */
#include "shim.h"
#include "mod_status.h"

APLOG_USE_MODULE(wsgi_rs);

/* Rust entry points (src/lib.rs). */
extern const char *wsgi_rs_directive(cmd_parms *cmd, void *mconfig, const char *args);
extern void *wsgi_rs_create_server_config(apr_pool_t *p, server_rec *s);
extern void *wsgi_rs_merge_server_config(apr_pool_t *p, void *base, void *add);
extern void *wsgi_rs_create_dir_config(apr_pool_t *p, char *dir);
extern void *wsgi_rs_merge_dir_config(apr_pool_t *p, void *base, void *add);
extern int wsgi_rs_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);
extern void wsgi_rs_child_init(apr_pool_t *pchild, server_rec *s);
extern int wsgi_rs_translate_name(request_rec *r);
extern int wsgi_rs_handler(request_rec *r);
extern int wsgi_rs_access_checker(request_rec *r);
extern authn_status wsgi_rs_check_password(request_rec *r, const char *user, const char *password);
extern authn_status wsgi_rs_get_realm_hash(request_rec *r, const char *user, const char *realm, char **rethash);
extern authz_status wsgi_rs_check_authorization(request_rec *r, const char *require_args, const void *parsed);
/* Metrics (src/metrics/entry.rs). */
extern int wsgi_rs_metrics_handler(request_rec *r);
extern int wsgi_rs_log_transaction(request_rec *r);
extern int wsgi_rs_status_hook(request_rec *r, int flags);

/* Every directive takes its raw argument string; Rust tokenises and validates it. */
#define WSGI_DIRECTIVE(name, where, help) \
    AP_INIT_RAW_ARGS(name, wsgi_rs_directive, NULL, where, help)

/* <WSGIInterpreterOptions ...>: Rust checks the selectors and the body and
 * opens the section; Apache's walker then runs the body's directives, which
 * Rust files under the section (their parent directive). */
static const char *wsgi_rs_interp_options(cmd_parms *cmd, void *mconfig, const char *args)
{
    const char *err = wsgi_rs_directive(cmd, mconfig, args);
    if (err != NULL)
        return err;
    return ap_walk_config(cmd->directive->first_child, cmd, cmd->server->lookup_defaults);
}

static const command_rec wsgi_rs_commands[] = {
    WSGI_DIRECTIVE("WSGIScriptAlias", RSRC_CONF, "URL path, script file or directory, and options."),
    WSGI_DIRECTIVE("WSGIScriptAliasMatch", RSRC_CONF, "URL regex, script path with $N substitutions, and options."),
    WSGI_DIRECTIVE("WSGICallableObject", OR_FILEINFO, "Name of the WSGI application object in the script."),
    WSGI_DIRECTIVE("WSGIApplicationGroup", ACCESS_CONF | RSRC_CONF, "Application group (interpreter) name."),
    WSGI_DIRECTIVE("WSGIPassAuthorization", OR_FILEINFO, "On: pass the Authorization header to the application."),
    WSGI_DIRECTIVE("WSGIChunkedRequest", OR_FILEINFO, "On: accept chunked request bodies."),
    WSGI_DIRECTIVE("WSGIMapHEADToGET", OR_FILEINFO, "On, Off or Auto: whether the application sees a HEAD request as GET."),
    WSGI_DIRECTIVE("WSGIEnableSendfile", OR_FILEINFO, "On: wsgi.file_wrapper files may be sent with sendfile."),
    WSGI_DIRECTIVE("WSGIScriptReloading", OR_FILEINFO, "On: reload a script whose file changed."),
    WSGI_DIRECTIVE("WSGIPythonHome", RSRC_CONF, "Python home (a prefix or a virtual environment)."),
    WSGI_DIRECTIVE("WSGIPythonPath", RSRC_CONF, "Directories added to sys.path, separated by ':'."),
    WSGI_DIRECTIVE("WSGIPythonOptimize", RSRC_CONF, "Python optimisation level: 0, 1 or 2."),
    WSGI_DIRECTIVE("WSGIPythonHashSeed", RSRC_CONF, "Python hash seed: random or 0 to 4294967295."),
    WSGI_DIRECTIVE("WSGIPythonWarnings", RSRC_CONF, "A Python warnings filter, like -W (repeatable)."),
    WSGI_DIRECTIVE("WSGIDontWriteBytecode", RSRC_CONF, "On: Python writes no .pyc files."),
    WSGI_DIRECTIVE("WSGIPythonEggs", RSRC_CONF, "PYTHON_EGG_CACHE directory of Apache's children."),
    WSGI_DIRECTIVE("WSGICaseSensitivity", RSRC_CONF, "Off: script paths are lower-cased in module names and %{RESOURCE}."),
    WSGI_DIRECTIVE("WSGIDestroyInterpreter", RSRC_CONF, "Off: Python is not finalised when a process stops."),
    WSGI_DIRECTIVE("WSGILazyInitialization", RSRC_CONF, "Accepted for compatibility: Python always starts after fork."),
    WSGI_DIRECTIVE("WSGIVerboseDebugging", RSRC_CONF, "Deprecated, no effect: use LogLevel wsgi_rs:debug."),
    WSGI_DIRECTIVE("WSGISwitchInterval", RSRC_CONF, "sys.setswitchinterval() seconds for the interpreter."),
    WSGI_DIRECTIVE("WSGIPerInterpreterGIL", RSRC_CONF, "On: sub-interpreters get their own GIL (Python 3.12+)."),
    WSGI_DIRECTIVE("WSGIFreeThreading", RSRC_CONF, "On: the process runs with the GIL disabled (free-threaded Python)."),
    WSGI_DIRECTIVE("WSGIRestrictStdin", RSRC_CONF, "On: sys.stdin raises OSError."),
    WSGI_DIRECTIVE("WSGIRestrictStdout", RSRC_CONF, "On: sys.stdout raises OSError."),
    WSGI_DIRECTIVE("WSGIRestrictSignal", RSRC_CONF, "On: signal.signal() from applications is ignored and logged."),
    AP_INIT_RAW_ARGS("<WSGIInterpreterOptions", wsgi_rs_interp_options, NULL, RSRC_CONF,
                     "Section scoping interpreter directives to a process-group= and/or application-group=."),

    WSGI_DIRECTIVE("WSGIDaemonProcess", RSRC_CONF, "Daemon process group name and options."),
    WSGI_DIRECTIVE("WSGIProcessGroup", ACCESS_CONF | RSRC_CONF, "Daemon process group the application runs in (%{GLOBAL}: embedded)."),
    WSGI_DIRECTIVE("WSGISocketPrefix", RSRC_CONF, "Path prefix of daemon sockets (relative to ServerRoot)."),
    WSGI_DIRECTIVE("WSGISocketRotation", RSRC_CONF, "Off: daemon socket names stay the same across restarts."),
    WSGI_DIRECTIVE("WSGIAcceptMutex", RSRC_CONF, "Accepted for compatibility; has no effect."),
    WSGI_DIRECTIVE("WSGIRestrictEmbedded", RSRC_CONF, "On: refuse to run applications in Apache's children."),
    WSGI_DIRECTIVE("WSGISlowRequests", RSRC_CONF, "Seconds after which a finished request is logged as slow."),
    WSGI_DIRECTIVE("WSGITelemetryService", RSRC_CONF, "unix:/path [interval=N]: send process and request telemetry there."),
    WSGI_DIRECTIVE("WSGITelemetryOptions", RSRC_CONF, "[+|-]CaptureUserAgent | None | All."),
    WSGI_DIRECTIVE("WSGIServerMetrics", RSRC_CONF, "On: mod_wsgi.server_metrics() returns Apache's scoreboard."),
    WSGI_DIRECTIVE("WSGIImportScript", RSRC_CONF, "Script to load when a process starts, with process-group= and application-group=."),
    WSGI_DIRECTIVE("WSGIRestrictProcess", ACCESS_CONF | RSRC_CONF, "Daemon process groups that may be selected here."),
    WSGI_DIRECTIVE("WSGIErrorOverride", OR_FILEINFO, "On: Apache's error documents replace a daemon application's 4xx/5xx bodies."),
    WSGI_DIRECTIVE("WSGIIgnoreActivity", OR_FILEINFO, "On: these requests do not count as activity for inactivity-timeout."),
    WSGI_DIRECTIVE("WSGITrustedProxyHeaders", OR_FILEINFO, "Proxy headers (X-Forwarded-For, X-Forwarded-Proto...) applied to the environ."),
    WSGI_DIRECTIVE("WSGIHandlerScript", ACCESS_CONF | RSRC_CONF, "Handler name, script file (its handle_request is called) and options."),
    WSGI_DIRECTIVE("WSGIDispatchScript", ACCESS_CONF | RSRC_CONF, "Script choosing process group, application group and callable per request."),
    WSGI_DIRECTIVE("WSGIPassApacheRequest", ACCESS_CONF | RSRC_CONF, "On: embedded applications get apache.request_rec (a PyCapsule)."),
    WSGI_DIRECTIVE("WSGITrustedProxies", OR_FILEINFO, "Addresses/subnets of the proxies whose headers are trusted (default: any)."),

    WSGI_DIRECTIVE("WSGIAccessScript", OR_AUTHCFG, "Script whose allow_access(environ, host) allows or denies a client."),
    WSGI_DIRECTIVE("WSGIAuthUserScript", OR_AUTHCFG, "Script of the 'wsgi' authn provider: check_password(), get_realm_hash()."),
    WSGI_DIRECTIVE("WSGIAuthGroupScript", OR_AUTHCFG, "Script of 'Require wsgi-group': groups_for_user(environ, user)."),
    WSGI_DIRECTIVE("WSGIGroupAuthoritative", OR_AUTHCFG, "Accepted for compatibility; has no effect in Apache 2.4."),
    WSGI_DIRECTIVE("WSGIAuthGroupAuthoritative", OR_AUTHCFG, "Alias of WSGIGroupAuthoritative."),
    { NULL }
};

/* The auth providers: AuthBasicProvider/AuthDigestProvider wsgi, Require wsgi-group. */
static const authn_provider wsgi_rs_authn_provider = { wsgi_rs_check_password, wsgi_rs_get_realm_hash };
static const authz_provider wsgi_rs_authz_provider = { wsgi_rs_check_authorization, NULL };

static void wsgi_rs_register_hooks(apr_pool_t *p)
{
    /* Like mod_wsgi: alias translation after mod_alias, before userdir/vhost_alias. */
    static const char *const after[] = { "mod_alias.c", NULL };
    static const char *const before[] = { "mod_userdir.c", "mod_vhost_alias.c", NULL };

    /* Like mod_wsgi: the access script runs after mod_ssl's, before mod_authz_host's. */
    static const char *const access_after[] = { "mod_ssl.c", NULL };
    static const char *const access_before[] = { "mod_authz_host.c", NULL };

    ap_hook_post_config(wsgi_rs_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(wsgi_rs_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_translate_name(wsgi_rs_translate_name, after, before, APR_HOOK_MIDDLE);
    ap_hook_handler(wsgi_rs_handler, NULL, NULL, APR_HOOK_MIDDLE);
    /* Registered per URI (not AP_AUTH_INTERNAL_PER_CONF), as mod_wsgi does:
     * the scripts see the URI, so subrequests must run them again. */
    ap_hook_access_checker(wsgi_rs_access_checker, access_after, access_before, APR_HOOK_MIDDLE);
    ap_register_provider(p, AUTHN_PROVIDER_GROUP, "wsgi", AUTHN_PROVIDER_VERSION, &wsgi_rs_authn_provider);
    ap_register_provider(p, AUTHZ_PROVIDER_GROUP, "wsgi-group", AUTHZ_PROVIDER_VERSION, &wsgi_rs_authz_provider);
    ap_hook_handler(wsgi_rs_metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_log_transaction(wsgi_rs_log_transaction, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, wsgi_rs_status_hook, NULL, NULL, APR_HOOK_MIDDLE);
}

__attribute__((visibility("default")))
module AP_MODULE_DECLARE_DATA wsgi_rs_module = {
    STANDARD20_MODULE_STUFF,
    wsgi_rs_create_dir_config,
    wsgi_rs_merge_dir_config,
    wsgi_rs_create_server_config,
    wsgi_rs_merge_server_config,
    wsgi_rs_commands,
    wsgi_rs_register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
    AP_MODULE_FLAG_ALWAYS_MERGE
#endif
};

void *wsgi_rs_server_config(server_rec *s)
{
    return ap_get_module_config(s->module_config, &wsgi_rs_module);
}

void *wsgi_rs_dir_config(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &wsgi_rs_module);
}

void wsgi_rs_log_rerror(const request_rec *r, int level, apr_status_t status, const char *msg)
{
    ap_log_rerror(APLOG_MARK, level, status, r, "%s", msg);
}

void wsgi_rs_log_error(const server_rec *s, int level, apr_status_t status, const char *msg)
{
    ap_log_error(APLOG_MARK, level, status, s, "%s", msg);
}

/* The same with the Python caller's file and line (ErrorLogFormat %F). */
void wsgi_rs_log_rerror_at(const char *file, int line, const request_rec *r, int level, const char *msg)
{
    ap_log_rerror(file, line, APLOG_MODULE_INDEX, level, 0, r, "%s", msg);
}

void wsgi_rs_log_error_at(const char *file, int line, const server_rec *s, int level, const char *msg)
{
    ap_log_error(file, line, APLOG_MODULE_INDEX, level, 0, s, "%s", msg);
}

void wsgi_rs_brigade_insert_tail(apr_bucket_brigade *bb, apr_bucket *b)
{
    APR_BRIGADE_INSERT_TAIL(bb, b);
}

/* The bucket after b (the first when b is NULL); NULL at the end. */
apr_bucket *wsgi_rs_brigade_next(apr_bucket_brigade *bb, apr_bucket *b)
{
    apr_bucket *n = b ? APR_BUCKET_NEXT(b) : APR_BRIGADE_FIRST(bb);
    return n == APR_BRIGADE_SENTINEL(bb) ? NULL : n;
}

apr_status_t wsgi_rs_bucket_read(apr_bucket *b, const char **str, apr_size_t *len)
{
    return apr_bucket_read(b, str, len, APR_BLOCK_READ);
}

int wsgi_rs_brigade_ends_with_eos(apr_bucket_brigade *bb)
{
    return !APR_BRIGADE_EMPTY(bb) && APR_BUCKET_IS_EOS(APR_BRIGADE_LAST(bb));
}

/* Whether Apache's EnableSendfile is explicitly Off for this request (On
 * and unset are not). */
int wsgi_rs_core_sendfile_off(request_rec *r)
{
    return ((core_dir_config *)ap_get_core_module_config(r->per_dir_config))->enable_sendfile ==
           ENABLE_SENDFILE_OFF;
}

/* A HEAD request: Apache gives it method_number M_GET and sets header_only. */
int wsgi_rs_is_head(request_rec *r)
{
    return r->method_number == M_GET && r->header_only;
}

/* WSGIMapHEADToGET Auto, mod_wsgi's test (wsgi_environ.c): the output
 * filter chain starts with a filter below AP_FTYPE_PROTOCOL, i.e. a
 * resource or content-set filter (DEFLATE, INCLUDES, mod_filter's
 * AddOutputFilterByType harness, mod_headers' FIXUP_HEADERS_OUT...) that
 * may change the body or the headers. The chain is kept sorted by type, so
 * the first filter is the lowest. Called from the handler: see head_as_get
 * in src/embedded/handler.rs. */
int wsgi_rs_content_filter_present(request_rec *r)
{
    return r->output_filters && r->output_filters->frec &&
           r->output_filters->frec->ftype < AP_FTYPE_PROTOCOL;
}

/* mod_ssl's optional functions (absent without mod_ssl: not HTTPS, no variable). */
int wsgi_rs_ssl_is_https(conn_rec *c)
{
    APR_OPTIONAL_FN_TYPE(ssl_is_https) *f = APR_RETRIEVE_OPTIONAL_FN(ssl_is_https);
    return f ? f(c) : 0;
}

char *wsgi_rs_ssl_var_lookup(request_rec *r, char *name)
{
    APR_OPTIONAL_FN_TYPE(ssl_var_lookup) *f = APR_RETRIEVE_OPTIONAL_FN(ssl_var_lookup);
    return f ? f(r->pool, r->server, r->connection, r, name) : NULL;
}
