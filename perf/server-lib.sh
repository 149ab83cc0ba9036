# perf/server-lib.sh: helpers shared by perf/servers.sh and
# perf/tcp-floor.sh (sourced, not run).

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Wait up to 5 s until something accepts on 127.0.0.1:PORT; 1 if nothing does.
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

# nginx_conf DIR PORT: DIR/nginx.conf for the comparison nginx: one worker
# in the foreground, no access log, keep-alive without a request limit,
# `return 200` with a 13-byte body, on 127.0.0.1:PORT; pid and error log in DIR.
nginx_conf() {
	cat >"$1/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:$2;
    location / { default_type text/plain; return 200 "Hello, World!"; }
  }
}
NGX
}
