/*
 * The job configuration tree: a YAML job file loaded into maps, lists and scalar strings,
 * each node with the file, line and column it came from, so that every error about the
 * job can say "FILE:LINE:COL: what was expected". Map key order is kept as written.
 *
 * On top of the tree: --set overrides (cfg_set), checked accessors that read a key of a
 * map as a string, integer, boolean, duration, size or enum value (cfg_str ... cfg_enum,
 * and cfg_node_* for values not under a key, such as list items), unknown-key checks with
 * "did you mean" suggestions (cfg_check_keys) and the error formatter they all use
 * (cfg_errorf). Interpreting the tree (what a source or an operator is) is the plan
 * builder's job, not this module's.
 *
 * Scalars stay strings: "2", "true" and "10s" are all text until an accessor reads them.
 * A plain (unquoted) empty scalar, "~", "null", "Null" or "NULL" becomes "" with quoted
 * false; this module calls such a scalar *null*. The keyed accessors treat a key whose
 * value is null ("path:" with nothing after it) as not given.
 *
 * Every error message goes into a cfg_error as "FILE:LINE:COL: message" (lines and
 * columns 1-based, columns counted in characters), or "FILE: message" where there is no
 * line (a whole-file problem, or a node made by --set, whose FILE is "--set KEY"). Any
 * cfg_error *err argument may be NULL; the message is then dropped.
 *
 * Thread rules: loading is reentrant (parse any number of files on any threads). A tree
 * is not synchronised: any number of threads may read one tree (cfg_get, the accessors,
 * cfg_check_keys and cfg_path do not change it), but cfg_set and cfg_free need it to
 * themselves.
 */
#ifndef EDDY_CONFIG_CFG_H
#define EDDY_CONFIG_CFG_H

#include <eddy/err.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum cfg_kind { CFG_SCALAR, CFG_MAP, CFG_SEQ } cfg_kind;

typedef struct cfg_node cfg_node;

/* One node of the tree. Every node, its strings and its arrays belong to the tree and are
 * freed by cfg_free of the root; callers read the fields and never change them (cfg_set
 * is the only way to change a tree). */
struct cfg_node {
	cfg_kind kind;
	const char *file;     /* where the node came from; shared, owned by the tree root */
	int line, col;        /* 1-based; 0 for a node made by cfg_set */
	char *str;            /* CFG_SCALAR: the value, never NULL ("" when null) */
	bool quoted;          /* CFG_SCALAR: not plain: '...', "...", | or > */
	size_t n;             /* entries of a map or a list; 0 for a scalar */
	char **keys;          /* CFG_MAP: keys[i] (the same string as key_nodes[i]->str) */
	cfg_node **key_nodes; /* CFG_MAP: the key scalars, for the keys' locations */
	cfg_node **items;     /* CFG_MAP: values (items[i] is keys[i]'s); CFG_SEQ: items */
	cfg_node *parent;     /* the map or list holding this node (as a value, an item or a
	                       * key); NULL only for the root */
};

/* An error message; always NUL-terminated, cut at 511 bytes. */
typedef struct cfg_error {
	char msg[512];
} cfg_error;

/* ---- loading ---- */

/* cfg_load_file reads and parses the YAML job file at path into a new tree, *out (free it
 * with cfg_free). The file must hold one YAML document whose root is a map. Node file
 * fields are path as given.
 *
 * Errors (*out is then NULL):
 * - EDDY_EIO (errno set): "PATH: cannot open: No such file or directory", or
 *   "PATH: cannot read: Is a directory".
 * - EDDY_EINVAL: "PATH:LINE:COL: invalid YAML: PROBLEM [CONTEXT at L:C]" with libyaml's
 *   own words; "PATH: empty job file" (nothing but comments and blank lines, or a null
 *   document); "...: the top level must be a map, got a list"; "...: aliases are not
 *   supported"; "...: duplicate key 'x' (first at LINE:COL)"; "...: map keys must be
 *   strings, got a map"; "...: empty map key"; "...: only one YAML document is allowed";
 *   "...: nesting deeper than 64 levels"; "...: NUL characters are not allowed". Tags
 *   (!!int, !foo) and anchors (&a) are accepted and ignored; aliases (*a) are refused.
 * - EDDY_ENOMEM.
 * Any thread. */
eddy_err cfg_load_file(const char *path, cfg_node **out, cfg_error *err);

/* cfg_load_string parses text (NUL-terminated YAML) like cfg_load_file, naming it name in
 * node locations and messages. text is not kept. Errors: as cfg_load_file, except EIO. */
