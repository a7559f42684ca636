/* codec.c — the field tables of every agent request and structured reply,
 * and the one generic encoder / decoder that walks them (see codec.h).
 * Pure msgpack-c: linked into the host and into the static agent. */
#include "proto/codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/protocol.h"

/* ---- lists ------------------------------------------------------------- */

static void at_cstrs(const struct proto_list *l, size_t i, struct proto_elem *e)
{
	e->s = proto_cstr(((const char *const *)l->ctx)[i]);
}

void proto_list_cstrs(struct proto_list *l, const char *const *v, size_t n)
{
	memset(l, 0, sizeof *l);
	l->n = n;
	l->at = at_cstrs;
	l->ctx = v;
}

static void at_ints(const struct proto_list *l, size_t i, struct proto_elem *e)
{
	e->i = ((const int64_t *)l->ctx)[i];
}

void proto_list_ints(struct proto_list *l, const int64_t *v, size_t n)
{
	memset(l, 0, sizeof *l);
	l->n = n;
	l->at = at_ints;
	l->ctx = v;
}

struct proto_elem proto_list_at(const struct proto_list *l, size_t i)
{
	struct proto_elem e;
	memset(&e, 0, sizeof e);
	l->at(l, i, &e);
	return e;
}

/* An int in either form; a uint above INT64_MAX as two's complement
 * (syscall arguments are raw machine words). */
static int obj_word(const msgpack_object *o, int64_t *v)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		*v = (int64_t)o->via.u64;
		return 0;
	}
	return proto_obj_int(o, v);
}

/* Decoded lists: element readers over the checked msgpack object. */
static void at_obj_bytes(const struct proto_list *l, size_t i, struct proto_elem *e)
{
	proto_obj_bytes(&l->obj->via.array.ptr[i], &e->s.p, &e->s.n);
}

static void at_obj_env(const struct proto_list *l, size_t i, struct proto_elem *e)
{
	proto_obj_bytes(&l->obj->via.map.ptr[i].key, &e->s.p, &e->s.n);
	proto_obj_bytes(&l->obj->via.map.ptr[i].val, &e->v.p, &e->v.n);
}

static void at_obj_int(const struct proto_list *l, size_t i, struct proto_elem *e)
{
	obj_word(&l->obj->via.array.ptr[i], &e->i);
}

static void at_obj_patch(const struct proto_list *l, size_t i, struct proto_elem *e)
{
	const msgpack_object *p = l->obj->via.array.ptr[i].via.array.ptr;
	proto_obj_int(&p[0], &e->i);
	proto_obj_int(&p[1], &e->j);
	proto_obj_int(&p[2], &e->k);
}

static void at_obj_dirent(const struct proto_list *l, size_t i, struct proto_elem *e)
{
	const msgpack_object *d = &l->obj->via.array.ptr[i];
	proto_get_bytes(d, "name", &e->s.p, &e->s.n);
	proto_get_bytes(d, "entry_type", &e->v.p, &e->v.n);
}

/* ---- strings ----------------------------------------------------------- */

struct proto_str proto_cstr(const char *c)
{
	struct proto_str s = { c ? c : "", c ? strlen(c) : 0 };
	return s;
}

bool proto_str_is(struct proto_str s, const char *c)
{
	return strlen(c) == s.n && !memcmp(s.p, c, s.n);
}

char *proto_str_dup(struct proto_str s)
{
	char *o;
	if (s.n && memchr(s.p, 0, s.n)) {
		errno = EINVAL;
		return NULL;
	}
	if (!(o = malloc(s.n + 1)))
		return NULL;
	if (s.n)
		memcpy(o, s.p, s.n);
	o[s.n] = 0;
	return o;
}

/* ---- the generic encoder ----------------------------------------------- */

#define NO_HAS ((size_t)-1)

static const void *fp(const void *s, size_t off)
{
	return (const char *)s + off;
}

static bool present(const struct proto_field *f, const void *s)
{
	return (f->flags & PROTO_REQD) || *(const bool *)fp(s, f->has);
}

size_t proto_nfields(const struct proto_msg *m, const void *s)
{
	size_t n = 0;
	for (size_t i = 0; i < m->n; i++)
		if (present(&m->f[i], s) || (m->f[i].flags & PROTO_NIL))
			n++;
	return n;
}

