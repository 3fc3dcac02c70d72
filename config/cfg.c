/*
 * The job configuration tree (config/cfg.h): libyaml's event stream turned into nodes with
 * locations, --set overrides, and the checked accessors with their messages.
 *
 * Memory: every node is one rt_calloc block with its own rt_strdup'd string and arrays;
 * the root is a cfg_root, whose first member is its node, and which owns the strings that
 * nodes' file fields point to (the file name, then one "--set KEY" per override).
 * Map and list arrays grow by doubling; their capacity is not stored but follows from n
 * (see needs_grow).
 */
#include "cfg.h"

#include "../runtime/alloc.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#define CFG_MAX_DEPTH 64   /* maps and lists nested deeper than this are refused */
#define CFG_NEAR_MAX 128   /* cfg_nearest ignores strings longer than this */
#define CFG_WHAT_MAX 160   /* "'key'" as the keyed accessors name a value */
#define CFG_PATH_MAX 256   /* paths in messages are cut at this length */
#define CFG_SHOW_MAX 100   /* scalars quoted in messages are cut at this length */
#define CFG_SET_PREFIX "--set "

typedef struct cfg_root {
	cfg_node node; /* first: the root's cfg_node * is its cfg_root * */
	char **owned;  /* the strings nodes' file fields point to: [0] the file name, then
	                * one "--set KEY" per cfg_set */
	size_t nowned;
} cfg_root;

/* ---- nodes ---- */

static void node_free(cfg_node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->n; i++) {
		if (n->kind == CFG_MAP)
			node_free(n->key_nodes[i]);
		node_free(n->items[i]);
	}
	rt_free(n->keys);
	rt_free(n->key_nodes);
	rt_free(n->items);
	rt_free(n->str);
	rt_free(n);
}

/* node_new allocates a zeroed node of size bytes (a cfg_node, or a cfg_root for the root). */
static cfg_node *node_new(size_t size, cfg_kind kind, const char *file, int line, int col)
{
	cfg_node *n = rt_calloc(1, size);
	if (n == NULL)
		return NULL;
	n->kind = kind;
	n->file = file;
	n->line = line;
	n->col = col;
	return n;
}

static cfg_node *scalar_new(const char *s, bool quoted, const char *file, int line, int col)
{
	cfg_node *n = node_new(sizeof(cfg_node), CFG_SCALAR, file, line, col);
	if (n == NULL)
		return NULL;
	n->str = rt_strdup(s);
	if (n->str == NULL) {
		rt_free(n);
		return NULL;
	}
	n->quoted = quoted;
	return n;
}

/* needs_grow: whether an array holding n entries is full. Arrays are allocated for 4
 * entries, then doubled, so the capacity is 0 for n == 0, 4 for n <= 4, else the next
 * power of two. */
static bool needs_grow(size_t n)
{
	return n == 0 || (n >= 4 && (n & (n - 1)) == 0);
}

static eddy_err grow_array(void *arrayp, size_t n, size_t elem)
{
	void **a = arrayp;
	if (!needs_grow(n))
		return EDDY_OK;
	void *p = rt_realloc(*a, (n == 0 ? 4 : 2 * n) * elem);
	if (p == NULL)
		return EDDY_ENOMEM;
	*a = p;
	return EDDY_OK;
}

/* node_reserve makes room for one more entry in map or list m. On ENOMEM, m is unchanged
 * but for arrays that may have grown, which is harmless. */
static eddy_err node_reserve(cfg_node *m)
{
	if (grow_array(&m->items, m->n, sizeof(*m->items)) != EDDY_OK)
		return EDDY_ENOMEM;
	if (m->kind == CFG_MAP) {
		if (grow_array(&m->keys, m->n, sizeof(*m->keys)) != EDDY_OK ||
		    grow_array(&m->key_nodes, m->n, sizeof(*m->key_nodes)) != EDDY_OK)
			return EDDY_ENOMEM;
	}
	return EDDY_OK;
}

/* node_append adds an entry to m after node_reserve succeeded; key is NULL for a list. */
static void node_append(cfg_node *m, cfg_node *key, cfg_node *value)
{
	if (m->kind == CFG_MAP) {
		m->keys[m->n] = key->str;
		m->key_nodes[m->n] = key;
		key->parent = m;
	}
	m->items[m->n] = value;
	value->parent = m;
	m->n++;
}

static bool is_null(const cfg_node *n)
{
	return n->kind == CFG_SCALAR && !n->quoted && n->str[0] == '\0';
}

static bool is_null_word(const char *s)
{
	return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	       strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static long find_key(const cfg_node *map, const char *key)
{
	for (size_t i = 0; i < map->n; i++)
		if (strcmp(map->keys[i], key) == 0)
			return (long)i;
	return -1;
}

cfg_node *cfg_get(const cfg_node *map, const char *key)
{
	if (map == NULL || map->kind != CFG_MAP)
		return NULL;
	long i = find_key(map, key);
	return i < 0 ? NULL : map->items[i];
}

void cfg_free(cfg_node *root)
{
	if (root == NULL)
		return;
	assert(root->parent == NULL);
	cfg_root *r = (cfg_root *)root;
	for (size_t i = 0; i < r->nowned; i++)
		rt_free(r->owned[i]);
	rt_free(r->owned);
	node_free(root);
}

/* ---- messages ---- */

eddy_err cfg_errorf(cfg_error *err, const cfg_node *n, const char *fmt, ...)
{
	if (err == NULL)
		return EDDY_EINVAL;
	int off = 0;
	if (n != NULL && n->line > 0)
		off = snprintf(err->msg, sizeof(err->msg), "%s:%d:%d: ", n->file, n->line, n->col);
	else if (n != NULL)
		off = snprintf(err->msg, sizeof(err->msg), "%s: ", n->file);
	if (off < 0)
		off = 0;
	if ((size_t)off >= sizeof(err->msg))
		return EDDY_EINVAL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg + off, sizeof(err->msg) - (size_t)off, fmt, ap);
	va_end(ap);
	return EDDY_EINVAL;
}

