package server

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"

	lakesql "github.com/lakehoused/lakehoused/sql"
)

// runs/search: MLflow's filter syntax (clauses joined by AND: metrics.x > 0.9,
// params.p = 'a', tags.t != 'b', attributes.status IN ('FINISHED'), LIKE / ILIKE on
// strings), order_by, max_results and page_token. Runs are read from the ml tables and the
// filter is evaluated here, clause by clause, with MLflow's semantics: a run without the
// metric, param or tag a clause names does not match it.

type filterClause struct {
	entity string // metrics, params, tags, attributes
	key    string
	op     string // =, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN
	num    float64
	str    string
	list   []string
	isNum  bool
}

// filterLexer splits a filter into tokens, remembering where each starts for errors.
type token struct {
	text string
	pos  int
	kind byte // 'i' identifier, 's' string, 'n' number, 'o' operator, '(' ')' ','
}

func lexFilter(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for j < len(s) && s[j] != c {
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated quote starting at character %d", i+1)
			}
			kind := byte('s')
			if c == '`' {
				kind = 'i'
			}
			out = append(out, token{s[i+1 : j], i, kind})
			i = j + 1
		case c == '(' || c == ')' || c == ',':
			out = append(out, token{string(c), i, c})
			i++
		case c == '=' || c == '!' || c == '<' || c == '>':
			j := i + 1
			if j < len(s) && s[j] == '=' {
				j++
			}
			op := s[i:j]
			if op == "!" {
				return nil, fmt.Errorf("unexpected '!' at character %d (use !=)", i+1)
			}
			out = append(out, token{op, i, 'o'})
			i = j
		case c == '-' || c == '+' || c == '.' || unicode.IsDigit(rune(c)):
			j := i + 1
			for j < len(s) && (unicode.IsDigit(rune(s[j])) || strings.ContainsRune(".eE+-", rune(s[j]))) {
				j++
			}
			out = append(out, token{s[i:j], i, 'n'})
			i = j
		case unicode.IsLetter(rune(c)) || c == '_':
			j := i + 1
			for j < len(s) && (unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j])) || s[j] == '_' || s[j] == '.' || s[j] == '-' || s[j] == '/') {
				j++
			}
			out = append(out, token{s[i:j], i, 'i'})
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q at character %d", c, i+1)
		}
	}
	return out, nil
}

var entityAliases = map[string]string{
	"metric": "metrics", "metrics": "metrics", "param": "params", "params": "params", "parameter": "params", "parameters": "params",
	"tag": "tags", "tags": "tags", "attribute": "attributes", "attributes": "attributes", "attr": "attributes", "run": "attributes",
}

