-- A quarantined request keeps the app key it claimed (bounded and cleaned,
-- see ledger.Printable), so that a wrong secret or an unknown key can be
-- told apart from other refusals without reading every body.
ALTER TABLE quarantine ADD COLUMN app_key TEXT NOT NULL DEFAULT '';