/* plain_errorf formats a message with no location. */
static eddy_err plain_errorf(cfg_error *err, eddy_err rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static eddy_err plain_errorf(cfg_error *err, eddy_err rc, const char *fmt, ...)
{
	if (err != NULL) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return rc;
}

const char *cfg_kind_name(cfg_kind kind)
{
	switch (kind) {
	case CFG_SCALAR: return "a scalar";
	case CFG_MAP: return "a map";
	case CFG_SEQ: return "a list";
	}
	return "a node";
}

/* describe writes how a message shows what it got: "'text'" (cut), "an empty value",
 * "a map" or "a list". */
static const char *describe(const cfg_node *n, char buf[static CFG_SHOW_MAX + 8])
{
	if (n->kind != CFG_SCALAR)
		return cfg_kind_name(n->kind);
	if (is_null(n))
		return "an empty value";
	if (strlen(n->str) > CFG_SHOW_MAX)
		snprintf(buf, CFG_SHOW_MAX + 8, "'%.*s...'", CFG_SHOW_MAX, n->str);
	else
		snprintf(buf, CFG_SHOW_MAX + 8, "'%s'", n->str);
	return buf;
}

/* near_dist is the Levenshtein distance from s to c if c is near enough to suggest for s
 * (see cfg_nearest), else -1. */
static int near_dist(const char *s, const char *c)
{
	size_t ls = strlen(s), lc = strlen(c);
	if (ls > CFG_NEAR_MAX || lc > CFG_NEAR_MAX)
		return -1;
	int prev[CFG_NEAR_MAX + 1], row[CFG_NEAR_MAX + 1];
	for (size_t j = 0; j <= lc; j++)
		prev[j] = (int)j;
	for (size_t i = 1; i <= ls; i++) {
		row[0] = (int)i;
		for (size_t j = 1; j <= lc; j++) {
			int best = prev[j - 1] + (s[i - 1] != c[j - 1]);
			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
		}
		memcpy(prev, row, (lc + 1) * sizeof(int));
	}
	int d = prev[lc];
	int limit = (int)(ls / 3 > 2 ? ls / 3 : 2);
	int longer = (int)(ls > lc ? ls : lc);
	return d <= limit && d < longer ? d : -1;
}

const char *cfg_nearest(const char *s, const char *const candidates[])
{
	const char *best = NULL;
	int best_d = -1;
	for (size_t i = 0; candidates[i] != NULL; i++) {
		int d = near_dist(s, candidates[i]);
		if (d >= 0 && (best_d < 0 || d < best_d)) {
			best = candidates[i];
			best_d = d;
		}
	}
	return best;
}

/* path_segment names n within its parent: its key, its list item's id, or its index. */
static const char *path_segment(const cfg_node *n, char idx[static 24])
{
	const cfg_node *p = n->parent;
	for (size_t i = 0; i < p->n; i++) {
		if (p->items[i] != n && (p->kind != CFG_MAP || p->key_nodes[i] != n))
			continue;
		if (p->kind == CFG_MAP)
			return p->keys[i];
		const cfg_node *id = cfg_get(n, "id");
		if (id != NULL && id->kind == CFG_SCALAR && !is_null(id))
			return id->str;
		snprintf(idx, 24, "%zu", i);
		return idx;
	}
	assert(!"node not found in its parent");
	return "?";
}

static size_t path_put(const cfg_node *n, char *buf, size_t size, size_t off)
{
	if (n->parent == NULL)
		return off;
	off = path_put(n->parent, buf, size, off);
	char idx[24];
	const char *seg = path_segment(n, idx);
	int w = snprintf(buf + off, size - off, "%s%s", off > 0 ? "." : "", seg);
	if (w < 0)
		return off;
	off += (size_t)w;
	return off < size ? off : size - 1;
}

char *cfg_path(const cfg_node *n, char *buf, size_t size)
{
	if (size == 0)
		return buf;
	buf[0] = '\0';
	path_put(n, buf, size, 0);
	return buf;
}

/* path_name is cfg_path for messages: "the top level" for the root. */
static const char *path_name(const cfg_node *n, char buf[static CFG_PATH_MAX])
{
	if (n->parent == NULL)
		return "the top level";
	return cfg_path(n, buf, CFG_PATH_MAX);
}

/* ---- loading ---- */

typedef struct parse_ctx {
	yaml_parser_t parser;
	const char *file; /* the name in node locations (owned by the root to be) */
	const char *text; /* the input, for locating reader errors */
	size_t len;
	cfg_error *err;
} parse_ctx;

static eddy_err mark_errorf(parse_ctx *pc, const yaml_mark_t *m, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static eddy_err mark_errorf(parse_ctx *pc, const yaml_mark_t *m, const char *fmt, ...)
{
	if (pc->err == NULL)
		return EDDY_EINVAL;
	char *msg = pc->err->msg;
	size_t size = sizeof(pc->err->msg);
	int off = snprintf(msg, size, "%s:%d:%d: ", pc->file, (int)m->line + 1, (int)m->column + 1);
	if (off < 0 || (size_t)off >= size)
		return EDDY_EINVAL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg + off, size - (size_t)off, fmt, ap);
	va_end(ap);
	return EDDY_EINVAL;
}

/* yaml_error turns a failed yaml_parser_parse into a message. */
static eddy_err yaml_error(parse_ctx *pc)
{
	yaml_parser_t *p = &pc->parser;
	const char *problem = p->problem != NULL ? p->problem : "error";
	switch (p->error) {
	case YAML_MEMORY_ERROR:
		return plain_errorf(pc->err, EDDY_ENOMEM, "%s: out of memory", pc->file);
	case YAML_READER_ERROR: {
		/* The reader gives a byte offset, not a mark: count lines and characters. */
		yaml_mark_t m = { 0 };
		for (size_t i = 0; i < p->problem_offset && i < pc->len; i++) {
			unsigned char c = (unsigned char)pc->text[i];
			if (c == '\n') {
				m.line++;
				m.column = 0;
			} else if ((c & 0xC0) != 0x80) {
				m.column++;
			}
		}
		if (p->problem_value != -1)
			return mark_errorf(pc, &m, "invalid YAML: %s (#x%X)", problem,
			                   (unsigned)p->problem_value);
		return mark_errorf(pc, &m, "invalid YAML: %s", problem);
	}
	default: {
		/* a tab where indentation is expected is the usual cause of some errors */
		size_t at = p->problem_mark.index;
		const char *hint = at < pc->len && pc->text[at] == '\t'
		                           ? " (YAML does not allow tabs for indentation)"
		                           : "";
		if (p->context != NULL)
			return mark_errorf(pc, &p->problem_mark, "invalid YAML: %s %s at %d:%d%s",
			                   problem, p->context, (int)p->context_mark.line + 1,
			                   (int)p->context_mark.column + 1, hint);
		return mark_errorf(pc, &p->problem_mark, "invalid YAML: %s%s", problem, hint);
	}
	}
}

static eddy_err next_event(parse_ctx *pc, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&pc->parser, ev))
		return yaml_error(pc);
	return EDDY_OK;
}

