/* The control endpoint: an nng rep0 socket served by a thread of its own
 * (actors/control.h), and the secret file check. */
#include "control.h"

#include "../runtime/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* nng's own limit: a frame above it is not read at all (the connection is closed);
 * frames between CTL_MAX_REQUEST and this get an error reply and are counted. */
#define NNG_MAX_FRAME (1u << 20)

struct ctl_server {
	ctl *c;
	nng_socket sock;
	nng_aio *aio; /* the serve thread's receive: a stop cancels it */
	pthread_t thread;
	_Atomic bool stop;
	_Atomic int64_t last_reply_ns; /* monotonic; 0: none yet */
	pthread_mutex_t mu;            /* pipes */
	uint32_t pipes[CTL_MAX_CONNECTIONS];
	uint32_t npipes;
};

/* on_pipe keeps at most CTL_MAX_CONNECTIONS connections: one more is closed before it is
 * added (nng's own threads call this). */
static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	ctl_server *s = arg;
	uint32_t id = (uint32_t)nng_pipe_id(p);
	pthread_mutex_lock(&s->mu);
	if (ev == NNG_PIPE_EV_ADD_PRE) {
		if (s->npipes == CTL_MAX_CONNECTIONS) {
			pthread_mutex_unlock(&s->mu);
			ctl_reject_connection(s->c);
			nng_pipe_close(p);
			return;
		}
		s->pipes[s->npipes++] = id;
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		for (uint32_t i = 0; i < s->npipes; i++)
			if (s->pipes[i] == id) {
				s->pipes[i] = s->pipes[--s->npipes];
				break;
			}
	}
	pthread_mutex_unlock(&s->mu);
}


bool ctl_address_is_local(const char *url)
{
	if (strncmp(url, "ipc://", 6) == 0 || strncmp(url, "inproc://", 9) == 0)
		return true;
	const char *h = NULL;
	static const char *const schemes[] = { "tcp://", "tcp4://", "tcp6://", "ws://", NULL };
	for (int i = 0; schemes[i] && h == NULL; i++)
		if (strncmp(url, schemes[i], strlen(schemes[i])) == 0)
			h = url + strlen(schemes[i]);
	if (h == NULL)
		return false;
	if (strncmp(h, "[::1]:", 6) == 0)
		return true;
	if (strncasecmp(h, "localhost:", 10) == 0)
		return true;
	/* 127.0.0.0/8: four decimal parts, the first 127 */
	if (strncmp(h, "127.", 4) != 0)
		return false;
	int parts = 2; /* "127." */
	for (const char *p = h + 4; *p && *p != ':'; p++) {
		if (*p == '.')
			parts++;
		else if (*p < '0' || *p > '9')
			return false;
	}
	return parts == 4;
}

static void *serve(void *arg)
{
	ctl_server *s = arg;
	ctl_sample(s->c, true);
	while (!atomic_load(&s->stop)) {
		nng_msg *m = NULL;
		nng_recv_aio(s->sock, s->aio);
		nng_aio_wait(s->aio);
		int rv = nng_aio_result(s->aio);
		if (rv == 0)
			m = nng_aio_get_msg(s->aio);
		ctl_sample(s->c, false);
		if (rv == NNG_ETIMEDOUT || rv == NNG_ECANCELED)
			continue;
		if (rv != 0) {
			if (rv == NNG_ECLOSED)
				break;
			continue; /* a broken connection, an oversized frame: nng dropped it */
		}
		char *reply = NULL;
		size_t rlen = 0;
		eddy_err e = ctl_handle(s->c, nng_msg_body(m), nng_msg_len(m), &reply, &rlen);
		if (e != EDDY_OK) {
			nng_msg_free(m);
			continue; /* no memory for a reply: the client times out */
		}
		nng_msg_clear(m);
		if (nng_msg_append(m, reply, rlen) != 0 || nng_sendmsg(s->sock, m, 0) != 0)
			nng_msg_free(m);
		else
			atomic_store(&s->last_reply_ns, clock_now_ns(clock_system()));
		free(reply);
	}
	return NULL;
}

