/* ops_fs.c — one-shot file ops, file handles and the wall clock.
 *
 * Every handler here finishes synchronously: it validates the request,
 * does the syscalls, and answers with reply_* before returning. Errors are
 * the guest's errno (reply_errno), so the host sees "ENOENT" / "No such
 * file or directory". Ill-typed or missing fields are bad_request.
 *
 * File handles (file_open) are a small table of open fds; a file's
 * handle IS its guest fd number (always >= 3), so the File's fd() the
 * host shows can be passed to syscall/ioctl as the descriptor it is. A
 * number comes back only after its file was closed. They belong to the guest, not
 * to the connection, so they survive a host reconnect (a snapshot restore
 * must find them again); file_close frees one.
 */
#include "agent/agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *entry_type(mode_t m)
{
	if (S_ISREG(m)) return "file";
	if (S_ISDIR(m)) return "directory";
	if (S_ISLNK(m)) return "symlink";
	if (S_ISFIFO(m)) return "fifo";
	if (S_ISSOCK(m)) return "socket";
	if (S_ISBLK(m)) return "block_device";
	if (S_ISCHR(m)) return "char_device";
	return "other";
}

/* A path as a C string, or NULL after answering bad_request. */
static char *need_path(uint64_t id, struct proto_str s)
{
	return req_str(id, s, "invalid path field (NUL byte)");
}

/* Decode a {path} request (m: proto_m_path or proto_m_stat) and its
 * path, or NULL after answering. */
static char *path_req(uint64_t id, const msgpack_object *req, const struct proto_msg *m,
		      struct proto_path *q)
{
	if (req_decode(id, req, m, q) < 0)
		return NULL;
	return need_path(id, q->path);
}

#define READ_FILE_TOO_LARGE \
	"file larger than the maximum frame size (32 MiB); read it in pieces with " \
	"vm:open_file and file:read, or follow it with vm:tail_file"

void op_read_file(uint64_t id, const msgpack_object *req)
{
	struct proto_path q;
	char *path = path_req(id, req, &proto_m_path, &q);
	struct buf b = { 0 };
	int fd;

	if (!path)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		reply_errno(id, errno);
		goto out;
	}
	{
		struct stat st;

		/* A regular file too big for one frame is refused before
		 * reading it (files of unknown size hit the check below). */
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    (uint64_t)st.st_size > PROTO_IO_MAX) {
			reply_err(id, PROTO_ERR_TOO_LARGE, READ_FILE_TOO_LARGE, 0);
			goto out;
		}
	}
	for (;;) {
		ssize_t n;

		if (b.cap - b.len < 65536) {
			size_t want = b.cap ? b.cap * 2 : 65536;
			char *np = realloc(b.p, want);

			if (!np) {
				reply_errno(id, ENOMEM);
				goto out;
			}
			b.p = np;
			b.cap = want;
		}
		n = read(fd, b.p + b.len, b.cap - b.len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			reply_errno(id, errno);
			goto out;
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
		if (b.len > PROTO_IO_MAX) {
			reply_err(id, PROTO_ERR_TOO_LARGE, READ_FILE_TOO_LARGE, 0);
			goto out;
		}
	}
	{
		struct out o;

		reply_ok_begin(&o, id);
		proto_pack_bytes(&o.pk, b.p, b.len);
		out_send(&o, id);
	}
out:
	if (fd >= 0)
		close(fd);
	buf_free(&b);
	free(path);
}

void op_write_file(uint64_t id, const msgpack_object *req)
{
	struct proto_write_file q;
	char *path;
	const char *data;
	size_t n;
	int fd;

	if (req_decode(id, req, &proto_m_write_file, &q) < 0 ||
	    !(path = need_path(id, q.path)))
		return;
	data = q.data.p;
	n = q.data.n;
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY |
		  (q.append ? O_APPEND : O_TRUNC),
		  (mode_t)((q.has_mode ? q.mode : 0644) & 07777));
	if (fd < 0) {
		reply_errno(id, errno);
		goto out;
	}
	if (agent_write_all(fd, data, n) < 0) {
		int e = errno;

		close(fd);
		reply_errno(id, e);
		goto out;
	}
	if (close(fd) < 0) {
		reply_errno(id, errno);
		goto out;
	}
	reply_nil(id);
