/* The YAML config tree: loading with locations, errors, --set and the checked accessors. */
#include <criterion/criterion.h>

#include "../../config/cfg.h"
#include "../../runtime/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The job of the documentation; tests/data/cfg/flights-hourly.yaml holds the same text. */
static const char JOB[] = "job: flights-hourly\n"
                          "parallelism: 2\n"
                          "sources:\n"
                          "  - id: flights\n"
                          "    connector: file\n"
                          "    path: ../shared/data/flights-3m.csv.gz\n"
                          "    schema:\n"
                          "      date: timestamp\n"
                          "      delay: int\n"
                          "    watermark:\n"
                          "      event_time: date\n"
                          "      max_out_of_orderness: 10m\n"
                          "operators:\n"
                          "  - id: hourly\n"
                          "    type: window\n"
                          "    input: flights          # or a list: [a, b]\n"
                          "    key_by: [origin]\n"
                          "    window: {type: tumbling, size: 1h}\n"
                          "    aggregates:\n"
                          "      flights: count()\n"
                          "      avg_delay: avg(delay)\n";

static cfg_node *load(const char *name, const char *text)
{
	cfg_node *root = NULL;
	cfg_error err = { { 0 } };
	eddy_err rc = cfg_load_string(name, text, &root, &err);
	cr_assert_eq(rc, EDDY_OK, "load %s: %s", name, err.msg);
	cr_assert_not_null(root);
	return root;
}

/* load_fails loads text and checks the error code and the exact message. */
static void load_fails(const char *name, const char *text, eddy_err want, const char *msg)
{
	cfg_node *root = (cfg_node *)1;
	cfg_error err = { { 0 } };
	eddy_err rc = cfg_load_string(name, text, &root, &err);
	cr_assert_eq(rc, want, "%s: rc %d, message %s", name, rc, err.msg);
	cr_assert_null(root);
	cr_assert_str_eq(err.msg, msg);
}

/* keys_are checks map's keys, in order, against the NULL-terminated want. */
static void keys_are(const cfg_node *map, const char *const want[])
{
	cr_assert_eq(map->kind, CFG_MAP);
	size_t n = 0;
	while (want[n] != NULL)
		n++;
	cr_assert_eq(map->n, n, "%zu keys, expected %zu", map->n, n);
	for (size_t i = 0; i < n; i++) {
		cr_assert_str_eq(map->keys[i], want[i]);
		cr_assert_str_eq(map->key_nodes[i]->str, want[i]);
		cr_assert_eq(map->key_nodes[i]->parent, map);
		cr_assert_eq(map->items[i]->parent, map);
	}
}

static void at(const cfg_node *n, int line, int col)
{
	cr_assert_not_null(n);
	cr_assert_eq(n->line, line, "line %d, expected %d", n->line, line);
	cr_assert_eq(n->col, col, "col %d, expected %d", n->col, col);
}

static void scalar_is(const cfg_node *n, const char *s)
{
	cr_assert_not_null(n);
	cr_assert_eq(n->kind, CFG_SCALAR);
	cr_assert_str_eq(n->str, s);
}

/* fixture: the path of tests/data/cfg/NAME, found from this file's path. */
static void fixture(char *buf, size_t size, const char *name)
{
	const char *f = __FILE__;
	const char *end = strstr(f, "unit/test_cfg.c");
	cr_assert_not_null(end, "__FILE__ is %s", f);
	snprintf(buf, size, "%.*sdata/cfg/%s", (int)(end - f), f, name);
}

/* write_temp writes text to a new file in a new temporary directory; path gets its name. */
static void write_temp(char path[static 128], const char *name, const char *text)
{
	char dir[] = "/tmp/eddy_cfg_XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, 128, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
	cr_assert_eq(fclose(f), 0);
}

static void remove_temp(const char *path)
{
	char dir[128];
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	unlink(path);
	rmdir(dir);
}

/* ---- loading ---- */

Test(cfg, load_job_keeps_order_kinds_and_locations)
{
	cfg_node *root = load("job.yaml", JOB);
	cr_assert_eq(root->parent, NULL);
	cr_assert_str_eq(root->file, "job.yaml");
	at(root, 1, 1);
	keys_are(root, (const char *const[]){ "job", "parallelism", "sources", "operators", NULL });
	scalar_is(cfg_get(root, "job"), "flights-hourly");
	at(cfg_get(root, "job"), 1, 6);
	scalar_is(cfg_get(root, "parallelism"), "2");
	at(cfg_get(root, "parallelism"), 2, 14);
	at(root->key_nodes[1], 2, 1);

	cfg_node *sources = cfg_get(root, "sources");
	cr_assert_eq(sources->kind, CFG_SEQ);
	cr_assert_eq(sources->n, 1);
	cr_assert_null(sources->keys);
	at(sources, 4, 3);
	cfg_node *src = sources->items[0];
	cr_assert_eq(src->parent, sources);
	at(src, 4, 5);
	keys_are(src, (const char *const[]){ "id", "connector", "path", "schema", "watermark",
	                                     NULL });
	scalar_is(cfg_get(src, "path"), "../shared/data/flights-3m.csv.gz");
	at(cfg_get(src, "path"), 6, 11);
	cfg_node *schema = cfg_get(src, "schema");
	keys_are(schema, (const char *const[]){ "date", "delay", NULL });
	scalar_is(schema->items[0], "timestamp");
	scalar_is(schema->items[1], "int");
	at(schema->key_nodes[1], 9, 7);
	cfg_node *wm = cfg_get(src, "watermark");
	at(wm, 11, 7);
	scalar_is(cfg_get(wm, "max_out_of_orderness"), "10m");
	at(cfg_get(wm, "max_out_of_orderness"), 12, 29);

	cfg_node *op = cfg_get(root, "operators")->items[0];
	keys_are(op, (const char *const[]){ "id", "type", "input", "key_by", "window",
	                                    "aggregates", NULL });
	scalar_is(cfg_get(op, "input"), "flights"); /* the comment is not part of it */
	cfg_node *key_by = cfg_get(op, "key_by");    /* a flow sequence */
	cr_assert_eq(key_by->kind, CFG_SEQ);
	cr_assert_eq(key_by->n, 1);
	at(key_by, 17, 13);
	scalar_is(key_by->items[0], "origin");
	at(key_by->items[0], 17, 14);
	cfg_node *window = cfg_get(op, "window"); /* a flow mapping */
	at(window, 18, 13);
	keys_are(window, (const char *const[]){ "type", "size", NULL });
	at(window->key_nodes[1], 18, 30);
	scalar_is(cfg_get(window, "size"), "1h");
	at(cfg_get(window, "size"), 18, 36);
	cfg_node *aggs = cfg_get(op, "aggregates");
	keys_are(aggs, (const char *const[]){ "flights", "avg_delay", NULL });
	scalar_is(aggs->items[1], "avg(delay)");
	at(aggs->items[1], 21, 18);

	/* every node shares the root's file name */
	cr_assert_eq(aggs->items[1]->file, root->file);
	cr_assert_null(cfg_get(root, "nope"));
	cr_assert_null(cfg_get(sources, "id")); /* not a map */
	cr_assert_null(cfg_get(NULL, "id"));
	cfg_free(root);
}

