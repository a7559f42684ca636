/* config.h — provium.toml: the [provium] section and [profiles.<name>].
 *
 * config_load() reads, parses (toml.c) and validates one file. Errors are
 * returned as a message of the documented shapes, all of which the CLI
 * maps to exit code 2:
 *   read `<path>`: <strerror>
 *   parse `<path>`: <line>:<col> <what>
 *   invalid config in `<path>`: <message>      (e.g. profile `x` has empty cmdline)
 * A missing file at the *default* path is not an error: the caller uses
 * config_init_default() instead. */
#ifndef PROVIUM_CONFIG_H
#define PROVIUM_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

enum accel_kind { ACCEL_AUTO = 0, ACCEL_KVM, ACCEL_TCG };

struct profile {
	char *name;
	char *kernel;             /* NULL when unset */
	char *initrd;
	char *cmdline;            /* effective: cmdline_file contents (whitespace-collapsed) then inline cmdline */
	char *cmdline_file;
	char *guest_os;           /* default "peios" */
	bool inject_agent;        /* default true */
	char *agent_overlay_path; /* NULL when unset */
	int64_t agent_boot_timeout_ns; /* default 30 s */
	enum accel_kind accel;    /* default auto */
	uint64_t memory;          /* bytes; 0 = unset (VM default) */
	int cpus;                 /* 0 = unset */
	char *modules;            /* directory; NULL when unset */
	/* root filesystem image (boot-time disk `root`, read-only to the
	 * image: the guest writes to a throwaway layer); NULL when unset */
	char *root;
	/* boot-time disks (docs/disks.md), in file order */
	struct profile_disk {
		char *id;             /* virtio-blk serial, <= 20 chars */
		char *image;          /* absolute path */
	} *disks;
	size_t ndisks;
	/* build hook (docs/profiles.md): the command with {out}
	 * replaced, its declared inputs, the {out} directory and the key it
	 * is cached under (xxh128 hex of the raw command and the inputs'
	 * names and content); all NULL/empty when there is no build */
	char *build;
	char **build_inputs;      /* absolute paths */
	size_t nbuild_inputs;
	char *build_out;
	char build_key[33];
	char *source;             /* the file this profile came from (from_dir), else NULL */
	bool builtin;             /* the embedded default profile (not from the file) */
};

struct config {
	char *path;               /* file it came from, or NULL */
	char *dir;                /* directory of that file (relative paths resolve here), or cwd */
	char **roots;             /* absolute paths; NULL-terminated; may be empty */
	size_t nroots;
	char *cache_dir;          /* default ~/.cache/provium/fixtures */
	uint64_t cache_max_size;  /* default 20G */
	char *cache_overflow_dir; /* builds when cache_dir is read-only; NULL = none */
	char *cache_remote;       /* HTTP store base URL; NULL = none */
	bool cache_remote_readonly;  /* never PUT */
	char *cache_remote_token_env; /* env var holding a bearer token; NULL = none */
	struct profile *profiles; /* sorted by name */
	size_t nprofiles;
};

/* Fill cfg with the defaults (no roots, no profiles). */
void config_init_default(struct config *cfg);

/* The provium.toml nearest the working directory, as git finds .git: the
 * cwd, then each parent up to `/`. malloc'd absolute path, or NULL when
 * there is none (errno ENOENT) or on error (errno). */
char *config_find(void);

/* What every command does before it runs: load `explicit` (--config) if
 * given, else the file config_find() returns, else the defaults with the
 * cwd as the project directory. 0, or -1 with err (one of the shapes
 * above; cfg then holds defaults and config_free() is safe). */
int config_open(struct config *cfg, const char *explicit, char *err, size_t errlen);

/* Load and validate path into cfg. 0 on success; -1 with err filled. */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/* Base directory of profile build outputs: $PROVIUM_BUILD_DIR, else
 * $XDG_CACHE_HOME/provium/builds, else ~/.cache/provium/builds. malloc'd. */
char *config_build_base(void);

/* A boot-time disk id: 1-20 characters of [A-Za-z0-9._-] (it becomes the
 * virtio-blk serial, which holds 20 bytes). */
bool config_disk_id_ok(const char *id);

/* Profile by name, or NULL. */
const struct profile *config_profile(const struct config *cfg, const char *name);

void config_free(struct config *cfg);

/* guestkit.c: add the built-in profile `default` (the embedded guest kit)
 * unless cfg defines its own. 0, or -1 with errno. */
int config_add_builtin_default(struct config *cfg);

/* guestkit.c: directory of the guest kit ($PROVIUM_KIT_DIR,
 * <exe>/../share/provium/guest, <exe dir>/guest); malloc'd or NULL. */
char *guest_kit_dir(void);

#endif