eddy_err cfg_load_string(const char *name, const char *text, cfg_node **out, cfg_error *err);

/* cfg_free frees a whole tree: root must be what cfg_load_* gave (not an inner node).
 * NULL is a no-op. Pointers into the tree (nodes, strings, locations) die with it. */
void cfg_free(cfg_node *root);

/* ---- overrides ---- */

/* cfg_set applies one command-line override, "KEY=VALUE", to the tree under root (a root
 * from cfg_load_*). KEY is a dotted path of segments (no empty ones; a key containing '.'
 * cannot be addressed). A segment applied to a map selects that key; applied to a list it
 * selects the item that is a map with "id: SEGMENT", or else, if SEGMENT is a decimal
 * number, the item at that 0-based index. Missing map keys are created: the last segment
 * as a scalar, earlier ones as empty maps. VALUE (everything after the first '=') becomes
 * a plain scalar string (quoted false; so "KEY=" makes a null value). Only a scalar can be
 * overwritten, not a map or a list (set one of its keys or items instead).
 *
 * The created or overwritten value node, and any node created on the way, gets file
 * "--set KEY" and line 0, so later messages about it read "--set KEY: ..."; keys that were
 * already in the tree keep their locations. The tree owns all new strings.
 *
 * Errors, with the tree unchanged (ASSIGNMENT is the whole argument):
 * - EDDY_EINVAL: "--set: expected KEY=VALUE, got 'x'";
 *   "--set ASSIGNMENT: empty segment in key 'a..b'";
 *   "--set ASSIGNMENT: 'x' is a scalar, not a map" (a segment after a scalar);
 *   "--set ASSIGNMENT: no entry with id 'flight' in sources (did you mean 'flights'?)";
 *   "--set ASSIGNMENT: no entry with id '7' in sources, and index 7 is out of range
 *   (2 entries)"; "--set ASSIGNMENT: 'operators.hourly.window' is a map, not a scalar"
 *   (likewise "a list").
 * - EDDY_ENOMEM.
 * Not concurrently with any other use of the tree. */
eddy_err cfg_set(cfg_node *root, const char *assignment, cfg_error *err);

/* ---- reading ---- */

/* cfg_get returns the value of key in map, or NULL if map is NULL, is not a map, or has no
 * such key. The node belongs to the tree. */
cfg_node *cfg_get(const cfg_node *map, const char *key);

/*
 * The keyed accessors read map's value for key and check it.
 *
 * - map may be NULL (an optional sub-map that is absent): then the key is absent. If map
 *   is not a map: EDDY_EINVAL "FILE:L:C: PATH must be a map, got a list".
 * - The key is absent, or its value is null: if required, EDDY_EINVAL at the map's
 *   location, "FILE:L:C: PATH is missing required key 'path'" (PATH as cfg_path gives it,
 *   "the top level" for the root; "missing required key 'path'" without a location if
 *   map is NULL), or, for a null value, at the key's location "FILE:L:C: 'path' has no
 *   value". If not required: EDDY_ENOENT with *out untouched (and err untouched), so
 *   callers keep their defaults.
 * - A value of the wrong kind or format: EDDY_EINVAL at the value's location, as the
 *   matching cfg_node_* function words it with WHAT = "'key'", e.g.
 *   "FILE:L:C: 'parallelism' must be an integer, got 'two'".
 * - EDDY_OK: *out is set; a string points into the tree.
 * Quoted and plain scalars are read alike ("2" and 2 are both the integer 2).
 */

/* cfg_str: any non-null scalar (quoted "" is allowed and gives ""). */
eddy_err cfg_str(const cfg_node *map, const char *key, bool required, const char **out,
                 cfg_error *err);

/* cfg_int: a decimal integer with an optional sign, within [min, max]:
 * "'parallelism' must be an integer, got 'two'",
 * "'parallelism' must be between 1 and 1024, got 0". */
eddy_err cfg_int(const cfg_node *map, const char *key, bool required, int64_t min, int64_t max,
                 int64_t *out, cfg_error *err);

/* cfg_bool: true/false, yes/no, on/off, in any letter case:
 * "'x' must be true or false (also yes/no, on/off), got 'maybe'". */
eddy_err cfg_bool(const cfg_node *map, const char *key, bool required, bool *out,
                  cfg_error *err);

/* cfg_duration_ms: a whole number followed at once by a unit, ms, s, m (minutes), h or d,
 * or a bare 0; in milliseconds. No fractions, no spaces, no negatives:
 * "'size': expected a duration like 250ms, 10s, 5m, 1h or 1d, got 'ten'",
 * "'size': a duration cannot be negative, got '-5s'", "'size': duration '...' is too
 * large" (beyond INT64_MAX ms). */