// parseFilter reads a filter; errors name the token and its position. bare names the
// attributes a clause may name without a prefix (experiments' name, for one).
func parseFilter(s string, bare ...string) ([]filterClause, error) {
	toks, err := lexFilter(s)
	if err != nil {
		return nil, badRequest("invalid filter %q: %v", s, err)
	}
	bad := func(i int, want string) error {
		if i >= len(toks) {
			return badRequest("invalid filter %q: expected %s at the end", s, want)
		}
		return badRequest("invalid filter %q: expected %s at character %d, found %q", s, want, toks[i].pos+1, toks[i].text)
	}
	var out []filterClause
	for i := 0; i < len(toks); {
		if toks[i].kind != 'i' {
			return nil, bad(i, "an entity such as metrics.loss")
		}
		ident := toks[i].text
		var entity, key string
		if dot := strings.IndexByte(ident, '.'); dot > 0 {
			entity, key = ident[:dot], ident[dot+1:]
		} else if i+1 < len(toks) && toks[i+1].kind == 'i' && strings.HasPrefix(toks[i+1].text, ".") {
			entity, key = ident, strings.TrimPrefix(toks[i+1].text, ".")
			i++
		} else {
			entity = ident
		}
		if key == "" && i+1 < len(toks) && (toks[i+1].kind == 's' || toks[i+1].kind == 'i') && strings.HasSuffix(ident, ".") {
			key = toks[i+1].text
			i++
		}
		ent, ok := entityAliases[strings.ToLower(strings.TrimSuffix(entity, "."))]
		if !ok && key == "" && slices.Contains(bare, strings.ToLower(entity)) {
			ent, key, ok = "attributes", strings.ToLower(entity), true
		}
		if !ok || key == "" {
			return nil, badRequest("invalid filter %q: %q at character %d is not metrics.<key>, params.<key>, tags.<key> or attributes.<name>", s, ident, toks[i].pos+1)
		}
		c := filterClause{entity: ent, key: key}
		i++
		if i >= len(toks) {
			return nil, bad(i, "a comparison operator")
		}
		switch up := strings.ToUpper(toks[i].text); {
		case toks[i].kind == 'o':
			c.op = toks[i].text
			if c.op == "==" {
				c.op = "="
			}
			i++
		case up == "LIKE" || up == "ILIKE" || up == "IN":
			c.op = up
			i++
		case up == "NOT" && i+1 < len(toks) && strings.EqualFold(toks[i+1].text, "IN"):
			c.op = "NOT IN"
			i += 2
		default:
			return nil, bad(i, "a comparison operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN)")
		}
		switch {
		case c.op == "IN" || c.op == "NOT IN":
			if i >= len(toks) || toks[i].kind != '(' {
				return nil, bad(i, "'(' after "+c.op)
			}
			i++
			for {
				if i >= len(toks) || toks[i].kind != 's' {
					return nil, bad(i, "a quoted string in the list")
				}
				c.list = append(c.list, toks[i].text)
				i++
				if i < len(toks) && toks[i].kind == ',' {
					i++
					continue
				}
				if i < len(toks) && toks[i].kind == ')' {
					i++
					break
				}
				return nil, bad(i, "',' or ')'")
			}
		case i < len(toks) && toks[i].kind == 'n':
			v, err := strconv.ParseFloat(toks[i].text, 64)
			if err != nil {
				return nil, bad(i, "a number")
			}
			c.num, c.isNum, c.str = v, true, toks[i].text
			i++
		case i < len(toks) && toks[i].kind == 's':
			c.str = toks[i].text
			i++
		default:
			return nil, bad(i, "a value (a number, or a quoted string)")
		}
		if c.entity == "metrics" && !c.isNum {
			return nil, badRequest("invalid filter %q: metrics.%s is compared with a number", s, c.key)
		}
		if c.entity != "metrics" && c.entity != "attributes" && c.isNum {
			return nil, badRequest("invalid filter %q: %s.%s is a string; quote the value", s, c.entity, c.key)
		}
		out = append(out, c)
		if i < len(toks) {
			if !strings.EqualFold(toks[i].text, "AND") {
				return nil, bad(i, "AND (MLflow filters join clauses with AND only)")
			}
			i++
			if i >= len(toks) {
				return nil, bad(i, "a clause after AND")
			}
		}
	}
	return out, nil
}

