package policyfile

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/oidcproxy/oidcproxy/domain/policy"
	"github.com/oidcproxy/oidcproxy/ports"
)

// Source holds the policy in force, read from one file. Policy is a single
// atomic load, so deciding never waits for a reload; Reload swaps the
// policy only when the new file is valid.
type Source struct {
	path string
	opts []Option
	cur  atomic.Pointer[loaded]
	mu   sync.Mutex // one reload at a time
}

type loaded struct {
	policy  *policy.Policy
	summary Summary
}

var _ ports.PolicySource = (*Source)(nil)

// Load reads the policy file at path. An empty path means no policy file:
// the Source then holds no policy and Reload does nothing.
func Load(path string, opts ...Option) (*Source, error) {
	s := &Source{path: path, opts: opts}
	if path == "" {
		s.cur.Store(&loaded{})
		return s, nil
	}
	p, sum, err := ReadFile(path, opts...)
	if err != nil {
		return nil, err
	}
	s.cur.Store(&loaded{policy: p, summary: sum})
	return s, nil
}

// Policy implements ports.PolicySource; nil when there is no policy file.
func (s *Source) Policy() *policy.Policy { return s.cur.Load().policy }

// Summary describes the policy in force.
func (s *Source) Summary() Summary { return s.cur.Load().summary }

// Path is the policy file's path, "" without one.
func (s *Source) Path() string { return s.path }

// Reload reads the file again. When the file is unreadable or invalid the
// policy in force stays, and the error says why; decisions made meanwhile
// keep using the policy they loaded.
func (s *Source) Reload() error {
	if s.path == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, sum, err := readFile(s.path, s.opts)
	if err != nil {
		return fmt.Errorf("policyfile: reload, keeping the policy in force: %w", err)
	}
	s.cur.Store(&loaded{policy: p, summary: sum})
	return nil
}
