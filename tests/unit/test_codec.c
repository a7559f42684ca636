/* test_codec.c — the shared agent codec (proto/codec.c), the one place
 * that knows every request's and structured reply's fields.
 *
 * Every message table is round-tripped with the SAME functions both
 * sides use: a struct with every field set (and one with only the
 * required ones) is packed by proto_pack_map, size-checked by
 * proto_msgpack_sane as a frame is, unpacked and decoded by proto_decode,
 * and compared field by field. Then, per message and per field, the
 * decoder gets malformed maps: the field with a wrong type, the field
 * missing (malformed only when required), nil (= absent), and for lists
 * an ill-typed element and one element too many. listdir's array form
 * has its own round trip and malformed cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/codec.h"
#include "proto/protocol.h"

#define all_msgs proto_msgs
#define NMSGS proto_nmsgs

/* ---- filling a struct from its table ------------------------------------ */

static const char *const strs[] = { "ls", "-l", "a b", "" };
static const int64_t ints[] = { -1, 0, 5, INT64_MAX, INT64_MIN, 42 };

static void at_env(const struct proto_list *l, size_t i, struct proto_elem *e)
{
	static const char *const kv[][2] = { { "A", "1" }, { "B", "" }, { "PATH", "/bin" } };
	e->s = proto_cstr(kv[i][0]);
	e->v = proto_cstr(kv[i][1]);
}

static void at_patch(const struct proto_list *l, size_t i, struct proto_elem *e)
{
	e->i = (int64_t)i;
	e->j = 8 * (int64_t)i;
	e->k = (int64_t)i + 1;
}

static void *fld(void *s, size_t off)
{
	return (char *)s + off;
}

/* Set field f of s to a value derived from seed (and its has_ flag). */
static void fill_field(void *s, const struct proto_field *f, int seed)
{
	void *v = fld(s, f->off);
	struct proto_list *l = v;
	switch (f->t) {
	case PT_STR:
	case PT_BIN:
		*(struct proto_str *)v = proto_cstr(f->t == PT_BIN && seed % 2 ? "b\0in" : f->key);
		if (f->t == PT_BIN && seed % 2)
			((struct proto_str *)v)->n = 4;   /* bytes keep their NUL */
		break;
	case PT_INT:
		*(int64_t *)v = seed % 2 ? -1000 - seed : INT64_MAX - seed;
		break;
	case PT_UINT:
		*(uint64_t *)v = seed % 2 ? UINT64_MAX - (uint64_t)seed : (uint64_t)seed;
		break;
	case PT_BOOL:
		*(bool *)v = seed % 2 == 0;
		break;
	case PT_STRS:
	case PT_BINS:
		proto_list_cstrs(l, strs, 4);
		break;
	case PT_INTS:
		proto_list_ints(l, ints, f->max && f->max < 6 ? f->max : 6);
		break;
	case PT_ENV:
		*l = (struct proto_list){ 3, at_env, NULL, NULL };
		break;
	case PT_PATCHES:
		*l = (struct proto_list){ 2, at_patch, NULL, NULL };
		break;
	case PT_STRINT: {
		struct proto_strint *si = v;
		si->is_int = seed % 2;
		si->i = seed % 2 ? -17 : 0;
		si->s = proto_cstr(seed % 2 ? "" : "beginning");
		break;
	}
	}
	if (!(f->flags & PROTO_REQD))
		*(bool *)fld(s, f->has) = true;
}

static bool str_eq(struct proto_str a, struct proto_str b)
{
	return a.n == b.n && (!a.n || !memcmp(a.p, b.p, a.n));
}