static const char *event_kind(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_MAPPING_START_EVENT: return "a map";
	case YAML_SEQUENCE_START_EVENT: return "a list";
	case YAML_ALIAS_EVENT: return "an alias";
	default: return "a scalar";
	}
}

static eddy_err make_scalar(parse_ctx *pc, const yaml_event_t *ev, cfg_node **out)
{
	const char *v = (const char *)ev->data.scalar.value;
	bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	if (memchr(v, '\0', ev->data.scalar.length) != NULL)
		return mark_errorf(pc, &ev->start_mark, "NUL characters are not allowed");
	if (plain && is_null_word(v))
		v = "";
	*out = scalar_new(v, !plain, pc->file, (int)ev->start_mark.line + 1,
	                  (int)ev->start_mark.column + 1);
	return *out != NULL ? EDDY_OK : EDDY_ENOMEM;
}

static eddy_err parse_node(parse_ctx *pc, const yaml_event_t *ev, int depth, size_t size,
                           cfg_node **out);

static eddy_err parse_seq(parse_ctx *pc, const yaml_event_t *start, int depth, cfg_node **out)
{
	const yaml_mark_t *m = &start->start_mark;
	cfg_node *seq = node_new(sizeof(cfg_node), CFG_SEQ, pc->file, (int)m->line + 1,
	                         (int)m->column + 1);
	if (seq == NULL)
		return EDDY_ENOMEM;
	eddy_err rc;
	for (;;) {
		yaml_event_t ev;
		rc = next_event(pc, &ev);
		if (rc != EDDY_OK)
			goto fail;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		cfg_node *item = NULL;
		rc = parse_node(pc, &ev, depth + 1, sizeof(cfg_node), &item);
		yaml_event_delete(&ev);
		if (rc == EDDY_OK)
			rc = node_reserve(seq);
		if (rc != EDDY_OK) {
			node_free(item);
			goto fail;
		}
		node_append(seq, NULL, item);
	}
	*out = seq;
	return EDDY_OK;
fail:
	node_free(seq);
	return rc;
}

/* parse_map reads a map's entries up to its end; size is sizeof(cfg_root) for the root. */
static eddy_err parse_map(parse_ctx *pc, const yaml_event_t *start, int depth, size_t size,
                          cfg_node **out)
{
	cfg_node *map = node_new(size, CFG_MAP, pc->file, (int)start->start_mark.line + 1,
	                         (int)start->start_mark.column + 1);
	if (map == NULL)
		return EDDY_ENOMEM;
	eddy_err rc;
	for (;;) {
		yaml_event_t ev;
		rc = next_event(pc, &ev);
		if (rc != EDDY_OK)
			goto fail;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		cfg_node *key = NULL, *value = NULL;
		if (ev.type == YAML_ALIAS_EVENT)
			rc = mark_errorf(pc, &ev.start_mark, "aliases are not supported");
		else if (ev.type != YAML_SCALAR_EVENT)
			rc = mark_errorf(pc, &ev.start_mark, "map keys must be strings, got %s",
			                 event_kind(&ev));
		else
			rc = make_scalar(pc, &ev, &key);
		yaml_event_delete(&ev);
		if (rc != EDDY_OK)
			goto fail;
		if (key->str[0] == '\0') {
			rc = cfg_errorf(pc->err, key, "empty map key");
			goto fail_key;
		}
		long first = find_key(map, key->str);
		if (first >= 0) {
			const cfg_node *k0 = map->key_nodes[first];
			rc = cfg_errorf(pc->err, key, "duplicate key '%s' (first at %d:%d)",
			                key->str, k0->line, k0->col);
			goto fail_key;
		}
		rc = next_event(pc, &ev);
		if (rc != EDDY_OK)
			goto fail_key;
		rc = parse_node(pc, &ev, depth + 1, sizeof(cfg_node), &value);
		yaml_event_delete(&ev);
		if (rc == EDDY_OK)
			rc = node_reserve(map);
		if (rc != EDDY_OK) {
			node_free(value);
			goto fail_key;
		}
		node_append(map, key, value);
		continue;
	fail_key:
		node_free(key);
		goto fail;
	}
	*out = map;
	return EDDY_OK;
fail:
	node_free(map);
	return rc;
}