static void pack_list(msgpack_packer *pk, enum proto_ftype t, const struct proto_list *l)
{
	if (t == PT_ENV)
		msgpack_pack_map(pk, l->n);
	else
		msgpack_pack_array(pk, l->n);
	for (size_t i = 0; i < l->n; i++) {
		struct proto_elem e = proto_list_at(l, i);
		switch (t) {
		case PT_STRS:
			msgpack_pack_str(pk, e.s.n);
			msgpack_pack_str_body(pk, e.s.p, e.s.n);
			break;
		case PT_BINS:
			proto_pack_bytes(pk, e.s.p, e.s.n);
			break;
		case PT_ENV:
			msgpack_pack_str(pk, e.s.n);
			msgpack_pack_str_body(pk, e.s.p, e.s.n);
			msgpack_pack_str(pk, e.v.n);
			msgpack_pack_str_body(pk, e.v.p, e.v.n);
			break;
		case PT_INTS:
			msgpack_pack_int64(pk, e.i);
			break;
		case PT_PATCHES:
			msgpack_pack_array(pk, 3);
			msgpack_pack_int64(pk, e.i);
			msgpack_pack_int64(pk, e.j);
			msgpack_pack_int64(pk, e.k);
			break;
		default:
			break;
		}
	}
}

static void pack_value(msgpack_packer *pk, const struct proto_field *f, const void *v)
{
	const struct proto_str *s = v;
	const struct proto_strint *si = v;
	switch (f->t) {
	case PT_STR:
		msgpack_pack_str(pk, s->n);
		msgpack_pack_str_body(pk, s->p, s->n);
		break;
	case PT_BIN:
		proto_pack_bytes(pk, s->p, s->n);
		break;
	case PT_INT:
		msgpack_pack_int64(pk, *(const int64_t *)v);
		break;
	case PT_UINT:
		msgpack_pack_uint64(pk, *(const uint64_t *)v);
		break;
	case PT_BOOL:
		if (*(const bool *)v)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		break;
	case PT_STRINT:
		if (si->is_int) {
			msgpack_pack_int64(pk, si->i);
		} else {
			msgpack_pack_str(pk, si->s.n);
			msgpack_pack_str_body(pk, si->s.p, si->s.n);
		}
		break;
	default:
		pack_list(pk, f->t, v);
		break;
	}
}

void proto_pack_fields(msgpack_packer *pk, const struct proto_msg *m, const void *s)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct proto_field *f = &m->f[i];
		bool has = present(f, s);
		if (!has && !(f->flags & PROTO_NIL))
			continue;
		proto_pack_key(pk, f->key);
		if (has)
			pack_value(pk, f, fp(s, f->off));
		else
			msgpack_pack_nil(pk);
	}
}

void proto_pack_map(msgpack_packer *pk, const struct proto_msg *m, const void *s)
{
	msgpack_pack_map(pk, proto_nfields(m, s));
	proto_pack_fields(pk, m, s);
}

/* ---- the generic decoder ----------------------------------------------- */

/* A "field `key`: what" message in a per-thread buffer (valid until
 * the next decode on this thread). rc: the decoder's -1 (missing when
 * missing, else ill-typed) or -2 (a list over its bound). */
static const char *bad_msg(const struct proto_field *f, bool missing, int rc)
{
	static _Thread_local char buf[96];
	static const char *const what[] = {
		[PT_STR] = "not a string", [PT_BIN] = "not bytes",
		[PT_INT] = "not an integer", [PT_UINT] = "not an unsigned integer",
		[PT_BOOL] = "not a boolean", [PT_STRS] = "not an array of strings",
		[PT_BINS] = "not an array of bytes", [PT_ENV] = "not a map of strings",
		[PT_INTS] = "not an array of integers",
		[PT_PATCHES] = "not an array of [target, offset, source] integers",
		[PT_STRINT] = "not a string or an integer",
	};
	if (rc == -2)
		snprintf(buf, sizeof buf, "field `%s`: more than %zu elements", f->key,
			 f->max ? f->max : (size_t)PROTO_LIST_MAX);
	else
		snprintf(buf, sizeof buf, "field `%s`: %s", f->key,
			 missing ? "missing" : what[f->t]);
	return buf;
}

