package sql

import "testing"

func TestRedactQuery(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT * FROM mysql_query('mysql://u:s3cret@h:3306/db', 'x')":             "SELECT * FROM mysql_query('mysql://u:***@h:3306/db', 'x')",
		"CALL lake_connection_create('a', 'postgres', 'postgres://u:p%40ss@h/db')": "CALL lake_connection_create('a', 'postgres', 'postgres://u:***@h/db')",
		"SELECT * FROM postgres_query('postgres://h/db?user=u&password=pw', 'x')":  "SELECT * FROM postgres_query('postgres://h/db?user=u&password=***', 'x')",
		"SELECT 'no url here'":                          "SELECT 'no url here'",
		"SELECT * FROM read_csv('s3://bucket/key.csv')": "SELECT * FROM read_csv('s3://bucket/key.csv')",
	} {
		if got := redactQuery(in); got != want {
			t.Errorf("redactQuery(%q) = %q, want %q", in, got, want)
		}
	}
}
