/* File-system helpers (runtime/fs.h). */
#include "fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int fs_mkdirs(const char *dir)
{
	char p[4096];
	size_t n = strlen(dir);
	if (n == 0 || n >= sizeof(p))
		return errno = ENAMETOOLONG, -1;
	memcpy(p, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		char keep = p[i];
		p[i] = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST)
			return -1;
		p[i] = keep;
	}
	return 0;
}

int fs_read_all(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return errno;
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	for (size_t got; b && (got = fread(b + n, 1, cap - n, f)) > 0;) {
		n += got;
		if (n == cap && cap < (1u << 30)) {
			char *nb = realloc(b, cap *= 2);
			if (nb == NULL) {
				free(b);
				b = NULL;
			}
			b = nb;
		}
	}
	int e = ferror(f) ? EIO : b ? 0 : ENOMEM;
	fclose(f);
	if (e) {
		free(b);
		return e;
	}
	*out = b;
	*len = n;
	return 0;
}
