/* Small file-system helpers shared by the connectors, checkpoints and state backends. */
#ifndef EDDY_RUNTIME_FS_H
#define EDDY_RUNTIME_FS_H

#include <stddef.h>

/* fs_mkdirs creates dir and its missing parents (mode 0755), as `mkdir -p`. Returns 0, or
 * -1 with errno set (ENAMETOOLONG beyond 4095 bytes). Any thread; blocks on the file
 * system (not for scheduler workers). */
int fs_mkdirs(const char *dir);

/* fs_read_all reads the whole file at path (at most 1 GiB) into *out (malloc'd, the
 * caller frees; not NUL-terminated) and its length into *len. Returns 0 or an errno
 * (ENOMEM, EIO, or fopen's). Any thread; blocks (not for scheduler workers). */
int fs_read_all(const char *path, char **out, size_t *len);

#endif