eddy_err ctl_server_start(ctl *c, const char *url, ctl_server **out, char *bound,
                          size_t bound_size, char *why, size_t why_size)
{
	*out = NULL;
	ctl_server *s = rt_calloc(1, sizeof(*s));
	if (s == NULL)
		return EDDY_ENOMEM;
	s->c = c;
	int rv = nng_rep0_open(&s->sock);
	if (rv != 0) {
		snprintf(why, why_size, "cannot open a reply socket: %s", nng_strerror(rv));
		rt_free(s);
		return EDDY_EIO;
	}
	pthread_mutex_init(&s->mu, NULL);
	nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_PRE, on_pipe, s);
	nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, on_pipe, s);
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, NNG_MAX_FRAME);
	nng_socket_set_ms(s->sock, NNG_OPT_SENDTIMEO, 1000);
	if ((rv = nng_aio_alloc(&s->aio, NULL, NULL)) != 0) {
		snprintf(why, why_size, "cannot make a receive: %s", nng_strerror(rv));
		nng_close(s->sock);
		rt_free(s);
		return EDDY_ENOMEM;
	}
	/* a stop cancels the receive; one that comes just before it starts is seen within
	 * this */
	nng_aio_set_timeout(s->aio, 25);
	nng_listener l;
	if ((rv = nng_listener_create(&l, s->sock, url)) != 0) {
		snprintf(why, why_size, "%s: %s", url, nng_strerror(rv));
		nng_aio_free(s->aio);
		nng_close(s->sock);
		rt_free(s);
		return rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP || rv == NNG_EINVAL ? EDDY_EINVAL
		                                                                    : EDDY_EIO;
	}
	nng_listener_set_size(l, NNG_OPT_RECVMAXSZ, NNG_MAX_FRAME);
	if ((rv = nng_listener_start(l, 0)) != 0) {
		snprintf(why, why_size, "cannot listen on %s: %s", url, nng_strerror(rv));
		nng_aio_free(s->aio);
		nng_close(s->sock);
		rt_free(s);
		return EDDY_EIO;
	}
	snprintf(bound, bound_size, "%s", url);
	int port = 0;
	if (strncmp(url, "tcp", 3) == 0 &&
	    nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0) {
		const char *colon = strrchr(url, ':');
		if (colon && strcmp(colon, ":0") == 0)
			snprintf(bound, bound_size, "%.*s:%d", (int)(colon - url), url, port);
	}
	if (pthread_create(&s->thread, NULL, serve, s) != 0) {
		snprintf(why, why_size, "cannot start the control thread");
		nng_aio_free(s->aio);
		nng_close(s->sock);
		rt_free(s);
		return EDDY_ENOMEM;
	}
	*out = s;
	return EDDY_OK;
}

void ctl_server_stop(ctl_server *s, bool close_socket)
{
	if (s == NULL)
		return;
	atomic_store(&s->stop, true);
	/* a reply just handed to nng may still be on its way (a `kill` that ended the job):
	 * give it up to 200 ms before the close drops it */
	int64_t last = atomic_load(&s->last_reply_ns);
	while (last && clock_now_ns(clock_system()) - last < 200000000)
		usleep(10000);
	nng_aio_cancel(s->aio); /* the serve thread sees stop now (or within 25 ms) */
	if (!close_socket) {
		/* the socket (and s, which its pipe callbacks use) are left to the process's
		 * exit */
		pthread_join(s->thread, NULL);
		return;
	}
	nng_close(s->sock);
	pthread_join(s->thread, NULL);
	nng_aio_free(s->aio);
	pthread_mutex_destroy(&s->mu);
	rt_free(s);
}

eddy_err ctl_read_secret(const char *file, char **out, char *why, size_t why_size)
{
	*out = NULL;
	/* symlinks are followed (secret mounts are links; the mode checked is the file's);
	 * O_NONBLOCK so that a FIFO cannot hang the open, refused below as not regular */
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(why, why_size, "secret file %s: %s", file, strerror(errno));
		return EDDY_EIO;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, why_size, "secret file %s: not a regular file", file);
		close(fd);
		return EDDY_EINVAL;
	}
	if (st.st_mode & 077) {
		snprintf(why, why_size,
		         "secret file %s: mode %04o lets others read it; it must be 0600 (chmod 600 "
		         "%s)",
		         file, (unsigned)(st.st_mode & 07777), file);
		close(fd);
		return EDDY_EINVAL;
	}
	char buf[1027]; /* 1024 + CR LF + one more: a longer file is refused, not cut */
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0) {
		snprintf(why, why_size, "secret file %s: %s", file, strerror(errno));
		return EDDY_EIO;
	}
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n < 1 || n > 1024 || memchr(buf, '\0', (size_t)n)) {
		snprintf(why, why_size,
		         "secret file %s: the secret must be 1 to 1024 bytes without NUL bytes", file);
		return EDDY_EINVAL;
	}
	char *s = malloc((size_t)n + 1);
	if (s == NULL)
		return EDDY_ENOMEM;
	memcpy(s, buf, (size_t)n);
	s[n] = '\0';
	memset(buf, 0, sizeof(buf));
	*out = s;
	return EDDY_OK;
}
