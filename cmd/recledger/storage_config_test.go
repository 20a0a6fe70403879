package main

import (
	"net/url"
	"strings"
	"testing"
)

// TestConfigStorageVerification: --verify-storage and
// --storage-allow-private are flags alone, true or false in the
// environment and the file; --storage-hosts is a list; verification
// without hosts, and a host list that does not parse, refuse to start
// with a message that says what to give.
func TestConfigStorageVerification(t *testing.T) {
	c, err := loadConfig(parseFlags(t).Flags(), env(nil))
	if err != nil || c.VerifyStorage || c.StorageAllowPrivate || len(c.StorageHosts) != 0 {
		t.Fatalf("defaults: %v %v %v (%v)", c.VerifyStorage, c.StorageAllowPrivate, c.StorageHosts, err)
	}
	c, err = loadConfig(parseFlags(t, "--verify-storage", "--storage-hosts", "s3.example.com,127.0.0.1:9000", "--storage-allow-private").Flags(), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := c.storageHosts()
	if err != nil || !c.VerifyStorage || !c.StorageAllowPrivate {
		t.Fatalf("flags: %+v %v", c, err)
	}
	for raw, want := range map[string]bool{"https://s3.example.com/b/k": true, "http://127.0.0.1:9000/b/k": true,
		"http://127.0.0.1:9001/b/k": false, "https://other.example.com/": false} {
		u, _ := url.Parse(raw)
		if hosts.Allows(u) != want {
			t.Errorf("%s allowed %v, want %v", raw, !want, want)
		}
	}
	c, err = loadConfig(parseFlags(t).Flags(), env(map[string]string{"RECLEDGER_VERIFY_STORAGE": "true", "RECLEDGER_STORAGE_HOSTS": "a.example,b.example:8443"}))
	if err != nil || !c.VerifyStorage || strings.Join(c.StorageHosts, " ") != "a.example b.example:8443" {
		t.Fatalf("environment: %v %v (%v)", c.VerifyStorage, c.StorageHosts, err)
	}
	file := writeFile(t, "verify_storage = true\nstorage_hosts = [\"files.example\"]\nstorage_allow_private = false\n")
	c, err = loadConfig(parseFlags(t, "--config", file).Flags(), env(nil))
	if err != nil || !c.VerifyStorage || strings.Join(c.StorageHosts, " ") != "files.example" {
		t.Fatalf("file: %v %v (%v)", c.VerifyStorage, c.StorageHosts, err)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--verify-storage"}, nil, "--verify-storage needs --storage-hosts"},
		{nil, map[string]string{"RECLEDGER_VERIFY_STORAGE": "1"}, "--verify-storage needs --storage-hosts"},
		{[]string{"--verify-storage", "--storage-hosts", "https://s3.example.com/bucket"}, nil, "storage hosts"},
		{[]string{"--storage-hosts", "a.example,,b.example"}, nil, "storage hosts"},
		{[]string{"--storage-hosts", "a.example:99999"}, nil, "storage hosts"},
		{nil, map[string]string{"RECLEDGER_VERIFY_STORAGE": "yes please"}, "RECLEDGER_VERIFY_STORAGE"},
	} {
		_, err := loadConfig(parseFlags(t, tc.args...).Flags(), env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v, want an error naming %q", tc.args, tc.env, err, tc.want)
		}
	}
}
