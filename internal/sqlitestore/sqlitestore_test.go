package sqlitestore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/internal/sqlitestore"
)

func TestConformance(t *testing.T) {
	ledgertest.ExerciseStore(t, func(t *testing.T) ledgertest.Opener {
		path := filepath.Join(t.TempDir(), "data", "recledger.db")
		return func() ledger.Store {
			s, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return s
		}
	})
}
