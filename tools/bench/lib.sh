# Pieces shared by tools/bench/run and tools/bench/soak (sourced, not
# run): the paths, the build of what they need, the cleanup at exit, and
# our server (NGINX with the module, Redis and FerretDB) started and
# stopped as the bench runs it.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bench="$root/tools/bench"
work="$root/build/bench"
deps="$root/.deps/bench"

# our server's port and the bench's JWT secret
p_chat=18480
secret="bench-only-secret-0123456789abcdef0123456789"
# each worker's bound on sends in flight (the module's default)
max_pending=1000

# the module, the load generator, pymongo and redis for setup.py
install_core() {
    "$root/tools/bootstrap" >/dev/null
    "$root/tools/build" >/dev/null

    mkdir -p "$deps/bin" "$work"
    cc -O2 -Wall -Wextra -Wno-unused-parameter \
        -o "$work/loadgen" "$bench/loadgen.c"

    if ! "$deps/venv/bin/python" -c 'import pymongo, redis' 2>/dev/null
    then
        /usr/bin/python3 -m venv "$deps/venv"
        "$deps/venv/bin/pip" install -q --disable-pip-version-check \
            pymongo==4.10.1 redis==5.2.1
    fi
}

# whatever is still running when the script ends, on error too
cleanup_pids=()
cleanup_dirs=()
cleanup() {
    local p d
    for p in "${cleanup_pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for d in "${cleanup_dirs[@]}"; do
        "$root/tools/services" stop "$d" 2>/dev/null || true
    done
}
trap cleanup EXIT

wait_port() {
    local i
    for i in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "bench: nothing listens on $1" >&2
    return 1
}

workers_of() {
    pgrep -P "$1" | paste -sd, -
}

lg() {
    "$work/loadgen" "$@"
}

procs_for() {
    local n=$1
    local p=$(( (n + 8999) / 9000 ))
    [ "$p" -lt 2 ] && p=2
    echo "$p"
}

# DIR REDIS_PORT MONGO_PORT: our NGINX's conf; CHAT_SO names another build
# of the module (to compare two builds, run after run)
chat_conf() {
    local d=$1 redis_port=$2 mongo_port=$3
    mkdir -p "$d/conf" "$d/logs" "$d/run" "$d/html"
    : > "$d/html/empty"
    cat > "$d/conf/nginx.conf" <<CONF
load_module ${CHAT_SO:-$root/build/modules/ngx_http_chat_module.so};
worker_processes 2;
worker_rlimit_nofile 20000;
error_log logs/error.log ${CHAT_LOGLEVEL:-warn};
pid run/nginx.pid;
thread_pool chat threads=16 max_queue=65536;
events {
    worker_connections 19800;
}
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path run/body;
    proxy_temp_path run/proxy;
    fastcgi_temp_path run/fastcgi;
    uwsgi_temp_path run/uwsgi;
    scgi_temp_path run/scgi;

    chat_redis 127.0.0.1:$redis_port;
    chat_mongo_uri "mongodb://127.0.0.1:$mongo_port/";
    chat_mongo_database chat;
    chat_thread_pool chat;
    chat_jwt_secret "$secret";
    chat_jwt_issuer ngx_chat_module;
    chat_jwt_audience chat;
    chat_group_max_size 1000;
    chat_send_max_pending $max_pending;
    # the publishers' sends, past any person's: no per-user send budget
    chat_send_rate off;

    server {
        listen 127.0.0.1:$p_chat reuseport backlog=4096;
        root html;
        # the load generator's few publishers send far past a person's
        # rate, and all its sockets come from one address: the abuse
        # limits are off, as the peers have none
        location /api/ {
            chat_api;
            chat_rest_rate auth off;
            chat_rest_rate read off;
            chat_rest_rate write off;
            chat_rest_rate send off;
            chat_rest_rate search off;
            chat_rest_rate group off;
            chat_rest_rate upload off;
            chat_rest_rate address off;
        }
        location = /ws {
            chat_ws;
            chat_ws_auth_timeout 60s;
            chat_ws_event_rate off;
            chat_ws_send_rate off;
            chat_ws_unauth_per_address off;
            chat_ws_conn_per_address off;
        }
        location = /empty { }
        # the workers' counters, which tools/bench/soak reads
        location = /metrics { chat_metrics; }
    }
}
CONF
}

# DIR: Redis and FerretDB (tuned, in DIR/data), then NGINX on p_chat;
# sets chat_ngx, chat_workers (comma-separated), chat_redis_pid,
# chat_mongo_pid, and CHAT_REDIS_PORT, CHAT_MONGO_PORT
chat_start() {
    local d=$1 data=$1/data
    rm -rf "$d"
    mkdir -p "$d"
    cleanup_dirs+=("$data")
    CHAT_SERVICES_TUNED=1 "$root/tools/services" start "$data" >/dev/null
    # shellcheck disable=SC1091
    . "$data/env"
    chat_conf "$d" "$CHAT_REDIS_PORT" "$CHAT_MONGO_PORT"
    /usr/sbin/nginx -p "$d" -c conf/nginx.conf
    wait_port "$p_chat"
    sleep 0.5
    chat_ngx=$(cat "$d/run/nginx.pid")
    cleanup_pids+=("$chat_ngx")
    chat_workers=$(workers_of "$chat_ngx")
    chat_redis_pid=$(cat "$data/redis/redis.pid")
    chat_mongo_pid=$(cat "$data/ferretdb/ferretdb.pid")
}

# DIR: what chat_start DIR started
chat_stop() {
    kill -QUIT "$chat_ngx"
    sleep 1
    "$root/tools/services" stop "$1/data"
}