static bool is_bytes(const msgpack_object *o)
{
	return o->type == MSGPACK_OBJECT_STR || o->type == MSGPACK_OBJECT_BIN;
}

static bool is_int(const msgpack_object *o)
{
	int64_t v;
	return proto_obj_int(o, &v) == 0;
}

static bool is_patch(const msgpack_object *o)
{
	return o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 3 &&
	       is_int(&o->via.array.ptr[0]) && is_int(&o->via.array.ptr[1]) &&
	       is_int(&o->via.array.ptr[2]);
}

/* Check o as list field f into l: 0, -1 (ill-typed) or -2 (too long). */
static int dec_list(const struct proto_field *f, const msgpack_object *o, struct proto_list *l)
{
	size_t max = f->max ? f->max : PROTO_LIST_MAX;
	memset(l, 0, sizeof *l);
	l->obj = o;
	if (f->t == PT_ENV) {
		if (o->type != MSGPACK_OBJECT_MAP)
			return -1;
		if (o->via.map.size > max)
			return -2;
		for (uint32_t i = 0; i < o->via.map.size; i++)
			if (!is_bytes(&o->via.map.ptr[i].key) || !is_bytes(&o->via.map.ptr[i].val))
				return -1;
		l->n = o->via.map.size;
		l->at = at_obj_env;
		return 0;
	}
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return -1;
	if (o->via.array.size > max)
		return -2;
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		const msgpack_object *e = &o->via.array.ptr[i];
		int64_t v;
		bool ok = f->t == PT_INTS ? obj_word(e, &v) == 0
			: f->t == PT_PATCHES ? is_patch(e) : is_bytes(e);
		if (!ok)
			return -1;
	}
	l->n = o->via.array.size;
	l->at = f->t == PT_INTS ? at_obj_int : f->t == PT_PATCHES ? at_obj_patch : at_obj_bytes;
	return 0;
}

static int dec_value(const struct proto_field *f, const msgpack_object *o, void *v)
{
	struct proto_str *s = v;
	struct proto_strint *si = v;
	int64_t i;
	switch (f->t) {
	case PT_STR:
	case PT_BIN:
		return proto_obj_bytes(o, &s->p, &s->n);
	case PT_INT:
		return proto_obj_int(o, v);
	case PT_UINT:
		if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
			return -1;
		*(uint64_t *)v = o->via.u64;
		return 0;
	case PT_BOOL:
		if (o->type != MSGPACK_OBJECT_BOOLEAN)
			return -1;
		*(bool *)v = o->via.boolean;
		return 0;
	case PT_STRINT:
		if (proto_obj_bytes(o, &si->s.p, &si->s.n) == 0)
			return 0;
		if (proto_obj_int(o, &i) < 0)
			return -1;
		si->is_int = true;
		si->i = i;
		return 0;
	default:
		return dec_list(f, o, v);
	}
}

int proto_decode(const struct proto_msg *m, const msgpack_object *o, void *s, const char **bad)
{
	static _Thread_local char buf[64];
	const char *why = NULL;
	int rc;
	memset(s, 0, m->size);
	if (!o || o->type != MSGPACK_OBJECT_MAP) {
		snprintf(buf, sizeof buf, "%s: not a map", m->name);
		why = buf;
		goto fail;
	}
	for (size_t i = 0; i < m->n; i++) {
		const struct proto_field *f = &m->f[i];
		const msgpack_object *v = proto_get(o, f->key);
		if (!v) {
			if (f->flags & PROTO_REQD) {
				why = bad_msg(f, true, -1);
				goto fail;
			}
			continue;
		}
		rc = dec_value(f, v, (char *)s + f->off);
		if (rc < 0) {
			why = bad_msg(f, false, rc);
			goto fail;
		}
		if (f->has != NO_HAS)
			*(bool *)((char *)s + f->has) = true;
	}
	return 0;
fail:
	if (bad)
		*bad = why;
	return -1;
}

/* ---- listdir ----------------------------------------------------------- */

void proto_pack_dirents(msgpack_packer *pk, const struct proto_list *ents)
{
	msgpack_pack_array(pk, ents->n);
	for (size_t i = 0; i < ents->n; i++) {
		struct proto_elem e = proto_list_at(ents, i);
		msgpack_pack_map(pk, 2);
		proto_pack_key(pk, "name");
		msgpack_pack_str(pk, e.s.n);
		msgpack_pack_str_body(pk, e.s.p, e.s.n);
		proto_pack_key(pk, "entry_type");
		msgpack_pack_str(pk, e.v.n);
		msgpack_pack_str_body(pk, e.v.p, e.v.n);
	}
}

