/*
 * The build id, from the program headers the dynamic linker already has in memory: reading
 * /proc/self/exe would cost an open and a read of the ELF file on every command.
 */
#include "util/buildid.h"

#include <elf.h>
#include <link.h>
#include <string.h>

#include "util/banned.h"

static struct {
	unsigned char bytes[BV_BUILD_ID_MAX];
	size_t len;
	int state; /* 0: not looked up, 1: done */
} build_id;

/* Reads the note of the main program, which dl_iterate_phdr() lists first. */
static int find_note(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	(void)data;
	for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
		const unsigned char *end = p + ph->p_memsz;
		if (ph->p_type != PT_NOTE)
			continue;
		while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
			ElfW(Nhdr) n;
			size_t name_len, desc_len;
			memcpy(&n, p, sizeof(n));
			name_len = (n.n_namesz + 3u) & ~3u;
			desc_len = (n.n_descsz + 3u) & ~3u;
			if ((size_t)(end - p) < sizeof(n) + name_len + desc_len)
				break;
			if (n.n_type == NT_GNU_BUILD_ID && n.n_namesz == 4 &&
			    memcmp(p + sizeof(n), "GNU", 4) == 0 && n.n_descsz > 0 &&
			    n.n_descsz <= BV_BUILD_ID_MAX) {
				memcpy(build_id.bytes, p + sizeof(n) + name_len, n.n_descsz);
				build_id.len = n.n_descsz;
				return 1;
			}
			p += sizeof(n) + name_len + desc_len;
		}
	}
	return 1; /* only the main program counts */
}

size_t bv_build_id(const unsigned char **id)
{
	if (!build_id.state) {
		build_id.state = 1;
		dl_iterate_phdr(find_note, NULL);
	}
	*id = build_id.bytes;
	return build_id.len;
}