// likeMatch is SQL LIKE with % and _.
func likeMatch(pattern, s string, fold bool) bool {
	if fold {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	var match func(p, s []rune) bool
	match = func(p, s []rune) bool {
		for len(p) > 0 {
			switch p[0] {
			case '%':
				for k := 0; k <= len(s); k++ {
					if match(p[1:], s[k:]) {
						return true
					}
				}
				return false
			case '_':
				if len(s) == 0 {
					return false
				}
			default:
				if len(s) == 0 || s[0] != p[0] {
					return false
				}
			}
			p, s = p[1:], s[1:]
		}
		return len(s) == 0
	}
	return match([]rune(pattern), []rune(s))
}

func compareClause(c filterClause, v any) bool {
	if v == nil {
		return false
	}
	if c.isNum {
		f, ok := v.(float64)
		if !ok {
			x, err := strconv.ParseFloat(fmt.Sprint(v), 64)
			if err != nil {
				return false
			}
			f = x
		}
		return ordered(c.op, cmp.Compare(f, c.num))
	}
	s := fmt.Sprint(v)
	switch c.op {
	case "LIKE":
		return likeMatch(c.str, s, false)
	case "ILIKE":
		return likeMatch(c.str, s, true)
	case "IN", "NOT IN":
		in := false
		for _, x := range c.list {
			in = in || x == s
		}
		return in == (c.op == "IN")
	}
	return ordered(c.op, strings.Compare(s, c.str))
}

// ordered applies a comparison operator to a three-way comparison's result.
func ordered(op string, c int) bool {
	switch op {
	case "=":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	return false
}

// runAttributes are the run columns a filter or order_by may name.
var runAttributes = map[string]int{"run_id": 0, "run_uuid": 0, "experiment_id": 1, "run_name": 2, "status": 3, "start_time": 4,
	"end_time": 5, "user_id": 6, "artifact_uri": 7, "lifecycle_stage": 8}

// runSearch is what runs/search and the scoreboard ask for.
type runSearch struct {
	expIDs  []string
	filter  string
	orderBy []string // "metrics.acc DESC", "attributes.start_time", …
	view    string   // ACTIVE_ONLY (default), DELETED_ONLY, ALL
}

// runCols are the ml.runs columns a found run carries, in runAttributes order.
const runCols = "run_id, experiment_id, name, status, start_time, end_time, user_id, artifact_uri, lifecycle_stage"

type valueRef struct{ entity, key string }

type runOrder struct {
	ref  valueRef
	desc bool
}

// parseOrderBy reads MLflow order_by clauses; attrs are the attributes that may be named.
func parseOrderBy(list []string, attrs map[string]int) ([]runOrder, error) {
	var orders []runOrder
	for _, o := range list {
		f := strings.Fields(o)
		if len(f) == 0 {
			continue
		}
		ent, key, found := strings.Cut(f[0], ".")
		if !found {
			ent, key = "attributes", f[0]
		}
		ent = entityAliases[strings.ToLower(ent)]
		if ent == "" || key == "" || len(f) > 2 || (len(f) == 2 && !strings.EqualFold(f[1], "ASC") && !strings.EqualFold(f[1], "DESC")) {
			return nil, badRequest("invalid order_by %q: use metrics.<key>, params.<key>, tags.<key> or attributes.<name>, then ASC or DESC", o)
		}
		key = strings.Trim(key, "`\"'")
		if ent == "attributes" {
			if _, ok := attrs[key]; !ok {
				return nil, badRequest("invalid order_by %q: %s is not an attribute", o, key)
			}
		}
		orders = append(orders, runOrder{ref: valueRef{ent, key}, desc: len(f) > 1 && strings.EqualFold(f[1], "DESC")})
	}
	return orders, nil
}

// sortKey is a value prepared for ordering: numbers as numbers, others as strings.
type sortKey struct {
	missing bool
	isNum   bool
	num     float64
	str     string
}

func makeSortKey(v any) sortKey {
	if v == nil {
		return sortKey{missing: true}
	}
	k := sortKey{str: fmt.Sprint(v)}
	if f, ok := v.(float64); ok {
		k.num, k.isNum = f, true
	} else if f, err := strconv.ParseFloat(k.str, 64); err == nil {
		k.num, k.isNum = f, true
	}
	return k
}

// compare orders two keys, missing ones last whatever the direction, as in MLflow.
func (a sortKey) compare(b sortKey, desc bool) int {
	switch {
	case a.missing && b.missing:
		return 0
	case a.missing:
		return 1
	case b.missing:
		return -1
	}
	c := 0
	if a.isNum && b.isNum {
		c = cmp.Compare(a.num, b.num)
	} else {
		c = strings.Compare(a.str, b.str)
	}
	if desc {
		c = -c
	}
	return c
}

// findRuns returns the runs that match, sorted, with the values of every metric, param
// and tag the filter or ordering names.
func (m *mlflowAPI) findRuns(ctx context.Context, q runSearch) ([][]any, error) {
	clauses, err := parseFilter(q.filter)
	if err != nil {
		return nil, err
	}
	for _, c := range clauses {
		if _, ok := runAttributes[c.key]; c.entity == "attributes" && !ok {
			return nil, badRequest("invalid filter: attributes.%s is not a run attribute", c.key)
		}
	}
	orders, err := parseOrderBy(q.orderBy, runAttributes)
	if err != nil {
		return nil, err
	}
	if len(orders) == 0 {
		orders = []runOrder{{ref: valueRef{"attributes", "start_time"}, desc: true}}
	}
	if err := m.s.engine.EnsureML(); err != nil {
		return nil, err
	}
	where, err := viewWhere("run_view_type", q.view)
	if err != nil {
		return nil, err
	}
	if len(q.expIDs) > 0 {
		where += " AND experiment_id IN (" + quoteAll(q.expIDs) + ")"
	}
	_, runs, err := m.s.engine.Query(ctx, "mlflow", "SELECT "+runCols+" FROM ml.runs WHERE "+where)
	if err != nil {
		return nil, err
	}
	need := map[valueRef]map[string]any{}
	for _, c := range clauses {
		if c.entity != "attributes" {
			need[valueRef{c.entity, c.key}] = nil
		}
	}
	for _, o := range orders {
		if o.ref.entity != "attributes" {
			need[o.ref] = nil
		}
	}
	for rf := range need {
		vals, err := m.valuesOf(ctx, rf.entity, rf.key)
		if err != nil {
			return nil, err
		}
		need[rf] = vals
	}
	value := func(run []any, rf valueRef) any {
		if rf.entity == "attributes" {
			return run[runAttributes[rf.key]]
		}
		return need[rf][fmt.Sprint(run[0])]
	}
	return filterAndOrder(runs, clauses, orders, value, func(a, b []any) int {
		return strings.Compare(fmt.Sprint(a[0]), fmt.Sprint(b[0]))
	}), nil
}

// filterAndOrder keeps the items every clause matches (MLflow's semantics: a missing value
// matches nothing) and sorts them by orders, then by tie. value gives an item's value for
// an entity and key; sort keys are worked out once per item, not at every comparison.
func filterAndOrder[T any](items []T, clauses []filterClause, orders []runOrder, value func(T, valueRef) any, tie func(a, b T) int) []T {
	type sortable struct {
		item T
		keys []sortKey
	}
	var list []sortable
	for _, it := range items {
		ok := true
		for _, c := range clauses {
			if !compareClause(c, value(it, valueRef{c.entity, c.key})) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		s := sortable{item: it, keys: make([]sortKey, len(orders))}
		for k, o := range orders {
			s.keys[k] = makeSortKey(value(it, o.ref))
		}
		list = append(list, s)
	}
	sort.SliceStable(list, func(i, j int) bool {
		for k, o := range orders {
			if c := list[i].keys[k].compare(list[j].keys[k], o.desc); c != 0 {
				return c < 0
			}
		}
		return tie(list[i].item, list[j].item) < 0
	})
	out := make([]T, len(list))
	for i := range list {
		out[i] = list[i].item
	}
	return out
}

// valuesOf maps run ids to their latest value of one metric, or their param or tag.
func (m *mlflowAPI) valuesOf(ctx context.Context, entity, key string) (map[string]any, error) {
	q := map[string]string{
		"metrics": "SELECT run_id, value FROM ml.latest_metrics WHERE `key` = ",
		"params":  "SELECT run_id, value FROM ml.params WHERE `key` = ",
		"tags":    "SELECT run_id, value FROM ml.run_tags WHERE `key` = ",
	}[entity] + lakesql.SQLString(key)
	_, rows, err := m.s.engine.Query(ctx, "mlflow", q)
	if err != nil {
		return nil, err
	}
	vals := make(map[string]any, len(rows))
	for _, x := range rows {
		vals[fmt.Sprint(x[0])] = x[1]
	}
	return vals, nil
}

// pageToken and readPageToken carry the offset of the next page.
func pageToken(offset int) string {
	return base64.StdEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(offset)))
}

func readPageToken(tok string) (int, error) {
	if tok == "" {
		return 0, nil
	}
	b, err := base64.StdEncoding.DecodeString(tok)
	n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
	if err != nil || err2 != nil || n < 0 || !strings.HasPrefix(string(b), "offset:") {
		return 0, badRequest("invalid page_token %q", tok)
	}
	return n, nil
}

// paging reads max_results (default 1000, at most 50000) and page_token.
func paging(body map[string]any) (max, offset int, err error) {
	n, ok, err := optInt(body, "max_results")
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		n = 1000
	}
	if n < 1 || n > 50000 {
		return 0, 0, badRequest("max_results must be between 1 and 50000, got %d", n)
	}
	offset, err = readPageToken(optStr(body, "page_token"))
	return int(n), offset, err
}