int proto_decode_dirents(const msgpack_object *o, struct proto_list *ents, const char **bad)
{
	const char *p;
	size_t n;
	memset(ents, 0, sizeof *ents);
	if (!o || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > PROTO_LIST_MAX) {
		if (bad)
			*bad = "listdir: not an array";
		return -1;
	}
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		const msgpack_object *d = &o->via.array.ptr[i];
		if (proto_get_bytes(d, "name", &p, &n) < 0 ||
		    proto_get_bytes(d, "entry_type", &p, &n) < 0) {
			if (bad)
				*bad = "listdir entry: needs name and entry_type strings";
			return -1;
		}
	}
	ents->n = o->via.array.size;
	ents->obj = o;
	ents->at = at_obj_dirent;
	return 0;
}

/* ---- the tables ---------------------------------------------------------- */

#define REQ(S, k, t, m) { k, t, PROTO_REQD, offsetof(S, m), NO_HAS, 0 }
#define OPT(S, k, t, m) { k, t, 0, offsetof(S, m), offsetof(S, has_##m), 0 }
#define NIL(S, k, t, m) { k, t, PROTO_NIL, offsetof(S, m), offsetof(S, has_##m), 0 }
#define OPTMAX(S, k, t, m, mx) { k, t, 0, offsetof(S, m), offsetof(S, has_##m), mx }
#define MSG(var, nm, S, tab) \
	const struct proto_msg var = { nm, tab, sizeof tab / sizeof tab[0], sizeof(S) }

static const struct proto_field f_exec[] = {
	OPT(struct proto_exec, "argv", PT_STRS, argv),
	OPT(struct proto_exec, "shell", PT_STR, shell),
	OPT(struct proto_exec, "env", PT_ENV, env),
	OPT(struct proto_exec, "env_clear", PT_BOOL, env_clear),
	OPT(struct proto_exec, "cwd", PT_STR, cwd),
	{ "stdin", PT_BIN, 0, offsetof(struct proto_exec, stdin_),
	  offsetof(struct proto_exec, has_stdin), 0 },
	OPT(struct proto_exec, "timeout_ms", PT_UINT, timeout_ms),
};
MSG(proto_m_exec, "exec", struct proto_exec, f_exec);

static const struct proto_field f_path[] = {
	REQ(struct proto_path, "path", PT_STR, path),
};
MSG(proto_m_path, "path request", struct proto_path, f_path);

static const struct proto_field f_stat[] = {
	REQ(struct proto_path, "path", PT_STR, path),
	OPT(struct proto_path, "follow", PT_BOOL, follow),
};
MSG(proto_m_stat, "stat", struct proto_path, f_stat);

static const struct proto_field f_write_file[] = {
	REQ(struct proto_write_file, "path", PT_STR, path),
	REQ(struct proto_write_file, PROTO_F_DATA, PT_BIN, data),
	OPT(struct proto_write_file, "mode", PT_UINT, mode),
	OPT(struct proto_write_file, "append", PT_BOOL, append),
};
MSG(proto_m_write_file, "write_file", struct proto_write_file, f_write_file);

static const struct proto_field f_mkdir[] = {
	REQ(struct proto_mkdir, "path", PT_STR, path),
	OPT(struct proto_mkdir, "parents", PT_BOOL, parents),
	OPT(struct proto_mkdir, "perm", PT_UINT, perm),
};
MSG(proto_m_mkdir, "mkdir", struct proto_mkdir, f_mkdir);

static const struct proto_field f_rename[] = {
	REQ(struct proto_rename, "from", PT_STR, from),
	REQ(struct proto_rename, "to", PT_STR, to),
};
MSG(proto_m_rename, "rename", struct proto_rename, f_rename);

static const struct proto_field f_clock_set[] = {
	REQ(struct proto_clock_set, "ns", PT_INT, ns),
};
MSG(proto_m_clock_set, "clock_set", struct proto_clock_set, f_clock_set);

