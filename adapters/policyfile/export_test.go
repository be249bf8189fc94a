package policyfile

import (
	"reflect"
	"slices"
)

// ShapeKeys lists the keys the shape check accepts at a path; "[]" steps
// into the items of a list of sections.
func ShapeKeys(path ...string) []string {
	sh := fileShape
	for _, p := range path {
		if p == "[]" {
			sh = sh.items
		} else {
			sh = sh.keys[p]
		}
	}
	var keys []string
	for k := range sh.keys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// FileType is the type the file decodes into.
func FileType() reflect.Type { return reflect.TypeFor[file]() }
