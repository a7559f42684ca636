/* vmm.c — what vmm.h declares outside any one backend: the lookup of a
 * backend by name and the two result destructors every backend and
 * binding shares (vmm_exec_result_free, vmm_dirents_free). Kept out of the
 * Lua bindings so a backend or a test program links without them. */
#include <stdlib.h>
#include <string.h>

#include "vmm/vmm.h"

const struct vmm_ops *vmm_backend_by_name(const char *name)
{
	if (name && !strcmp(name, "local"))
		return &vmm_local_ops;
	if (name && !strcmp(name, "qemu"))
		return &vmm_qemu_ops;
	return NULL;
}

void vmm_exec_result_free(struct vmm_exec_result *res)
{
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
}

void vmm_dirents_free(struct vmm_dirent *ents, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ents[i].name);
	free(ents);
}