out:
	free(path);
}

void op_stat(uint64_t id, const msgpack_object *req)
{
	struct proto_path q;
	char *path = path_req(id, req, &proto_m_stat, &q);
	struct proto_stat r = { 0 };
	struct stat st;
	struct out o;

	if (!path)
		return;
	if ((q.follow ? stat(path, &st) : lstat(path, &st)) < 0) {
		reply_errno(id, errno);
		free(path);
		return;
	}
	free(path);
	r.size = (uint64_t)st.st_size;
	r.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	r.perm = st.st_mode & 07777;
	r.entry_type = proto_cstr(entry_type(st.st_mode));
	r.has_uid = r.has_gid = true;
	r.uid = st.st_uid;
	r.gid = st.st_gid;
	reply_ok_begin(&o, id);
	proto_pack_map(&o.pk, &proto_m_stat_reply, &r);
	out_send(&o, id);
}

struct dent {
	char *name;
	const char *type;
};

static int dent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dent *)a)->name,
		      ((const struct dent *)b)->name);
}

static void at_dent(const struct proto_list *l, size_t i, struct proto_elem *e)
{
	const struct dent *d = &((const struct dent *)l->ctx)[i];

	e->s = proto_cstr(d->name);
	e->v = proto_cstr(d->type);
}

void op_listdir(uint64_t id, const msgpack_object *req)
{
	struct proto_path q;
	char *path = path_req(id, req, &proto_m_path, &q);
	struct proto_list l;
	struct dent *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	struct out o;
	DIR *d;

	if (!path)
		return;
	d = opendir(path);
	if (!d) {
		reply_errno(id, errno);
		goto out;
	}
	while ((e = readdir(d))) {
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			struct dent *nv;

			cap = cap ? cap * 2 : 64;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				reply_errno(id, ENOMEM);
				goto out;
			}
			v = nv;
		}
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			st.st_mode = 0;
		v[n].type = entry_type(st.st_mode);
		v[n].name = strdup(e->d_name);
		if (!v[n].name) {
			reply_errno(id, ENOMEM);
			goto out;
		}
		n++;
	}
	qsort(v, n, sizeof(*v), dent_cmp);
	l = (struct proto_list){ n, at_dent, v, NULL };
	reply_ok_begin(&o, id);
	proto_pack_dirents(&o.pk, &l);
	out_send(&o, id);
out:
	if (d)
		closedir(d);
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
	free(path);
}

void op_mkdir(uint64_t id, const msgpack_object *req)
{
	struct proto_mkdir q;
	char *path;
	uint64_t perm;

	if (req_decode(id, req, &proto_m_mkdir, &q) < 0 || !(path = need_path(id, q.path)))
		return;
	perm = q.has_perm ? q.perm : 0755;
	if (q.parents) {
		/* mkdir -p: every prefix, existing directories are fine. */
		for (char *s = path + 1; ; s++) {
			char c = *s;
			struct stat st;

			if (c != '/' && c != 0)
				continue;
			*s = 0;
			if (mkdir(path, (mode_t)(perm & 07777)) < 0 &&
			    (errno != EEXIST || stat(path, &st) < 0 ||
			     !S_ISDIR(st.st_mode))) {
				int e = errno == EEXIST ? ENOTDIR : errno;

				reply_errno(id, e);
				goto out;
			}
			*s = c;
			if (!c || !s[1])
				break;
		}
	} else if (mkdir(path, (mode_t)(perm & 07777)) < 0) {
		reply_errno(id, errno);
		goto out;
	}
	reply_nil(id);
out:
	free(path);
}