#define H struct proto_handle
static const struct proto_field f_handle[] = { REQ(H, "handle", PT_UINT, handle) };
MSG(proto_m_handle, "handle request", struct proto_handle, f_handle);
static const struct proto_field f_handle_opt[] = { OPT(H, "handle", PT_UINT, handle) };
MSG(proto_m_handle_opt, "worker_spawn", struct proto_handle, f_handle_opt);
static const struct proto_field f_wait[] = {
	REQ(H, "handle", PT_UINT, handle),
	OPT(H, "timeout_ms", PT_UINT, timeout_ms),
};
MSG(proto_m_wait, "wait", struct proto_handle, f_wait);
static const struct proto_field f_kill[] = {
	REQ(H, "handle", PT_UINT, handle),
	OPT(H, "signal", PT_INT, signal),
};
MSG(proto_m_kill, "kill", struct proto_handle, f_kill);
static const struct proto_field f_handle_data[] = {
	REQ(H, "handle", PT_UINT, handle),
	REQ(H, PROTO_F_DATA, PT_BIN, data),
};
MSG(proto_m_handle_data, "write", struct proto_handle, f_handle_data);
static const struct proto_field f_proc_stream[] = {
	REQ(H, "handle", PT_UINT, handle),
	REQ(H, "which", PT_STR, which),
};
MSG(proto_m_proc_stream, "proc_stream", struct proto_handle, f_proc_stream);
static const struct proto_field f_file_read[] = {
	REQ(H, "handle", PT_UINT, handle),
	OPT(H, "n", PT_UINT, n),
};
MSG(proto_m_file_read, "file_read", struct proto_handle, f_file_read);
static const struct proto_field f_file_seek[] = {
	REQ(H, "handle", PT_UINT, handle),
	OPT(H, "offset", PT_INT, offset),
	OPT(H, "whence", PT_STR, whence),
};
MSG(proto_m_file_seek, "file_seek", struct proto_handle, f_file_seek);
#undef H

static const struct proto_field f_file_open[] = {
	REQ(struct proto_file_open, "path", PT_STR, path),
	REQ(struct proto_file_open, "mode", PT_UINT, mode),
	OPT(struct proto_file_open, "perm", PT_UINT, perm),
};
MSG(proto_m_file_open, "file_open", struct proto_file_open, f_file_open);

static const struct proto_field f_tail[] = {
	REQ(struct proto_tail, "path", PT_STR, path),
	OPT(struct proto_tail, "start", PT_STRINT, start),
};
MSG(proto_m_tail, "tail", struct proto_tail, f_tail);

static const struct proto_field f_channel[] = {
	REQ(struct proto_channel, PROTO_F_CHANNEL, PT_UINT, channel),
};
MSG(proto_m_channel, "channel", struct proto_channel, f_channel);

static const struct proto_field f_syscall[] = {
	REQ(struct proto_syscall, "nr", PT_INT, nr),
	OPTMAX(struct proto_syscall, "args", PT_INTS, args, PROTO_SYSCALL_ARGS),
	OPT(struct proto_syscall, "bufs", PT_BINS, bufs),
	OPT(struct proto_syscall, "ptrs", PT_INTS, ptrs),
	OPT(struct proto_syscall, PROTO_F_PATCHES, PT_PATCHES, patches),
};
MSG(proto_m_syscall, "syscall", struct proto_syscall, f_syscall);

static const struct proto_field f_poweroff[] = {
	OPT(struct proto_poweroff, "reboot", PT_BOOL, reboot),
};
MSG(proto_m_poweroff, "poweroff", struct proto_poweroff, f_poweroff);

static const struct proto_field f_read_mem[] = {
	REQ(struct proto_read_mem, "addr", PT_UINT, addr),
	REQ(struct proto_read_mem, "len", PT_UINT, len),
};
MSG(proto_m_read_mem, "read_mem", struct proto_read_mem, f_read_mem);

#define N struct proto_net_setup
static const struct proto_field f_net_setup[] = {
	OPT(N, "mac", PT_STR, mac),
	OPT(N, "addr", PT_STR, addr),
	OPT(N, "gateway", PT_STR, gateway),
	OPT(N, "dns", PT_STR, dns),
	OPT(N, "hosts", PT_STR, hosts),
	OPT(N, "prefix", PT_UINT, prefix),
	OPT(N, "up", PT_BOOL, up),
	OPT(N, "wait_ms", PT_UINT, wait_ms),
};
#undef N
MSG(proto_m_net_setup, "net_setup", struct proto_net_setup, f_net_setup);

