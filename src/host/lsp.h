/* lsp.h — `provium lsp-setup [DIR] [--force]`.
 *
 * Writes DIR/.provium-meta/types.lua (---@meta stubs for the whole Lua API:
 * test, todo, wait_until, json, provium and every userdata they return;
 * the text is src/host/lua/lsp_types.lua) and DIR/.luarc.json pointing the
 * Lua language server at .provium-meta. Progress goes to `out`.
 * An existing .luarc.json is only replaced with force; otherwise the
 * snippet to merge is written to `out` and LSP_KEPT is returned (the CLI
 * still exits 0: the reference calls it a refusal with a notice). */
#ifndef PROVIUM_LSP_H
#define PROVIUM_LSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum { LSP_OK = 0, LSP_KEPT = 1, LSP_ERROR = -1 };

int lsp_setup(const char *dir, bool force, FILE *out, char *err, size_t errlen);

#endif