void op_unlink(uint64_t id, const msgpack_object *req)
{
	struct proto_path q;
	char *path = path_req(id, req, &proto_m_path, &q);

	if (!path)
		return;
	if (unlink(path) < 0) {
		if ((errno == EISDIR || errno == EPERM) && rmdir(path) == 0)
			reply_nil(id);
		else
			reply_errno(id, errno == EPERM ? EISDIR : errno);
	} else {
		reply_nil(id);
	}
	free(path);
}

void op_rename(uint64_t id, const msgpack_object *req)
{
	struct proto_rename q;
	char *from, *to = NULL;

	if (req_decode(id, req, &proto_m_rename, &q) < 0 || !(from = need_path(id, q.from)))
		return;
	to = need_path(id, q.to);
	if (!to)
		goto out;
	if (rename(from, to) < 0)
		reply_errno(id, errno);
	else
		reply_nil(id);
out:
	free(from);
	free(to);
}

void op_clock_get(uint64_t id, const msgpack_object *req)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	reply_int(id, (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec);
}

void op_clock_set(uint64_t id, const msgpack_object *req)
{
	struct proto_clock_set q;
	int64_t ns;
	struct timespec ts;

	if (req_decode(id, req, &proto_m_clock_set, &q) < 0)
		return;
	ns = q.ns;
	ts.tv_sec = ns / 1000000000LL;
	ts.tv_nsec = ns % 1000000000LL;
	if (ts.tv_nsec < 0) {
		ts.tv_nsec += 1000000000LL;
		ts.tv_sec--;
	}
	if (clock_settime(CLOCK_REALTIME, &ts) < 0)
		reply_errno(id, errno);
	else
		reply_nil(id);
}

/* ---- file handles ---- */

struct fh {
	uint64_t handle;
	int fd;
};

static struct fh *fhs;
static size_t nfh, capfh;

static struct fh *fh_find(uint64_t handle)
{
	for (size_t i = 0; i < nfh; i++)
		if (fhs[i].handle == handle)
			return &fhs[i];
	return NULL;
}

/* A fresh worker: the parent's handles are not its (their fds were
 * closed wholesale by server_become_worker). */
void files_forget_all(void)
{
	nfh = 0;
}

int file_handle_fd(uint64_t handle)
{
	struct fh *f = fh_find(handle);

	return f ? f->fd : -1;
}

/* Decode a handle request (message m into q) and look its file up, or
 * answer bad_request / no_handle. */
static struct fh *need_fh(uint64_t id, const msgpack_object *req, const struct proto_msg *m,
			  struct proto_handle *q)
{
	struct fh *f;

	if (req_decode(id, req, m, q) < 0)
		return NULL;
	f = fh_find(q->handle);
	if (!f)
		reply_err(id, PROTO_ERR_NO_HANDLE, "file is closed", EBADF);
	return f;
}

