/* Small file-system helpers shared by the connectors, checkpoints and state backends. */
#ifndef EDDY_RUNTIME_FS_H
#define EDDY_RUNTIME_FS_H

/* fs_mkdirs creates dir and its missing parents (mode 0755), as `mkdir -p`. Returns 0, or
 * -1 with errno set (ENAMETOOLONG beyond 4095 bytes). Any thread; blocks on the file
 * system (not for scheduler workers). */
int fs_mkdirs(const char *dir);

#endif