/* Field f of a (what was packed) equals field f of b (what came back). */
static void expect_same(const struct proto_msg *m, const struct proto_field *f, void *a, void *b)
{
	void *x = fld(a, f->off), *y = fld(b, f->off);
	const struct proto_list *lx = x, *ly = y;
	if (!(f->flags & PROTO_REQD)) {
		assert_int_equal(*(bool *)fld(a, f->has), *(bool *)fld(b, f->has));
		if (!*(bool *)fld(a, f->has))
			return;
	}
	switch (f->t) {
	case PT_STR:
	case PT_BIN:
		assert_true(str_eq(*(struct proto_str *)x, *(struct proto_str *)y));
		break;
	case PT_INT:
		assert_int_equal(*(int64_t *)x, *(int64_t *)y);
		break;
	case PT_UINT:
		assert_true(*(uint64_t *)x == *(uint64_t *)y);
		break;
	case PT_BOOL:
		assert_int_equal(*(bool *)x, *(bool *)y);
		break;
	case PT_STRINT: {
		const struct proto_strint *p = x, *q = y;
		assert_int_equal(p->is_int, q->is_int);
		if (p->is_int)
			assert_int_equal(p->i, q->i);
		else
			assert_true(str_eq(p->s, q->s));
		break;
	}
	default:
		assert_int_equal(lx->n, ly->n);
		for (size_t i = 0; i < lx->n; i++) {
			struct proto_elem e1 = proto_list_at(lx, i), e2 = proto_list_at(ly, i);
			assert_true(str_eq(e1.s, e2.s));
			assert_true(str_eq(e1.v, e2.v));
			assert_int_equal(e1.i, e2.i);
			assert_int_equal(e1.j, e2.j);
			assert_int_equal(e1.k, e2.k);
		}
		break;
	}
	(void)m;
}

/* ---- packing and unpacking ------------------------------------------------ */

struct wire {
	msgpack_sbuffer sb;
	msgpack_unpacked u;
};

static const msgpack_object *wire_pack(struct wire *w, const struct proto_msg *m, const void *s)
{
	msgpack_packer pk;
	size_t off = 0;
	msgpack_sbuffer_init(&w->sb);
	msgpack_packer_init(&pk, &w->sb, msgpack_sbuffer_write);
	proto_pack_map(&pk, m, s);
	assert_int_equal(proto_msgpack_sane(w->sb.data, w->sb.size), 0);
	msgpack_unpacked_init(&w->u);
	assert_int_equal(msgpack_unpack_next(&w->u, w->sb.data, w->sb.size, &off),
			 MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(off, w->sb.size);
	assert_int_equal(w->u.data.via.map.size, proto_nfields(m, s));
	return &w->u.data;
}

static void wire_free(struct wire *w)
{
	msgpack_unpacked_destroy(&w->u);
	msgpack_sbuffer_destroy(&w->sb);
}

/* A struct big enough for any message. */
union any {
	struct proto_exec a;
	struct proto_handle b;
	struct proto_net_setup c;
	struct proto_syscall d;
	struct proto_exec_result e;
	struct proto_stat f;
	char pad[512];
};

/* ---- round trips ---------------------------------------------------------- */

static void roundtrip_one(const struct proto_msg *m, int seed, bool only_required)
{
	union any in, out;
	struct wire w;
	const msgpack_object *o;
	const char *bad = NULL;
	assert_true(m->size <= sizeof in);
	memset(&in, 0, sizeof in);
	for (size_t i = 0; i < m->n; i++)
		if (!only_required || (m->f[i].flags & PROTO_REQD))
			fill_field(&in, &m->f[i], seed + (int)i);
	o = wire_pack(&w, m, &in);
	memset(&out, 0xa5, sizeof out);
	if (proto_decode(m, o, &out, &bad) != 0)
		fail_msg("%s: %s", m->name, bad);
	for (size_t i = 0; i < m->n; i++) {
		const struct proto_field *f = &m->f[i];
		/* a PROTO_NIL field packed as nil comes back absent */
		expect_same(m, f, &in, &out);
	}
	wire_free(&w);
}

static void roundtrip_every_message(void **st)
{
	(void)st;
	for (size_t k = 0; k < NMSGS; k++) {
		roundtrip_one(all_msgs[k], 0, false);
		roundtrip_one(all_msgs[k], 1, false);
		roundtrip_one(all_msgs[k], 0, true);
	}
}

/* Field order is wire order; the few nil-when-absent fields are packed
 * as nil, not left out (ExecResult.signal, as the agent always sent). */
static void nil_fields_and_order(void **st)
{
	struct proto_exec_result r = { .status = 3 };
	struct wire w;
	const msgpack_object *o;
	static const char *const keys[] = { "status", "signal" };
	(void)st;
	o = wire_pack(&w, &proto_m_exec_result, &r);
	assert_int_equal(o->via.map.size, 2);
	for (int i = 0; i < 2; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;
		assert_int_equal(k->via.str.size, strlen(keys[i]));
		assert_memory_equal(k->via.str.ptr, keys[i], strlen(keys[i]));
	}
	assert_int_equal(o->via.map.ptr[1].val.type, MSGPACK_OBJECT_NIL);
	wire_free(&w);
}

/* ---- malformed input ------------------------------------------------------ */

/* o (a map) with key's value replaced by v, or the pair removed (v NULL),
 * in kv (caller's storage, o's size entries); the map object in *out. */
static void edit_map(const msgpack_object *o, const char *key, const msgpack_object *v,
		     msgpack_object_kv *kv, msgpack_object *out)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;
		bool match = k->via.str.size == strlen(key) &&
			     !memcmp(k->via.str.ptr, key, k->via.str.size);
		if (match && !v)
			continue;
		kv[n] = o->via.map.ptr[i];
		if (match)
			kv[n].val = *v;
		n++;
	}
	out->type = MSGPACK_OBJECT_MAP;
	out->via.map.size = n;
	out->via.map.ptr = kv;
}

