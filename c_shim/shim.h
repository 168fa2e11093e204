/* What Rust sees of httpd/APR (through bindgen) and of the C shim. */
#ifndef WSGI_RS_SHIM_H
#define WSGI_RS_SHIM_H

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_script.h"
#include "ap_mpm.h"
#include "ap_regex.h"
#include "apr_buckets.h"
#include "apr_md5.h"
#include "apr_portable.h"
#include "apr_strings.h"
#include "apr_tables.h"
#include "ap_listen.h"
#include "unixd.h"
#include "ap_provider.h"
#include "mod_auth.h"
#include "mod_ssl.h"
#include "scoreboard.h"

/* Macro wrappers: bindgen cannot call these macros, so each is one C line. */
void *wsgi_rs_server_config(server_rec *s);
void *wsgi_rs_dir_config(request_rec *r);
void wsgi_rs_log_rerror(const request_rec *r, int level, apr_status_t status, const char *msg);
void wsgi_rs_log_error(const server_rec *s, int level, apr_status_t status, const char *msg);
void wsgi_rs_log_rerror_at(const char *file, int line, const request_rec *r, int level, const char *msg);
void wsgi_rs_log_error_at(const char *file, int line, const server_rec *s, int level, const char *msg);
void wsgi_rs_brigade_insert_tail(apr_bucket_brigade *bb, apr_bucket *b);
int wsgi_rs_core_sendfile_off(request_rec *r);
int wsgi_rs_is_head(request_rec *r);
int wsgi_rs_content_filter_present(request_rec *r);
int wsgi_rs_brigade_ends_with_eos(apr_bucket_brigade *bb);
apr_bucket *wsgi_rs_brigade_next(apr_bucket_brigade *bb, apr_bucket *b);
apr_status_t wsgi_rs_bucket_read(apr_bucket *b, const char **str, apr_size_t *len);
int wsgi_rs_ssl_is_https(conn_rec *c);
char *wsgi_rs_ssl_var_lookup(request_rec *r, char *name);

#endif