/* parse_node builds the node that starts with event ev (which the caller deletes). */
static eddy_err parse_node(parse_ctx *pc, const yaml_event_t *ev, int depth, size_t size,
                           cfg_node **out)
{
	*out = NULL;
	if ((ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT) &&
	    depth >= CFG_MAX_DEPTH)
		return mark_errorf(pc, &ev->start_mark, "nesting deeper than %d levels",
		                   CFG_MAX_DEPTH);
	switch (ev->type) {
	case YAML_SCALAR_EVENT: return make_scalar(pc, ev, out);
	case YAML_SEQUENCE_START_EVENT: return parse_seq(pc, ev, depth, out);
	case YAML_MAPPING_START_EVENT: return parse_map(pc, ev, depth, size, out);
	case YAML_ALIAS_EVENT:
		return mark_errorf(pc, &ev->start_mark, "aliases are not supported");
	default:
		return mark_errorf(pc, &ev->start_mark, "invalid YAML: unexpected event %d",
		                   (int)ev->type);
	}
}

/* parse_stream reads the one document of the stream; the root node's file is pc->file. */
static eddy_err parse_stream(parse_ctx *pc, cfg_node **out)
{
	yaml_event_t ev;
	eddy_err rc = next_event(pc, &ev); /* STREAM-START */
	if (rc != EDDY_OK)
		return rc;
	yaml_event_delete(&ev);
	rc = next_event(pc, &ev);
	if (rc != EDDY_OK)
		return rc;
	bool empty = ev.type == YAML_STREAM_END_EVENT;
	yaml_event_delete(&ev);
	if (empty)
		return plain_errorf(pc->err, EDDY_EINVAL, "%s: empty job file", pc->file);
	/* DOCUMENT-START was deleted; the root node follows */
	rc = next_event(pc, &ev);
	if (rc != EDDY_OK)
		return rc;
	cfg_node *root = NULL;
	if (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    is_null_word((const char *)ev.data.scalar.value))
		rc = plain_errorf(pc->err, EDDY_EINVAL, "%s: empty job file", pc->file);
	else if (ev.type == YAML_SCALAR_EVENT)
		rc = mark_errorf(pc, &ev.start_mark, "the top level must be a map, got '%.*s'",
		                 CFG_SHOW_MAX, (const char *)ev.data.scalar.value);
	else if (ev.type != YAML_MAPPING_START_EVENT)
		rc = mark_errorf(pc, &ev.start_mark, "the top level must be a map, got %s",
		                 event_kind(&ev));
	else
		rc = parse_node(pc, &ev, 0, sizeof(cfg_root), &root);
	yaml_event_delete(&ev);
	if (rc != EDDY_OK)
		return rc;
	rc = next_event(pc, &ev); /* DOCUMENT-END */
	if (rc != EDDY_OK)
		goto fail;
	yaml_event_delete(&ev);
	rc = next_event(pc, &ev);
	if (rc != EDDY_OK)
		goto fail;
	if (ev.type != YAML_STREAM_END_EVENT)
		rc = mark_errorf(pc, &ev.start_mark, "only one YAML document is allowed");
	yaml_event_delete(&ev);
	if (rc != EDDY_OK)
		goto fail;
	*out = root;
	return EDDY_OK;
fail:
	node_free(root);
	return rc;
}

static eddy_err load(const char *name, const char *text, size_t len, cfg_node **out,
                     cfg_error *err)
{
	parse_ctx pc = { .text = text, .len = len, .err = err };
	char *file = rt_strdup(name);
	char **owned = rt_malloc(4 * sizeof(char *));
	if (file == NULL || owned == NULL || !yaml_parser_initialize(&pc.parser)) {
		rt_free(file);
		rt_free(owned);
		return plain_errorf(err, EDDY_ENOMEM, "%s: out of memory", name);
	}
	pc.file = file;
	yaml_parser_set_input_string(&pc.parser, (const unsigned char *)text, len);
	cfg_node *root = NULL;
	eddy_err rc = parse_stream(&pc, &root);
	yaml_parser_delete(&pc.parser);
	if (rc == EDDY_ENOMEM)
		plain_errorf(err, rc, "%s: out of memory", name);
	if (rc != EDDY_OK) {
		rt_free(file);
		rt_free(owned);
		return rc;
	}
	cfg_root *r = (cfg_root *)root;
	r->owned = owned;
	r->owned[0] = file;
	r->nowned = 1;
	*out = root;
	return EDDY_OK;
}

eddy_err cfg_load_string(const char *name, const char *text, cfg_node **out, cfg_error *err)
{
	assert(name != NULL && text != NULL && out != NULL);
	*out = NULL;
	return load(name, text, strlen(text), out, err);
}

