/* test_guest_net.c — guest_net_setup(), the host end of the net_setup op,
 * against a fake agent thread on a socketpair.
 *
 * Pins the request the host sends (only the set fields, with their wire
 * types), the decoding of {ifname}, an agent error becoming -1 with the
 * guest's errno, a malformed reply, and VMM_UNSUPPORTED without an agent.
 * The agent side is exercised on a real guest by tests/guest/smoke.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frame.h"
#include "proto/protocol.h"
#include "vmm/agent_client.h"
#include "vmm/guest_ops.h"

enum answer { ANS_OK, ANS_ENODEV, ANS_MALFORMED };

static int peer;                    /* the fake agent's end */
static struct agent_client *client;
static enum answer answer;
static char seen[512];              /* the request as "key=value;" pairs */

static struct agent_client *fake_agent_of(struct vmm_vm *vm)
{
	(void)vm;
	return client;
}

static const struct vmm_ops fake_ops = { .agent = fake_agent_of };

static int setup(void **st)
{
	int sv[2];
	(void)st;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	client = agent_client_from_fd("fake", sv[0]);
	peer = sv[1];
	return client ? 0 : -1;
}

static int teardown(void **st)
{
	(void)st;
	agent_client_free(client);
	close(peer);
	return 0;
}

/* Append one map entry of the request to seen, typed: s"..", u.., b... */
static void note(const msgpack_object_kv *kv)
{
	const msgpack_object *k = &kv->key, *v = &kv->val;
	size_t at = strlen(seen);
	char *p = seen + at;
	size_t room = sizeof seen - at;

	if (k->type != MSGPACK_OBJECT_STR)
		return;
	switch (v->type) {
	case MSGPACK_OBJECT_STR:
		snprintf(p, room, "%.*s=s\"%.*s\";", (int)k->via.str.size, k->via.str.ptr,
			 (int)v->via.str.size, v->via.str.ptr);
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		snprintf(p, room, "%.*s=u%llu;", (int)k->via.str.size, k->via.str.ptr,
			 (unsigned long long)v->via.u64);
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		snprintf(p, room, "%.*s=b%d;", (int)k->via.str.size, k->via.str.ptr,
			 v->via.boolean ? 1 : 0);
		break;
	default:
		snprintf(p, room, "%.*s=?;", (int)k->via.str.size, k->via.str.ptr);
	}
}

/* The fake agent: read one request, note its fields (all but kind/id),
 * answer as told by answer. */
static void *fake_agent(void *arg)
{
	unsigned char hdr[4], *body;
	uint32_t n;
	size_t off = 0;
	uint64_t id = 0;
	msgpack_unpacked u;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	(void)arg;

	if (read(peer, hdr, 4) != 4)
		return NULL;
	n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	body = malloc(n);
	while (body && off < n) {
		ssize_t got = read(peer, body + off, n - off);
		if (got <= 0)
			break;
		off += (size_t)got;
	}
	msgpack_unpacked_init(&u);
	if (!body || off < n ||
	    msgpack_unpack_next(&u, (const char *)body, n, NULL) != MSGPACK_UNPACK_SUCCESS ||
	    u.data.type != MSGPACK_OBJECT_MAP)
		goto out;
	proto_get_uint(&u.data, PROTO_F_ID, &id);
	{
		int64_t kind = 0;
		proto_get_int(&u.data, PROTO_F_KIND, &kind);
		snprintf(seen, sizeof seen, "kind=%lld;", (long long)kind);
	}
	for (uint32_t i = 0; i < u.data.via.map.size; i++) {
		const msgpack_object *k = &u.data.via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR &&
		    ((k->via.str.size == 4 && !memcmp(k->via.str.ptr, "kind", 4)) ||
		     (k->via.str.size == 2 && !memcmp(k->via.str.ptr, "id", 2))))
			continue;
		note(&u.data.via.map.ptr[i]);
	}
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (answer == ANS_ENODEV) {
		proto_pack_err(&pk, id, "ENODEV", "no network interface with MAC "
			       "52:56:00:00:00:99", ENODEV);
	} else {
		proto_pack_ok_head(&pk, id);
		msgpack_pack_map(&pk, 1);
		proto_pack_key(&pk, answer == ANS_OK ? "ifname" : "name");
		proto_pack_cstr(&pk, "eth0");
	}
	frame_write(peer, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
out:
	msgpack_unpacked_destroy(&u);
	free(body);
	return NULL;
}

