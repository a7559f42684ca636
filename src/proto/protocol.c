/* protocol.c — encode/decode helpers shared by host and agent.
 *
 * Owns the exact byte shape of the pinned messages (Hello, HelloOk,
 * HelloErr, OpResult ok/err) and the small typed accessors both sides use
 * to pick fields out of a decoded msgpack map. Everything here is pure:
 * no I/O, no allocation beyond what the caller's msgpack_packer does.
 * Compiled into the host library and into the static agent, so it depends
 * on msgpack-c and libc only. Field order inside each map is part of the
 * pinned shape: change it only together with PROTOCOL_VERSION.
 */
#include "proto/protocol.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void proto_pack_key(msgpack_packer *pk, const char *key)
{
	size_t n = strlen(key);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, key, n);
}

void proto_pack_cstr(msgpack_packer *pk, const char *s)
{
	proto_pack_key(pk, s ? s : "");
}

void proto_pack_bytes(msgpack_packer *pk, const void *p, size_t n)
{
	msgpack_pack_bin(pk, n);
	if (n)
		msgpack_pack_bin_body(pk, p, n);
}

void proto_pack_hello(msgpack_packer *pk, uint32_t version)
{
	msgpack_pack_map(pk, 2);
	proto_pack_key(pk, PROTO_F_KIND);
	msgpack_pack_int(pk, PROTO_K_HELLO);
	proto_pack_key(pk, PROTO_F_PROTOCOL_VERSION);
	msgpack_pack_uint32(pk, version);
}

void proto_pack_hello_ok(msgpack_packer *pk, const char *agent_version,
			 const char *guest_os, const char *const *features,
			 size_t nfeatures)
{
	msgpack_pack_map(pk, 4);
	proto_pack_key(pk, PROTO_F_KIND);
	msgpack_pack_int(pk, PROTO_K_HELLO_OK);
	proto_pack_key(pk, PROTO_F_AGENT_VERSION);
	proto_pack_cstr(pk, agent_version);
	proto_pack_key(pk, PROTO_F_GUEST_OS);
	proto_pack_cstr(pk, guest_os);
	proto_pack_key(pk, PROTO_F_FEATURES);
	msgpack_pack_array(pk, nfeatures);
	for (size_t i = 0; i < nfeatures; i++)
		proto_pack_cstr(pk, features[i]);
}

void proto_pack_hello_err(msgpack_packer *pk, const char *message)
{
	msgpack_pack_map(pk, 2);
	proto_pack_key(pk, PROTO_F_KIND);
	msgpack_pack_int(pk, PROTO_K_HELLO_ERR);
	proto_pack_key(pk, PROTO_F_MESSAGE);
	proto_pack_cstr(pk, message);
}

void proto_pack_ok_head(msgpack_packer *pk, uint64_t id)
{
	msgpack_pack_map(pk, 4);
	proto_pack_key(pk, PROTO_F_KIND);
	msgpack_pack_int(pk, PROTO_K_OP_RESULT);
	proto_pack_key(pk, PROTO_F_ID);
	msgpack_pack_uint64(pk, id);
	proto_pack_key(pk, PROTO_F_OUTCOME);
	proto_pack_key(pk, PROTO_OUTCOME_OK);
	proto_pack_key(pk, PROTO_F_VALUE);
}

void proto_pack_err(msgpack_packer *pk, uint64_t id, const char *code,
		    const char *message, int err_no)
{
	msgpack_pack_map(pk, 4);
	proto_pack_key(pk, PROTO_F_KIND);
	msgpack_pack_int(pk, PROTO_K_OP_RESULT);
	proto_pack_key(pk, PROTO_F_ID);
	msgpack_pack_uint64(pk, id);
	proto_pack_key(pk, PROTO_F_OUTCOME);
	proto_pack_key(pk, PROTO_OUTCOME_ERR);
	proto_pack_key(pk, PROTO_F_ERROR);
	msgpack_pack_map(pk, 3);
	proto_pack_key(pk, PROTO_F_CODE);
	proto_pack_cstr(pk, code);
	proto_pack_key(pk, PROTO_F_MESSAGE);
	proto_pack_cstr(pk, message);
	proto_pack_key(pk, PROTO_F_ERRNO);
	msgpack_pack_int(pk, err_no);
}