eddy_err cfg_load_file(const char *path, cfg_node **out, cfg_error *err)
{
	assert(path != NULL && out != NULL);
	*out = NULL;
	char ebuf[128];
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		int e = errno;
		plain_errorf(err, EDDY_EIO, "%s: cannot open: %s", path,
		             strerror_r(e, ebuf, sizeof(ebuf)));
		errno = e;
		return EDDY_EIO;
	}
	size_t len = 0, cap = 0;
	char *buf = NULL;
	for (;;) {
		if (len == cap) {
			size_t ncap = cap == 0 ? 4096 : 2 * cap;
			char *nbuf = rt_realloc(buf, ncap);
			if (nbuf == NULL) {
				rt_free(buf);
				fclose(f);
				return plain_errorf(err, EDDY_ENOMEM, "%s: out of memory", path);
			}
			buf = nbuf;
			cap = ncap;
		}
		size_t got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		int e = errno;
		rt_free(buf);
		fclose(f);
		plain_errorf(err, EDDY_EIO, "%s: cannot read: %s", path,
		             strerror_r(e, ebuf, sizeof(ebuf)));
		errno = e;
		return EDDY_EIO;
	}
	fclose(f);
	eddy_err rc = load(path, buf, len, out, err);
	rt_free(buf);
	return rc;
}

/* ---- overrides ---- */

/* seq_select finds the item of list seq that seg names: by id, else by decimal index. */
static cfg_node *seq_select(const cfg_node *seq, const char *seg)
{
	for (size_t i = 0; i < seq->n; i++) {
		const cfg_node *id = cfg_get(seq->items[i], "id");
		if (id != NULL && id->kind == CFG_SCALAR && strcmp(id->str, seg) == 0)
			return seq->items[i];
	}
	size_t len = strspn(seg, "0123456789");
	if (len == 0 || seg[len] != '\0' || len > 18)
		return NULL;
	unsigned long long i = strtoull(seg, NULL, 10);
	return i < seq->n ? seq->items[i] : NULL;
}

/* seq_no_entry reports that seg names no item of seq (reached by key[0..plen)). */
static eddy_err seq_no_entry(const cfg_node *seq, const char *assignment, const char *key,
                             size_t plen, const char *seg, cfg_error *err)
{
	size_t len = strspn(seg, "0123456789");
	if (len > 0 && seg[len] == '\0')
		return plain_errorf(err, EDDY_EINVAL,
		                    "--set %s: no entry with id '%s' in %.*s, and index %s is out "
		                    "of range (%zu entr%s)",
		                    assignment, seg, (int)plen, key, seg, seq->n,
		                    seq->n == 1 ? "y" : "ies");
	const char *best = NULL;
	int best_d = -1;
	for (size_t i = 0; i < seq->n; i++) {
		const cfg_node *id = cfg_get(seq->items[i], "id");
		if (id == NULL || id->kind != CFG_SCALAR)
			continue;
		int d = near_dist(seg, id->str);
		if (d >= 0 && (best_d < 0 || d < best_d)) {
			best = id->str;
			best_d = d;
		}
	}
	if (best != NULL)
		return plain_errorf(err, EDDY_EINVAL,
		                    "--set %s: no entry with id '%s' in %.*s (did you mean '%s'?)",
		                    assignment, seg, (int)plen, key, best);
	return plain_errorf(err, EDDY_EINVAL, "--set %s: no entry with id '%s' in %.*s",
	                    assignment, seg, (int)plen, key);
}

/* set_chain builds, detached, the map chain for segments segs[0..nseg) ending in a scalar
 * value: {segs[1]: {... segs[nseg-1]: value}}, returning the key node for segs[0] in
 * *key and its value in *value. */
static eddy_err set_chain(char **segs, size_t nseg, const char *value, const char *loc,
                          cfg_node **key, cfg_node **val)
{
	cfg_node *v = scalar_new(value, false, loc, 0, 0);
	if (v == NULL)
		return EDDY_ENOMEM;
	for (size_t i = nseg - 1; i > 0; i--) {
		cfg_node *k = scalar_new(segs[i], false, loc, 0, 0);
		cfg_node *m = node_new(sizeof(cfg_node), CFG_MAP, loc, 0, 0);
		if (k == NULL || m == NULL || node_reserve(m) != EDDY_OK) {
			node_free(k);
			node_free(m);
			node_free(v);
			return EDDY_ENOMEM;
		}
		node_append(m, k, v);
		v = m;
	}
	cfg_node *k = scalar_new(segs[0], false, loc, 0, 0);
	if (k == NULL) {
		node_free(v);
		return EDDY_ENOMEM;
	}
	*key = k;
	*val = v;
	return EDDY_OK;
}