static bool same_tree(const cfg_node *a, const cfg_node *b)
{
	if (a->kind != b->kind || a->line != b->line || a->col != b->col || a->n != b->n)
		return false;
	if (a->kind == CFG_SCALAR)
		return strcmp(a->str, b->str) == 0 && a->quoted == b->quoted;
	for (size_t i = 0; i < a->n; i++) {
		if (a->kind == CFG_MAP && (strcmp(a->keys[i], b->keys[i]) != 0 ||
		                           !same_tree(a->key_nodes[i], b->key_nodes[i])))
			return false;
		if (!same_tree(a->items[i], b->items[i]))
			return false;
	}
	return true;
}

Test(cfg, load_file_gives_the_same_tree_named_by_path)
{
	char path[512];
	fixture(path, sizeof(path), "flights-hourly.yaml");
	cfg_node *from_file = NULL;
	cfg_error err = { { 0 } };
	cr_assert_eq(cfg_load_file(path, &from_file, &err), EDDY_OK, "%s", err.msg);
	cr_assert_str_eq(from_file->file, path);
	cr_assert_str_eq(cfg_get(from_file, "sources")->items[0]->file, path);
	cfg_node *from_string = load("job.yaml", JOB);
	cr_assert(same_tree(from_file, from_string));
	/* and same_tree can tell trees apart */
	cfg_node *other = load("job.yaml", "job: flights-hourly\nparallelism: 3\n");
	cr_assert_not(same_tree(from_file, other));
	cfg_free(other);
	cfg_free(from_string);
	cfg_free(from_file);
}

Test(cfg, scalars_quoted_null_block_tags_and_anchors)
{
	cfg_node *root = load("s.yaml", "a: plain\n"
	                                "b: 'single'\n"
	                                "c: \"dou\\tble\"\n"
	                                "d:\n"
	                                "e: ~\n"
	                                "f: null\n"
	                                "g: \"null\"\n"
	                                "h: ''\n"
	                                "i: |\n"
	                                "  two\n"
	                                "  lines\n"
	                                "j: !!str 5\n"
	                                "k: &anchor 7\n"
	                                "'quoted key': 1\n");
	scalar_is(cfg_get(root, "a"), "plain");
	cr_assert_not(cfg_get(root, "a")->quoted);
	scalar_is(cfg_get(root, "b"), "single");
	cr_assert(cfg_get(root, "b")->quoted);
	scalar_is(cfg_get(root, "c"), "dou\tble");
	cr_assert(cfg_get(root, "c")->quoted);
	for (const char *k = "def"; *k; k++) {
		char key[2] = { *k, 0 };
		scalar_is(cfg_get(root, key), "");
		cr_assert_not(cfg_get(root, key)->quoted, "%s", key);
	}
	scalar_is(cfg_get(root, "g"), "null");
	cr_assert(cfg_get(root, "g")->quoted);
	scalar_is(cfg_get(root, "h"), "");
	cr_assert(cfg_get(root, "h")->quoted);
	scalar_is(cfg_get(root, "i"), "two\nlines\n");
	cr_assert(cfg_get(root, "i")->quoted);
	scalar_is(cfg_get(root, "j"), "5");
	scalar_is(cfg_get(root, "k"), "7");
	scalar_is(cfg_get(root, "quoted key"), "1");
	cfg_free(root);
}

Test(cfg, invalid_yaml_names_the_line)
{
	load_fails("bracket.yaml", "job: x\nkey_by: [a, b\nparallelism: 2\n", EDDY_EINVAL,
	           "bracket.yaml:3:12: invalid YAML: did not find expected ',' or ']' while "
	           "parsing a flow sequence at 2:9");
	load_fails("indent.yaml", "job: x\nsources:\n  - id: a\n   connector: file\n",
	           EDDY_EINVAL,
	           "indent.yaml:4:4: invalid YAML: did not find expected '-' indicator while "
	           "parsing a block collection at 3:3");
	load_fails("indent2.yaml", "job: x\n  parallelism: 2\n", EDDY_EINVAL,
	           "indent2.yaml:2:14: invalid YAML: mapping values are not allowed in this "
	           "context");
	load_fails("tab.yaml", "a:\n\tb: 1\n", EDDY_EINVAL,
	           "tab.yaml:2:1: invalid YAML: found character that cannot start any token "
	           "while scanning for the next token at 2:1 (YAML does not allow tabs for "
	           "indentation)");
	load_fails("quote.yaml", "a: \"open\n", EDDY_EINVAL,
	           "quote.yaml:2:1: invalid YAML: found unexpected end of stream while scanning "
	           "a quoted scalar at 1:4");
	load_fails("utf8.yaml", "a: 1\nb: \xff\n", EDDY_EINVAL,
	           "utf8.yaml:2:4: invalid YAML: invalid leading UTF-8 octet (#xFF)");
}

Test(cfg, structural_errors)
{
	load_fails("dup.yaml", "a: 1\nb: 2\na: 3\n", EDDY_EINVAL,
	           "dup.yaml:3:1: duplicate key 'a' (first at 1:1)");
	load_fails("dup2.yaml", "w: {a: 1, b: 2, a: 2}\n", EDDY_EINVAL,
	           "dup2.yaml:1:17: duplicate key 'a' (first at 1:5)");
	load_fails("alias.yaml", "a: &x 1\nb: *x\n", EDDY_EINVAL,
	           "alias.yaml:2:4: aliases are not supported");
	load_fails("merge.yaml", "base: &b {x: 1}\nc:\n  <<: *b\n", EDDY_EINVAL,
	           "merge.yaml:3:7: aliases are not supported");
	load_fails("complex.yaml", "? [a]\n: 1\n", EDDY_EINVAL,
	           "complex.yaml:1:3: map keys must be strings, got a list");
	load_fails("complex2.yaml", "x:\n  ? {a: 1}\n  : 1\n", EDDY_EINVAL,
	           "complex2.yaml:2:5: map keys must be strings, got a map");
	load_fails("ekey.yaml", "a: 1\n\"\": 2\n", EDDY_EINVAL, "ekey.yaml:2:1: empty map key");
	load_fails("list.yaml", "- a\n- b\n", EDDY_EINVAL,
	           "list.yaml:1:1: the top level must be a map, got a list");
	load_fails("scalar.yaml", "# a job\nhello\n", EDDY_EINVAL,
	           "scalar.yaml:2:1: the top level must be a map, got 'hello'");
	load_fails("two.yaml", "a: 1\n---\nb: 2\n", EDDY_EINVAL,
	           "two.yaml:2:1: only one YAML document is allowed");
	load_fails("nul.yaml", "a: \"x\\0y\"\n", EDDY_EINVAL,
	           "nul.yaml:1:4: NUL characters are not allowed");
}

/* nested writes "a: " and then depth nested flow lists. */
static void nested(char *text, int depth)
{
	char *p = text + sprintf(text, "a: ");
	memset(p, '[', (size_t)depth);
	memset(p + depth, ']', (size_t)depth);
	strcpy(p + 2 * depth, "\n");
}

