package policyfile_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/oidcproxy/oidcproxy/adapters/policyfile"
	"github.com/oidcproxy/oidcproxy/domain/policy"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func admitted(t *testing.T, p *policy.Policy, subject string) bool {
	t.Helper()
	return p.Admit(t.Context(), &policy.Input{Subject: subject}).Admitted
}

func TestReloadReplacesAValidPolicyAndKeepsItOnABadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, "admission:\n  allow:\n    subjects: [alice, bob]\n")
	src, err := policyfile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	first := src.Policy()
	if !admitted(t, first, "bob") || src.Summary().Subjects != 2 || src.Summary().Path != path {
		t.Fatalf("initial policy: bob admitted %v, summary %+v", admitted(t, first, "bob"), src.Summary())
	}

	// A broken edit: the policy in force stays, and the error says why.
	writeFile(t, path, "admission:\n  allow:\n    subject: [alice]\n")
	err = src.Reload()
	if err == nil || !strings.Contains(err.Error(), "keeping the policy in force") || !strings.Contains(err.Error(), `unknown key "subject"`) {
		t.Fatalf("Reload of a bad file = %v", err)
	}
	if src.Policy() != first || !admitted(t, src.Policy(), "bob") {
		t.Fatal("a failed reload replaced the policy")
	}

	// A file that vanished: the same.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := src.Reload(); err == nil || src.Policy() != first {
		t.Fatalf("Reload of a missing file = %v; policy replaced %v", err, src.Policy() != first)
	}

	// Removing bob from the policy ends his admission at his next check.
	writeFile(t, path, "admission:\n  allow:\n    subjects: [alice]\n")
	if err := src.Reload(); err != nil {
		t.Fatal(err)
	}
	if admitted(t, src.Policy(), "bob") || !admitted(t, src.Policy(), "alice") || src.Summary().Subjects != 1 {
		t.Fatal("the reloaded policy is not in force")
	}
}

func TestReloadWhileDeciding(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	a := "admission:\n  allow:\n    subjects: [alice]\n"
	b := "admission:\n  allow:\n    subjects: [alice, bob]\n    condition: 'sub == \"carol\"'\n"
	writeFile(t, path, a)
	src, err := policyfile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !src.Policy().Admit(t.Context(), &policy.Input{Subject: "alice"}).Admitted {
					t.Error("alice, admitted by both versions, was refused during a reload")
					return
				}
			}
		})
	}
	for i := range 20 {
		writeFile(t, path, []string{a, b}[i%2])
		if err := src.Reload(); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
}

func TestNoPolicyFile(t *testing.T) {
	src, err := policyfile.Load("")
	if err != nil {
		t.Fatal(err)
	}
	if src.Policy() != nil || src.Reload() != nil || src.Path() != "" {
		t.Fatal("a Source without a file holds a policy")
	}
	if !src.Policy().Admit(t.Context(), &policy.Input{Subject: "anyone"}).Admitted {
		t.Fatal("no policy refused someone")
	}
}

func TestLoadRefusesMissingAndOversizedFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := policyfile.Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("a missing file was accepted")
	}
	big := filepath.Join(dir, "big.yaml")
	writeFile(t, big, "# "+strings.Repeat("x", 1<<20)+"\n")
	if _, err := policyfile.Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load of a 1 MiB file = %v", err)
	}
}