void op_file_open(uint64_t id, const msgpack_object *req)
{
	struct proto_file_open q;
	char *path;
	uint64_t mode, perm;
	int flags = O_CLOEXEC | O_NOCTTY, fd;

	if (req_decode(id, req, &proto_m_file_open, &q) < 0 || !(path = need_path(id, q.path)))
		return;
	mode = q.mode;
	perm = q.has_perm ? q.perm : 0644;
	if (mode & ~(uint64_t)PROTO_OPEN_ALL) {
		reply_bad(id, "mode must be a set of OpenMode bits");
		goto out;
	}
	if (!(mode & (PROTO_OPEN_READ | PROTO_OPEN_WRITE | PROTO_OPEN_APPEND))) {
		reply_bad(id, "open mode needs read, write or append");
		goto out;
	}
	if ((mode & PROTO_OPEN_READ) && (mode & (PROTO_OPEN_WRITE | PROTO_OPEN_APPEND)))
		flags |= O_RDWR;
	else if (mode & PROTO_OPEN_READ)
		flags |= O_RDONLY;
	else
		flags |= O_WRONLY;
	if (mode & PROTO_OPEN_CREATE) flags |= O_CREAT;
	if (mode & PROTO_OPEN_TRUNCATE) flags |= O_TRUNC;
	if (mode & PROTO_OPEN_APPEND) flags |= O_APPEND;
	if (mode & PROTO_OPEN_EXCLUSIVE) flags |= O_EXCL;
	if (nfh == capfh) {
		size_t nc = capfh ? capfh * 2 : 16;
		struct fh *nv = realloc(fhs, nc * sizeof(*nv));

		if (!nv) {
			reply_errno(id, ENOMEM);
			goto out;
		}
		fhs = nv;
		capfh = nc;
	}
	fd = open(path, flags, (mode_t)(perm & 07777));
	if (fd < 0) {
		reply_errno(id, errno);
		goto out;
	}
	if (fd < 3) {             /* never hand out 0-2 (0 means "closed") */
		int hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);

		close(fd);
		if (hi < 0) {
			reply_errno(id, errno);
			goto out;
		}
		fd = hi;
	}
	fhs[nfh] = (struct fh){ (uint64_t)fd, fd };
	reply_int(id, (int64_t)fhs[nfh].handle);
	nfh++;
out:
	free(path);
}

void op_file_read(uint64_t id, const msgpack_object *req)
{
	struct proto_handle q;
	struct fh *f = need_fh(id, req, &proto_m_file_read, &q);
	uint64_t want = 65536;
	struct out o;
	char *p;
	ssize_t n;

	if (!f)
		return;
	if (q.has_n)
		want = q.n;
	if (want > PROTO_IO_MAX)
		want = PROTO_IO_MAX;
	p = malloc(want ? want : 1);
	if (!p) {
		reply_errno(id, ENOMEM);
		return;
	}
	do
		n = read(f->fd, p, want);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		reply_errno(id, errno);
	} else {
		reply_ok_begin(&o, id);
		proto_pack_bytes(&o.pk, p, (size_t)n);
		out_send(&o, id);
	}
	free(p);
}

void op_file_write(uint64_t id, const msgpack_object *req)
{
	struct proto_handle q;
	struct fh *f = need_fh(id, req, &proto_m_handle_data, &q);
	const char *data;
	size_t n;
	ssize_t k;

	if (!f)
		return;
	data = q.data.p;
	n = q.data.n;
	do
		k = write(f->fd, data, n);
	while (k < 0 && errno == EINTR);
	if (k < 0)
		reply_errno(id, errno);
	else
		reply_int(id, k);
}

void op_file_seek(uint64_t id, const msgpack_object *req)
{
	struct proto_handle q;
	struct fh *f = need_fh(id, req, &proto_m_file_seek, &q);
	int64_t off;
	const char *w = "set";
	size_t wn = 3;
	int whence;
	off_t r;

	if (!f)
		return;
	off = q.offset;
	if (q.has_whence) {
		w = q.whence.p;
		wn = q.whence.n;
	}
	if (wn == 3 && !memcmp(w, "set", 3))
		whence = SEEK_SET;
	else if (wn == 3 && !memcmp(w, "cur", 3))
		whence = SEEK_CUR;
	else if (wn == 3 && !memcmp(w, "end", 3))
		whence = SEEK_END;
	else {
		reply_bad(id, "whence must be set/cur/end");
		return;
	}
	r = lseek(f->fd, (off_t)off, whence);
	if (r < 0)
		reply_errno(id, errno);
	else
		reply_int(id, (int64_t)r);
}

void op_file_close(uint64_t id, const msgpack_object *req)
{
	struct proto_handle q;
	struct fh *f = need_fh(id, req, &proto_m_handle, &q);

	if (!f)
		return;
	close(f->fd);
	*f = fhs[--nfh];
	reply_nil(id);
}
