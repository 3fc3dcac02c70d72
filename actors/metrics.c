/* The metrics endpoint on nng's HTTP server (actors/metrics.h). */
#include "metrics.h"

#include "../runtime/alloc.h"

#include <arpa/inet.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct metrics_server {
	nng_http_server *srv;
	nng_url *url;
};

/* on_metrics answers GET /metrics on an nng thread. */
static void on_metrics(nng_aio *aio)
{
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	ctl *c = nng_http_handler_get_data(h);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	nng_http_res *res = NULL;
	int rv = f ? 0 : NNG_ENOMEM;
	if (f) {
		ctl_metrics(c, f);
		if (fclose(f) != 0)
			rv = NNG_ENOMEM;
	}
	if (rv == 0)
		rv = nng_http_res_alloc(&res);
	if (rv == 0)
		rv = nng_http_res_set_header(res, "Content-Type",
		                             "text/plain; version=0.0.4; charset=utf-8");
	if (rv == 0)
		rv = nng_http_res_copy_data(res, text, len);
	free(text);
	if (rv != 0) {
		nng_http_res_free(res);
		nng_aio_finish(aio, rv);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

eddy_err metrics_server_start(ctl *c, const char *hostport, metrics_server **out, char *bound,
                              size_t bound_size, char *why, size_t why_size)
{
	*out = NULL;
	const char *colon = strrchr(hostport, ':');
	if (colon == NULL || colon == hostport || colon[1] == '\0' ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) || strlen(colon + 1) > 5 ||
	    atoi(colon + 1) > 65535) {
		snprintf(why, why_size, "metrics address '%s': expected HOST:PORT, as 127.0.0.1:9249",
		         hostport);
		return EDDY_EINVAL;
	}
	metrics_server *m = rt_calloc(1, sizeof(*m));
	if (m == NULL)
		return EDDY_ENOMEM;
	char url[300];
	snprintf(url, sizeof(url), "http://%s", hostport);
	nng_http_handler *h = NULL;
	int rv = nng_url_parse(&m->url, url);
	if (rv != 0) {
		snprintf(why, why_size, "metrics address '%s': %s", hostport, nng_strerror(rv));
		rt_free(m);
		return EDDY_EINVAL;
	}
	if ((rv = nng_http_server_hold(&m->srv, m->url)) == 0 &&
	    (rv = nng_http_handler_alloc(&h, "/metrics", on_metrics)) == 0) {
		nng_http_handler_set_method(h, "GET");
		nng_http_handler_set_data(h, c, NULL);
		if ((rv = nng_http_server_add_handler(m->srv, h)) != 0)
			nng_http_handler_free(h);
	}
	if (rv == 0)
		rv = nng_http_server_start(m->srv);
	if (rv != 0) {
		snprintf(why, why_size, "cannot serve metrics on %s: %s", hostport, nng_strerror(rv));
		metrics_server_stop(m);
		return EDDY_EIO;
	}
	nng_sockaddr sa;
	int port = atoi(colon + 1);
	if (nng_http_server_get_addr(m->srv, &sa) == 0) {
		if (sa.s_family == NNG_AF_INET)
			port = ntohs(sa.s_in.sa_port);
		else if (sa.s_family == NNG_AF_INET6)
			port = ntohs(sa.s_in6.sa_port);
	}
	snprintf(bound, bound_size, "http://%.*s:%d/metrics", (int)(colon - hostport), hostport,
	         port);
	*out = m;
	return EDDY_OK;
}

void metrics_server_stop(metrics_server *m)
{
	if (m == NULL)
		return;
	if (m->srv) {
		nng_http_server_stop(m->srv);
		nng_http_server_release(m->srv);
	}
	if (m->url)
		nng_url_free(m->url);
	rt_free(m);
}
