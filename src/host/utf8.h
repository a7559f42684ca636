/* utf8.h — UTF-8 validation shared by the json and msgpack bindings. */
#ifndef PROVIUM_UTF8_H
#define PROVIUM_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 prefix of s (== len when all of s is valid).
 * Rejects overlong forms, surrogates and code points above U+10FFFF. */
size_t utf8_valid_prefix(const unsigned char *s, size_t len);

#endif
