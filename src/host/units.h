/* units.h — parsing of the duration and size strings users write.
 *
 * Durations: a bare number is seconds ("30", "0.5"); suffixes ms, s, m, h
 * ("500ms", "30s", "10m", "2h"). Sizes: bare bytes ("4096") or a K/M/G/T
 * suffix (binary: 1K = 1024), optionally followed by "B"/"iB" ("512M",
 * "2G", "1GiB"). Both return 0 on success, -1 with a message in err. */
#ifndef PROVIUM_UNITS_H
#define PROVIUM_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Parse a duration string into nanoseconds. Negative values are rejected. */
int parse_duration_ns(const char *s, int64_t *out_ns, char *err, size_t errlen);

/* Parse a size string into bytes. */
int parse_size_bytes(const char *s, uint64_t *out, char *err, size_t errlen);

/* The least guest memory accepted (a profile's or a boot opt's `memory`):
 * below it no kernel boots, and a size without a unit this small is
 * almost surely MiB written as bytes (`memory = 512`). */
#define GUEST_MEMORY_MIN (UINT64_C(16) << 20)

/* 0 when bytes (as the user wrote it: written, e.g. "512" or "8M") is a
 * usable guest memory size; -1 with a message in err when it is below
 * GUEST_MEMORY_MIN. Without a unit the message says sizes without one are
 * bytes and suggests "<n>M". */
int check_guest_memory(uint64_t bytes, const char *written, char *err, size_t errlen);

/* Format nanoseconds as seconds with two decimals ("12.34s") into buf. */
void format_seconds(int64_t ns, char *buf, size_t len);

#endif
