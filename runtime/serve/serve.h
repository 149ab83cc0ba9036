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

#define GX_SERVE_MAX_WORKERS 256

/* One worker's figures, in a page the master shares with its workers
 * (MAP_SHARED, made before the first fork); each slot is written by the
 * worker that holds it now. */
typedef struct gx_serve_figs {
	_Atomic uint64_t accepted;  /* connections taken */
	_Atomic uint64_t active;    /* open now */
	_Atomic uint64_t cancelled; /* still open at a drain deadline */
	_Atomic uint64_t closed;    /* finished */
} gx_serve_figs;

/* The server as the master set it up; a forked worker reads its own
 * copy (fork copies it), never the master's. */
typedef struct gx_serve {
	gx_serve_config cfg;
	gx_serve_fn handler;
	void *arg;
	int nlisten;
	int lfd[GX_SERVE_MAX_LISTEN];
	int port[GX_SERVE_MAX_LISTEN];
	char upath[GX_SERVE_MAX_LISTEN][108]; /* Unix socket paths to unlink */
	int nworkers;
	int cpu[GX_SERVE_MAX_WORKERS]; /* worker i's CPU, -1 unpinned */
	gx_serve_figs *figs;           /* nworkers slots, shared */
} gx_server;

/* worker.c: run worker `index` of s in this (freshly forked) process;
 * write one byte to ready_fd once it accepts. Returns the exit status. */
int gx_serve_worker(gx_server *s, int index, int ready_fd);

#endif