static msgpack_object obj_bool(void)
{
	msgpack_object o = { .type = MSGPACK_OBJECT_BOOLEAN };
	o.via.boolean = true;
	return o;
}

static msgpack_object obj_str(const char *s)
{
	msgpack_object o = { .type = MSGPACK_OBJECT_STR };
	o.via.str.ptr = s;
	o.via.str.size = (uint32_t)strlen(s);
	return o;
}

static msgpack_object obj_neg(int64_t v)
{
	msgpack_object o = { .type = MSGPACK_OBJECT_NEGATIVE_INTEGER };
	o.via.i64 = v;
	return o;
}

static msgpack_object obj_array(msgpack_object *elems, uint32_t n)
{
	msgpack_object o = { .type = MSGPACK_OBJECT_ARRAY };
	o.via.array.ptr = elems;
	o.via.array.size = n;
	return o;
}

/* Decode o as m: expect rc, and on failure a message naming key. */
static void expect_decode(const struct proto_msg *m, const msgpack_object *o, int rc,
			  const char *key)
{
	union any s;
	const char *bad = NULL;
	int r = proto_decode(m, o, &s, &bad);
	if (r != rc)
		fail_msg("%s, field %s: decode %d, want %d (%s)", m->name, key, r, rc,
			 bad ? bad : "-");
	if (rc < 0) {
		assert_non_null(bad);
		if (key && !strstr(bad, key))
			fail_msg("%s: `%s` does not name %s", m->name, bad, key);
	}
}

static void malformed_every_field(void **st)
{
	(void)st;
	for (size_t k = 0; k < NMSGS; k++) {
		const struct proto_msg *m = all_msgs[k];
		union any in;
		struct wire w;
		const msgpack_object *o;
		msgpack_object_kv kv[16];
		msgpack_object edited, bad, nil = { .type = MSGPACK_OBJECT_NIL }, el[2];
		memset(&in, 0, sizeof in);
		for (size_t i = 0; i < m->n; i++)
			fill_field(&in, &m->f[i], (int)i);
		o = wire_pack(&w, m, &in);
		assert_true(o->via.map.size <= 16);
		expect_decode(m, o, 0, NULL);
		for (size_t i = 0; i < m->n; i++) {
			const struct proto_field *f = &m->f[i];
			bool req = f->flags & PROTO_REQD;
			/* missing, and nil (= absent) */
			edit_map(o, f->key, NULL, kv, &edited);
			expect_decode(m, &edited, req ? -1 : 0, f->key);
			edit_map(o, f->key, &nil, kv, &edited);
			expect_decode(m, &edited, req ? -1 : 0, f->key);
			/* a wrong type */
			switch (f->t) {
			case PT_BOOL:
				bad = obj_str("true");
				break;
			case PT_INT:
			case PT_STRINT:
				bad = f->t == PT_INT ? obj_str("1") : obj_bool();
				break;
			case PT_UINT:
				bad = obj_neg(-1);     /* an int, but signed */
				break;
			default:
				bad = obj_bool();
				break;
			}
			edit_map(o, f->key, &bad, kv, &edited);
			expect_decode(m, &edited, -1, f->key);
			/* lists: an ill-typed element */
			if (f->t == PT_STRS || f->t == PT_BINS || f->t == PT_INTS ||
			    f->t == PT_PATCHES) {
				el[0] = f->t == PT_INTS ? obj_str("x") : f->t == PT_PATCHES
					? obj_array(el + 1, 1) : obj_neg(-3);
				el[1] = obj_neg(-1);
				bad = obj_array(el, 1);
				edit_map(o, f->key, &bad, kv, &edited);
				expect_decode(m, &edited, -1, f->key);
			}
		}
		wire_free(&w);
		/* not a map at all */
		expect_decode(m, NULL, -1, m->name);
		bad = obj_bool();
		expect_decode(m, &bad, -1, m->name);
	}
}