static const struct proto_field f_fault[] = {
	REQ(struct proto_fault, "mode", PT_STR, mode),
};
MSG(proto_m_fault, "fault_frame", struct proto_fault, f_fault);

/* ---- reply tables ---- */

static const struct proto_field f_exec_result[] = {
	REQ(struct proto_exec_result, "status", PT_INT, status),
	OPT(struct proto_exec_result, "stdout", PT_BIN, out),
	OPT(struct proto_exec_result, "stderr", PT_BIN, err),
	NIL(struct proto_exec_result, "signal", PT_INT, signal),
	OPT(struct proto_exec_result, "timed_out", PT_BOOL, timed_out),
};
MSG(proto_m_exec_result, "ExecResult", struct proto_exec_result, f_exec_result);

static const struct proto_field f_stat_reply[] = {
	REQ(struct proto_stat, "size", PT_UINT, size),
	REQ(struct proto_stat, "mtime_ns", PT_INT, mtime_ns),
	REQ(struct proto_stat, "perm", PT_UINT, perm),
	REQ(struct proto_stat, "entry_type", PT_STR, entry_type),
	OPT(struct proto_stat, "uid", PT_UINT, uid),
	OPT(struct proto_stat, "gid", PT_UINT, gid),
};
MSG(proto_m_stat_reply, "stat reply", struct proto_stat, f_stat_reply);

static const struct proto_field f_handle_pid[] = {
	REQ(struct proto_handle_pid, "handle", PT_UINT, handle),
	OPT(struct proto_handle_pid, "pid", PT_INT, pid),
};
MSG(proto_m_handle_pid, "spawn reply", struct proto_handle_pid, f_handle_pid);

static const struct proto_field f_proc_status[] = {
	REQ(struct proto_proc_status, "running", PT_BOOL, running),
	OPT(struct proto_proc_status, "pid", PT_INT, pid),
	OPT(struct proto_proc_status, "status", PT_INT, status),
	NIL(struct proto_proc_status, "signal", PT_INT, signal),
};
MSG(proto_m_proc_status, "proc_status reply", struct proto_proc_status, f_proc_status);

static const struct proto_field f_syscall_result[] = {
	REQ(struct proto_syscall_result, "ret", PT_INT, ret),
	OPT(struct proto_syscall_result, PROTO_F_ERRNO, PT_INT, err_no),
	OPT(struct proto_syscall_result, "out_bufs", PT_BINS, out_bufs),
};
MSG(proto_m_syscall_result, "syscall reply", struct proto_syscall_result, f_syscall_result);

static const struct proto_field f_ifname[] = {
	REQ(struct proto_ifname, "ifname", PT_STR, ifname),
};
MSG(proto_m_ifname, "net_setup reply", struct proto_ifname, f_ifname);

static const struct proto_field f_worker_exit[] = {
	REQ(struct proto_worker_exit, "status", PT_INT, status),
	NIL(struct proto_worker_exit, "signal", PT_INT, signal),
};
MSG(proto_m_worker_exit, "worker_join reply", struct proto_worker_exit, f_worker_exit);

const struct proto_msg *const proto_msgs[] = {
	&proto_m_exec, &proto_m_path, &proto_m_stat, &proto_m_write_file, &proto_m_mkdir,
	&proto_m_rename, &proto_m_clock_set, &proto_m_handle, &proto_m_handle_opt,
	&proto_m_wait, &proto_m_kill, &proto_m_handle_data, &proto_m_proc_stream,
	&proto_m_file_read, &proto_m_file_seek, &proto_m_file_open, &proto_m_tail,
	&proto_m_channel, &proto_m_syscall, &proto_m_poweroff, &proto_m_read_mem,
	&proto_m_net_setup, &proto_m_fault,
	&proto_m_exec_result, &proto_m_stat_reply, &proto_m_handle_pid,
	&proto_m_proc_status, &proto_m_syscall_result, &proto_m_ifname, &proto_m_worker_exit,
};
const size_t proto_nmsgs = sizeof proto_msgs / sizeof proto_msgs[0];