eddy_err cfg_set(cfg_node *root, const char *assignment, cfg_error *err)
{
	assert(root != NULL && root->parent == NULL && root->kind == CFG_MAP);
	cfg_root *r = (cfg_root *)root;
	const char *eq = strchr(assignment, '=');
	if (eq == NULL || eq == assignment)
		return plain_errorf(err, EDDY_EINVAL, "--set: expected KEY=VALUE, got '%s'",
		                    assignment);
	size_t klen = (size_t)(eq - assignment);
	const char *value = eq + 1;
	const size_t plen = strlen(CFG_SET_PREFIX);

	/* loc is "--set KEY", the location of the new nodes; work is KEY split at the dots,
	 * segs pointing into it */
	char *loc = rt_malloc(plen + klen + 1);
	char *work = rt_malloc(klen + 1);
	char **segs = rt_malloc((klen / 2 + 1) * sizeof(char *));
	eddy_err rc = EDDY_ENOMEM;
	if (loc == NULL || work == NULL || segs == NULL) {
		plain_errorf(err, rc, "--set %s: out of memory", assignment);
		goto out;
	}
	memcpy(loc, CFG_SET_PREFIX, plen);
	memcpy(loc + plen, assignment, klen);
	loc[plen + klen] = '\0';
	const char *key = loc + plen;
	memcpy(work, assignment, klen);
	work[klen] = '\0';
	size_t nseg = 0;
	for (char *p = work;;) {
		char *dot = strchr(p, '.');
		if (dot != NULL)
			*dot = '\0';
		if (*p == '\0') {
			rc = plain_errorf(err, EDDY_EINVAL, "--set %s: empty segment in key '%s'",
			                  assignment, key);
			goto out;
		}
		assert(nseg < klen / 2 + 1);
		segs[nseg++] = p;
		if (dot == NULL)
			break;
		p = dot + 1;
	}

	/* walk down as far as the tree goes */
	cfg_node *cur = root, *target = NULL;
	size_t i = 0;
	for (; i < nseg; i++) {
		size_t prefix = (size_t)(segs[i] - work); /* key[0..prefix) reached cur, plus '.' */
		cfg_node *next;
		if (cur->kind == CFG_SCALAR) {
			rc = plain_errorf(err, EDDY_EINVAL,
			                  "--set %s: '%.*s' is a scalar, not a map", assignment,
			                  (int)(prefix - 1), key);
			goto out;
		} else if (cur->kind == CFG_MAP) {
			next = cfg_get(cur, segs[i]);
			if (next == NULL)
				break; /* segs[i..] are created under cur */
		} else {
			next = seq_select(cur, segs[i]);
			if (next == NULL) {
				rc = seq_no_entry(cur, assignment, key, prefix - 1, segs[i], err);
				goto out;
			}
		}
		if (i == nseg - 1)
			target = next;
		cur = next;
	}
	if (target != NULL && target->kind != CFG_SCALAR) {
		rc = plain_errorf(err, EDDY_EINVAL, "--set %s: '%s' is %s, not a scalar",
		                  assignment, key, cfg_kind_name(target->kind));
		goto out;
	}

	/* from here on only allocations can fail, and the tree changes only after the last */
	rc = EDDY_ENOMEM;
	if (grow_array(&r->owned, r->nowned, sizeof(*r->owned)) != EDDY_OK) {
		plain_errorf(err, rc, "--set %s: out of memory", assignment);
		goto out;
	}
	if (target != NULL) {
		char *s = rt_strdup(value);
		if (s == NULL) {
			plain_errorf(err, rc, "--set %s: out of memory", assignment);
			goto out;
		}
		rt_free(target->str);
		target->str = s;
		target->quoted = false;
		target->file = loc;
		target->line = 0;
		target->col = 0;
	} else {
		cfg_node *k, *v;
		if (node_reserve(cur) != EDDY_OK ||
		    set_chain(segs + i, nseg - i, value, loc, &k, &v) != EDDY_OK) {
			plain_errorf(err, rc, "--set %s: out of memory", assignment);
			goto out;
		}
		node_append(cur, k, v);
	}
	r->owned[r->nowned++] = loc;
	loc = NULL;
	rc = EDDY_OK;
out:
	rt_free(loc);
	rt_free(work);
	rt_free(segs);
	return rc;
}

/* ---- accessors ---- */

/* need_scalar checks that n is a non-null scalar; expected is "a string", "an integer"... */
static eddy_err need_scalar(const cfg_node *n, const char *what, const char *expected,
                            cfg_error *err)
{
	assert(n != NULL);
	if (n->kind != CFG_SCALAR)
		return cfg_errorf(err, n, "%s must be %s, got %s", what, expected,
		                  cfg_kind_name(n->kind));
	if (is_null(n))
		return cfg_errorf(err, n, "%s has no value", what);
	return EDDY_OK;
}

/* parse_digits reads the decimal digits at *s into *v, moving *s past them; false if
 * there are none; *overflow is set if the number exceeds INT64_MAX. */
static bool parse_digits(const char **s, int64_t *v, bool *overflow)
{
	const char *p = *s;
	int64_t x = 0;
	*overflow = false;
	while (*p >= '0' && *p <= '9') {
		int d = *p - '0';
		if (x > (INT64_MAX - d) / 10)
			*overflow = true;
		else
			x = x * 10 + d;
		p++;
	}
	if (p == *s)
		return false;
	*s = p;
	*v = x;
	return true;
}

eddy_err cfg_node_str(const cfg_node *n, const char *what, const char **out, cfg_error *err)
{
	eddy_err rc = need_scalar(n, what, "a string", err);
	if (rc != EDDY_OK)
		return rc;
	*out = n->str;
	return EDDY_OK;
}

