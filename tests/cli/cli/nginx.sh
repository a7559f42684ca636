# Sourced by the remote fixture store tests (after cli/lib.sh): a real
# nginx with WebDAV PUT on 127.0.0.1 on a free port, private prefix
# $NX (store under $NX/store, log $NX/logs/access.log), stopped on exit.
# /auth/ wants "Authorization: Bearer s3cret". start_nginx sets PORT.
# free_port prints a port nothing listens on. Exit 77 without nginx.
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "skip: no nginx (apt-get install nginx-light)"; exit 77; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NX=$T/nginx
mkdir -p "$NX/store" "$NX/tmp" "$NX/logs"
PORT=$(free_port)
user=; [ "$(id -u)" -eq 0 ] && user="user root root;"
cat >"$NX/nginx.conf" <<CONF
$user
daemon on;
pid $NX/nginx.pid;
error_log $NX/logs/error.log;
events { worker_connections 64; }
http {
	access_log $NX/logs/access.log;
	client_body_temp_path $NX/tmp;
	proxy_temp_path $NX/tmp;
	fastcgi_temp_path $NX/tmp;
	server {
		listen 127.0.0.1:$PORT;
		root $NX/store;
		location / {
			dav_methods PUT DELETE;
			create_full_put_path on;
			client_max_body_size 0;
		}
		location /auth/ {
			if (\$http_authorization != "Bearer s3cret") { return 401; }
			dav_methods PUT DELETE;
			create_full_put_path on;
			client_max_body_size 0;
		}
	}
}
CONF
start_nginx() {
	"$NGINX" -p "$NX" -c "$NX/nginx.conf" 2>"$NX/start.err" ||
		{ cat "$NX/start.err"; fail "nginx did not start"; }
	trap '[ -f "$NX/nginx.pid" ] && kill "$(cat "$NX/nginx.pid")"; rm -rf "$T"' EXIT
	python3 - "$PORT" <<'PY' || fail "nginx does not listen on $PORT"
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close(); sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
PY
}
