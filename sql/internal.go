package sql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	gms "github.com/dolthub/go-mysql-server/sql"
)

// Query runs one statement for an internal client (the HTTP APIs) in a session of its own,
// with autocommit, as user, and returns its rows with the engine's values converted to
// plain Go values (strings, int64, float64, time.Time, nil).
func (e *Engine) Query(ctx context.Context, user, query string) ([]string, [][]any, error) {
	qctx := e.internalContext(ctx, user)
	sch, iter, _, err := e.sqle.Query(qctx, query)
	if err != nil {
		return nil, nil, err
	}
	cols := make([]string, len(sch))
	for i, c := range sch {
		cols[i] = c.Name
	}
	var rows [][]any
	for {
		r, err := iter.Next(qctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			iter.Close(qctx)
			return nil, nil, err
		}
		out := make([]any, len(r))
		for i, v := range r {
			out[i] = plainValue(v)
		}
		rows = append(rows, out)
	}
	if err := iter.Close(qctx); err != nil {
		return nil, nil, err
	}
	return cols, rows, nil
}

// internalContext is a statement context in a session of its own for an internal client.
func (e *Engine) internalContext(ctx context.Context, user string) *gms.Context {
	s := &Session{BaseSession: gms.NewBaseSessionWithClientServer("internal", gms.Client{User: user, Address: "localhost"}, 0), engine: e}
	return gms.NewContext(ctx, gms.WithSession(s))
}

// plainValue turns an engine value into a string, int64, float64, bool, time.Time or nil.
func plainValue(v any) any {
	switch x := v.(type) {
	case nil, string, int64, float64, bool, time.Time:
		return x
	case []byte:
		return string(x)
	case int8, int16, int32, uint8, uint16, uint32:
		return toInt64(x)
	case uint64:
		return int64(x)
	case float32:
		return float64(x)
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

// EnsureML creates the ml database and its tables if they do not exist yet.
func (e *Engine) EnsureML() error { return e.ensureML() }

// SQLString quotes s as a SQL string literal, for internal clients building statements.
func SQLString(s string) string { return sqlString(s) }

// MLErrorCode splits an ml_* procedure error into MLflow's error code and message; ok is
// false for errors that are not MLflow's (internal ones).
func MLErrorCode(err error) (code, message string, ok bool) {
	msg := err.Error()
	if i := strings.Index(msg, "): "); i >= 0 && strings.HasPrefix(msg, "Error ") {
		msg = msg[i+3:]
	}
	for _, c := range []string{"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS"} {
		if rest, found := strings.CutPrefix(msg, c+": "); found {
			return c, rest, true
		}
		if i := strings.Index(msg, c+": "); i >= 0 {
			return c, msg[i+len(c)+2:], true
		}
	}
	return "INTERNAL_ERROR", msg, false
}