eddy_err cfg_node_int(const cfg_node *n, const char *what, int64_t min, int64_t max,
                      int64_t *out, cfg_error *err)
{
	eddy_err rc = need_scalar(n, what, "an integer", err);
	if (rc != EDDY_OK)
		return rc;
	const char *p = n->str;
	bool neg = *p == '-';
	if (*p == '-' || *p == '+')
		p++;
	int64_t v;
	bool overflow;
	char show[CFG_SHOW_MAX + 8];
	if (!parse_digits(&p, &v, &overflow) || *p != '\0')
		return cfg_errorf(err, n, "%s must be an integer, got %s", what, describe(n, show));
	/* -INT64_MAX - 1 overflows parse_digits; it is outside any range but INT64_MIN's */
	if (overflow && neg && strcmp(n->str + 1, "9223372036854775808") == 0 &&
	    min == INT64_MIN) {
		*out = INT64_MIN;
		return EDDY_OK;
	}
	if (neg)
		v = -v;
	if (overflow || v < min || v > max)
		return cfg_errorf(err, n, "%s must be between %lld and %lld, got %s", what,
		                  (long long)min, (long long)max, n->str);
	*out = v;
	return EDDY_OK;
}

static bool ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return false;
	return *a == *b;
}

eddy_err cfg_node_bool(const cfg_node *n, const char *what, bool *out, cfg_error *err)
{
	eddy_err rc = need_scalar(n, what, "true or false", err);
	if (rc != EDDY_OK)
		return rc;
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	for (size_t i = 0; i < 3; i++) {
		if (ieq(n->str, yes[i])) {
			*out = true;
			return EDDY_OK;
		}
		if (ieq(n->str, no[i])) {
			*out = false;
			return EDDY_OK;
		}
	}
	char show[CFG_SHOW_MAX + 8];
	return cfg_errorf(err, n, "%s must be true or false (also yes/no, on/off), got %s", what,
	                  describe(n, show));
}

typedef struct unit {
	const char *name;
	int64_t mult;
} unit;

/* parse_amount reads "NUMBER[UNIT]" with UNIT from units (NULL-terminated by name);
 * bare is the multiplier of a number without a unit, 0 if only a bare 0 is allowed.
 * Returns 0 on success, 1 for a bad format, 2 for a negative, 3 for too large. */
static int parse_amount(const char *s, const unit *units, int64_t bare, int64_t *out)
{
	if (s[0] == '-' && s[1] >= '0' && s[1] <= '9')
		return 2;
	int64_t v;
	bool overflow;
	if (!parse_digits(&s, &v, &overflow))
		return 1;
	int64_t mult = -1;
	if (*s == '\0') {
		mult = bare;
		if (bare == 0 && (v != 0 || overflow))
			return 1;
		if (bare == 0)
			mult = 1;
	} else {
		for (size_t i = 0; units[i].name != NULL; i++)
			if (strcmp(s, units[i].name) == 0)
				mult = units[i].mult;
		if (mult < 0)
			return 1;
	}
	if (overflow || v > INT64_MAX / mult)
		return 3;
	*out = v * mult;
	return 0;
}

eddy_err cfg_node_duration_ms(const cfg_node *n, const char *what, int64_t *out,
                              cfg_error *err)
{
	static const unit units[] = {
		{ "ms", 1 },          { "s", 1000 },          { "m", 60 * 1000 },
		{ "h", 3600 * 1000 }, { "d", 86400 * 1000 }, { NULL, 0 },
	};
	eddy_err rc = need_scalar(n, what, "a duration", err);
	if (rc != EDDY_OK)
		return rc;
	char show[CFG_SHOW_MAX + 8];
	switch (parse_amount(n->str, units, 0, out)) {
	case 0: return EDDY_OK;
	case 2:
		return cfg_errorf(err, n, "%s: a duration cannot be negative, got %s", what,
		                  describe(n, show));
	case 3: return cfg_errorf(err, n, "%s: duration %s is too large", what, describe(n, show));
	default:
		return cfg_errorf(err, n,
		                  "%s: expected a duration like 250ms, 10s, 5m, 1h or 1d, got %s",
		                  what, describe(n, show));
	}
}

eddy_err cfg_node_size_bytes(const cfg_node *n, const char *what, int64_t *out,
                             cfg_error *err)
{
	static const unit units[] = {
		{ "B", 1 },
		{ "KiB", INT64_C(1) << 10 },
		{ "MiB", INT64_C(1) << 20 },
		{ "GiB", INT64_C(1) << 30 },
		{ "TiB", INT64_C(1) << 40 },
		{ "kB", 1000 },
		{ "KB", 1000 },
		{ "MB", 1000 * 1000 },
		{ "GB", 1000 * 1000 * 1000 },
		{ "TB", INT64_C(1000) * 1000 * 1000 * 1000 },
		{ NULL, 0 },
	};
	eddy_err rc = need_scalar(n, what, "a size", err);
	if (rc != EDDY_OK)
		return rc;
	char show[CFG_SHOW_MAX + 8];
	switch (parse_amount(n->str, units, 1, out)) {
	case 0: return EDDY_OK;
	case 2:
		return cfg_errorf(err, n, "%s: a size cannot be negative, got %s", what,
		                  describe(n, show));
	case 3: return cfg_errorf(err, n, "%s: size %s is too large", what, describe(n, show));
	default:
		return cfg_errorf(err, n,
		                  "%s: expected a size like 512B, 64KiB, 1MiB, 1GiB or 10MB, "
		                  "got %s",
		                  what, describe(n, show));
	}
}

