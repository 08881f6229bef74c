package testproxy

import "text/template"

// nginxConfig puts sessionguard's checks in front of an application with
// nginx's auth_request (Debian's nginx 1.22.1 has the module). Only the
// first block is particular to the tests; the http block is what
// docs/gateway.md shows, with the addresses filled in.
var nginxConfig = template.Must(template.New("nginx.conf").Parse(`# For the tests: one process in the foreground, every file in the test's directory.
daemon off;
master_process off;
worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log info;
events { worker_connections 512; }

http {
    access_log {{.Dir}}/access.log;
    client_body_temp_path {{.Dir}}/client_body;
    proxy_temp_path {{.Dir}}/proxy;
    fastcgi_temp_path {{.Dir}}/fastcgi;
    uwsgi_temp_path {{.Dir}}/uwsgi;
    scgi_temp_path {{.Dir}}/scgi;

    upstream sessionguard { server {{.SessionGuard}}; }
    upstream app { server {{.App}}; }

    # A page navigation (a person clicked or typed a URL) is sent to the
    # sign-in page; a script's request (fetch, XHR) gets 401 JSON instead,
    # which it can handle. The same rule as sessionguard's forward-auth
    # endpoint: Accept has text/html, and Sec-Fetch-Mode is navigate or absent.
    map "$http_sec_fetch_mode|$http_accept" $sg_navigation {
        default 0;
        "~^(navigate)?\|.*text/html" 1;
    }

    server {
        listen {{.Listen}};

        # sessionguard's sign-in page, its static files and timeout.js, on
        # the application's own origin, so that its cookie is the app's.
        location /auth/ {
            proxy_pass http://sessionguard;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
        }

        # The check nginx makes before each request to the application.
        location = /_sessionguard {
            internal;
            proxy_pass http://sessionguard/auth/gate/auth-request;
            # The check is a GET without a body: do not send the client's
            # body or its length, or the check would wait for it.
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
            proxy_set_header X-Forwarded-For $remote_addr;
        }

        location / {
            auth_request /_sessionguard;
            auth_request_set $sg_user $upstream_http_remote_user;
            auth_request_set $sg_groups $upstream_http_remote_groups;
            auth_request_set $sg_login $upstream_http_location;
            auth_request_set $sg_reason $upstream_http_session_reason;
            # Always set, so that a client's own Remote-User never reaches
            # the application (an empty value drops the header).
            proxy_set_header Remote-User $sg_user;
            proxy_set_header Remote-Groups $sg_groups;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            error_page 401 = @sessionguard_login;

            # The timeout warning on every page of the application:
            # sub_filter needs the page uncompressed.
            proxy_set_header Accept-Encoding "";
            sub_filter '</head>' '<script src="/auth/timeout.js" defer></script></head>';
            sub_filter_once on;

            proxy_pass http://app;
        }

        # Not signed in: a navigation goes to the sign-in page (sessionguard's
        # Location holds the way back and why the session ended); a script
        # gets 401 JSON.
        location @sessionguard_login {
            if ($sg_navigation) {
                return 302 $sg_login;
            }
            default_type application/json;
            return 401 '{"error":"unauthenticated","reason":"$sg_reason"}';
        }
    }
}
`))

// caddyConfig puts sessionguard's checks in front of an application with
// Caddy's forward_auth (Debian's caddy 2.6.2). Only the global options are
// particular to the tests.
var caddyConfig = template.Must(template.New("Caddyfile").Parse(`# For the tests: no admin endpoint, no certificates.
{
	admin off
	auto_https off
}

http://{{.Listen}} {
	# sessionguard's sign-in page, its static files and timeout.js, on the
	# application's own origin, so that its cookie is the app's.
	handle /auth/* {
		reverse_proxy {{.SessionGuard}}
	}

	handle {
		# route keeps the order as written: Caddy's default order runs
		# request_header after forward_auth, where it would delete the
		# identity forward_auth just copied.
		route {
			# A client's own identity headers never reach the application,
			# whatever forward_auth copies or not.
			request_header -Remote-User
			request_header -Remote-Groups
			forward_auth {{.SessionGuard}} {
				uri /auth/gate/forward-auth
				copy_headers Remote-User Remote-Groups
			}
			reverse_proxy {{.App}}
		}
	}
}
`))