Test(cfg, nesting_limit)
{
	char text[256];
	/* the root map is level 0; 63 nested lists under it are fine, 64 are not */
	nested(text, 63);
	cfg_node *root = load("deep.yaml", text);
	int depth = 0;
	for (const cfg_node *n = cfg_get(root, "a"); n->n > 0; n = n->items[0])
		depth++;
	cr_assert_eq(depth, 62); /* the innermost list is empty */
	cfg_free(root);
	nested(text, 64);
	load_fails("deep.yaml", text, EDDY_EINVAL, "deep.yaml:1:67: nesting deeper than 64 levels");
}

Test(cfg, empty_and_null_documents)
{
	load_fails("empty.yaml", "", EDDY_EINVAL, "empty.yaml: empty job file");
	load_fails("comments.yaml", "# only a comment\n\n   \n", EDDY_EINVAL,
	           "comments.yaml: empty job file");
	load_fails("dashes.yaml", "---\n", EDDY_EINVAL, "dashes.yaml: empty job file");
	load_fails("tilde.yaml", "~\n", EDDY_EINVAL, "tilde.yaml: empty job file");

	char path[128], want[300];
	write_temp(path, "empty.yaml", "");
	cfg_node *root = (cfg_node *)1;
	cfg_error err = { { 0 } };
	cr_assert_eq(cfg_load_file(path, &root, &err), EDDY_EINVAL);
	cr_assert_null(root);
	snprintf(want, sizeof(want), "%s: empty job file", path);
	cr_assert_str_eq(err.msg, want);
	remove_temp(path);
}

Test(cfg, missing_file_and_directory)
{
	cfg_node *root = (cfg_node *)1;
	cfg_error err = { { 0 } };
	errno = 0;
	cr_assert_eq(cfg_load_file("/nonexistent/job.yaml", &root, &err), EDDY_EIO);
	cr_assert_eq(errno, ENOENT);
	cr_assert_null(root);
	cr_assert_str_eq(err.msg, "/nonexistent/job.yaml: cannot open: No such file or directory");

	char path[128], want[300];
	write_temp(path, "x.yaml", "a: 1\n");
	char dir[128];
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	root = (cfg_node *)1;
	cr_assert_eq(cfg_load_file(dir, &root, &err), EDDY_EIO);
	cr_assert_null(root);
	snprintf(want, sizeof(want), "%s: cannot read: Is a directory", dir);
	cr_assert_str_eq(err.msg, want);
	/* a file that is there loads, with the file's own errors located in it */
	cr_assert_eq(cfg_load_file(path, &root, &err), EDDY_OK, "%s", err.msg);
	cr_assert_eq(cfg_int(root, "a", true, 2, 9, &(int64_t){ 0 }, &err), EDDY_EINVAL);
	snprintf(want, sizeof(want), "%s:1:4: 'a' must be between 2 and 9, got 1", path);
	cr_assert_str_eq(err.msg, want);
	cfg_free(root);
	remove_temp(path);
}

/* ---- accessors ---- */

static const char ACC[] = "parallelism: 2\n"               /* 1 */
                          "workers: two\n"                 /* 2 */
                          "big: 99999999999999999999\n"    /* 3 */
                          "neg: -3\n"                      /* 4 */
                          "enabled: yes\n"                 /* 5 */
                          "flag: OFF\n"                    /* 6 */
                          "maybe: maybe\n"                 /* 7 */
                          "quoted_num: \"42\"\n"           /* 8 */
                          "timeout: 10s\n"                 /* 9 */
                          "bad_timeout: ten\n"             /* 10 */
                          "buffer: 64KiB\n"                /* 11 */
                          "on_error: skp\n"                /* 12 */
                          "empty:\n"                       /* 13 */
                          "nothing: ~\n"                   /* 14 */
                          "quoted_empty: \"\"\n"           /* 15 */
                          "list: [a, b]\n"                 /* 16 */
                          "sub: {x: 1}\n"                  /* 17 */
                          "offsets: [1s, 2m, nope, [x]]\n" /* 18 */
                          "name: 'eddy'\n";                /* 19 */

