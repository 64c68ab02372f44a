package system_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestScripts replays testdata/*.slt against a fresh node each. The format is a small
// sqllogictest dialect; a new case is a few lines of text:
//
//	statement ok                 the statement must succeed
//	statement error 1062 dup     it must fail with that MySQL error code (and, optionally, a
//	                             message containing the rest of the line)
//	query [sort]                 the rows must equal the block after "----" (tab-separated;
//	                             "sort" compares them sorted)
//	query error 1146             the query must fail with that code
//	sleep                        wait long enough for commit timestamps to differ
//	capture NAME                 run the query and remember its single value as ${NAME}
//
// Records are separated by blank lines. All statements of a file share one connection, so
// USE and transactions carry over; after every error the next record runs on it as well,
// which checks that errors leave the connection usable.
func TestScripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.slt")
	if len(files) == 0 {
		t.Fatal("no testdata/*.slt scripts")
	}
	// The same scripts run against a local warehouse and an S3 one (a versitygw gateway);
	// every commit goes through the node's Raft coordinator (a cluster of one).
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".slt")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runScript(t, startNode(t, ""), f)
		})
		t.Run("s3/"+name, func(t *testing.T) {
			t.Parallel()
			runScript(t, startS3Node(t), f)
		})
	}
}

type record struct {
	line     int
	kind     string // statement, query, capture
	args     []string
	sql      string
	expected []string
}

func parseScript(t *testing.T, path string) []record {
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var recs []record
	var cur *record
	inResult := false
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	ln := 0
	flush := func() {
		if cur != nil {
			cur.sql = strings.TrimSpace(cur.sql)
			recs = append(recs, *cur)
		}
		cur, inResult = nil, false
	}
	for sc.Scan() {
		ln++
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case cur == nil && strings.HasPrefix(line, "#"):
		case cur == nil:
			f := strings.Fields(line)
			cur = &record{line: ln, kind: f[0], args: f[1:]}
			if f[0] == "sleep" {
				flush()
			}
		case line == "----":
			inResult = true
		case inResult:
			cur.expected = append(cur.expected, line)
		default:
			cur.sql += line + "\n"
		}
	}
	flush()
	return recs
}

var varRef = regexp.MustCompile(`\$\{(\w+)\}`)

func runScript(t *testing.T, n *node, path string) {
	conn := n.conn("")
	ctx := context.Background()
	vars := map[string]string{"DATA_DIR": n.dir, "WAREHOUSE": n.warehouse(), "TESTDATA": testdataDir(t)}
	for _, r := range parseScript(t, path) {
		q := varRef.ReplaceAllStringFunc(r.sql, func(s string) string { return vars[s[2:len(s)-1]] })
		where := fmt.Sprintf("%s:%d", filepath.Base(path), r.line)
		switch r.kind {
		case "sleep":
			sleepPastMillisecond()
		case "statement":
			_, err := conn.ExecContext(ctx, q)
			checkOutcome(t, where, q, r.args, err)
		case "capture":
			var v any
			if err := conn.QueryRowContext(ctx, q).Scan(&v); err != nil {
				t.Fatalf("%s: capture %s: %v", where, q, err)
			}
			vars[r.args[0]] = fmtVal(v)
		case "query":
			rows, err := conn.QueryContext(ctx, q)
			if len(r.args) > 0 && r.args[0] == "error" {
				if err == nil {
					_, err = readRows(rows)
				}
				checkOutcome(t, where, q, r.args, err)
				continue
			}
			if err != nil {
				t.Fatalf("%s: %s\nunexpected error: %v", where, q, err)
			}
			got, err := readRows(rows)
			if err != nil {
				t.Fatalf("%s: %s\nreading rows: %v", where, q, err)
			}
			want := r.expected
			for i := range want {
				want[i] = varRef.ReplaceAllStringFunc(want[i], func(s string) string { return vars[s[2:len(s)-1]] })
			}
			if len(r.args) > 0 && r.args[0] == "sort" {
				sort.Strings(got)
				want = append([]string(nil), want...)
				sort.Strings(want)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s: %s\ngot:\n%s\nwant:\n%s", where, q, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		default:
			t.Fatalf("%s: unknown record kind %q", where, r.kind)
		}
	}
}

func checkOutcome(t *testing.T, where, q string, args []string, err error) {
	t.Helper()
	if len(args) == 0 || args[0] == "ok" {
		if err != nil {
			t.Errorf("%s: %s\nunexpected error: %v", where, q, err)
		}
		return
	}
	if args[0] != "error" {
		t.Fatalf("%s: bad record arguments %v", where, args)
	}
	if err == nil {
		t.Errorf("%s: %s\nexpected an error, got none", where, q)
		return
	}
	if len(args) > 1 {
		if code, cerr := strconv.Atoi(args[1]); cerr == nil && int(errCode(err)) != code {
			t.Errorf("%s: %s\nexpected MySQL error %d, got %d: %v", where, q, code, errCode(err), err)
		}
	}
	if len(args) > 2 {
		want := strings.Join(args[2:], " ")
		if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(want)) {
			t.Errorf("%s: %s\nerror %q does not mention %q", where, q, err, want)
		}
	}
}

func readRows(rows *sql.Rows) ([]string, error) {
	res, err := scanResult(rows)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(res.rows))
	for i, r := range res.rows {
		parts := make([]string, len(r))
		for j, v := range r {
			parts[j] = fmtVal(v)
		}
		out[i] = strings.Join(parts, "\t")
	}
	return out, nil
}
