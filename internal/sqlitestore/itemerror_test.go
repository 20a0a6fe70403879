package sqlitestore

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// TestItemError classifies real SQLite errors: only those a value can
// cause make the group commit bisect.
func TestItemError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t (v TEXT NOT NULL CHECK (length(v) < 5))`); err != nil {
		t.Fatal(err)
	}
	// Another writer holds the lock: SQLITE_BUSY, the database's, not the value's.
	holder, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	hold, err := holder.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Exec(`INSERT INTO t VALUES ('h')`); err != nil {
		t.Fatal(err)
	}
	_, busy := db.Exec(`INSERT INTO t VALUES ('a')`)
	hold.Rollback()
	_, check := db.Exec(`INSERT INTO t VALUES ('toolong')`)
	_, notNull := db.Exec(`INSERT INTO t VALUES (NULL)`)
	_, syntax := db.Exec(`INSERT INTO nosuchtable VALUES (1)`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, canceled := db.ExecContext(ctx, `INSERT INTO t VALUES ('a')`)
	db.Close()
	_, closed := db.Exec(`INSERT INTO t VALUES ('a')`)
	for _, tt := range []struct {
		name string
		err  error
		item bool
	}{
		{"check", check, true},
		{"not null", notNull, true},
		{"no such table", syntax, false},
		{"busy", busy, false},
		{"canceled", canceled, false},
		{"closed", closed, false},
	} {
		if tt.err == nil {
			t.Fatalf("%s: no error", tt.name)
		}
		if got := itemError(tt.err); got != tt.item {
			t.Errorf("%s: itemError(%v) = %v, want %v", tt.name, tt.err, got, tt.item)
		}
	}
}