// page cuts one page out of n results into out[key] (each made by item), with the token
// of the next page when there is one.
func page(out map[string]any, key string, n, max, offset int, item func(i int) (any, error)) error {
	list := []any{}
	for i := offset; i < min(offset+max, n); i++ {
		v, err := item(i)
		if err != nil {
			return err
		}
		list = append(list, v)
	}
	out[key] = list
	if offset+max < n {
		out["next_page_token"] = pageToken(offset + max)
	}
	return nil
}

// viewWhere turns an ACTIVE_ONLY | DELETED_ONLY | ALL parameter into a condition.
func viewWhere(param, v string) (string, error) {
	switch strings.ToUpper(v) {
	case "", "ACTIVE_ONLY":
		return "lifecycle_stage = 'active'", nil
	case "DELETED_ONLY":
		return "lifecycle_stage = 'deleted'", nil
	case "ALL":
		return "TRUE", nil
	}
	return "", badRequest("%s must be ACTIVE_ONLY, DELETED_ONLY or ALL, got %q", param, v)
}

// strList reads a list of strings (order_by).
func strList(body map[string]any, key string) []string {
	var out []string
	if v, ok := body[key].([]any); ok {
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
	}
	return out
}

func (m *mlflowAPI) searchRuns(r *http.Request, body map[string]any) (any, error) {
	q := runSearch{filter: optStr(body, "filter"), view: optStr(body, "run_view_type"), orderBy: strList(body, "order_by")}
	if v, ok := body["experiment_ids"].([]any); ok {
		for _, x := range v {
			q.expIDs = append(q.expIDs, fmt.Sprint(x))
		}
	}
	max, offset, err := paging(body)
	if err != nil {
		return nil, err
	}
	kept, err := m.findRuns(r.Context(), q)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	err = page(out, "runs", len(kept), max, offset, func(i int) (any, error) { return m.run(r, fmt.Sprint(kept[i][0])) })
	return out, err
}