/* One element over a list's bound is malformed: syscall args (6) and
 * the general PROTO_LIST_MAX. */
static void overlong_lists(void **st)
{
	static msgpack_object el[PROTO_LIST_MAX + 1];
	struct proto_syscall sc;
	struct proto_exec ex;
	const char *bad = NULL;
	msgpack_object_kv kv[2];
	msgpack_object m = { .type = MSGPACK_OBJECT_MAP };
	(void)st;
	for (size_t i = 0; i < PROTO_LIST_MAX + 1; i++)
		el[i] = obj_str("a");
	m.via.map.ptr = kv;
	m.via.map.size = 2;
	kv[0].key = obj_str("nr");
	kv[0].val = obj_neg(-5);
	kv[1].key = obj_str("args");
	for (size_t i = 0; i < 7; i++) {
		el[i].type = MSGPACK_OBJECT_POSITIVE_INTEGER;
		el[i].via.u64 = UINT64_MAX - i;   /* raw words: two's complement */
	}
	kv[1].val = obj_array(el, 6);
	assert_int_equal(proto_decode(&proto_m_syscall, &m, &sc, NULL), 0);
	assert_int_equal(sc.nr, -5);
	assert_int_equal(sc.args.n, 6);
	assert_int_equal(proto_list_at(&sc.args, 0).i, -1);
	kv[1].val = obj_array(el, 7);
	assert_int_equal(proto_decode(&proto_m_syscall, &m, &sc, &bad), -1);
	assert_string_equal(bad, "field `args`: more than 6 elements");

	for (size_t i = 0; i < 7; i++)
		el[i] = obj_str("a");
	m.via.map.size = 1;
	kv[0].key = obj_str("argv");
	kv[0].val = obj_array(el, PROTO_LIST_MAX);
	assert_int_equal(proto_decode(&proto_m_exec, &m, &ex, NULL), 0);
	assert_int_equal(ex.argv.n, PROTO_LIST_MAX);
	kv[0].val = obj_array(el, PROTO_LIST_MAX + 1);
	assert_int_equal(proto_decode(&proto_m_exec, &m, &ex, &bad), -1);
	assert_string_equal(bad, "field `argv`: more than 65536 elements");
}

/* ---- the schema pin ------------------------------------------------------- */

/* Every table as one line: "name: key:type[!=required][~=nil], ...".
 * Encoder and decoder share the tables, so a round trip cannot see a
 * field renamed or retyped on both sides at once: this pin does (and it
 * must change only together with protocol.h and PROTOCOL_VERSION). */
static const char *const schema_want =
	"exec: argv:strs shell:str env:env env_clear:bool cwd:str stdin:bin timeout_ms:uint\n"
	"path request: path:str!\n"
	"stat: path:str! follow:bool\n"
	"write_file: path:str! data:bin! mode:uint append:bool\n"
	"mkdir: path:str! parents:bool perm:uint\n"
	"rename: from:str! to:str!\n"
	"clock_set: ns:int!\n"
	"handle request: handle:uint!\n"
	"worker_spawn: handle:uint\n"
	"wait: handle:uint! timeout_ms:uint\n"
	"kill: handle:uint! signal:int\n"
	"write: handle:uint! data:bin!\n"
	"proc_stream: handle:uint! which:str!\n"
	"file_read: handle:uint! n:uint\n"
	"file_seek: handle:uint! offset:int whence:str\n"
	"file_open: path:str! mode:uint! perm:uint\n"
	"tail: path:str! start:strint\n"
	"channel: channel:uint!\n"
	"syscall: nr:int! args:ints<=6 bufs:bins ptrs:ints patches:patches\n"
	"poweroff: reboot:bool\n"
	"read_mem: addr:uint! len:uint!\n"
	"net_setup: mac:str addr:str gateway:str dns:str hosts:str prefix:uint up:bool wait_ms:uint\n"
	"fault_frame: mode:str!\n"
	"ExecResult: status:int! stdout:bin stderr:bin signal:int~ timed_out:bool\n"
	"stat reply: size:uint! mtime_ns:int! perm:uint! entry_type:str! uid:uint gid:uint\n"
	"spawn reply: handle:uint! pid:int\n"
	"proc_status reply: running:bool! pid:int status:int signal:int~\n"
	"syscall reply: ret:int! errno:int out_bufs:bins\n"
	"net_setup reply: ifname:str!\n"
	"worker_join reply: status:int! signal:int~\n";

