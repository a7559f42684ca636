/* luascan.h — static scan of a Lua source file with a real Lua tokenizer.
 *
 * Finds calls whose callee name is one of: push_file, depends_on_file,
 * require, vm_fixture, lab_fixture, claim — whether written f("x"), f "x",
 * obj:f("x"), obj.f("x") or obj:f{...} — and test registrations: a bare
 * global `test(` call (not obj:test / obj.test). Comments, long strings, long
 * comments and escapes never produce a call. For each call it records
 * the first argument if it is a string literal (decoded), and, when the
 * call has a table-literal argument, the fields that are literal:
 *   push_file:  auto_dep = false   -> no_auto_dep = true
 *   claim:      memory (or memory_bytes) = <int or string>, cpus = <int>
 *   test:       the meta table (second argument) field tags = "t" or
 *               {"a", "b"}; anything else there sets tags_dynamic
 * A call whose first argument is not a literal is still reported with
 * arg == NULL so callers can tell it was seen but not folded. */
#ifndef PROVIUM_LUASCAN_H
#define PROVIUM_LUASCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum luascan_fn {
	LS_PUSH_FILE, LS_DEPENDS_ON_FILE, LS_REQUIRE,
	LS_VM_FIXTURE, LS_LAB_FIXTURE, LS_CLAIM, LS_TEST
};

struct luascan_call {
	enum luascan_fn fn;
	int line;                 /* 1-based line of the callee name */
	char *arg;                /* first arg if a string literal, else NULL */
	size_t arg_len;
	bool no_auto_dep;         /* push_file: literal {auto_dep = false} */
	bool at_top_level;        /* not inside any function body */
	/* claim only: */
	bool has_memory, has_cpus;
	uint64_t memory;          /* bytes (strings parsed with parse_size_bytes) */
	int64_t cpus;
	/* test only: literal tags of the meta table, malloc'd */
	char **tags; size_t ntags;
	bool tags_dynamic;        /* a `tags` field the scanner cannot read */
};

struct luascan_result {
	struct luascan_call *calls;
	size_t ncalls;
};

/* Scan a buffer / a file. 0, or -1 with err (read error or unterminated
 * string/comment with line number). Results are valid either way up to
 * the error point; free with luascan_free. */
int luascan_buffer(const char *src, size_t len, struct luascan_result *out, char *err, size_t errlen);
int luascan_file(const char *path, struct luascan_result *out, char *err, size_t errlen);
void luascan_free(struct luascan_result *r);

#endif
