/*
 * The metrics endpoint: Prometheus text format (ctl_metrics, actors/control.h) served at
 * GET /metrics by nng's HTTP server. Read-only, so it needs no secret; bind it to a
 * loopback address unless a scraper on another machine needs it.
 */
#ifndef EDDY_ACTORS_METRICS_H
#define EDDY_ACTORS_METRICS_H

#include "control.h"

typedef struct metrics_server metrics_server;

/* metrics_server_start serves c's metrics at http://HOSTPORT/metrics (HOSTPORT as
 * "127.0.0.1:9249"; port 0 picks one). *bound receives "http://HOST:PORT/metrics" with
 * the port actually bound. c is borrowed and must outlive the server. Requests are
 * answered on nng's threads. Errors: EDDY_EINVAL (a bad HOST:PORT, with why), EDDY_EIO
 * (cannot listen, with nng's reason), EDDY_ENOMEM. */
eddy_err metrics_server_start(ctl *c, const char *hostport, metrics_server **out, char *bound,
                              size_t bound_size, char *why, size_t why_size);

/* metrics_server_stop stops serving and frees the server. Safe on NULL. */
void metrics_server_stop(metrics_server *m);

#endif
