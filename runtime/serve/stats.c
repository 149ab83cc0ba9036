/*
 * gx_serve's figures: the page the master shares with its workers, and
 * the reader that another program of the same user uses (gonex-stat).
 *
 * The page is a memfd named "gonex-serve", mapped MAP_SHARED by the
 * master before its first fork, so every worker writes its slot in place
 * and every process of the server holds the fd: a reader finds it through
 * /proc/PID/fd of the master or of any worker, the way gx_stats_open
 * finds a runtime's arena. The reader maps it read-only and copies it out
 * with every field bounded: a page it did not make is not trusted.
 */
#include "serve/serve.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

gx_serve_page *gx_serve_page_make(int nworkers, int *fd_out)
{
	int fd = memfd_create("gonex-serve", MFD_CLOEXEC);
	if (fd < 0)
		return NULL;
	gx_serve_page *p = MAP_FAILED;
	if (ftruncate(fd, sizeof *p) == 0)
		p = mmap(NULL, sizeof *p, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		close(fd);
		return NULL;
	}
	p->master_pid = getpid();
	p->workers = nworkers;
	/* release: pairs with the acquire in gx_serve_stats_copy */
	atomic_store_explicit(&p->magic, GX_SERVE_MAGIC, memory_order_release);
	*fd_out = fd;
	return p;
}

void gx_serve_page_free(gx_serve_page *p, int fd)
{
	if (p)
		munmap(p, sizeof *p);
	if (fd >= 0)
		close(fd);
}

static void gx_serve_stats_copy(const gx_serve_page *p, gx_serve_stats *out)
{
	memset(out, 0, sizeof *out);
	out->master_pid = p->master_pid;
	int n = p->workers;
	out->workers = n < 0 ? 0 : n > GX_SERVE_MAX_WORKERS ? GX_SERVE_MAX_WORKERS : n;
	for (int i = 0; i < out->workers; i++) {
		const gx_serve_figs *f = &p->w[i];
		gx_serve_stats_worker *w = &out->w[i];
		w->pid = atomic_load_explicit(&f->pid, memory_order_relaxed);
		w->cpu = f->cpu;
		w->accepted = atomic_load_explicit(&f->accepted, memory_order_relaxed);
		w->active = atomic_load_explicit(&f->active, memory_order_relaxed);
		w->closed = atomic_load_explicit(&f->closed, memory_order_relaxed);
		w->deadline = atomic_load_explicit(&f->deadline, memory_order_relaxed);
		w->cancelled = atomic_load_explicit(&f->cancelled, memory_order_relaxed);
		w->bytes_in = atomic_load_explicit(&f->bytes_in, memory_order_relaxed);
		w->bytes_out = atomic_load_explicit(&f->bytes_out, memory_order_relaxed);
		w->restarts = atomic_load_explicit(&f->restarts, memory_order_relaxed);
	}
}

/* Copy the page behind /proc/PID/fd/NAME if it is one: 0, or -errno. */
static int gx_serve_stats_try(const char *path, gx_serve_stats *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	const gx_serve_page *p = MAP_FAILED;
	if (fstat(fd, &st) == 0 && st.st_size == (off_t)sizeof *p)
		p = mmap(NULL, sizeof *p, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -EPROTO;
	int rc = -EPROTO;
	/* acquire: pairs with gx_serve_page_make's release of the magic */
	if (atomic_load_explicit(&p->magic, memory_order_acquire) == GX_SERVE_MAGIC) {
		gx_serve_stats_copy(p, out);
		rc = 0;
	}
	munmap((void *)p, sizeof *p);
	return rc;
}

int gx_serve_stats_read(int pid, gx_serve_stats *out)
{
	if (pid <= 0 || !out)
		return -EINVAL;
	char dir[64];
	snprintf(dir, sizeof dir, "/proc/%d/fd", pid);
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? -ENOENT : -errno;
	int rc = -ENOENT;
	struct dirent *de;
	while (rc != 0 && (de = readdir(d))) {
		char path[320], link[256];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		ssize_t l = readlink(path, link, sizeof link - 1);
		if (de->d_name[0] == '.' || l <= 0)
			continue;
		link[l] = 0;
		if (strncmp(link, "/memfd:gonex-serve", 18) == 0)
			rc = gx_serve_stats_try(path, out);
	}
	closedir(d);
	return rc;
}