/* Run guest_net_setup against the fake agent answering ans. */
static int call(const struct guest_net_setup *r, enum answer ans, char *ifname,
		size_t ifnamelen, char *err, size_t errlen)
{
	pthread_t t;
	int rc;

	answer = ans;
	seen[0] = 0;
	assert_int_equal(pthread_create(&t, NULL, fake_agent, NULL), 0);
	rc = guest_net_setup(&fake_ops, NULL, r, ifname, ifnamelen, err, errlen);
	pthread_join(t, NULL);
	return rc;
}

static void every_field(void **st)
{
	const struct guest_net_setup r = {
		.mac = "52:56:00:00:00:01", .addr = "10.0.0.2", .prefix = 16, .up = 0,
		.gateway = "10.0.0.1", .dns = "10.0.0.53", .hosts = "10.0.0.2 me\n",
		.wait_ms = 100,
	};
	char ifname[16] = "junk", err[256];
	(void)st;

	assert_int_equal(call(&r, ANS_OK, ifname, sizeof ifname, err, sizeof err), 0);
	assert_string_equal(seen, "kind=160;mac=s\"52:56:00:00:00:01\";addr=s\"10.0.0.2\";"
			    "gateway=s\"10.0.0.1\";dns=s\"10.0.0.53\";hosts=s\"10.0.0.2 me\n\";"
			    "prefix=u16;up=b0;wait_ms=u100;");
	assert_string_equal(ifname, "eth0");
}

static void unset_fields_left_out(void **st)
{
	const struct guest_net_setup none = {
		.prefix = -1, .up = -1, .wait_ms = -1,
	};
	const struct guest_net_setup empties = {
		.gateway = "", .hosts = "", .prefix = -1, .up = 1, .wait_ms = 0,
	};
	char ifname[16] = "junk", err[256];
	(void)st;

	assert_int_equal(call(&none, ANS_OK, ifname, sizeof ifname, err, sizeof err), 0);
	assert_string_equal(seen, "kind=160;");
	/* "" is a value (delete the route / the block), 0 too */
	assert_int_equal(call(&empties, ANS_OK, NULL, 0, err, sizeof err), 0);
	assert_string_equal(seen, "kind=160;gateway=s\"\";hosts=s\"\";up=b1;wait_ms=u0;");
}

static void agent_error_sets_errno(void **st)
{
	const struct guest_net_setup r = {
		.mac = "52:56:00:00:00:99", .prefix = -1, .up = -1, .wait_ms = 100,
	};
	char ifname[16] = "junk", err[256];
	(void)st;

	errno = 0;
	assert_int_equal(call(&r, ANS_ENODEV, ifname, sizeof ifname, err, sizeof err), -1);
	assert_int_equal(errno, ENODEV);
	assert_non_null(strstr(err, "52:56:00:00:00:99"));
	assert_string_equal(ifname, "");
}

static void malformed_reply(void **st)
{
	const struct guest_net_setup r = { .prefix = -1, .up = -1, .wait_ms = -1 };
	char ifname[16], err[256];
	(void)st;

	assert_int_equal(call(&r, ANS_MALFORMED, ifname, sizeof ifname, err, sizeof err), -1);
	assert_int_equal(errno, EPROTO);
	assert_non_null(strstr(err, "malformed net_setup reply"));
}

static void no_agent_unsupported(void **st)
{
	const struct vmm_ops bare = { 0 };
	const struct guest_net_setup r = { .prefix = -1, .up = -1, .wait_ms = -1 };
	char ifname[16] = "junk", err[256];
	(void)st;

	assert_int_equal(guest_net_setup(&bare, NULL, &r, ifname, sizeof ifname, err, sizeof err),
			 VMM_UNSUPPORTED);
	assert_string_equal(ifname, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_field),
		cmocka_unit_test(unset_fields_left_out),
		cmocka_unit_test(agent_error_sets_errno),
		cmocka_unit_test(malformed_reply),
		cmocka_unit_test(no_agent_unsupported),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