void proto_pack_request_head(msgpack_packer *pk, int kind, uint64_t id,
			     size_t nfields)
{
	msgpack_pack_map(pk, 2 + nfields);
	proto_pack_key(pk, PROTO_F_KIND);
	msgpack_pack_int(pk, kind);
	proto_pack_key(pk, PROTO_F_ID);
	msgpack_pack_uint64(pk, id);
}

const msgpack_object *proto_get(const msgpack_object *o, const char *key)
{
	size_t klen = strlen(key);

	if (!o || o->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];

		if (kv->key.type != MSGPACK_OBJECT_STR)
			continue;
		if (kv->key.via.str.size != klen ||
		    memcmp(kv->key.via.str.ptr, key, klen) != 0)
			continue;
		if (kv->val.type == MSGPACK_OBJECT_NIL)
			return NULL;
		return &kv->val;
	}
	return NULL;
}

int proto_obj_int(const msgpack_object *o, int64_t *out)
{
	if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (o->via.u64 > (uint64_t)INT64_MAX)
			goto bad;
		*out = (int64_t)o->via.u64;
		return 0;
	}
	if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*out = o->via.i64;
		return 0;
	}
bad:
	errno = EINVAL;
	return -1;
}

int proto_obj_bytes(const msgpack_object *o, const char **p, size_t *n)
{
	if (o && o->type == MSGPACK_OBJECT_STR) {
		*p = o->via.str.ptr;
		*n = o->via.str.size;
		return 0;
	}
	if (o && o->type == MSGPACK_OBJECT_BIN) {
		*p = o->via.bin.ptr;
		*n = o->via.bin.size;
		return 0;
	}
	errno = EINVAL;
	return -1;
}

int proto_get_int(const msgpack_object *o, const char *key, int64_t *out)
{
	return proto_obj_int(proto_get(o, key), out);
}

int proto_get_uint(const msgpack_object *o, const char *key, uint64_t *out)
{
	const msgpack_object *v = proto_get(o, key);

	if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		*out = v->via.u64;
		return 0;
	}
	errno = EINVAL;
	return -1;
}

int proto_get_bool(const msgpack_object *o, const char *key, int *out)
{
	const msgpack_object *v = proto_get(o, key);

	if (v && v->type == MSGPACK_OBJECT_BOOLEAN) {
		*out = v->via.boolean ? 1 : 0;
		return 0;
	}
	errno = EINVAL;
	return -1;
}

int proto_get_bytes(const msgpack_object *o, const char *key,
		    const char **p, size_t *n)
{
	return proto_obj_bytes(proto_get(o, key), p, n);
}

