package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// CollatedDatabase is Database with the ICU collation of locale (such as
// "en-US") as the database's default, for tests of code that must not
// depend on the server's collation: the test machine's databases use
// C.UTF-8, whose order is the bytes' order, so a missing COLLATE "C"
// would go unnoticed there. It fails the test if the server was built
// without ICU.
func CollatedDatabase(t testing.TB, locale string) string {
	t.Helper()
	conn, base := connect(t)
	name := newName()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+
		" TEMPLATE template0 LOCALE_PROVIDER icu LOCALE 'C.UTF-8' ICU_LOCALE "+quote(locale))
	_ = conn.Close(ctx)
	if err != nil {
		t.Fatalf("pgtest: create database with ICU locale %s: %v", locale, err)
	}
	t.Cleanup(func() { drop(t, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)") })
	return withPath(t, base, name, nil)
}

// quote makes a string literal of s.
func quote(s string) string {
	out := []byte{'\''}
	for i := range len(s) {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}
