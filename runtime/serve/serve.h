/*
 * gx_serve's internals, shared by master.c (listeners, worker processes,
 * supervision, signals) and worker.c (a worker's accept loops,
 * connections and drain). Not for other files: users go through
 * gonex/serve.h.
 */
#ifndef GX_SERVE_SERVE_H
#define GX_SERVE_SERVE_H

#include <stdatomic.h>
#include <stdint.h>

#include <gonex/serve.h>

/* One worker's figures, in a page the master shares with its workers
 * (a memfd "gonex-serve", MAP_SHARED, made before the first fork). Each
 * slot's counters are written by the process that holds the slot now
 * (relaxed: they are counts, read as a snapshot), pid, cpu and restarts
 * by the master. */
typedef struct gx_serve_figs {
	_Atomic int32_t pid;
	int32_t cpu;
	_Atomic uint64_t accepted;  /* connections taken */
	_Atomic uint64_t active;    /* open now */
	_Atomic uint64_t closed;    /* finished */
	_Atomic uint64_t deadline;  /* ended by an idle or read limit */
	_Atomic uint64_t cancelled; /* still open at a drain deadline */
	_Atomic uint64_t bytes_in, bytes_out;
	_Atomic uint64_t restarts;
	uint64_t pad[7];            /* one slot per two cache lines */
} gx_serve_figs;

#define GX_SERVE_MAGIC 0x67787365727665ull /* "gxserve" */

typedef struct gx_serve_page {
	_Atomic uint64_t magic; /* release-stored last, acquire-read by readers */
	int32_t master_pid;
	int32_t workers;
	uint64_t pad[6];
	gx_serve_figs w[GX_SERVE_MAX_WORKERS];
} gx_serve_page;

/* The server as the master set it up; a forked worker reads its own
 * copy (fork copies it), never the master's. */
typedef struct gx_serve {
	gx_serve_config cfg;
	gx_serve_fn handler;
	void *arg;
	int nlisten;
	int lfd[GX_SERVE_MAX_LISTEN][GX_SERVE_MAX_WORKERS]; /* [listener][worker] */
	int port[GX_SERVE_MAX_LISTEN];
	char upath[GX_SERVE_MAX_LISTEN][108]; /* Unix socket paths to unlink */
	int nworkers;
	int cpu[GX_SERVE_MAX_WORKERS]; /* worker i's CPU, -1 unpinned */
	gx_serve_page *page;           /* shared figures */
	int page_fd;
} gx_server;

/* stats.c: the shared page (NULL on failure), and its end. */
gx_serve_page *gx_serve_page_make(int nworkers, int *fd_out);
void gx_serve_page_free(gx_serve_page *p, int fd);

/* listen.c: bind every listener (one line on stderr when one fails),
 * and close them all. */
int gx_serve_listen(gx_server *s);
void gx_serve_unbind(gx_server *s);

/* conn.c: count c's bytes in and out into these (NULL: not counted). */
void gx_conn_counters(gx_conn *c, _Atomic uint64_t *in, _Atomic uint64_t *out);

/* worker.c: run worker `index` of s in this (freshly forked) process;
 * write one byte to ready_fd once it accepts. Returns the exit status. */
int gx_serve_worker(gx_server *s, int index, int ready_fd);

#endif