Test(cfg, str_accessor)
{
	cfg_node *root = load("acc.yaml", ACC);
	cfg_error err = { { 0 } };
	const char *s = "default";
	cr_assert_eq(cfg_str(root, "name", true, &s, &err), EDDY_OK);
	cr_assert_str_eq(s, "eddy");
	cr_assert_eq(cfg_str(root, "parallelism", true, &s, &err), EDDY_OK);
	cr_assert_str_eq(s, "2");
	cr_assert_eq(cfg_str(root, "quoted_empty", true, &s, &err), EDDY_OK);
	cr_assert_str_eq(s, "");

	/* absent or null and optional: ENOENT, *out and err untouched */
	s = "default";
	strcpy(err.msg, "untouched");
	cr_assert_eq(cfg_str(root, "absent", false, &s, &err), EDDY_ENOENT);
	cr_assert_eq(cfg_str(root, "empty", false, &s, &err), EDDY_ENOENT);
	cr_assert_eq(cfg_str(root, "nothing", false, &s, &err), EDDY_ENOENT);
	cr_assert_eq(cfg_str(NULL, "x", false, &s, &err), EDDY_ENOENT);
	cr_assert_str_eq(s, "default");
	cr_assert_str_eq(err.msg, "untouched");

	/* absent or null and required */
	cr_assert_eq(cfg_str(root, "path", true, &s, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "acc.yaml:1:1: the top level is missing required key 'path'");
	cr_assert_eq(cfg_str(root, "empty", true, &s, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "acc.yaml:13:1: 'empty' has no value");
	cr_assert_eq(cfg_str(root, "nothing", true, &s, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "acc.yaml:14:1: 'nothing' has no value");
	cr_assert_eq(cfg_str(NULL, "x", true, &s, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "missing required key 'x'");
	cr_assert_str_eq(s, "default");

	/* wrong kind of value, or of map */
	cr_assert_eq(cfg_str(root, "list", true, &s, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "acc.yaml:16:7: 'list' must be a string, got a list");
	cr_assert_eq(cfg_str(root, "sub", false, &s, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "acc.yaml:17:6: 'sub' must be a string, got a map");
	cr_assert_eq(cfg_str(cfg_get(root, "list"), "x", false, &s, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "acc.yaml:16:7: list must be a map, got a list");
	cr_assert_eq(cfg_str(cfg_get(root, "name"), "x", false, &s, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "acc.yaml:19:7: name must be a map, got 'eddy'");
	cr_assert_str_eq(s, "default");
	/* a NULL err is allowed */
	cr_assert_eq(cfg_str(root, "list", true, &s, NULL), EDDY_EINVAL);
	cfg_free(root);
}

Test(cfg, int_accessor)
{
	cfg_node *root = load("acc.yaml", ACC);
	cfg_error err = { { 0 } };
	int64_t v = -99;
	cr_assert_eq(cfg_int(root, "parallelism", true, 1, 1024, &v, &err), EDDY_OK);
	cr_assert_eq(v, 2);
	cr_assert_eq(cfg_int(root, "neg", true, INT64_MIN, INT64_MAX, &v, &err), EDDY_OK);
	cr_assert_eq(v, -3);
	cr_assert_eq(cfg_int(root, "quoted_num", true, 0, 100, &v, &err), EDDY_OK);
	cr_assert_eq(v, 42);
	v = -99;
	cr_assert_eq(cfg_int(root, "absent", false, 1, 1024, &v, &err), EDDY_ENOENT);
	cr_assert_eq(v, -99);

	cr_assert_eq(cfg_int(root, "workers", true, 1, 1024, &v, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "acc.yaml:2:10: 'workers' must be an integer, got 'two'");
	cr_assert_eq(cfg_int(root, "parallelism", true, 4, 1024, &v, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "acc.yaml:1:14: 'parallelism' must be between 4 and 1024, got 2");
	cr_assert_eq(cfg_int(root, "neg", true, 0, 10, &v, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "acc.yaml:4:6: 'neg' must be between 0 and 10, got -3");
	cr_assert_eq(cfg_int(root, "big", true, INT64_MIN, INT64_MAX, &v, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "acc.yaml:3:6: 'big' must be between -9223372036854775808 and "
	                          "9223372036854775807, got 99999999999999999999");
	cr_assert_eq(cfg_int(root, "timeout", true, 0, 10, &v, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "acc.yaml:9:10: 'timeout' must be an integer, got '10s'");
	cr_assert_eq(cfg_int(root, "sub", true, 0, 10, &v, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "acc.yaml:17:6: 'sub' must be an integer, got a map");
	cr_assert_eq(v, -99);

	/* the ends of int64 */
	cfg_node *ends = load("ends.yaml", "lo: -9223372036854775808\nhi: +9223372036854775807\n"
	                                   "x: 1_000\ny: 0x10\nz: '-'\n");
	cr_assert_eq(cfg_int(ends, "lo", true, INT64_MIN, 0, &v, &err), EDDY_OK);
	cr_assert_eq(v, INT64_MIN);
	cr_assert_eq(cfg_int(ends, "hi", true, 0, INT64_MAX, &v, &err), EDDY_OK);
	cr_assert_eq(v, INT64_MAX);
	cr_assert_eq(cfg_int(ends, "lo", true, INT64_MIN + 1, 0, &v, &err), EDDY_EINVAL);
	for (const char *k = "xyz"; *k; k++) {
		char key[2] = { *k, 0 };
		cr_assert_eq(cfg_int(ends, key, true, INT64_MIN, INT64_MAX, &v, &err), EDDY_EINVAL,
		             "%s", key);
		cr_assert(strstr(err.msg, "must be an integer") != NULL, "%s", err.msg);
	}
	cfg_free(ends);
	cfg_free(root);
}

Test(cfg, bool_accessor)
{
	cfg_node *root = load("acc.yaml", ACC);
	cfg_error err = { { 0 } };
	bool b = false;
	cr_assert_eq(cfg_bool(root, "enabled", true, &b, &err), EDDY_OK);
	cr_assert(b);
	cr_assert_eq(cfg_bool(root, "flag", true, &b, &err), EDDY_OK);
	cr_assert_not(b);
	cr_assert_eq(cfg_bool(root, "maybe", true, &b, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg,
	                 "acc.yaml:7:8: 'maybe' must be true or false (also yes/no, on/off), got "
	                 "'maybe'");
	b = true;
	cr_assert_eq(cfg_bool(root, "absent", false, &b, &err), EDDY_ENOENT);
	cr_assert(b);

	static const struct {
		const char *text;
		bool want;
	} good[] = { { "true", true }, { "True", true },  { "yes", true },  { "on", true },
		     { "ON", true },   { "false", false }, { "no", false }, { "off", false },
		     { "FALSE", false } };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char text[64];
		snprintf(text, sizeof(text), "b: %s\n", good[i].text);
		cfg_node *r = load("b.yaml", text);
		b = !good[i].want;
		cr_assert_eq(cfg_bool(r, "b", true, &b, &err), EDDY_OK, "%s", good[i].text);
		cr_assert_eq(b, good[i].want, "%s", good[i].text);
		cfg_free(r);
	}
	for (const char *const *bad = (const char *const[]){ "1", "0", "y", "n", "tru", NULL };
	     *bad; bad++) {
		char text[64];
		snprintf(text, sizeof(text), "b: %s\n", *bad);
		cfg_node *r = load("b.yaml", text);
		cr_assert_eq(cfg_bool(r, "b", true, &b, &err), EDDY_EINVAL, "%s", *bad);
		cfg_free(r);
	}
	cfg_free(root);
}

/* one_value loads "v: TEXT" and returns the root. */
static cfg_node *one_value(const char *text)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "v: %s\n", text);
	return load("v.yaml", buf);
}

Test(cfg, durations)
{
	static const struct {
		const char *text;
		int64_t ms;
	} good[] = {
		{ "250ms", 250 },    { "10s", 10000 },         { "5m", 300000 },
		{ "1h", 3600000 },   { "1d", 86400000 },       { "0", 0 },
		{ "0s", 0 },         { "90m", 5400000 },       { "'10s'", 10000 },
		{ "9223372036854775807ms", INT64_MAX },
	};
	cfg_error err = { { 0 } };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cfg_node *r = one_value(good[i].text);
		int64_t ms = -1;
		cr_assert_eq(cfg_duration_ms(r, "v", true, &ms, &err), EDDY_OK, "%s: %s",
		             good[i].text, err.msg);
		cr_assert_eq(ms, good[i].ms, "%s: %lld", good[i].text, (long long)ms);
		cfg_free(r);
	}
	static const struct {
		const char *text, *msg;
	} bad[] = {
		{ "ten", "v.yaml:1:4: 'v': expected a duration like 250ms, 10s, 5m, 1h or 1d, got "
		         "'ten'" },
		{ "1.5s", "v.yaml:1:4: 'v': expected a duration like 250ms, 10s, 5m, 1h or 1d, got "
		          "'1.5s'" },
		{ "10", "v.yaml:1:4: 'v': expected a duration like 250ms, 10s, 5m, 1h or 1d, got "
		        "'10'" },
		{ "10 s", "v.yaml:1:4: 'v': expected a duration like 250ms, 10s, 5m, 1h or 1d, got "
		          "'10 s'" },
		{ "10S", "v.yaml:1:4: 'v': expected a duration like 250ms, 10s, 5m, 1h or 1d, got "
		         "'10S'" },
		{ "s", "v.yaml:1:4: 'v': expected a duration like 250ms, 10s, 5m, 1h or 1d, got "
		       "'s'" },
		{ "-5s", "v.yaml:1:4: 'v': a duration cannot be negative, got '-5s'" },
		{ "106751991167301d", "v.yaml:1:4: 'v': duration '106751991167301d' is too large" },
		{ "99999999999999999999ms",
		  "v.yaml:1:4: 'v': duration '99999999999999999999ms' is too large" },
		{ "[1s]", "v.yaml:1:4: 'v' must be a duration, got a list" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg_node *r = one_value(bad[i].text);
		int64_t ms = -1;
		cr_assert_eq(cfg_duration_ms(r, "v", true, &ms, &err), EDDY_EINVAL, "%s",
		             bad[i].text);
		cr_assert_str_eq(err.msg, bad[i].msg);
		cr_assert_eq(ms, -1);
		cfg_free(r);
	}
	cfg_node *root = load("acc.yaml", ACC);
	int64_t ms = 7;
	cr_assert_eq(cfg_duration_ms(root, "absent", false, &ms, &err), EDDY_ENOENT);
	cr_assert_eq(ms, 7);
	cr_assert_eq(cfg_duration_ms(root, "absent", true, &ms, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "acc.yaml:1:1: the top level is missing required key 'absent'");
	cfg_free(root);
}

Test(cfg, sizes)
{
	static const struct {
		const char *text;
		int64_t bytes;
	} good[] = {
		{ "512B", 512 },
		{ "64KiB", 65536 },
		{ "1MiB", 1048576 },
		{ "1GiB", 1073741824 },
		{ "2TiB", INT64_C(2) << 40 },
		{ "1kB", 1000 },
		{ "1KB", 1000 },
		{ "10MB", 10000000 },
		{ "3GB", INT64_C(3000000000) },
		{ "1TB", INT64_C(1000000000000) },
		{ "4096", 4096 },
		{ "0", 0 },
		{ "\"8KiB\"", 8192 },
		{ "9223372036854775807", INT64_MAX },
	};
	cfg_error err = { { 0 } };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cfg_node *r = one_value(good[i].text);
		int64_t bytes = -1;
		cr_assert_eq(cfg_size_bytes(r, "v", true, &bytes, &err), EDDY_OK, "%s: %s",
		             good[i].text, err.msg);
		cr_assert_eq(bytes, good[i].bytes, "%s: %lld", good[i].text, (long long)bytes);
		cfg_free(r);
	}
	static const struct {
		const char *text, *msg;
	} bad[] = {
		{ "big", "v.yaml:1:4: 'v': expected a size like 512B, 64KiB, 1MiB, 1GiB or 10MB, "
		         "got 'big'" },
		{ "1.5MiB", "v.yaml:1:4: 'v': expected a size like 512B, 64KiB, 1MiB, 1GiB or "
		            "10MB, got '1.5MiB'" },
		{ "1mib", "v.yaml:1:4: 'v': expected a size like 512B, 64KiB, 1MiB, 1GiB or 10MB, "
		          "got '1mib'" },
		{ "1 KiB", "v.yaml:1:4: 'v': expected a size like 512B, 64KiB, 1MiB, 1GiB or 10MB, "
		           "got '1 KiB'" },
		{ "-1", "v.yaml:1:4: 'v': a size cannot be negative, got '-1'" },
		{ "8388608TiB", "v.yaml:1:4: 'v': size '8388608TiB' is too large" },
		{ "{a: 1}", "v.yaml:1:4: 'v' must be a size, got a map" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg_node *r = one_value(bad[i].text);
		int64_t bytes = -1;
		cr_assert_eq(cfg_size_bytes(r, "v", true, &bytes, &err), EDDY_EINVAL, "%s",
		             bad[i].text);
		cr_assert_str_eq(err.msg, bad[i].msg);
		cr_assert_eq(bytes, -1);
		cfg_free(r);
	}
	cfg_node *root = load("acc.yaml", ACC);
	int64_t bytes = 0;
	cr_assert_eq(cfg_size_bytes(root, "buffer", true, &bytes, &err), EDDY_OK);
	cr_assert_eq(bytes, 65536);
	cfg_free(root);
}

Test(cfg, enum_accessor)
{
	static const char *const on_error[] = { "fail", "skip", "dead_letter", NULL };
	cfg_node *root = load("acc.yaml", ACC);
	cfg_error err = { { 0 } };
	int v = -1;
	cr_assert_eq(cfg_enum(root, "on_error", true, on_error, &v, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "acc.yaml:12:11: 'on_error' must be one of fail, skip, "
	                          "dead_letter, got 'skp' (did you mean 'skip'?)");
	cr_assert_eq(v, -1);
	cr_assert_eq(cfg_enum(root, "absent", false, on_error, &v, &err), EDDY_ENOENT);
	cr_assert_eq(v, -1);
	cr_assert_eq(cfg_enum(root, "sub", false, on_error, &v, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "acc.yaml:17:6: 'sub' must be one of fail, skip, dead_letter, "
	                          "got a map");
	cfg_free(root);

	root = load("e.yaml", "a: dead_letter\nb: ignore\nc: Skip\n");
	cr_assert_eq(cfg_enum(root, "a", true, on_error, &v, &err), EDDY_OK);
	cr_assert_eq(v, 2);
	cr_assert_eq(cfg_enum(root, "b", true, on_error, &v, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "e.yaml:2:4: 'b' must be one of fail, skip, dead_letter, got "
	                          "'ignore'");
	cr_assert_eq(cfg_enum(root, "c", true, on_error, &v, &err), EDDY_EINVAL); /* exact case */
	cr_assert_str_eq(err.msg, "e.yaml:3:4: 'c' must be one of fail, skip, dead_letter, got "
	                          "'Skip' (did you mean 'skip'?)");
	cr_assert_eq(v, 2);
	cfg_free(root);
}

Test(cfg, node_level_accessors_on_list_items)
{
	cfg_node *root = load("acc.yaml", ACC);
	cfg_error err = { { 0 } };
	cfg_node *offsets = cfg_get(root, "offsets");
	cr_assert_eq(offsets->n, 4);
	int64_t ms = -1;
	cr_assert_eq(cfg_node_duration_ms(offsets->items[0], "offsets[0]", &ms, &err), EDDY_OK);
	cr_assert_eq(ms, 1000);
	cr_assert_eq(cfg_node_duration_ms(offsets->items[1], "offsets[1]", &ms, &err), EDDY_OK);
	cr_assert_eq(ms, 120000);
	cr_assert_eq(cfg_node_duration_ms(offsets->items[2], "offsets[2]", &ms, &err),
	             EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "acc.yaml:18:19: offsets[2]: expected a duration like 250ms, "
	                          "10s, 5m, 1h or 1d, got 'nope'");
	cr_assert_eq(cfg_node_duration_ms(offsets->items[3], "offsets[3]", &ms, &err),
	             EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "acc.yaml:18:25: offsets[3] must be a duration, got a list");
	cr_assert_eq(ms, 120000);

	const char *s = NULL;
	cfg_node *list = cfg_get(root, "list");
	cr_assert_eq(cfg_node_str(list->items[1], "list[1]", &s, &err), EDDY_OK);
	cr_assert_str_eq(s, "b");
	cr_assert_eq(cfg_node_str(list, "list", &s, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "acc.yaml:16:7: list must be a string, got a list");
	/* a null value is an error at node level */
	cr_assert_eq(cfg_node_str(cfg_get(root, "nothing"), "'nothing'", &s, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "acc.yaml:14:10: 'nothing' has no value");

	int64_t i = 0;
	cr_assert_eq(cfg_node_int(cfg_get(root, "neg"), "neg", -5, 5, &i, &err), EDDY_OK);
	cr_assert_eq(i, -3);
	cr_assert_eq(cfg_node_int(list->items[0], "list[0]", 0, 5, &i, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "acc.yaml:16:8: list[0] must be an integer, got 'a'");
	bool b = false;
	cr_assert_eq(cfg_node_bool(cfg_get(root, "enabled"), "enabled", &b, &err), EDDY_OK);
	cr_assert(b);
	int64_t bytes = 0;
	cr_assert_eq(cfg_node_size_bytes(cfg_get(root, "buffer"), "buffer", &bytes, &err),
	             EDDY_OK);
	cr_assert_eq(bytes, 65536);
	int e = -1;
	cr_assert_eq(cfg_node_enum(list->items[1], "list[1]",
	                           (const char *const[]){ "a", "b", NULL }, &e, &err),
	             EDDY_OK);
	cr_assert_eq(e, 1);
	cfg_free(root);
}

Test(cfg, missing_required_key_names_the_map_by_path)
{
	cfg_node *root = load("job.yaml", JOB);
	cfg_error err = { { 0 } };
	cfg_node *src = cfg_get(root, "sources")->items[0];
	const char *s;
	cr_assert_eq(cfg_str(src, "format", true, &s, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "job.yaml:4:5: sources.flights is missing required key 'format'");
	cfg_node *wm = cfg_get(src, "watermark");
	cr_assert_eq(cfg_str(wm, "lateness", true, &s, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "job.yaml:11:7: sources.flights.watermark is missing required "
	                          "key 'lateness'");
	int64_t ms;
	cr_assert_eq(cfg_duration_ms(wm, "max_out_of_orderness", true, &ms, &err), EDDY_OK);
	cr_assert_eq(ms, 600000);
	cfg_node *window = cfg_get(cfg_get(root, "operators")->items[0], "window");
	cr_assert_eq(cfg_duration_ms(window, "size", true, &ms, &err), EDDY_OK);
	cr_assert_eq(ms, 3600000);
	cr_assert_eq(cfg_duration_ms(window, "slide", true, &ms, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "job.yaml:18:13: operators.hourly.window is missing required "
	                          "key 'slide'");
	cfg_free(root);
}

Test(cfg, paths)
{
	cfg_node *root = load("p.yaml", "a:\n  - id: x\n    b: [1, {c: 2}]\n  - name: y\n"
	                                "  - id: [not, scalar]\n");
	char buf[64];
	cr_assert_str_eq(cfg_path(root, buf, sizeof(buf)), "");
	cfg_node *a = cfg_get(root, "a");
	cfg_node *b = cfg_get(a->items[0], "b");
	cr_assert_str_eq(cfg_path(b, buf, sizeof(buf)), "a.x.b");
	cr_assert_str_eq(cfg_path(cfg_get(b->items[1], "c"), buf, sizeof(buf)), "a.x.b.1.c");
	cr_assert_str_eq(cfg_path(a->items[1], buf, sizeof(buf)), "a.1");
	cr_assert_str_eq(cfg_path(a->items[2], buf, sizeof(buf)), "a.2");
	cr_assert_str_eq(cfg_path(a->items[0]->key_nodes[1], buf, sizeof(buf)), "a.x.b");
	/* cut to fit */
	char small[6];
	cr_assert_str_eq(cfg_path(b, small, sizeof(small)), "a.x.b");
	char tiny[4];
	cr_assert_str_eq(cfg_path(b, tiny, sizeof(tiny)), "a.x");
	cfg_free(root);
}

/* ---- unknown keys, suggestions, messages ---- */

static const char *const JOB_KEYS[] = { "job", "parallelism", "sources", "operators", NULL };

Test(cfg, check_keys)
{
	cfg_error err = { { 0 } };
	cfg_node *root = load("job.yaml", JOB);
	cr_assert_eq(cfg_check_keys(root, JOB_KEYS, "the job", &err), EDDY_OK);
	cr_assert_eq(cfg_check_keys(NULL, JOB_KEYS, "the job", &err), EDDY_OK);
	cfg_node *window = cfg_get(cfg_get(root, "operators")->items[0], "window");
	cr_assert_eq(cfg_check_keys(window, (const char *const[]){ "type", NULL }, "window", &err),
	             EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "job.yaml:18:30: unknown key 'size' in window");
	cr_assert_eq(cfg_check_keys(cfg_get(window, "type"), JOB_KEYS, "window type", &err),
	             EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "job.yaml:18:20: window type must be a map, got 'tumbling'");
	cr_assert_eq(cfg_check_keys(cfg_get(root, "sources"), JOB_KEYS, "sources", &err),
	             EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "job.yaml:4:3: sources must be a map, got a list");
	cfg_free(root);

	root = load("typo.yaml", "job: x\nparalelism: 2\ncolour: red\n");
	cr_assert_eq(cfg_check_keys(root, JOB_KEYS, "the job", &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg,
	                 "typo.yaml:2:1: unknown key 'paralelism' in the job (did you mean "
	                 "'parallelism'?)");
	cfg_free(root);
	root = load("typo.yaml", "job: x\ncolour: red\n");
	cr_assert_eq(cfg_check_keys(root, JOB_KEYS, "the job", &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "typo.yaml:2:1: unknown key 'colour' in the job");
	cfg_free(root);
	root = load("typo.yaml", "w:\njob: x\n");
	cr_assert_eq(cfg_check_keys(cfg_get(root, "w"), JOB_KEYS, "watermark", &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "typo.yaml:1:3: watermark must be a map, got an empty value");
	cfg_free(root);
}

Test(cfg, nearest)
{
	static const char *const on_error[] = { "fail", "skip", "dead_letter", NULL };
	cr_assert_str_eq(cfg_nearest("paralelism", JOB_KEYS), "parallelism");
	cr_assert_str_eq(cfg_nearest("Sources", JOB_KEYS), "sources");
	cr_assert_str_eq(cfg_nearest("job", JOB_KEYS), "job");
	cr_assert_str_eq(cfg_nearest("skp", on_error), "skip");
	cr_assert_str_eq(cfg_nearest("deadletter", on_error), "dead_letter");
	cr_assert_null(cfg_nearest("ignore", on_error));
	cr_assert_null(cfg_nearest("colour", JOB_KEYS));
	/* max(2, len/3): 4 edits are near for a 16-letter word, 3 are not for an 8-letter one */
	static const char *const wm[] = { "max_out_of_orderness", NULL };
	cr_assert_str_eq(cfg_nearest("max_out_of_order", wm), "max_out_of_orderness");
	cr_assert_null(cfg_nearest("max_outo", wm));
	static const char *const ooo[] = { "out_of_order", NULL }, *const ooon[] = {
		"out_of_orderness", NULL
	};
	cr_assert_null(cfg_nearest("out_of_orderness_ms", ooo)); /* 7 edits > 19 / 3 */
	cr_assert_str_eq(cfg_nearest("out_of_orderness_ms", ooon), "out_of_orderness");
	static const char *const t[] = { "timezone", NULL };
	cr_assert_null(cfg_nearest("tmzne", t)); /* 3 edits, len 5 */
	cr_assert_str_eq(cfg_nearest("tmzone", t), "timezone");
	/* not a complete replacement of a short word */
	cr_assert_null(cfg_nearest("x", (const char *const[]){ "id", NULL }));
	cr_assert_str_eq(cfg_nearest("i", (const char *const[]){ "id", NULL }), "id");
	/* ties go to the first */
	cr_assert_str_eq(cfg_nearest("ab", (const char *const[]){ "abc", "abd", NULL }), "abc");
	cr_assert_null(cfg_nearest("a", (const char *const[]){ NULL }));
	char longer[200];
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	cr_assert_null(cfg_nearest(longer, (const char *const[]){ longer, NULL }));
}

Test(cfg, errorf_and_kind_names)
{
	cfg_node *root = load("job.yaml", JOB);
	cfg_error err = { { 0 } };
	cr_assert_eq(cfg_errorf(&err, cfg_get(root, "parallelism"), "too many: %d", 7),
	             EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "job.yaml:2:14: too many: 7");
	cr_assert_eq(cfg_errorf(&err, NULL, "no place %s", "here"), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "no place here");
	cr_assert_eq(cfg_errorf(NULL, root, "dropped"), EDDY_EINVAL);
	char big[1000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cfg_errorf(&err, root, "%s", big);
	cr_assert_eq(strlen(err.msg), sizeof(err.msg) - 1);
	cr_assert_eq(strncmp(err.msg, "job.yaml:1:1: xxx", 17), 0);
	/* a node made by --set has no line */
	cr_assert_eq(cfg_set(root, "parallelism=8", &err), EDDY_OK);
	cfg_errorf(&err, cfg_get(root, "parallelism"), "odd");
	cr_assert_str_eq(err.msg, "--set parallelism: odd");

	cr_assert_str_eq(cfg_kind_name(CFG_SCALAR), "a scalar");
	cr_assert_str_eq(cfg_kind_name(CFG_MAP), "a map");
	cr_assert_str_eq(cfg_kind_name(CFG_SEQ), "a list");
	cfg_free(root);
}

/* ---- --set ---- */

Test(cfg, set_top_level_key)
{
	cfg_node *root = load("job.yaml", JOB);
	cfg_error err = { { 0 } };
	cr_assert_eq(cfg_set(root, "parallelism=4", &err), EDDY_OK, "%s", err.msg);
	int64_t v = 0;
	cr_assert_eq(cfg_int(root, "parallelism", true, 1, 1024, &v, &err), EDDY_OK);
	cr_assert_eq(v, 4);
	cfg_node *n = cfg_get(root, "parallelism");
	cr_assert_str_eq(n->file, "--set parallelism");
	cr_assert_eq(n->line, 0);
	cr_assert_not(n->quoted);
	at(root->key_nodes[1], 2, 1); /* the key itself came from the file */
	cr_assert_str_eq(root->key_nodes[1]->file, "job.yaml");
	cr_assert_eq(root->n, 4);
	/* a later error about the value points at the --set */
	cr_assert_eq(cfg_set(root, "parallelism=two", &err), EDDY_OK);
	cr_assert_eq(cfg_int(root, "parallelism", true, 1, 1024, &v, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "--set parallelism: 'parallelism' must be an integer, got 'two'");
	/* everything after the first '=' is the value; an empty value is null */
	cr_assert_eq(cfg_set(root, "job=a=b", &err), EDDY_OK);
	scalar_is(cfg_get(root, "job"), "a=b");
	cr_assert_eq(cfg_set(root, "job=", &err), EDDY_OK);
	const char *s = "default";
	cr_assert_eq(cfg_str(root, "job", false, &s, &err), EDDY_ENOENT);
	cr_assert_str_eq(s, "default");
	cfg_free(root);
}

Test(cfg, set_list_entries_by_id_and_index)
{
	cfg_node *root = load("job.yaml", JOB);
	cfg_error err = { { 0 } };
	cr_assert_eq(cfg_set(root, "sources.flights.path=/data/x.csv", &err), EDDY_OK, "%s",
	             err.msg);
	cfg_node *src = cfg_get(root, "sources")->items[0];
	scalar_is(cfg_get(src, "path"), "/data/x.csv");
	cr_assert_str_eq(cfg_get(src, "path")->file, "--set sources.flights.path");
	cr_assert_eq(cfg_set(root, "sources.0.connector=kafka", &err), EDDY_OK, "%s", err.msg);
	scalar_is(cfg_get(src, "connector"), "kafka");
	cr_assert_eq(cfg_set(root, "sources.flights.watermark.max_out_of_orderness=5s", &err),
	             EDDY_OK);
	int64_t ms = 0;
	cr_assert_eq(cfg_duration_ms(cfg_get(src, "watermark"), "max_out_of_orderness", true, &ms,
	                             &err),
	             EDDY_OK);
	cr_assert_eq(ms, 5000);
	/* a list item that is a scalar */
	cr_assert_eq(cfg_set(root, "operators.hourly.key_by.0=destination", &err), EDDY_OK);
	scalar_is(cfg_get(cfg_get(root, "operators")->items[0], "key_by")->items[0], "destination");
	cfg_free(root);
}

Test(cfg, set_flow_map_value)
{
	cfg_node *root = load("job.yaml", JOB);
	cfg_error err = { { 0 } };
	cr_assert_eq(cfg_set(root, "operators.hourly.window.size=2h", &err), EDDY_OK, "%s",
	             err.msg);
	cfg_node *window = cfg_get(cfg_get(root, "operators")->items[0], "window");
	keys_are(window, (const char *const[]){ "type", "size", NULL });
	int64_t ms = 0;
	cr_assert_eq(cfg_duration_ms(window, "size", true, &ms, &err), EDDY_OK);
	cr_assert_eq(ms, 7200000);
	cr_assert_eq(cfg_set(root, "operators.hourly.window.size=2x", &err), EDDY_OK);
	cr_assert_eq(cfg_duration_ms(window, "size", true, &ms, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "--set operators.hourly.window.size: 'size': expected a "
	                          "duration like 250ms, 10s, 5m, 1h or 1d, got '2x'");
	cfg_free(root);
}

Test(cfg, set_creates_missing_keys)
{
	cfg_node *root = load("job.yaml", JOB);
	cfg_error err = { { 0 } };
	cr_assert_eq(cfg_set(root, "sources.flights.format=csv", &err), EDDY_OK, "%s", err.msg);
	cfg_node *src = cfg_get(root, "sources")->items[0];
	keys_are(src, (const char *const[]){ "id", "connector", "path", "schema", "watermark",
	                                     "format", NULL });
	cfg_node *format = cfg_get(src, "format");
	scalar_is(format, "csv");
	cr_assert_str_eq(format->file, "--set sources.flights.format");
	cr_assert_eq(format->line, 0);
	cr_assert_str_eq(src->key_nodes[5]->file, "--set sources.flights.format");

	/* several levels at once: the maps on the way are made too */
	cr_assert_eq(cfg_set(root, "sources.flights.options.gzip.level=9", &err), EDDY_OK);
	cfg_node *options = cfg_get(src, "options");
	cr_assert_eq(options->kind, CFG_MAP);
	cr_assert_str_eq(options->file, "--set sources.flights.options.gzip.level");
	int64_t level = 0;
	cr_assert_eq(cfg_int(cfg_get(options, "gzip"), "level", true, 0, 9, &level, &err),
	             EDDY_OK);
	cr_assert_eq(level, 9);
	char path[64];
	cr_assert_str_eq(cfg_path(cfg_get(cfg_get(options, "gzip"), "level"), path, sizeof(path)),
	                 "sources.flights.options.gzip.level");
	/* a new top-level key; cfg_check_keys then reports it at the --set */
	cr_assert_eq(cfg_set(root, "paralelism=3", &err), EDDY_OK);
	cr_assert_eq(root->n, 5);
	cr_assert_eq(cfg_check_keys(root, JOB_KEYS, "the job", &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "--set paralelism: unknown key 'paralelism' in the job (did you "
	                          "mean 'parallelism'?)");
	/* a map that grows past its first allocations keeps its order */
	char kv[64];
	for (int i = 0; i < 40; i++) {
		snprintf(kv, sizeof(kv), "extra.k%d=%d", i, i);
		cr_assert_eq(cfg_set(root, kv, &err), EDDY_OK);
	}
	cfg_node *extra = cfg_get(root, "extra");
	cr_assert_eq(extra->n, 40);
	for (int i = 0; i < 40; i++) {
		snprintf(kv, sizeof(kv), "k%d", i);
		cr_assert_str_eq(extra->keys[i], kv);
		cr_assert_eq(extra->items[i]->parent, extra);
	}
	cfg_free(root);
}

/* set_fails checks that assignment fails with msg and leaves the tree as it was. */
static void set_fails(const char *assignment, const char *msg)
{
	cfg_node *root = load("job.yaml", JOB);
	cfg_node *before = load("job.yaml", JOB);
	cfg_error err = { { 0 } };
	cr_assert_eq(cfg_set(root, assignment, &err), EDDY_EINVAL, "%s", assignment);
	cr_assert_str_eq(err.msg, msg);
	cr_assert(same_tree(root, before), "%s changed the tree", assignment);
	cfg_free(before);
	cfg_free(root);
}

Test(cfg, set_errors)
{
	set_fails("parallelism", "--set: expected KEY=VALUE, got 'parallelism'");
	set_fails("=4", "--set: expected KEY=VALUE, got '=4'");
	set_fails("", "--set: expected KEY=VALUE, got ''");
	set_fails("sources..path=x", "--set sources..path=x: empty segment in key 'sources..path'");
	set_fails(".job=x", "--set .job=x: empty segment in key '.job'");
	set_fails("job.=x", "--set job.=x: empty segment in key 'job.'");
	set_fails("sources.flight.path=/x.csv",
	          "--set sources.flight.path=/x.csv: no entry with id 'flight' in sources (did "
	          "you mean 'flights'?)");
	set_fails("sources.kafka.path=x",
	          "--set sources.kafka.path=x: no entry with id 'kafka' in sources");
	set_fails("sources.1.path=x", "--set sources.1.path=x: no entry with id '1' in sources, "
	                              "and index 1 is out of range (1 entry)");
	set_fails("job.name=x", "--set job.name=x: 'job' is a scalar, not a map");
	set_fails("sources.flights.path.x=1",
	          "--set sources.flights.path.x=1: 'sources.flights.path' is a scalar, not a map");
	set_fails("operators.hourly.window=sliding",
	          "--set operators.hourly.window=sliding: 'operators.hourly.window' is a map, not "
	          "a scalar");
	set_fails("operators.hourly.key_by=dest",
	          "--set operators.hourly.key_by=dest: 'operators.hourly.key_by' is a list, not a "
	          "scalar");
	set_fails("sources=x", "--set sources=x: 'sources' is a list, not a scalar");
}

/* ---- memory ---- */

Test(cfg, no_leaks)
{
	int64_t base = rt_alloc_live();
	cfg_error err = { { 0 } };
	cfg_node *root = load("job.yaml", JOB);
	cr_assert_gt(rt_alloc_live(), base);
	cr_assert_eq(cfg_set(root, "parallelism=4", &err), EDDY_OK);
	cr_assert_eq(cfg_set(root, "parallelism=5", &err), EDDY_OK);
	cr_assert_eq(cfg_set(root, "sources.flights.a.b.c=1", &err), EDDY_OK);
	cr_assert_eq(cfg_set(root, "sources.nope.a=1", &err), EDDY_EINVAL);
	cr_assert_eq(cfg_str(root, "absent", true, &(const char *){ NULL }, &err), EDDY_EINVAL);
	cfg_free(root);
	cr_assert_eq(rt_alloc_live(), base);

	/* failed loads leave nothing behind */
	cfg_node *r = NULL;
	cr_assert_eq(cfg_load_string("x.yaml", "a: 1\nb: [1, 2\n", &r, &err), EDDY_EINVAL);
	cr_assert_eq(cfg_load_string("x.yaml", "a: {b: [1, 2], c: 1, c: 2}\n", &r, &err),
	             EDDY_EINVAL);
	cr_assert_eq(cfg_load_string("x.yaml", "a: [1, *x]\n", &r, &err), EDDY_EINVAL);
	cr_assert_eq(cfg_load_string("x.yaml", "a: 1\n---\nb: 1\n", &r, &err), EDDY_EINVAL);
	cr_assert_eq(cfg_load_file("/nonexistent.yaml", &r, &err), EDDY_EIO);
	cr_assert_eq(rt_alloc_live(), base);
	cfg_free(NULL);
}

Test(cfg, allocation_failures_while_loading)
{
	int64_t base = rt_alloc_live();
	char path[512];
	fixture(path, sizeof(path), "flights-hourly.yaml");
	for (int from_file = 0; from_file < 2; from_file++) {
		int failures = 0;
		for (int64_t k = 0;; k++) {
			cfg_node *root = (cfg_node *)1;
			cfg_error err = { { 0 } };
			rt_alloc_fail_after(k);
			eddy_err rc = from_file ? cfg_load_file(path, &root, &err)
			                        : cfg_load_string("job.yaml", JOB, &root, &err);
			rt_alloc_fail_after(-1);
			if (rc == EDDY_OK) {
				cfg_node *want = load("job.yaml", JOB);
				cr_assert(same_tree(root, want));
				cfg_free(want);
				cr_assert_str_eq(cfg_get(root, "sources")->items[0]->keys[4],
				                 "watermark");
				cfg_free(root);
				break;
			}
			cr_assert_eq(rc, EDDY_ENOMEM, "k=%lld: %s", (long long)k, err.msg);
			cr_assert_null(root);
			cr_assert(strstr(err.msg, ": out of memory") != NULL, "%s", err.msg);
			cr_assert_eq(rt_alloc_live(), base, "leak after failure %lld",
			             (long long)k);
			failures++;
		}
		cr_assert_gt(failures, 50); /* every node allocates: many points were tried */
		cr_assert_eq(rt_alloc_live(), base);
	}
}

Test(cfg, allocation_failures_in_set_leave_the_tree_unchanged)
{
	int64_t base = rt_alloc_live();
	static const char *const sets[] = { "sources.flights.options.gzip.level=9",
		                            "operators.hourly.window.size=2h", "newkey=1", NULL };
	for (size_t i = 0; sets[i] != NULL; i++) {
		int failures = 0;
		for (int64_t k = 0;; k++) {
			cfg_node *root = load("job.yaml", JOB);
			cfg_node *before = load("job.yaml", JOB);
			cfg_error err = { { 0 } };
			rt_alloc_fail_after(k);
			eddy_err rc = cfg_set(root, sets[i], &err);
			rt_alloc_fail_after(-1);
			bool done = rc == EDDY_OK;
			if (!done) {
				cr_assert_eq(rc, EDDY_ENOMEM, "%s k=%lld: %s", sets[i],
				             (long long)k, err.msg);
				cr_assert(same_tree(root, before));
				failures++;
			} else {
				cr_assert_not(same_tree(root, before));
			}
			cfg_free(before);
			cfg_free(root);
			cr_assert_eq(rt_alloc_live(), base);
			if (done)
				break;
		}
		cr_assert_geq(failures, 4, "%s: %d", sets[i], failures);
	}
}
