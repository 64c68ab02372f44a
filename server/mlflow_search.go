package server

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"net/http"
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

// parseFilter reads a filter; errors name the token and its position.
func parseFilter(s string) ([]filterClause, error) {
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

func (m *mlflowAPI) searchRuns(r *http.Request, body map[string]any) (any, error) {
	var expIDs []string
	if v, ok := body["experiment_ids"].([]any); ok {
		for _, x := range v {
			expIDs = append(expIDs, fmt.Sprint(x))
		}
	}
	clauses, err := parseFilter(optStr(body, "filter"))
	if err != nil {
		return nil, err
	}
	for _, c := range clauses {
		if _, ok := runAttributes[c.key]; c.entity == "attributes" && !ok {
			return nil, badRequest("invalid filter: attributes.%s is not a run attribute", c.key)
		}
	}
	max, ok, err := optInt(body, "max_results")
	if err != nil {
		return nil, err
	}
	if !ok {
		max = 1000
	}
	if max < 1 || max > 50000 {
		return nil, badRequest("max_results must be between 1 and 50000, got %d", max)
	}
	offset := 0
	if tok := optStr(body, "page_token"); tok != "" {
		b, err := base64.StdEncoding.DecodeString(tok)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
		if err != nil || err2 != nil || n < 0 {
			return nil, badRequest("invalid page_token %q", tok)
		}
		offset = n
	}
	if err := m.ensure(r); err != nil {
		return nil, err
	}
	where := "lifecycle_stage = 'active'"
	switch strings.ToUpper(optStr(body, "run_view_type")) {
	case "DELETED_ONLY":
		where = "lifecycle_stage = 'deleted'"
	case "ALL":
		where = "TRUE"
	}
	if len(expIDs) > 0 {
		quoted := make([]string, len(expIDs))
		for i, id := range expIDs {
			quoted[i] = lakesql.SQLString(id)
		}
		where += " AND experiment_id IN (" + strings.Join(quoted, ", ") + ")"
	}
	_, runs, err := m.query(r, "SELECT run_id, experiment_id, name, status, start_time, end_time, user_id, artifact_uri, lifecycle_stage FROM ml.runs WHERE "+where)
	if err != nil {
		return nil, err
	}
	// Values of each metric, param and tag the filter or the ordering names, by run.
	orderBy, _ := body["order_by"].([]any)
	type ref struct{ entity, key string }
	need := map[ref]map[string]any{}
	for _, c := range clauses {
		if c.entity != "attributes" {
			need[ref{c.entity, c.key}] = nil
		}
	}
	type order struct {
		ref  ref
		desc bool
	}
	var orders []order
	for _, o := range orderBy {
		f := strings.Fields(fmt.Sprint(o))
		if len(f) == 0 {
			continue
		}
		ent, key, _ := strings.Cut(f[0], ".")
		ent = entityAliases[strings.ToLower(ent)]
		if ent == "" || key == "" {
			return nil, badRequest("invalid order_by %q: use metrics.<key>, params.<key>, tags.<key> or attributes.<name>, then ASC or DESC", o)
		}
		key = strings.Trim(key, "`\"'")
		od := order{ref: ref{ent, key}, desc: len(f) > 1 && strings.EqualFold(f[1], "DESC")}
		if ent != "attributes" {
			need[od.ref] = nil
		} else if _, ok := runAttributes[key]; !ok {
			return nil, badRequest("invalid order_by %q: %s is not a run attribute", o, key)
		}
		orders = append(orders, od)
	}
	if len(orders) == 0 {
		orders = []order{{ref: ref{"attributes", "start_time"}, desc: true}}
	}
	for rf := range need {
		q := map[string]string{
			"metrics": "SELECT run_id, value FROM ml.latest_metrics WHERE `key` = ",
			"params":  "SELECT run_id, value FROM ml.params WHERE `key` = ",
			"tags":    "SELECT run_id, value FROM ml.run_tags WHERE `key` = ",
		}[rf.entity] + lakesql.SQLString(rf.key)
		_, rows, err := m.query(r, q)
		if err != nil {
			return nil, err
		}
		vals := map[string]any{}
		for _, x := range rows {
			vals[fmt.Sprint(x[0])] = x[1]
		}
		need[rf] = vals
	}
	value := func(run []any, rf ref) any {
		if rf.entity == "attributes" {
			return run[runAttributes[rf.key]]
		}
		return need[rf][fmt.Sprint(run[0])]
	}
	var kept [][]any
	for _, run := range runs {
		ok := true
		for _, c := range clauses {
			if !compareClause(c, value(run, ref{c.entity, c.key})) {
				ok = false
				break
			}
		}
		if ok {
			kept = append(kept, run)
		}
	}
	less := func(a, b any) int {
		// Missing values sort last, as in MLflow.
		switch {
		case a == nil && b == nil:
			return 0
		case a == nil:
			return 1
		case b == nil:
			return -1
		}
		fa, ea := strconv.ParseFloat(fmt.Sprint(a), 64)
		fb, eb := strconv.ParseFloat(fmt.Sprint(b), 64)
		if ea == nil && eb == nil {
			switch {
			case fa < fb:
				return -1
			case fa > fb:
				return 1
			}
			return 0
		}
		return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
	}
	sort.SliceStable(kept, func(i, j int) bool {
		for _, o := range orders {
			a, b := value(kept[i], o.ref), value(kept[j], o.ref)
			c := less(a, b)
			if c != 0 && a != nil && b != nil && o.desc {
				c = -c
			}
			if c != 0 {
				return c < 0
			}
		}
		return fmt.Sprint(kept[i][0]) < fmt.Sprint(kept[j][0])
	})
	out := map[string]any{"runs": []any{}}
	if offset < len(kept) {
		end := min(offset+int(max), len(kept))
		list := make([]any, 0, end-offset)
		for _, run := range kept[offset:end] {
			full, err := m.run(r, fmt.Sprint(run[0]))
			if err != nil {
				return nil, err
			}
			list = append(list, full)
		}
		out["runs"] = list
		if end < len(kept) {
			out["next_page_token"] = base64.StdEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(end)))
		}
	}
	return out, nil
}