eddy_err cfg_duration_ms(const cfg_node *map, const char *key, bool required, int64_t *out,
                         cfg_error *err);

/* cfg_size_bytes: a whole number of bytes, optionally followed at once by a unit: B; KiB,
 * MiB, GiB, TiB (1024-based); kB or KB, MB, GB, TB (1000-based):
 * "'buffer': expected a size like 512B, 64KiB, 1MiB, 1GiB or 10MB, got 'big'",
 * "'buffer': a size cannot be negative, got '-1'", "'buffer': size '...' is too large". */
eddy_err cfg_size_bytes(const cfg_node *map, const char *key, bool required, int64_t *out,
                        cfg_error *err);

/* cfg_enum: one of choices (NULL-terminated, matched exactly); *out is its index:
 * "'on_error' must be one of fail, skip, dead_letter, got 'ignore'", with
 * " (did you mean 'skip'?)" appended when one is near (see cfg_nearest). */
eddy_err cfg_enum(const cfg_node *map, const char *key, bool required,
                  const char *const choices[], int *out, cfg_error *err);

/* The node-level accessors read a value that is not under a key (a list item, or a node
 * the caller already holds); n must not be NULL. what names the value in messages and is
 * printed as given ("'size'", "item 2 of key_by"). A null scalar is an error here,
 * "FILE:L:C: WHAT has no value"; a map or list where a scalar is expected is
 * "FILE:L:C: WHAT must be a string, got a map" (or "an integer" etc.). Otherwise the same
 * rules and messages as the keyed accessors above; EDDY_OK or EDDY_EINVAL. */
eddy_err cfg_node_str(const cfg_node *n, const char *what, const char **out, cfg_error *err);
eddy_err cfg_node_int(const cfg_node *n, const char *what, int64_t min, int64_t max,
                      int64_t *out, cfg_error *err);
eddy_err cfg_node_bool(const cfg_node *n, const char *what, bool *out, cfg_error *err);
eddy_err cfg_node_duration_ms(const cfg_node *n, const char *what, int64_t *out,
                              cfg_error *err);
eddy_err cfg_node_size_bytes(const cfg_node *n, const char *what, int64_t *out,
                             cfg_error *err);
eddy_err cfg_node_enum(const cfg_node *n, const char *what, const char *const choices[],
                       int *out, cfg_error *err);

/* cfg_check_keys checks that every key of map is in known (NULL-terminated). The first
 * key that is not gives EDDY_EINVAL at that key's location:
 * "FILE:L:C: unknown key 'paralelism' in WHAT (did you mean 'parallelism'?)", the
 * suggestion being cfg_nearest's, left out when there is none. If map is not a map:
 * EDDY_EINVAL "FILE:L:C: WHAT must be a map, got a list" (or "got 'text'", "got an empty
 * value"). A NULL map has no keys: EDDY_OK. */
eddy_err cfg_check_keys(const cfg_node *map, const char *const known[], const char *what,
                        cfg_error *err);

/* ---- messages ---- */

/* cfg_errorf formats "FILE:LINE:COL: " and then the printf-style message into err,
 * locating it at node n: "FILE: " if n->line is 0, nothing if n is NULL. Returns
 * EDDY_EINVAL, so a caller can write `return cfg_errorf(err, n, "...", ...);`. */
eddy_err cfg_errorf(cfg_error *err, const cfg_node *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* cfg_nearest returns the candidate (NULL-terminated list) nearest to s by Levenshtein
 * distance, if that distance is at most max(2, strlen(s) / 3) and smaller than the length
 * of the longer of the two (so "x" does not suggest "id"); otherwise NULL. Ties go to the
 * earliest candidate. Strings longer than 128 bytes are never near anything. */
const char *cfg_nearest(const char *s, const char *const candidates[]);

/* cfg_kind_name: "a scalar", "a map" or "a list", for messages. */
const char *cfg_kind_name(cfg_kind kind);

/* cfg_path writes n's dotted path from the root into buf (size bytes, always
 * NUL-terminated, cut if too small) and returns buf: map keys by name, list items by
 * their "id" if they are maps with a scalar id, else by index, e.g.
 * "sources.flights.watermark" or "operators.hourly.key_by.0". The root's path is "".
 * This is the same syntax cfg_set accepts. */
char *cfg_path(const cfg_node *n, char *buf, size_t size);

#endif
