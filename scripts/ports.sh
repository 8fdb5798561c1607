# Shared helpers for the test scripts (sourced): free ports, starting the reference set-up
# (start_peer), waiting for a server, the head of an nginx configuration, and `harness`, the
# scripts' one Python harness (scripts/harness: the checks and the clients). Ports are taken
# below the kernel's ephemeral range (32768 and up), so the outgoing connections of other
# tests cannot take one between the moment it is chosen and the moment a server binds it; a
# block is checked port by port, because start-iipsrv.sh binds FCGI_PORT, FCGI_PORT+1, … for
# its NPROCS processes.

HARNESS_PATH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Runs the harness: harness [--ledger FILE] COMMAND ...   (python3 -m harness --help)
harness() { PYTHONPATH="$HARNESS_PATH${PYTHONPATH:+:$PYTHONPATH}" python3 -B -m harness "$@"; }

# Prints the first port of N consecutive ports that are free now: free_port_block N
free_port_block() { harness free-ports "$1"; }

# Prints one free port.
free_port() { free_port_block 1; }

# Starts ../shared/peers/start-iipsrv.sh on a fresh block of ports (the web server on the
# first, its FastCGI processes on the next ones), with up to three attempts; on each failure
# prints the script's complaint and the servers' logs. Sets PEER_PORT to the web server's
# port. Usage: start_peer RUN_DIR [VAR=value ...]   (SHARED must be set)
start_peer() {
  local run=$1 attempt base
  shift
  for attempt in 1 2 3; do
    base=$(free_port_block 4)
    if env "$@" RUN="$run" PORT="$base" FCGI_PORT=$((base + 1)) \
      bash "$SHARED/peers/start-iipsrv.sh" > "$run.start.log" 2>&1; then
      PEER_PORT=$base
      return 0
    fi
    echo "start-iipsrv.sh failed (attempt $attempt of 3):" >&2
    tail -n 5 "$run.start.log" >&2
    tail -n 5 "$run"/logs/* >&2 2>/dev/null || true
    RUN="$run" bash "$SHARED/peers/stop-iipsrv.sh" >/dev/null 2>&1 || true
  done
  return 1
}

# Waits up to 10 s for a URL to answer (a server just started): wait_for_http URL. Never
# fails: a server that did not come up fails the caller's first real request instead.
wait_for_http() { harness wait "$1"; }

# Prints the head of an nginx configuration for scripts that start their own nginx: runs as
# root (it reads the scripts' temporary files), keeps its pid, error log and temporary files
# under DIR, and opens the http block, which the caller fills and closes:
#   { nginx_head DIR WORKER_CONNECTIONS; cat <<END ...servers... } END; } > DIR/nginx.conf
nginx_head() {
  mkdir -p "$1/tmp"
  cat <<EOF
user root;
worker_processes 1;
error_log $1/error.log;
pid $1/nginx.pid;
events { worker_connections $2; }
http {
  access_log off;
  client_body_temp_path $1/tmp; proxy_temp_path $1/tmp;
  fastcgi_temp_path $1/tmp; uwsgi_temp_path $1/tmp; scgi_temp_path $1/tmp;
EOF
}

# Starts nginx serving the files under ROOT on 127.0.0.1:PORT as a CDN would serve static
# tile trees (`iipsrv convert --static`): CORS on every answer, JSON-LD for info.json, XML
# for .dzi. Keeps its files in DIR; the caller stops it with kill $(cat DIR/nginx.pid).
# Usage: nginx_static DIR PORT ROOT
nginx_static() {
  mkdir -p "$1"
  { nginx_head "$1" 64; cat <<EOF
  include /etc/nginx/mime.types;
  server {
    listen 127.0.0.1:$2;
    root $3;
    add_header Access-Control-Allow-Origin * always;
    location ~ /info\.json\$ {
      types { }
      default_type application/ld+json;
      add_header Access-Control-Allow-Origin * always;
    }
    location ~ \.dzi\$ {
      types { }
      default_type application/xml;
      add_header Access-Control-Allow-Origin * always;
    }
  }
}
EOF
  } > "$1/nginx.conf"
  nginx -c "$1/nginx.conf"
}
