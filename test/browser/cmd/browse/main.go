// Command browse plays the user's browser for one authorization URL: it
// approves oidcproxy's consent page and signs in at the identity provider.
// The conformance run uses it for the URL the suite prints.
//
//	browse -user test-user@localhost -password verysecure URL
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/oidcproxy/oidcproxy/test/browser"
)

func main() {
	user := flag.String("user", "test-user@localhost", "user name at the identity provider")
	password := flag.String("password", "verysecure", "password at the identity provider")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: browse [-user U] [-password P] AUTHORIZATION_URL")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := browser.New(*user, *password).Authorize(ctx, flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("ended at %s (HTTP %d)\n", res.URL.Redacted(), res.Status)
}
