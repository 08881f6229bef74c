package passkey_test

import (
	"fmt"

	"github.com/sessionguard/sessionguard/internal/passkey"
)

// The relying party of a server behind a gateway whose session cookie
// covers every host under example.com: passkeys are valid across them,
// and the ceremonies run on the server's own pages.
func ExampleConfigFromURL() {
	cfg, err := passkey.ConfigFromURL("https://login.example.com/", ".example.com")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.RPID, cfg.Origins)
	// Output: example.com [https://login.example.com]
}