const char *proto_kind_name(int kind)
{
	switch (kind) {
	case PROTO_K_HELLO: return "hello";
	case PROTO_K_HELLO_OK: return "hello_ok";
	case PROTO_K_HELLO_ERR: return "hello_err";
	case PROTO_K_EXEC: return "exec";
	case PROTO_K_READ_FILE: return "read_file";
	case PROTO_K_WRITE_FILE: return "write_file";
	case PROTO_K_STAT: return "stat";
	case PROTO_K_LISTDIR: return "listdir";
	case PROTO_K_MKDIR: return "mkdir";
	case PROTO_K_UNLINK: return "unlink";
	case PROTO_K_RENAME: return "rename";
	case PROTO_K_CLOCK_GET: return "clock_get";
	case PROTO_K_CLOCK_SET: return "clock_set";
	case PROTO_K_PING: return "ping";
	case PROTO_K_SPAWN: return "spawn";
	case PROTO_K_PROC_WAIT: return "proc_wait";
	case PROTO_K_PROC_STATUS: return "proc_status";
	case PROTO_K_PROC_KILL: return "proc_kill";
	case PROTO_K_PROC_STDIN: return "proc_stdin";
	case PROTO_K_PROC_STDIN_CLOSE: return "proc_stdin_close";
	case PROTO_K_PROC_STREAM: return "proc_stream";
	case PROTO_K_FILE_OPEN: return "file_open";
	case PROTO_K_FILE_READ: return "file_read";
	case PROTO_K_FILE_WRITE: return "file_write";
	case PROTO_K_FILE_SEEK: return "file_seek";
	case PROTO_K_FILE_CLOSE: return "file_close";
	case PROTO_K_TAIL: return "tail";
	case PROTO_K_FD_STREAM: return "fd_stream";
	case PROTO_K_STREAM_CLOSE: return "stream_close";
	case PROTO_K_SYSCALL: return "syscall";
	case PROTO_K_POWEROFF: return "poweroff";
	case PROTO_K_READ_MEM: return "read_mem";
	case PROTO_K_NET_SETUP: return "net_setup";
	case PROTO_K_WORKER_SPAWN: return "worker_spawn";
	case PROTO_K_WORKER_JOIN: return "worker_join";
	case PROTO_K_WORKER_KILL: return "worker_kill";
	case PROTO_K_OP_RESULT: return "op_result";
	case PROTO_K_STREAM_DATA: return "stream_data";
	case PROTO_K_STREAM_END: return "stream_end";
	}
	return NULL;
}

const char *proto_errno_name(int err_no, char *buf, size_t buflen)
{
	const char *name = strerrorname_np(err_no);

	if (name)
		return name;
	snprintf(buf, buflen, "E%d", err_no);
	return buf;
}

/* ---- untrusted input ----------------------------------------------- */

static uint64_t be_uint(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* See protocol.h. Every value needs at least one byte, so a container
 * may declare at most as many elements as bytes remain. */
int proto_msgpack_sane(const void *buf, size_t n)
{
	const unsigned char *p = buf;
	size_t i = 0;
	uint64_t need = 1; /* values still expected */
	while (need) {
		if (i >= n)
			return -1;
		unsigned b = p[i++];
		uint64_t skip = 0, elems = 0;
		int lb = 0;
		need--;
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
			skip = 0;
		else if (b <= 0x8f)
			elems = 2 * (uint64_t)(b & 0x0f);
		else if (b <= 0x9f)
			elems = b & 0x0f;
		else if (b <= 0xbf)
			skip = b & 0x1f;
		else {
			switch (b) {
			case 0xc4: case 0xd9: lb = 1; break;
			case 0xc5: case 0xda: lb = 2; break;
			case 0xc6: case 0xdb: lb = 4; break;
			case 0xc7: lb = 1; skip = 1; break;
			case 0xc8: lb = 2; skip = 1; break;
			case 0xc9: lb = 4; skip = 1; break;
			case 0xca: skip = 4; break;
			case 0xcb: skip = 8; break;
			case 0xcc: case 0xd0: skip = 1; break;
			case 0xcd: case 0xd1: skip = 2; break;
			case 0xce: case 0xd2: skip = 4; break;
			case 0xcf: case 0xd3: skip = 8; break;
			case 0xd4: skip = 2; break;
			case 0xd5: skip = 3; break;
			case 0xd6: skip = 5; break;
			case 0xd7: skip = 9; break;
			case 0xd8: skip = 17; break;
			case 0xdc: case 0xde: lb = 2; break;
			case 0xdd: case 0xdf: lb = 4; break;
			default: return -1; /* 0xc1 */
			}
			if (lb) {
				if (n - i < (size_t)lb)
					return -1;
				uint64_t v = be_uint(p + i, lb);
				i += (size_t)lb;
				if (b >= 0xdc)
					elems = (b == 0xde || b == 0xdf) ? 2 * v : v;
				else
					skip += v;
			}
		}
		if (skip > n - i)
			return -1;
		i += (size_t)skip;
		need += elems;
		if (need > n - i)
			return -1;
	}
	return i == n ? 0 : -1;
}