eddy_err cfg_node_enum(const cfg_node *n, const char *what, const char *const choices[],
                       int *out, cfg_error *err)
{
	char list[300];
	size_t off = 0;
	list[0] = '\0';
	for (size_t i = 0; choices[i] != NULL && off < sizeof(list); i++) {
		int w = snprintf(list + off, sizeof(list) - off, "%s%s", i > 0 ? ", " : "",
		                 choices[i]);
		if (w < 0)
			break;
		off += (size_t)w;
	}
	if (n->kind != CFG_SCALAR || is_null(n)) {
		if (n->kind == CFG_SCALAR)
			return cfg_errorf(err, n, "%s has no value", what);
		return cfg_errorf(err, n, "%s must be one of %s, got %s", what, list,
		                  cfg_kind_name(n->kind));
	}
	for (int i = 0; choices[i] != NULL; i++)
		if (strcmp(n->str, choices[i]) == 0) {
			*out = i;
			return EDDY_OK;
		}
	char show[CFG_SHOW_MAX + 8];
	const char *near = cfg_nearest(n->str, choices);
	if (near != NULL)
		return cfg_errorf(err, n, "%s must be one of %s, got %s (did you mean '%s'?)", what,
		                  list, describe(n, show), near);
	return cfg_errorf(err, n, "%s must be one of %s, got %s", what, list, describe(n, show));
}

/* keyed finds the value of key in map for the keyed accessors: EDDY_OK with *v and what
 * ("'key'") set, EDDY_ENOENT if absent or null and not required, else EDDY_EINVAL. */
static eddy_err keyed(const cfg_node *map, const char *key, bool required, const cfg_node **v,
                      char what[static CFG_WHAT_MAX], cfg_error *err)
{
	char buf[CFG_PATH_MAX];
	if (map == NULL) {
		if (!required)
			return EDDY_ENOENT;
		return plain_errorf(err, EDDY_EINVAL, "missing required key '%s'", key);
	}
	if (map->kind != CFG_MAP) {
		char show[CFG_SHOW_MAX + 8];
		return cfg_errorf(err, map, "%s must be a map, got %s", path_name(map, buf),
		                  describe(map, show));
	}
	long i = find_key(map, key);
	if (i < 0) {
		if (!required)
			return EDDY_ENOENT;
		return cfg_errorf(err, map, "%s is missing required key '%s'", path_name(map, buf),
		                  key);
	}
	if (is_null(map->items[i])) {
		if (!required)
			return EDDY_ENOENT;
		return cfg_errorf(err, map->key_nodes[i], "'%s' has no value", key);
	}
	*v = map->items[i];
	snprintf(what, CFG_WHAT_MAX, "'%s'", key);
	return EDDY_OK;
}

eddy_err cfg_str(const cfg_node *map, const char *key, bool required, const char **out,
                 cfg_error *err)
{
	const cfg_node *v = NULL;
	char what[CFG_WHAT_MAX];
	eddy_err rc = keyed(map, key, required, &v, what, err);
	return rc != EDDY_OK ? rc : cfg_node_str(v, what, out, err);
}

eddy_err cfg_int(const cfg_node *map, const char *key, bool required, int64_t min, int64_t max,
                 int64_t *out, cfg_error *err)
{
	const cfg_node *v = NULL;
	char what[CFG_WHAT_MAX];
	eddy_err rc = keyed(map, key, required, &v, what, err);
	return rc != EDDY_OK ? rc : cfg_node_int(v, what, min, max, out, err);
}

eddy_err cfg_bool(const cfg_node *map, const char *key, bool required, bool *out,
                  cfg_error *err)
{
	const cfg_node *v = NULL;
	char what[CFG_WHAT_MAX];
	eddy_err rc = keyed(map, key, required, &v, what, err);
	return rc != EDDY_OK ? rc : cfg_node_bool(v, what, out, err);
}

eddy_err cfg_duration_ms(const cfg_node *map, const char *key, bool required, int64_t *out,
                         cfg_error *err)
{
	const cfg_node *v = NULL;
	char what[CFG_WHAT_MAX];
	eddy_err rc = keyed(map, key, required, &v, what, err);
	return rc != EDDY_OK ? rc : cfg_node_duration_ms(v, what, out, err);
}

eddy_err cfg_size_bytes(const cfg_node *map, const char *key, bool required, int64_t *out,
                        cfg_error *err)
{
	const cfg_node *v = NULL;
	char what[CFG_WHAT_MAX];
	eddy_err rc = keyed(map, key, required, &v, what, err);
	return rc != EDDY_OK ? rc : cfg_node_size_bytes(v, what, out, err);
}

eddy_err cfg_enum(const cfg_node *map, const char *key, bool required,
                  const char *const choices[], int *out, cfg_error *err)
{
	const cfg_node *v = NULL;
	char what[CFG_WHAT_MAX];
	eddy_err rc = keyed(map, key, required, &v, what, err);
	return rc != EDDY_OK ? rc : cfg_node_enum(v, what, choices, out, err);
}

eddy_err cfg_check_keys(const cfg_node *map, const char *const known[], const char *what,
                        cfg_error *err)
{
	if (map == NULL)
		return EDDY_OK;
	if (map->kind != CFG_MAP) {
		char show[CFG_SHOW_MAX + 8];
		return cfg_errorf(err, map, "%s must be a map, got %s", what, describe(map, show));
	}
	for (size_t i = 0; i < map->n; i++) {
		bool ok = false;
		for (size_t j = 0; known[j] != NULL && !ok; j++)
			ok = strcmp(map->keys[i], known[j]) == 0;
		if (ok)
			continue;
		const char *near = cfg_nearest(map->keys[i], known);
		if (near != NULL)
			return cfg_errorf(err, map->key_nodes[i],
			                  "unknown key '%s' in %s (did you mean '%s'?)",
			                  map->keys[i], what, near);
		return cfg_errorf(err, map->key_nodes[i], "unknown key '%s' in %s", map->keys[i],
		                  what);
	}
	return EDDY_OK;
}