static void schema_pinned(void **st)
{
	static const char *const tn[] = { [PT_STR] = "str", [PT_BIN] = "bin", [PT_INT] = "int",
		[PT_UINT] = "uint", [PT_BOOL] = "bool", [PT_STRS] = "strs", [PT_BINS] = "bins",
		[PT_ENV] = "env", [PT_INTS] = "ints", [PT_PATCHES] = "patches",
		[PT_STRINT] = "strint" };
	char got[4096];
	size_t n = 0;
	(void)st;
	for (size_t k = 0; k < NMSGS; k++) {
		const struct proto_msg *m = all_msgs[k];
		n += (size_t)snprintf(got + n, sizeof got - n, "%s:", m->name);
		for (size_t i = 0; i < m->n; i++) {
			const struct proto_field *f = &m->f[i];
			n += (size_t)snprintf(got + n, sizeof got - n, " %s:%s%s%s", f->key, tn[f->t],
					      f->flags & PROTO_REQD ? "!" : "",
					      f->flags & PROTO_NIL ? "~" : "");
			if (f->max)
				n += (size_t)snprintf(got + n, sizeof got - n, "<=%zu", f->max);
		}
		n += (size_t)snprintf(got + n, sizeof got - n, "\n");
		assert_true(n < sizeof got);
	}
	assert_string_equal(got, schema_want);
}

/* ---- listdir's array ------------------------------------------------------ */

static void at_dent(const struct proto_list *l, size_t i, struct proto_elem *e)
{
	static const char *const d[][2] = { { "a", "file" }, { "b c", "directory" }, { "", "other" } };
	e->s = proto_cstr(d[i][0]);
	e->v = proto_cstr(d[i][1]);
}

static void dirents(void **st)
{
	struct proto_list in = { 3, at_dent, NULL, NULL }, out;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked u;
	size_t off = 0;
	const char *bad = NULL;
	msgpack_object_kv kv;
	msgpack_object ent, arr;
	(void)st;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	proto_pack_dirents(&pk, &in);
	assert_int_equal(proto_msgpack_sane(sb.data, sb.size), 0);
	msgpack_unpacked_init(&u);
	assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(proto_decode_dirents(&u.data, &out, &bad), 0);
	assert_int_equal(out.n, 3);
	for (size_t i = 0; i < 3; i++) {
		struct proto_elem a = proto_list_at(&in, i), b = proto_list_at(&out, i);
		assert_true(str_eq(a.s, b.s));
		assert_true(str_eq(a.v, b.v));
	}
	/* an entry without entry_type, a non-map entry, a non-array */
	kv.key = obj_str("name");
	kv.val = obj_str("x");
	ent.type = MSGPACK_OBJECT_MAP;
	ent.via.map.ptr = &kv;
	ent.via.map.size = 1;
	arr = obj_array(&ent, 1);
	assert_int_equal(proto_decode_dirents(&arr, &out, &bad), -1);
	assert_non_null(strstr(bad, "entry"));
	ent = obj_str("x");
	assert_int_equal(proto_decode_dirents(&arr, &out, &bad), -1);
	assert_int_equal(proto_decode_dirents(&ent, &out, &bad), -1);
	assert_int_equal(proto_decode_dirents(NULL, &out, &bad), -1);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
}

/* proto_str_dup refuses an embedded NUL (paths, argv); bytes are not
 * strings. */
static void str_helpers(void **st)
{
	struct proto_str s = { "a\0b", 3 };
	char *c;
	(void)st;
	assert_null(proto_str_dup(s));
	s.n = 1;
	c = proto_str_dup(s);
	assert_string_equal(c, "a");
	free(c);
	assert_true(proto_str_is(proto_cstr("end"), "end"));
	assert_false(proto_str_is(proto_cstr("en"), "end"));
	assert_int_equal(proto_cstr(NULL).n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(roundtrip_every_message),
		cmocka_unit_test(nil_fields_and_order),
		cmocka_unit_test(malformed_every_field),
		cmocka_unit_test(overlong_lists),
		cmocka_unit_test(schema_pinned),
		cmocka_unit_test(dirents),
		cmocka_unit_test(str_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
