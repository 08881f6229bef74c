package forwarded_test

import (
	"fmt"
	"net/http/httptest"
	"net/netip"

	"github.com/sessionguard/sessionguard/internal/forwarded"
)

// A TLS-terminating proxy at 10.0.0.2 forwards a browser's request for
// https://sg.example.com to the server at 127.0.0.1:8080.
func ExampleProxies_PublicOrigin() {
	proxies := forwarded.Proxies{netip.MustParsePrefix("10.0.0.0/8")}

	r := httptest.NewRequest("POST", "http://127.0.0.1:8080/auth/login", nil)
	r.RemoteAddr = "10.0.0.2:51234"
	r.Header.Set("X-Forwarded-Proto", "https")
	r.Header.Set("X-Forwarded-Host", "sg.example.com")
	r.Header.Set("X-Forwarded-For", "198.51.100.7")
	scheme, host := proxies.PublicOrigin(r)
	fmt.Println(scheme, host, proxies.ClientIP(r))

	// The same headers from anyone else describe nothing.
	r.RemoteAddr = "203.0.113.9:4000"
	scheme, host = proxies.PublicOrigin(r)
	fmt.Println(scheme, host, proxies.ClientIP(r))
	// Output:
	// https sg.example.com 198.51.100.7
	// http 127.0.0.1:8080 203.0.113.9
}
